//! Inline keyboards and callback queries: `reply_markup` on sends and edits
//! with Telegram's checks, `editMessageReplyMarkup`, button presses through
//! the control API, `answerCallbackQuery` and its record.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, routing::post};
use serde_json::{Value, json};
use tg_emulator::{ButtonPress, ChatSetup, ChatType, EmulatorHandle, Member};
use tokio::net::TcpListener;

use crate::{call, http, jpeg, ok, start};

fn yes_no() -> Value {
    json!({"inline_keyboard": [
        [{"text": "Yes", "callback_data": "vote:yes"}, {"text": "No", "callback_data": "vote:no"}],
        [{"text": "Docs", "url": "https://example.com/docs"}]
    ]})
}

/// Sends a text with the yes/no keyboard and returns its message_id.
async fn ask(emu: &EmulatorHandle, chat_id: i64) -> i64 {
    let message = ok(
        emu,
        "sendMessage",
        json!({"chat_id": chat_id, "text": "Bus?", "reply_markup": yes_no()}),
    )
    .await;
    message["message_id"].as_i64().unwrap()
}

/// Calls a method that must fail with 400 and returns its description.
async fn bad_request(emu: &EmulatorHandle, method: &str, params: Value) -> String {
    let (status, body) = call(emu, method, params).await;
    assert_eq!(status, 400, "{method} should fail: {body}");
    assert_eq!(body["ok"], false);
    body["description"].as_str().unwrap().to_owned()
}

/// POSTs a press and returns (HTTP status, body).
async fn press_raw(
    emu: &EmulatorHandle,
    chat_id: i64,
    message_id: i64,
    body: Value,
) -> (u16, Value) {
    let response = http()
        .post(format!(
            "{}/control/chats/{chat_id}/messages/{message_id}/press",
            emu.base_url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn send_message_echoes_the_inline_keyboard_and_records_it() {
    let emu = start().await;
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 50, "text": "Bus?", "reply_markup": yes_no()}),
    )
    .await;
    assert_eq!(message["reply_markup"], yes_no());

    // Form encoding carries reply_markup as JSON text.
    let r = http()
        .post(emu.method_url("sendMessage"))
        .form(&[
            ("chat_id", "50"),
            ("text", "again"),
            ("reply_markup", &yes_no().to_string()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["reply_markup"], yes_no(), "{body}");

    let sent = emu.client().messages(50).await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].reply_markup, Some(yes_no()));
    assert_eq!(sent[0].message["reply_markup"], yes_no());
    assert_eq!(sent[0].inline_keyboard.len(), 2);
    assert_eq!(sent[0].callback_data("No"), Some("vote:no"));
    assert_eq!(sent[0].callback_data("Docs"), None, "a URL button");
    assert_eq!(
        sent[0].button("Docs").and_then(|b| b.url.as_deref()),
        Some("https://example.com/docs")
    );
    assert_eq!(sent[0].buttons().count(), 3);
}

#[tokio::test]
async fn a_button_is_echoed_with_its_text_and_one_action_only() {
    let emu = start().await;
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 51, "text": "x", "reply_markup": {"inline_keyboard": [[
            {"text": "Both", "url": "https://e.com", "callback_data": "dropped"},
            {"text": 42, "callback_data": 7, "unknown_field": true},
            {"text": "Copy", "copy_text": {"text": "abc"}}
        ]]}}),
    )
    .await;
    assert_eq!(
        message["reply_markup"],
        json!({"inline_keyboard": [[
            {"text": "Both", "url": "https://e.com"},
            {"text": "42", "callback_data": "7"},
            {"text": "Copy", "copy_text": {"text": "abc"}}
        ]]})
    );
}

#[tokio::test]
async fn send_photo_and_send_document_take_reply_markup_in_multipart_bodies() {
    let emu = start().await;
    for (method, field, bytes, name) in [
        ("sendPhoto", "photo", jpeg(64, 48), "a.jpg"),
        ("sendDocument", "document", b"id,label\n".to_vec(), "a.csv"),
    ] {
        let form = reqwest::multipart::Form::new()
            .text("chat_id", "52")
            .text("caption", "pick one")
            .text("reply_markup", yes_no().to_string())
            .part(
                field,
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        let r = http()
            .post(emu.method_url(method))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["result"]["reply_markup"], yes_no(), "{method}: {body}");
    }
    let sent = emu.client().messages(52).await.unwrap();
    assert!(
        sent.iter()
            .all(|m| m.callback_data("Yes") == Some("vote:yes"))
    );
}

