//! sendMediaGroup: albums of photos or documents, their checks and texts.

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tg_emulator::{EmulatorHandle, SentKind};

use crate::{call, http, jpeg, ok, start};

/// Posts a multipart sendMediaGroup: `fields` as text, `files` as uploads
/// named after their multipart field; returns (HTTP status, body).
async fn send_album(
    emu: &EmulatorHandle,
    fields: &[(&str, String)],
    files: Vec<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.clone());
    }
    for (name, bytes) in files {
        form = form.part(
            name.to_owned(),
            Part::bytes(bytes).file_name(format!("{name}.jpg")),
        );
    }
    let response = http()
        .post(emu.method_url("sendMediaGroup"))
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn photo(name: &str) -> Value {
    json!({"type": "photo", "media": format!("attach://{name}")})
}

fn description(body: &Value) -> &str {
    body["description"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_album_of_uploaded_photos_is_one_media_group_with_consecutive_ids() {
    let emu = start().await;
    let client = emu.client();
    let asked = client.send_user_text(20, "/detect").await.unwrap();
    let asked_id = asked.message_id.unwrap();
    ok(
        &emu,
        "sendMessage",
        json!({"chat_id": 20, "text": "working"}),
    )
    .await;

    let media = json!([
        {"type": "photo", "media": "attach://a", "caption": "<b>3</b> buses", "parse_mode": "HTML"},
        photo("b"),
        photo("c"),
    ]);
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "20".into()),
            ("media", media.to_string()),
            (
                "reply_parameters",
                json!({"message_id": asked_id}).to_string(),
            ),
        ],
        vec![
            ("a", jpeg(640, 480)),
            ("b", jpeg(300, 200)),
            ("c", jpeg(100, 100)),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let messages = body["result"].as_array().expect("an array of Message");
    assert_eq!(messages.len(), 3);
    let group = messages[0]["media_group_id"]
        .as_str()
        .expect("a media_group_id");
    let ids: Vec<i64> = messages
        .iter()
        .map(|m| m["message_id"].as_i64().unwrap())
        .collect();
    let first = ids[0];
    assert_eq!(ids, [first, first + 1, first + 2]);
    for message in messages {
        assert_eq!(message["media_group_id"], group);
        assert_eq!(message["reply_to_message"]["message_id"], asked_id);
        assert!(message["photo"].as_array().is_some_and(|p| !p.is_empty()));
    }
    assert_eq!(messages[0]["caption"], "3 buses", "the rendered caption");
    assert!(messages[1].get("caption").is_none());
    let largest = messages[0]["photo"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (largest["width"].as_u64(), largest["height"].as_u64()),
        (Some(640), Some(480))
    );

    let sent = client.messages(20).await.unwrap();
    let album: Vec<_> = sent
        .iter()
        .filter(|m| m.method == "sendMediaGroup")
        .collect();
    assert_eq!(album.len(), 3);
    for m in &album {
        assert_eq!(m.kind, SentKind::Photo);
        assert_eq!(m.media_group_id.as_deref(), Some(group));
        assert_eq!(m.reply_to_message_id, Some(asked_id));
    }
    assert_eq!(album[0].caption.as_deref(), Some("<b>3</b> buses"));
    assert_eq!(album[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(album[1].caption, None);
    let file = album[2].file.clone().unwrap();
    assert_eq!(
        client.file_bytes(&file.file_id).await.unwrap(),
        jpeg(100, 100)
    );

    let groups = client.media_groups(20).await.unwrap();
    assert_eq!(groups.len(), 1, "the text message is in no album");
    let grouped: Vec<i64> = groups[0].iter().map(|m| m.message_id).collect();
    assert_eq!(grouped, ids);

    // The next album gets another id.
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "20".into()),
            ("media", json!([photo("a"), photo("b")]).to_string()),
        ],
        vec![("a", jpeg(50, 50)), ("b", jpeg(60, 60))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["result"][0]["media_group_id"], group);
    assert_eq!(body["result"][0]["message_id"], first + 3);
    assert_eq!(client.media_groups(20).await.unwrap().len(), 2);
}

#[tokio::test]
async fn album_size_is_checked_like_tdlib_and_one_item_is_an_ordinary_message() {
    let emu = start().await;
    let eleven: Vec<Value> = (0..11).map(|_| photo("a")).collect();
    for (media, expected) in [
        (
            json!(eleven),
            "Bad Request: too many messages to send as an album",
        ),
        (json!([]), "Bad Request: there are no messages to send"),
        (
            json!({"type": "photo"}),
            "Bad Request: expected an Array of InputMedia",
        ),
    ] {
        let (status, body) = send_album(
            &emu,
            &[("chat_id", "21".into()), ("media", media.to_string())],
            vec![("a", jpeg(40, 40))],
        )
        .await;
        assert_eq!((status, description(&body)), (400, expected));
    }
    let (status, body) = call(&emu, "sendMediaGroup", json!({"chat_id": 21})).await;
    assert_eq!(
        (status, description(&body)),
        (400, "Bad Request: parameter \"media\" is required")
    );
    let (status, body) = call(
        &emu,
        "sendMediaGroup",
        json!({"chat_id": 21, "media": "[not json"}),
    )
    .await;
    assert_eq!(
        (status, description(&body)),
        (400, "Bad Request: can't parse media JSON object")
    );
    assert!(emu.client().messages(21).await.unwrap().is_empty());

    // TDLib's send_message_group gives a single item no media_album_id.
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "21".into()),
            ("media", json!([photo("a")]).to_string()),
        ],
        vec![("a", jpeg(40, 40))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1));
    assert!(body["result"][0].get("media_group_id").is_none());
    let sent = emu.client().messages(21).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "sendMediaGroup");
    assert_eq!(sent[0].media_group_id, None);
    assert!(emu.client().media_groups(21).await.unwrap().is_empty());
}

