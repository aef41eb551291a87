//! Control API: crafted updates, duplicates, reset, errors.

use serde_json::json;

use crate::{call, ok, start};

#[tokio::test]
async fn raw_updates_are_queued_as_given_including_unknown_types() {
    let emu = start().await;
    let client = emu.client();
    let unknown =
        json!({"update_id": 500, "business_connection": {"id": "x", "future_field": true}});
    let queued = client.queue_update(&unknown).await.unwrap();
    assert_eq!(queued.update_id, 500);
    let without_id = client
        .queue_update(&json!({"message": {"message_id": 3, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}}))
        .await
        .unwrap();
    assert_eq!(
        without_id.update_id, 501,
        "ids continue after the highest one seen"
    );

    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(updates[0], unknown);
    assert_eq!(updates[1]["update_id"], 501);
    // A crafted message can be replied to.
    ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 1, "text": "re", "reply_to_message_id": 3}),
    )
    .await;
}

#[tokio::test]
async fn redeliver_hands_an_already_confirmed_update_to_a_polling_bot_again() {
    let emu = start().await;
    let client = emu.client();
    let queued = client.send_user_text(30, "/start").await.unwrap();
    assert_eq!(
        queued.update["message"]["entities"][0]["type"],
        "bot_command"
    );
    let first = ok(&emu, "getUpdates", json!({})).await;
    let id = first[0]["update_id"].as_i64().unwrap();
    // Confirm it, then simulate Telegram sending it once more.
    assert_eq!(
        ok(&emu, "getUpdates", json!({"offset": id + 1})).await,
        json!([])
    );
    client.redeliver(id).await.unwrap();
    let again = ok(&emu, "getUpdates", json!({"offset": id + 1})).await;
    assert_eq!(
        again, first,
        "the duplicate is delivered although its id is below offset"
    );
    assert_eq!(
        ok(&emu, "getUpdates", json!({"offset": id + 1})).await,
        json!([]),
        "but only once"
    );

    let missing = client.redeliver(9999).await.unwrap_err();
    assert!(missing.to_string().contains("404"), "{missing}");
}

#[tokio::test]
async fn crafted_duplicate_update_ids_are_all_delivered() {
    let emu = start().await;
    let client = emu.client();
    let update = json!({"update_id": 10, "message": {"message_id": 1, "date": 0, "chat": {"id": 2, "type": "private"}, "text": "dup"}});
    client.queue_update(&update).await.unwrap();
    client.queue_update(&update).await.unwrap();
    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn reset_forgets_messages_updates_and_rules() {
    let emu = start().await;
    let client = emu.client();
    client.send_user_text(1, "x").await.unwrap();
    ok(&emu, "sendMessage", json!({"chat_id": 1, "text": "y"})).await;
    client.rate_limit(None, 5, 1).await.unwrap();
    client.reset().await.unwrap();
    assert!(client.messages(1).await.unwrap().is_empty());
    assert_eq!(ok(&emu, "getUpdates", json!({})).await, json!([]));
}

#[tokio::test]
async fn control_errors_are_json_with_a_4xx_status() {
    let emu = start().await;
    let response = crate::http()
        .post(format!("{}/control/chats/abc/text", emu.base_url()))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert!(body["error"].as_str().unwrap().contains("chat_id"));
    // Unknown paths outside /control and /bot answer like the Bot API.
    let (status, _) = call(&emu, "getMe", json!({})).await;
    assert_eq!(status, 200);
    let other = crate::http()
        .get(format!("{}/nothing", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
}

#[tokio::test]
async fn scripted_faults_answer_the_next_calls_of_one_method_then_stop() {
    let emu = start().await;
    let client = emu.client();
    client.fail_next("sendMessage", 2, 500).await.unwrap();
    client
        .fault(&tg_emulator::ApiFault {
            method: Some("SENDMESSAGE".into()),
            count: 1,
            error_code: Some(429),
            description: None,
            retry_after: Some(7),
            delay_ms: None,
        })
        .await
        .unwrap();
    client.fail_next("getFile", 1, 400).await.unwrap();
    let send = || call(&emu, "sendMessage", json!({"chat_id": 1, "text": "x"}));
    let (status, body) = send().await;
    assert_eq!((status, body["error_code"].clone()), (500, json!(500)));
    assert_eq!(body["description"], "Internal Server Error");
    assert_eq!(send().await.0, 500);
    let (status, body) = send().await;
    assert_eq!(status, 429);
    assert_eq!(body["parameters"]["retry_after"], 7);
    assert_eq!(send().await.0, 200, "the rules are used up");
    // Other methods were not affected by the sendMessage rules.
    let (status, body) = call(&emu, "getFile", json!({"file_id": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["description"], "Bad Request: scripted error");
    assert_eq!(ok(&emu, "getMe", json!({})).await["is_bot"], true);
    client.fail_next("getMe", 5, 502).await.unwrap();
    client.clear_faults().await.unwrap();
    assert_eq!(ok(&emu, "getMe", json!({})).await["is_bot"], true);
}