#[tokio::test]
async fn malformed_reply_markup_is_refused_with_telegrams_texts_and_nothing_is_sent() {
    let emu = start().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!("{not json"),
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
        (
            json!([1, 2]),
            "Bad Request: object expected as reply markup",
        ),
        (
            json!({"inline_keyboard": [{"text": "a", "callback_data": "b"}]}),
            "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
        ),
        (
            json!({"inline_keyboard": "rows"}),
            "Bad Request: field \"inline_keyboard\" must be of type Array",
        ),
        (
            json!({"inline_keyboard": [[{"callback_data": "b"}]]}),
            "Bad Request: can't parse inline keyboard button: Can't find field \"text\"",
        ),
        (
            json!({"inline_keyboard": [[{"text": "a"}]]}),
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ),
        (
            // Telegram treats an empty callback_data as none at all.
            json!({"inline_keyboard": [[{"text": "a", "callback_data": ""}]]}),
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ),
        (
            json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(65)}]]}),
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ];
    for (markup, expected) in cases {
        let description = bad_request(
            &emu,
            "sendMessage",
            json!({"chat_id": 53, "text": "x", "reply_markup": markup}),
        )
        .await;
        assert_eq!(description, expected, "{markup}");
    }
    let button = |i: usize| json!({"text": i.to_string(), "callback_data": i.to_string()});
    let nine_in_a_row: Vec<Value> = (0..9).map(button).collect();
    let description = bad_request(
        &emu,
        "sendMessage",
        json!({"chat_id": 53, "text": "x", "reply_markup": {"inline_keyboard": [nine_in_a_row]}}),
    )
    .await;
    assert_eq!(description, "Bad Request: reply markup is too long");
    let rows: Vec<Value> = (0..101).map(|i| json!([button(i)])).collect();
    let description = bad_request(
        &emu,
        "sendMessage",
        json!({"chat_id": 53, "text": "x", "reply_markup": {"inline_keyboard": rows}}),
    )
    .await;
    assert_eq!(description, "Bad Request: reply markup is too long");
    // A photo with a bad keyboard is refused too, before its upload is kept.
    let description = bad_request(
        &emu,
        "sendPhoto",
        json!({"chat_id": 53, "photo": "AgACAgIAAxkBAAEmu00000001", "reply_markup": "{"}),
    )
    .await;
    assert_eq!(
        description,
        "Bad Request: can't parse reply keyboard markup JSON object"
    );

    assert!(emu.client().messages(53).await.unwrap().is_empty());
    // The limits themselves are accepted: 64 bytes of data, 8 in a row, 100 in all.
    let eight: Vec<Value> = (0..8).map(button).collect();
    let mut rows: Vec<Value> = (0..11).map(|_| json!(eight.clone())).collect();
    rows.push(json!([button(1), button(2), button(3), button(4)]));
    rows[0][0]["callback_data"] = json!("x".repeat(64));
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 53, "text": "x", "reply_markup": {"inline_keyboard": rows}}),
    )
    .await;
    assert_eq!(
        message["reply_markup"]["inline_keyboard"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

#[tokio::test]
async fn buttons_with_an_empty_text_are_dropped_like_telegram_does() {
    let emu = start().await;
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 54, "text": "x", "reply_markup": {"inline_keyboard": [
            [{"text": "", "callback_data": "a"}, {"text": "B", "callback_data": "b"}],
            [{"text": "", "callback_data": "c"}]
        ]}}),
    )
    .await;
    assert_eq!(
        message["reply_markup"],
        json!({"inline_keyboard": [[{"text": "B", "callback_data": "b"}]]})
    );
    // A keyboard left without buttons is no keyboard.
    let message = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 54, "text": "y", "reply_markup": {"inline_keyboard": [[{"text": "", "callback_data": "a"}]]}}),
    )
    .await;
    assert!(message.get("reply_markup").is_none(), "{message}");
    let sent = emu.client().messages(54).await.unwrap();
    assert!(sent[1].inline_keyboard.is_empty());
}

#[tokio::test]
async fn reply_keyboards_and_force_reply_are_stored_but_not_echoed() {
    let emu = start().await;
    for markup in [
        json!({"keyboard": [["/detect"], [{"text": "/blur"}]], "resize_keyboard": true}),
        json!({"remove_keyboard": true}),
        json!({"force_reply": true, "input_field_placeholder": "caption"}),
    ] {
        let message = ok(
            &emu,
            "sendMessage",
            json!({"chat_id": 55, "text": "x", "reply_markup": markup}),
        )
        .await;
        assert!(message.get("reply_markup").is_none(), "{message}");
    }
    let sent = emu.client().messages(55).await.unwrap();
    assert_eq!(sent[1].reply_markup, Some(json!({"remove_keyboard": true})));
    assert!(sent.iter().all(|m| m.inline_keyboard.is_empty()));
}