#[tokio::test]
async fn unreadable_items_are_refused_with_the_servers_texts() {
    let emu = start().await;
    let cases = [
        (
            json!([photo("a"), photo("missing")]),
            "Bad Request: can't parse InputMedia: media not found",
        ),
        (
            json!([photo("a"), {"type": "photo"}]),
            "Bad Request: can't parse InputMedia: media not found",
        ),
        (
            json!([photo("a"), {"type": "animation", "media": "attach://a"}]),
            "Bad Request: can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup",
        ),
        (
            json!([photo("a"), {"type": "sticker", "media": "attach://a"}]),
            "Bad Request: can't parse InputMedia: type \"sticker\" is unsupported",
        ),
        (
            json!([photo("a"), {"media": "attach://a"}]),
            "Bad Request: can't parse InputMedia: Can't find field \"type\"",
        ),
        (
            json!([photo("a"), "attach://a"]),
            "Bad Request: can't parse InputMedia: expected an Object",
        ),
        (
            json!([photo("a"), {"type": "photo", "media": "attach://a", "caption": "<b>x", "parse_mode": "HTML"}]),
            "Bad Request: can't parse InputMedia: Can't parse entities",
        ),
        (
            json!([photo("a"), {"type": "photo", "media": "attach://a", "caption": "x".repeat(1025)}]),
            "Bad Request: message caption is too long",
        ),
        (
            json!([photo("a"), {"type": "photo", "media": "no-such-file-id"}]),
            "Bad Request: wrong file identifier/HTTP URL specified",
        ),
        (
            json!([photo("a"), {"type": "document", "media": "attach://a"}]),
            "Bad Request: document can't be mixed with other media types",
        ),
    ];
    for (media, expected) in cases {
        let (status, body) = send_album(
            &emu,
            &[("chat_id", "22".into()), ("media", media.to_string())],
            vec![("a", jpeg(40, 40))],
        )
        .await;
        assert_eq!(status, 400, "{media}: {body}");
        assert!(description(&body).starts_with(expected), "{media}: {body}");
    }
    assert!(emu.client().messages(22).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_photo_telegram_refuses_fails_the_whole_album() {
    let emu = start().await;
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "23".into()),
            (
                "media",
                json!([photo("a"), photo("b"), photo("c")]).to_string(),
            ),
        ],
        vec![
            ("a", jpeg(100, 100)),
            ("b", jpeg(12_000, 100)),
            ("c", jpeg(100, 100)),
        ],
    )
    .await;
    assert_eq!(
        (status, description(&body)),
        (
            400,
            "Bad Request: failed to send message #2 with the error message \"PHOTO_INVALID_DIMENSIONS\""
        )
    );
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "23".into()),
            ("media", json!([photo("a"), photo("b")]).to_string()),
        ],
        vec![("a", jpeg(100, 100)), ("b", b"not a picture".to_vec())],
    )
    .await;
    assert_eq!(
        (status, description(&body)),
        (
            400,
            "Bad Request: failed to send message #2 with the error message \"IMAGE_PROCESS_FAILED\""
        )
    );
    assert!(
        emu.client().messages(23).await.unwrap().is_empty(),
        "nothing of a refused album is sent"
    );
}

