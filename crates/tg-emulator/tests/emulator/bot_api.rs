//! Bot API methods: routing, parameter encodings, updates, files, sending.

use std::time::{Duration, Instant};

use serde_json::json;
use tg_emulator::{SentKind, UserMessageOptions};

use crate::{call, http, jpeg, ok, start};

#[tokio::test]
async fn method_names_are_case_insensitive() {
    let emu = start().await;
    for name in ["getMe", "GETME", "getme", "GeTmE"] {
        let me = ok(&emu, name, json!({})).await;
        assert_eq!(me["id"], 123456);
        assert_eq!(me["is_bot"], true);
        assert_eq!(me["username"], "polybot_test_bot");
    }
    let stats = emu.client().requests().await.unwrap();
    assert_eq!(
        stats.total.get("getMe"),
        Some(&4),
        "counted under the canonical name"
    );
}

#[tokio::test]
async fn unknown_token_is_401_and_unknown_method_is_404() {
    let emu = start().await;
    let url = format!("{}/bot999:WRONG/getMe", emu.base_url());
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );

    let (status, body) = call(&emu, "sendTelepathy", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
}

#[tokio::test]
async fn parameters_are_accepted_as_query_json_form_and_multipart() {
    let emu = start().await;
    let client = http();
    // Query string with GET.
    let r = client
        .get(emu.method_url("sendMessage"))
        .query(&[("chat_id", "7"), ("text", "via query")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // JSON with a numeric chat_id.
    ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 7, "text": "via json"}),
    )
    .await;
    // Form.
    let r = client
        .post(emu.method_url("sendMessage"))
        .form(&[("chat_id", "7"), ("text", "via form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Multipart text fields.
    let form = reqwest::multipart::Form::new()
        .text("chat_id", "7")
        .text("text", "via multipart");
    let r = client
        .post(emu.method_url("sendMessage"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let texts: Vec<String> = emu
        .client()
        .messages(7)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        ["via query", "via json", "via form", "via multipart"]
    );
}

#[tokio::test]
async fn send_message_returns_a_telegram_message_and_checks_required_fields() {
    let emu = start().await;
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": "42", "text": "hello"}),
    )
    .await;
    assert_eq!(message["message_id"], 1);
    assert_eq!(
        message["chat"],
        json!({"id": 42, "type": "private", "first_name": "Test"})
    );
    assert_eq!(message["from"]["is_bot"], true);
    assert_eq!(message["text"], "hello");
    assert!(message["date"].as_i64().unwrap() > 1_600_000_000);

    let (status, body) = call(&emu, "sendMessage", json!({"chat_id": 42})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message text is empty"))
    );
    let (status, body) = call(&emu, "sendMessage", json!({"text": "x"})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: chat_id is empty"))
    );
    let (status, body) = call(
        &emu,
        "sendMessage",
        json!({"chat_id": 42, "text": "x".repeat(4097)}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message is too long"))
    );
}

#[tokio::test]
async fn send_message_checks_parse_mode_markup_like_telegram() {
    let emu = start().await;
    let (status, body) = call(
        &emu,
        "sendMessage",
        json!({"chat_id": 1, "text": "bus 0.94", "parse_mode": "MarkdownV2"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: can't parse entities: Character '.' is reserved"),
        "{body}"
    );
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 1, "text": "<b>bus</b> 94%", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(
        message["text"], "bus 94%",
        "the Message carries the rendered text"
    );
    let sent = emu.client().messages(1).await.unwrap();
    assert_eq!(
        sent[0].text.as_deref(),
        Some("<b>bus</b> 94%"),
        "the record keeps what the bot sent"
    );
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
}

#[tokio::test]
async fn replies_resolve_with_reply_parameters_or_reply_to_message_id() {
    let emu = start().await;
    let queued = emu.client().send_user_text(5, "hi").await.unwrap();
    let user_message_id = queued.message_id.unwrap();

    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 5, "text": "a", "reply_parameters": {"message_id": user_message_id}}),
    )
    .await;
    assert_eq!(message["reply_to_message"]["text"], "hi");
    // Form encoding carries reply_parameters as JSON text.
    let r = http()
        .post(emu.method_url("sendMessage"))
        .form(&[
            ("chat_id", "5"),
            ("text", "b"),
            ("reply_to_message_id", &user_message_id.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let (status, body) = call(
        &emu,
        "sendMessage",
        json!({"chat_id": 5, "text": "c", "reply_parameters": {"message_id": 999}}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message to be replied not found"))
    );
    ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 5, "text": "d", "reply_parameters": {"message_id": 999, "allow_sending_without_reply": true}}),
    )
    .await;

    let sent = emu.client().messages(5).await.unwrap();
    let replies: Vec<Option<i64>> = sent.iter().map(|m| m.reply_to_message_id).collect();
    assert_eq!(
        replies,
        [Some(user_message_id), Some(user_message_id), None]
    );
}

#[tokio::test]
async fn get_updates_long_poll_wakes_as_soon_as_an_update_arrives() {
    let emu = start().await;
    let client = emu.client();
    let started = Instant::now();
    let poll = tokio::spawn({
        let url = emu.method_url("getUpdates");
        async move {
            http()
                .post(url)
                .json(&json!({"timeout": 20}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll waits while there is nothing");
    client.send_user_text(9, "wake up").await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("poll returned promptly")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(body["result"][0]["message"]["text"], "wake up");
}

#[tokio::test]
async fn get_updates_timeout_returns_an_empty_list() {
    let emu = start().await;
    let started = Instant::now();
    let result = ok(&emu, "getUpdates", json!({"timeout": 1})).await;
    assert_eq!(result, json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn get_updates_offset_confirms_earlier_updates_and_limit_caps() {
    let emu = start().await;
    let client = emu.client();
    for text in ["one", "two", "three"] {
        client.send_user_text(3, text).await.unwrap();
    }
    let first = ok(&emu, "getUpdates", json!({"limit": 2})).await;
    assert_eq!(first.as_array().unwrap().len(), 2);
    let again = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(
        again.as_array().unwrap().len(),
        3,
        "unconfirmed updates are returned again"
    );

    let second_id = first[1]["update_id"].as_i64().unwrap();
    let rest = ok(&emu, "getUpdates", json!({"offset": second_id + 1})).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["message"]["text"], "three");
    assert_eq!(client.webhook().await.unwrap().pending_update_count, 1);
}

#[tokio::test]
async fn get_updates_is_a_conflict_while_a_webhook_is_set() {
    let emu = start().await;
    ok(
        &emu,
        "setWebhook",
        json!({"url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let (status, body) = call(&emu, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    );
    ok(&emu, "deleteWebhook", json!({})).await;
    ok(&emu, "getUpdates", json!({})).await;
}

#[tokio::test]
async fn a_newer_get_updates_terminates_an_older_long_poll_with_409() {
    let emu = start().await;
    let url = emu.method_url("getUpdates");
    let first = tokio::spawn(async move {
        let r = http()
            .post(url)
            .json(&json!({"timeout": 10}))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ok(&emu, "getUpdates", json!({"timeout": 0})).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 409);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("terminated by other getUpdates request")
    );
}

#[tokio::test]
async fn get_file_and_download_roundtrip() {
    let emu = start().await;
    let bytes = jpeg(120, 80);
    let registered = emu
        .client()
        .register_file(bytes.clone(), Some("cat.jpg"))
        .await
        .unwrap();
    assert_eq!((registered.width, registered.height), (Some(120), Some(80)));

    let file = ok(&emu, "getFile", json!({"file_id": registered.file_id})).await;
    assert_eq!(file["file_path"], registered.file_path.as_str());
    assert_eq!(file["file_size"], bytes.len());
    let url = format!(
        "{}/file/bot{}/{}",
        emu.base_url(),
        emu.token(),
        registered.file_path
    );
    let downloaded = http().get(&url).send().await.unwrap();
    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(downloaded.bytes().await.unwrap().to_vec(), bytes);

    // teloxide escapes the '/' of file_path; that must work too.
    let escaped = format!(
        "{}/file/bot{}/{}",
        emu.base_url(),
        emu.token(),
        registered.file_path.replace('/', "%2F")
    );
    assert_eq!(
        http()
            .get(&escaped)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        bytes
    );

    let (status, body) = call(&emu, "getFile", json!({"file_id": "nope"})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: invalid file_id"))
    );
    let missing = format!("{}/file/bot{}/photos/none.jpg", emu.base_url(), emu.token());
    assert_eq!(
        http().get(missing).send().await.unwrap().status().as_u16(),
        404
    );
    let wrong_token = format!("{}/file/bot1:X/{}", emu.base_url(), registered.file_path);
    assert_eq!(
        http()
            .get(wrong_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn register_file_tolerates_non_images() {
    let emu = start().await;
    let file = emu
        .client()
        .register_file(b"just text".to_vec(), Some("notes.txt"))
        .await
        .unwrap();
    assert_eq!((file.width, file.height), (None, None));
    assert!(file.file_path.ends_with(".txt"), "{}", file.file_path);
    assert_eq!(
        emu.client().file_bytes(&file.file_id).await.unwrap(),
        b"just text"
    );
}

#[tokio::test]
async fn send_photo_multipart_upload_is_recorded_with_its_bytes() {
    let emu = start().await;
    let bytes = jpeg(1000, 600);
    let form = reqwest::multipart::Form::new()
        .text("chat_id", "77")
        .text("caption", "2 objects")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(bytes.clone())
                .file_name("annotated.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = http()
        .post(emu.method_url("sendPhoto"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let photo = body["result"]["photo"].as_array().unwrap();
    let dims: Vec<(u64, u64)> = photo
        .iter()
        .map(|p| (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(dims, [(90, 54), (320, 192), (800, 480), (1000, 600)]);
    for size in photo {
        for field in ["file_id", "file_unique_id", "file_size"] {
            assert!(!size[field].is_null(), "PhotoSize lacks {field}: {size}");
        }
    }
    assert_eq!(body["result"]["caption"], "2 objects");

    let sent = emu
        .client()
        .wait_for_messages(77, 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(sent[0].kind, SentKind::Photo);
    assert_eq!(sent[0].caption.as_deref(), Some("2 objects"));
    let file = sent[0].file.clone().unwrap();
    assert_eq!((file.width, file.height), (Some(1000), Some(600)));
    assert_eq!(emu.client().file_bytes(&file.file_id).await.unwrap(), bytes);
}

#[tokio::test]
async fn send_photo_accepts_file_ids_and_rejects_non_images() {
    let emu = start().await;
    let registered = emu
        .client()
        .register_file(jpeg(50, 50), None)
        .await
        .unwrap();
    let message = ok(
        &emu,
        "sendPhoto",
        json!({"chat_id": 1, "photo": registered.file_id}),
    )
    .await;
    assert_eq!(message["photo"][0]["file_id"], registered.file_id.as_str());

    let (status, body) = call(
        &emu,
        "sendPhoto",
        json!({"chat_id": 1, "photo": "no-such-id"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (
            400,
            Some("Bad Request: wrong file identifier/HTTP URL specified")
        )
    );
    let (status, body) = call(&emu, "sendPhoto", json!({"chat_id": 1})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: there is no photo in the request"))
    );

    let form = reqwest::multipart::Form::new().text("chat_id", "1").part(
        "photo",
        reqwest::multipart::Part::bytes(b"not a picture".to_vec()).file_name("x.jpg"),
    );
    let r = http()
        .post(emu.method_url("sendPhoto"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["description"], "Bad Request: IMAGE_PROCESS_FAILED");
}

#[tokio::test]
async fn send_document_records_file_name_and_mime_type() {
    let emu = start().await;
    let form = reqwest::multipart::Form::new().text("chat_id", "8").part(
        "document",
        reqwest::multipart::Part::bytes(b"{\"a\":1}".to_vec()).file_name("report.json"),
    );
    let r = http()
        .post(emu.method_url("sendDocument"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["document"]["file_name"], "report.json");
    assert_eq!(body["result"]["document"]["mime_type"], "application/json");
    let sent = emu.client().messages(8).await.unwrap();
    assert_eq!(sent[0].kind, SentKind::Document);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_then_recovers() {
    let emu = start().await;
    let client = emu.client();
    client.rate_limit(Some("sendMessage"), 2, 3).await.unwrap();
    for _ in 0..2 {
        let (status, body) = call(&emu, "SENDMESSAGE", json!({"chat_id": 1, "text": "x"})).await;
        assert_eq!(status, 429);
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}})
        );
    }
    ok(&emu, "getMe", json!({})).await;
    ok(&emu, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;

    client.rate_limit(None, 1, 1).await.unwrap();
    let (status, _) = call(&emu, "getMe", json!({})).await;
    assert_eq!(status, 429, "a rule without a method limits any method");
    ok(&emu, "getMe", json!({})).await;

    let stats = client.requests().await.unwrap();
    assert_eq!(stats.count("sendMessage"), 3);
    assert_eq!(stats.rate_limited_count("sendmessage"), 2);
    assert_eq!(stats.rate_limited_count("getMe"), 1);
    assert_eq!(
        client.messages(1).await.unwrap().len(),
        1,
        "limited calls send nothing"
    );
}

#[tokio::test]
async fn blocked_chat_answers_403() {
    let emu = start().await;
    emu.client().set_blocked(11, true).await.unwrap();
    let (status, body) = call(&emu, "sendMessage", json!({"chat_id": 11, "text": "x"})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (403, Some("Forbidden: bot was blocked by the user"))
    );
    emu.client().set_blocked(11, false).await.unwrap();
    ok(&emu, "sendMessage", json!({"chat_id": 11, "text": "x"})).await;
}

#[tokio::test]
async fn chat_actions_are_recorded_and_validated() {
    let emu = start().await;
    ok(
        &emu,
        "sendChatAction",
        json!({"chat_id": 4, "action": "upload_photo"}),
    )
    .await;
    let (status, _) = call(
        &emu,
        "sendChatAction",
        json!({"chat_id": 4, "action": "dancing"}),
    )
    .await;
    assert_eq!(status, 400);
    let actions = emu.client().chat_actions(4).await.unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].action, "upload_photo");
}

#[tokio::test]
async fn edit_and_delete_are_recorded() {
    let emu = start().await;
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 6, "text": "Detecting…"}),
    )
    .await;
    let id = message["message_id"].clone();
    let edited = ok(
        &emu,
        "editMessageText",
        json!({"chat_id": 6, "message_id": id, "text": "bus, person"}),
    )
    .await;
    assert_eq!(edited["text"], "bus, person");
    assert!(edited["edit_date"].is_i64());
    let (status, body) = call(
        &emu,
        "editMessageText",
        json!({"chat_id": 6, "message_id": id, "text": "bus, person"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: message is not modified")
    );
    ok(
        &emu,
        "deleteMessage",
        json!({"chat_id": 6, "message_id": id}),
    )
    .await;

    let sent = emu.client().messages(6).await.unwrap();
    assert_eq!(sent[0].text.as_deref(), Some("bus, person"));
    assert_eq!(sent[0].previous_versions, ["Detecting…"]);
    assert!(sent[0].deleted);
}

#[tokio::test]
async fn user_photo_update_has_a_size_ladder_whose_largest_is_the_original() {
    let emu = start().await;
    let bytes = jpeg(640, 480);
    let options = UserMessageOptions {
        caption: Some("what is this?".into()),
        ..Default::default()
    };
    let queued = emu
        .client()
        .send_user_photo(21, bytes.clone(), &options)
        .await
        .unwrap();
    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(updates[0], queued.update);
    let message = &updates[0]["message"];
    assert_eq!(message["chat"]["type"], "private");
    assert_eq!(message["from"]["id"], 21);
    assert_eq!(message["caption"], "what is this?");
    let sizes = message["photo"].as_array().unwrap();
    assert_eq!(sizes.len(), 3, "90, 320 and the original 640");
    let largest = sizes.last().unwrap();
    assert_eq!(
        (largest["width"].as_u64(), largest["height"].as_u64()),
        (Some(640), Some(480))
    );

    let file = ok(&emu, "getFile", json!({"file_id": largest["file_id"]})).await;
    let url = format!(
        "{}/file/bot{}/{}",
        emu.base_url(),
        emu.token(),
        file["file_path"].as_str().unwrap()
    );
    assert_eq!(
        http()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        bytes
    );
}

#[tokio::test]
async fn user_document_update_carries_file_name_mime_type_and_thumbnail() {
    let emu = start().await;
    let queued = emu
        .client()
        .send_user_document(22, jpeg(400, 300), &UserMessageOptions::default())
        .await
        .unwrap();
    let document = &queued.update["message"]["document"];
    assert_eq!(document["file_name"], "image.jpg");
    assert_eq!(document["mime_type"], "image/jpeg");
    assert_eq!(document["thumbnail"]["width"], 320);

    let queued = emu
        .client()
        .send_user_document(
            22,
            b"%PDF-1.4".to_vec(),
            &UserMessageOptions {
                file_name: Some("scan.pdf".into()),
                mime_type: Some("application/pdf".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let document = &queued.update["message"]["document"];
    assert_eq!(document["mime_type"], "application/pdf");
    assert!(document.get("thumbnail").is_none());
}