#[tokio::test]
async fn edit_message_reply_markup_replaces_then_removes_the_keyboard() {
    let emu = start().await;
    let id = ask(&emu, 56).await;
    let done = json!({"inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]});
    let edited = ok(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 56, "message_id": id, "reply_markup": done}),
    )
    .await;
    assert_eq!(edited["reply_markup"], done);
    assert_eq!(edited["text"], "Bus?");
    assert_eq!(edited["message_id"], id);
    assert!(edited["edit_date"].is_i64());

    let not_modified = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 56, "message_id": id, "reply_markup": done}),
    )
    .await;
    assert_eq!(
        not_modified,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
    );

    // No reply_markup: the keyboard goes.
    let edited = ok(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 56, "message_id": id}),
    )
    .await;
    assert!(edited.get("reply_markup").is_none(), "{edited}");
    let again = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 56, "message_id": id}),
    )
    .await;
    assert!(again.starts_with("Bad Request: message is not modified"));

    let sent = emu.client().messages(56).await.unwrap();
    assert!(sent[0].inline_keyboard.is_empty());
    assert!(sent[0].message.get("reply_markup").is_none());
    assert_eq!(sent[0].text.as_deref(), Some("Bus?"));
    assert!(
        sent[0].previous_versions.is_empty(),
        "the text did not change"
    );
}

#[tokio::test]
async fn edit_message_reply_markup_checks_its_target_and_takes_inline_keyboards_only() {
    let emu = start().await;
    let id = ask(&emu, 57).await;
    let missing = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 57, "message_id": 999, "reply_markup": yes_no()}),
    )
    .await;
    assert_eq!(missing, "Bad Request: message to edit not found");
    let inline = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 57, "inline_message_id": "abc", "reply_markup": yes_no()}),
    )
    .await;
    assert!(inline.contains("inline messages"), "{inline}");
    let reply_keyboard = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 57, "message_id": id, "reply_markup": {"keyboard": [["a"]]}}),
    )
    .await;
    assert_eq!(reply_keyboard, "Bad Request: inline keyboard expected");
    let bad = bad_request(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 57, "message_id": id, "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}}),
    )
    .await;
    assert_eq!(
        bad,
        "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
    );

    // A photo's keyboard can be edited as well.
    let photo = ok(
        &emu,
        "sendPhoto",
        json!({"chat_id": 57, "photo": emu.client().register_file(jpeg(40, 30), None).await.unwrap().file_id}),
    )
    .await;
    let edited = ok(
        &emu,
        "editMessageReplyMarkup",
        json!({"chat_id": 57, "message_id": photo["message_id"], "reply_markup": yes_no()}),
    )
    .await;
    assert_eq!(edited["reply_markup"], yes_no());
    assert!(edited["photo"].is_array());
}

#[tokio::test]
async fn edit_message_text_counts_a_new_keyboard_as_a_change_and_drops_an_omitted_one() {
    let emu = start().await;
    let id = ask(&emu, 58).await;
    // Same text and same keyboard: not modified.
    let same = bad_request(
        &emu,
        "editMessageText",
        json!({"chat_id": 58, "message_id": id, "text": "Bus?", "reply_markup": yes_no()}),
    )
    .await;
    assert!(
        same.starts_with("Bad Request: message is not modified"),
        "{same}"
    );
    // Same text, new keyboard: modified.
    let thanks = json!({"inline_keyboard": [[{"text": "Thanks!", "callback_data": "noop"}]]});
    let edited = ok(
        &emu,
        "editMessageText",
        json!({"chat_id": 58, "message_id": id, "text": "Bus?", "reply_markup": thanks}),
    )
    .await;
    assert_eq!(edited["reply_markup"], thanks);
    // Same text, keyboard omitted: the keyboard is removed, a change too.
    let edited = ok(
        &emu,
        "editMessageText",
        json!({"chat_id": 58, "message_id": id, "text": "Bus?"}),
    )
    .await;
    assert!(edited.get("reply_markup").is_none(), "{edited}");
    let sent = emu.client().messages(58).await.unwrap();
    assert!(sent[0].inline_keyboard.is_empty());

    let not_inline = bad_request(
        &emu,
        "editMessageText",
        json!({"chat_id": 58, "message_id": id, "text": "x", "reply_markup": {"remove_keyboard": true}}),
    )
    .await;
    assert_eq!(not_inline, "Bad Request: inline keyboard expected");
}