#[tokio::test]
async fn file_ids_are_reused_and_documents_form_albums_of_their_own() {
    let emu = start().await;
    let client = emu.client();
    let registered = client.register_file(jpeg(80, 60), None).await.unwrap();
    let (status, body) = send_album(
        &emu,
        &[
            ("chat_id", "24".into()),
            ("media", json!([photo("a"), photo("b")]).to_string()),
        ],
        vec![("a", jpeg(200, 100)), ("b", jpeg(100, 200))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let earlier = body["result"][0]["photo"]
        .as_array()
        .and_then(|p| p.last())
        .map(|p| p["file_id"].clone())
        .unwrap();

    // A JSON body with file_ids only: no upload at all.
    let result = ok(
        &emu,
        "sendMediaGroup",
        json!({"chat_id": 24, "media": [
            {"type": "photo", "media": registered.file_id, "caption": "again"},
            {"type": "photo", "media": earlier},
        ]}),
    )
    .await;
    assert_eq!(
        result[0]["photo"][0]["file_id"],
        registered.file_id.as_str()
    );
    assert_eq!(result[1]["photo"][0]["file_id"], earlier);
    assert_eq!(result[0]["caption"], "again");

    let form = Form::new()
        .text("chat_id", "24")
        .text(
            "media",
            json!([
                {"type": "document", "media": "attach://report", "caption": "report"},
                {"type": "document", "media": "attach://raw"},
            ])
            .to_string(),
        )
        .part(
            "report",
            Part::bytes(b"{\"buses\":3}".to_vec()).file_name("report.json"),
        )
        .part("raw", Part::bytes(jpeg(30, 30)).file_name("raw.jpg"));
    let response = http()
        .post(emu.method_url("sendMediaGroup"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"][0]["document"]["file_name"], "report.json");
    assert_eq!(
        body["result"][0]["document"]["mime_type"],
        "application/json"
    );
    assert_eq!(body["result"][1]["document"]["mime_type"], "image/jpeg");

    let groups = client.media_groups(24).await.unwrap();
    assert_eq!(groups.len(), 3);
    assert!(groups[2].iter().all(|m| m.kind == SentKind::Document));
    assert_eq!(groups[2][0].caption.as_deref(), Some("report"));
}

#[tokio::test]
async fn blocked_chats_faults_and_rate_limits_apply_to_albums() {
    let emu = start().await;
    let client = emu.client();
    let fields = [
        ("chat_id", "25".to_owned()),
        ("media", json!([photo("a"), photo("b")]).to_string()),
    ];
    let files = || vec![("a", jpeg(40, 40)), ("b", jpeg(40, 40))];

    client.set_blocked(25, true).await.unwrap();
    let (status, body) = send_album(&emu, &fields, files()).await;
    assert_eq!(
        (status, description(&body)),
        (403, "Forbidden: bot was blocked by the user")
    );
    client.set_blocked(25, false).await.unwrap();

    client.fail_next("sendmediagroup", 1, 500).await.unwrap();
    let (status, _) = send_album(&emu, &fields, files()).await;
    assert_eq!(status, 500);
    client
        .rate_limit(Some("sendMediaGroup"), 1, 4)
        .await
        .unwrap();
    let (status, body) = send_album(&emu, &fields, files()).await;
    assert_eq!(
        (status, body["parameters"]["retry_after"].as_u64()),
        (429, Some(4))
    );
    assert!(client.messages(25).await.unwrap().is_empty());

    let (status, _) = send_album(&emu, &fields, files()).await;
    assert_eq!(status, 200);
    let stats = client.requests().await.unwrap();
    assert_eq!(stats.count("sendMediaGroup"), 4);
    assert_eq!(stats.rate_limited_count("sendMediaGroup"), 1);
    assert_eq!(client.messages(25).await.unwrap().len(), 2);
}