#[tokio::test]
async fn edit_message_caption_keeps_a_keyboard_it_is_given() {
    let emu = start().await;
    let file_id = emu
        .client()
        .register_file(jpeg(40, 30), None)
        .await
        .unwrap()
        .file_id;
    let photo = ok(
        &emu,
        "sendPhoto",
        json!({"chat_id": 59, "photo": file_id, "caption": "a", "reply_markup": yes_no()}),
    )
    .await;
    let edited = ok(
        &emu,
        "editMessageCaption",
        json!({"chat_id": 59, "message_id": photo["message_id"], "caption": "b", "reply_markup": yes_no()}),
    )
    .await;
    assert_eq!(edited["caption"], "b");
    assert_eq!(edited["reply_markup"], yes_no());
}

#[tokio::test]
async fn pressing_a_button_queues_a_callback_query_as_telegram_sends_it() {
    let emu = start().await;
    let client = emu.client();
    client.send_user_text(60, "/start").await.unwrap();
    let id = ask(&emu, 60).await;

    let pressed = client.press(60, id, None, "vote:yes").await.unwrap();
    assert!(
        pressed.callback_query_id.parse::<i64>().is_ok(),
        "a decimal id like Telegram's: {}",
        pressed.callback_query_id
    );
    let updates = ok(&emu, "getUpdates", json!({})).await;
    let updates = updates.as_array().unwrap();
    assert_eq!(updates.len(), 2);
    let update = &updates[1];
    assert_eq!(update, &pressed.update);
    assert_eq!(update["update_id"], pressed.update_id);
    let query = &update["callback_query"];
    let fields: Vec<&str> = query
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["chat_instance", "data", "from", "id", "message"]);
    assert_eq!(query["id"], pressed.callback_query_id);
    assert_eq!(query["data"], "vote:yes");
    assert_eq!(
        query["from"],
        json!({"id": 60, "is_bot": false, "first_name": "Test", "username": "test_user_60", "language_code": "en"})
    );
    let message = &query["message"];
    assert_eq!(message["message_id"], id);
    assert_eq!(message["text"], "Bus?");
    assert_eq!(message["chat"]["id"], 60);
    assert_eq!(message["from"]["is_bot"], true);
    assert_eq!(message["reply_markup"], yes_no());
    assert!(
        query["chat_instance"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );

    // A second press: a new id, the same chat_instance.
    let again = client.press_text(60, id, None, "No").await.unwrap();
    assert_ne!(again.callback_query_id, pressed.callback_query_id);
    assert_eq!(again.update_id, pressed.update_id + 1);
    let query2 = &again.update["callback_query"];
    assert_eq!(query2["data"], "vote:no");
    assert_eq!(query2["chat_instance"], query["chat_instance"]);
    let other_chat = ask(&emu, 61).await;
    let elsewhere = client.press(61, other_chat, None, "vote:no").await.unwrap();
    assert_ne!(
        elsewhere.update["callback_query"]["chat_instance"],
        query["chat_instance"]
    );
}

#[tokio::test]
async fn a_press_carries_the_message_as_it_is_now() {
    let emu = start().await;
    let client = emu.client();
    let id = ask(&emu, 62).await;
    ok(
        &emu,
        "editMessageText",
        json!({"chat_id": 62, "message_id": id, "text": "Bus? (3 votes)", "reply_markup": yes_no()}),
    )
    .await;
    let pressed = client.press(62, id, Some(62), "vote:no").await.unwrap();
    let message = &pressed.update["callback_query"]["message"];
    assert_eq!(message["text"], "Bus? (3 votes)");
    assert!(message["edit_date"].is_i64());
}

#[tokio::test]
async fn a_press_fails_clearly_when_there_is_nothing_to_press() {
    let emu = start().await;
    let client = emu.client();
    let id = ask(&emu, 63).await;
    let user = client.send_user_text(63, "hi").await.unwrap();
    let plain = ok(&emu, "sendMessage", json!({"chat_id": 63, "text": "plain"})).await;

    let cases = [
        (
            63,
            999,
            json!({"data": "vote:yes"}),
            404,
            "has no message 999",
        ),
        (64, 1, json!({"data": "vote:yes"}), 404, "has no message 1"),
        (
            63,
            user.message_id.unwrap(),
            json!({"data": "vote:yes"}),
            400,
            "is a user's",
        ),
        (
            63,
            plain["message_id"].as_i64().unwrap(),
            json!({"data": "x"}),
            400,
            "has no inline keyboard",
        ),
        (
            63,
            id,
            json!({"data": "vote:maybe"}),
            400,
            "no button with callback_data \"vote:maybe\"",
        ),
        (
            63,
            id,
            json!({"text": "Maybe"}),
            400,
            "no button with text \"Maybe\"",
        ),
        (
            63,
            id,
            json!({"text": "Docs"}),
            400,
            "not a callback button",
        ),
        (63, id, json!({}), 400, "one of the two"),
        (
            63,
            id,
            json!({"data": "vote:yes", "text": "Yes"}),
            400,
            "one of the two",
        ),
    ];
    for (chat_id, message_id, body, status, expected) in cases {
        let (got, answer) = press_raw(&emu, chat_id, message_id, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["ok"], false);
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{body}: {error}");
    }
    // The unknown-button error lists what there is.
    let (_, answer) = press_raw(&emu, 63, id, json!({"data": "nope"})).await;
    assert!(
        answer["error"].as_str().unwrap().contains("vote:yes"),
        "{answer}"
    );

    ok(
        &emu,
        "deleteMessage",
        json!({"chat_id": 63, "message_id": id}),
    )
    .await;
    let (status, answer) = press_raw(&emu, 63, id, json!({"data": "vote:yes"})).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("deleted"));

    // Nothing was queued by any of them.
    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert!(
        updates
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("callback_query").is_none())
    );
    assert!(client.callback_answers(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn in_a_group_the_first_member_presses_unless_another_member_is_named() {
    let emu = start().await;
    let client = emu.client();
    let group = ChatSetup {
        chat_id: -1_009_000,
        kind: ChatType::Supergroup,
        title: Some("Spotters".into()),
        members: vec![Member::new(1001, "Ann"), Member::new(1002, "Bob")],
    };
    client.create_chat(&group).await.unwrap();
    let id = ask(&emu, group.chat_id).await;
    let by_ann = client
        .press(group.chat_id, id, None, "vote:yes")
        .await
        .unwrap();
    assert_eq!(by_ann.update["callback_query"]["from"]["first_name"], "Ann");
    let by_bob = client
        .press(group.chat_id, id, Some(1002), "vote:no")
        .await
        .unwrap();
    assert_eq!(by_bob.update["callback_query"]["from"]["id"], 1002);
    assert_eq!(
        by_bob.update["callback_query"]["message"]["chat"]["title"],
        "Spotters"
    );
    let stranger = client
        .press(group.chat_id, id, Some(7), "vote:no")
        .await
        .unwrap_err();
    assert!(stranger.to_string().contains("not a member"), "{stranger}");
    // Privacy mode does not hold presses back.
    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn answer_callback_query_is_recorded_and_accepted_once() {
    let emu = start().await;
    let client = emu.client();
    let id = ask(&emu, 65).await;
    let pressed = client.press(65, id, None, "vote:yes").await.unwrap();
    let unanswered = client.callback_answers(Some(65)).await.unwrap();
    assert_eq!(unanswered.len(), 1);
    assert!(!unanswered[0].answered);
    assert_eq!(unanswered[0].data, "vote:yes");
    assert_eq!(unanswered[0].from_id, 65);

    let long = "x".repeat(201);
    let too_long = bad_request(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": pressed.callback_query_id, "text": long}),
    )
    .await;
    assert_eq!(too_long, "Bad Request: MESSAGE_TOO_LONG");
    // Refused answers leave the query open; 200 characters are fine.
    let text = "é".repeat(200);
    let answered = ok(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": pressed.callback_query_id, "text": text, "show_alert": true, "cache_time": 5}),
    )
    .await;
    assert_eq!(answered, json!(true));

    let invalid =
        "Bad Request: query is too old and response timeout expired or query ID is invalid";
    let twice = bad_request(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": pressed.callback_query_id}),
    )
    .await;
    assert_eq!(twice, invalid);
    let unknown = bad_request(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": "12345"}),
    )
    .await;
    assert_eq!(unknown, invalid);
    let missing = bad_request(&emu, "answerCallbackQuery", json!({})).await;
    assert_eq!(missing, invalid);

    let answer = client
        .wait_callback_answer(&pressed.callback_query_id, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.answered);
    assert_eq!(answer.text.as_deref(), Some(text.as_str()));
    assert!(answer.show_alert);
    assert_eq!(answer.cache_time, Some(5));
    assert_eq!((answer.chat_id, answer.message_id), (65, id));
    assert_eq!(answer.update_id, pressed.update_id);
    assert!(answer.answered_at_ms >= Some(answer.pressed_at_ms));
}

#[tokio::test]
async fn callback_answers_list_every_press_and_filter_by_chat() {
    let emu = start().await;
    let client = emu.client();
    let a = ask(&emu, 66).await;
    let b = ask(&emu, 67).await;
    let first = client.press(66, a, None, "vote:yes").await.unwrap();
    client.press(67, b, None, "vote:no").await.unwrap();
    client.press(66, a, None, "vote:no").await.unwrap();
    // Form-encoded, as many clients send it.
    let r = http()
        .post(emu.method_url("answerCallbackQuery"))
        .form(&[
            ("callback_query_id", first.callback_query_id.as_str()),
            ("text", "Counted"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let all = client.callback_answers(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let chat_66: Vec<(String, bool, Option<String>)> = client
        .callback_answers(Some(66))
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.data, a.answered, a.text))
        .collect();
    assert_eq!(
        chat_66,
        [
            ("vote:yes".to_owned(), true, Some("Counted".to_owned())),
            ("vote:no".to_owned(), false, None)
        ]
    );
    // The raw JSON of the route.
    let raw: Value = http()
        .get(format!(
            "{}/control/callback_answers?chat_id=67",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw[0]["chat_id"], 67);
    assert_eq!(raw[0]["message_id"], b);
    assert_eq!(raw[0]["answered"], false);
    assert_eq!(raw[0]["show_alert"], false);
    assert!(raw[0]["callback_query_id"].is_string());

    let waited = client
        .wait_callback_answer(
            raw[0]["callback_query_id"].as_str().unwrap(),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
    assert!(waited.to_string().contains("timed out"), "{waited}");
}

#[tokio::test]
async fn a_press_by_json_body_through_press_with_names_the_presser() {
    let emu = start().await;
    let id = ask(&emu, 68).await;
    let press = ButtonPress {
        from_id: Some(4242),
        data: None,
        text: Some("Yes".into()),
    };
    let pressed = emu.client().press_with(68, id, &press).await.unwrap();
    assert_eq!(pressed.update["callback_query"]["from"]["id"], 4242);
    assert_eq!(pressed.update["callback_query"]["data"], "vote:yes");
}

#[tokio::test]
async fn presses_reach_a_webhook_like_other_updates() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = Router::new().route(
        "/hook",
        post({
            let seen = seen.clone();
            move |body: axum::Json<Value>| async move {
                seen.lock().unwrap().push(body.0);
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let id = ask(&emu, 69).await;
    ok(&emu, "setWebhook", json!({"url": url})).await;
    let pressed = emu.client().press(69, id, None, "vote:yes").await.unwrap();
    emu.client()
        .wait_delivered(pressed.update_id, Duration::from_secs(5))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [pressed.update]);
}

#[tokio::test]
async fn reset_forgets_presses_and_answers() {
    let emu = start().await;
    let client = emu.client();
    let id = ask(&emu, 70).await;
    let pressed = client.press(70, id, None, "vote:yes").await.unwrap();
    client.reset().await.unwrap();
    assert!(client.callback_answers(None).await.unwrap().is_empty());
    let gone = bad_request(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": pressed.callback_query_id}),
    )
    .await;
    assert!(gone.contains("query ID is invalid"));
}

#[tokio::test]
async fn a_crafted_callback_query_can_be_answered_once() {
    let emu = start().await;
    let client = emu.client();
    let update = json!({"callback_query": {
        "id": "crafted-1", "chat_instance": "1", "data": "d",
        "from": {"id": 71, "is_bot": false, "first_name": "Ann"},
        "message": {"message_id": 9, "date": 0, "chat": {"id": 71, "type": "private"}, "text": "x"}
    }});
    client.queue_update(&update).await.unwrap();
    // A duplicate delivery of the same query is one query to answer.
    client.queue_update(&update).await.unwrap();
    ok(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": "crafted-1"}),
    )
    .await;
    let again = bad_request(
        &emu,
        "answerCallbackQuery",
        json!({"callback_query_id": "crafted-1"}),
    )
    .await;
    assert!(again.contains("query ID is invalid"), "{again}");
    let answers = client.callback_answers(Some(71)).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].message_id, answers[0].from_id), (9, 71));
    assert!(answers[0].answered);
}
