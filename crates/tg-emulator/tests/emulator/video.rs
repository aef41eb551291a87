//! Videos, animations, video notes and stickers: what a user's phone sends
//! (shaped as the Bot API shapes it, files behind getFile's 20 MB limit),
//! and `sendVideo` from the bot.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use teloxide::{
    net::Download,
    prelude::*,
    types::{InputFile, MediaKind, MessageKind, StickerFormat, Update, UpdateKind},
};
use tg_emulator::{EmulatorHandle, SentKind, StickerKind, UserMessageOptions, VideoMeta};

use crate::{call, http, jpeg, ok, start};

/// Bytes that start like an MP4 (`ftyp` box); the emulator never parses
/// video, so the rest is filler.
fn mp4(len: usize) -> Vec<u8> {
    let mut bytes = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec();
    bytes.resize(len.max(bytes.len()), 0x5a);
    bytes
}

/// What teloxide makes of a queued update's message content.
fn media_kind(update: &Value) -> MediaKind {
    // From text, as a bot reads it (teloxide's UpdateKind wants borrowed
    // keys, which a `Value` cannot lend).
    let update: Update =
        serde_json::from_str(&update.to_string()).expect("teloxide parses the update");
    match update.kind {
        UpdateKind::Message(Message {
            kind: MessageKind::Common(common),
            ..
        }) => common.media_kind,
        other => panic!("expected a common message, got {other:?}"),
    }
}

fn bot(emu: &EmulatorHandle) -> Bot {
    let url = reqwest::Url::parse(&emu.base_url()).expect("base URL parses");
    Bot::new(emu.token()).set_api_url(url)
}

/// Posts a multipart sendVideo with `fields` as text and `video` uploaded
/// as `clip.mp4`; returns (HTTP status, body).
async fn send_video(emu: &EmulatorHandle, fields: &[(&str, &str)], video: Vec<u8>) -> (u16, Value) {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let form = form.part("video", Part::bytes(video).file_name("clip.mp4"));
    let response = http()
        .post(emu.method_url("sendVideo"))
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// Downloads a file the way a bot does: getFile, then `/file/bot<token>/<path>`.
async fn download(emu: &EmulatorHandle, file_id: &Value) -> Vec<u8> {
    let file = ok(emu, "getFile", json!({ "file_id": file_id })).await;
    let url = format!(
        "{}/file/bot{}/{}",
        emu.base_url(),
        emu.token(),
        file["file_path"].as_str().unwrap()
    );
    http()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_user_video_has_the_bot_api_shape_and_teloxide_reads_it_as_a_video() {
    let emu = start().await;
    let bytes = mp4(4096);
    let options = UserMessageOptions {
        caption: Some("/detect this".into()),
        ..Default::default()
    };
    let queued = emu
        .client()
        .send_user_video(31, bytes.clone(), &VideoMeta::new(1280, 720, 7), &options)
        .await
        .unwrap();
    let message = &queued.update["message"];
    let video = &message["video"];
    assert!(video["file_id"].as_str().unwrap().starts_with("BAAC"));
    assert!(video["file_unique_id"].is_string());
    assert_eq!(
        (&video["width"], &video["height"], &video["duration"]),
        (&json!(1280), &json!(720), &json!(7))
    );
    assert_eq!(video["mime_type"], "video/mp4");
    assert_eq!(video["file_name"], "video.mp4");
    assert_eq!(video["file_size"], bytes.len());
    assert_eq!(message["caption"], "/detect this");
    assert_eq!(message["caption_entities"][0]["type"], "bot_command");
    assert!(message.get("document").is_none());

    match media_kind(&queued.update) {
        MediaKind::Video(media) => {
            assert_eq!((media.video.width, media.video.height), (1280, 720));
            assert_eq!(media.video.duration.seconds(), 7);
            assert_eq!(media.caption.as_deref(), Some("/detect this"));
        }
        other => panic!("expected a video, got {other:?}"),
    }
    let updates = ok(&emu, "getUpdates", json!({})).await;
    assert_eq!(updates[0], queued.update);
}

#[tokio::test]
async fn a_user_video_comes_back_through_get_file_and_download() {
    let emu = start().await;
    let bytes = mp4(100_000);
    let queued = emu
        .client()
        .send_user_video(
            32,
            bytes.clone(),
            &VideoMeta::default(),
            &UserMessageOptions::default(),
        )
        .await
        .unwrap();
    let video = &queued.update["message"]["video"];
    assert_eq!(
        (&video["width"], &video["height"]),
        (&json!(640), &json!(360))
    );
    assert_eq!(video["duration"], 1);
    let file = ok(&emu, "getFile", json!({"file_id": video["file_id"]})).await;
    let path = file["file_path"].as_str().unwrap();
    assert!(
        path.starts_with("videos/") && path.ends_with(".mp4"),
        "{path}"
    );
    assert_eq!(file["file_size"], bytes.len());
    assert_eq!(download(&emu, &video["file_id"]).await, bytes);

    // teloxide downloads it too.
    let bot = bot(&emu);
    let file = bot
        .get_file(video["file_id"].as_str().unwrap().to_owned().into())
        .await
        .expect("getFile");
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .expect("download");
    assert_eq!(downloaded, bytes);
}

#[tokio::test]
async fn a_21_mb_video_is_accepted_but_get_file_refuses_it_as_too_big() {
    let emu = start().await;
    let bytes = mp4(21 * 1024 * 1024);
    let queued = emu
        .client()
        .send_user_video(
            33,
            bytes.clone(),
            &VideoMeta::new(1920, 1080, 60),
            &UserMessageOptions::default(),
        )
        .await
        .expect("the control API takes files over 20 MB");
    let video = &queued.update["message"]["video"];
    assert_eq!(video["file_size"], 21 * 1024 * 1024);

    let (status, body) = call(&emu, "getFile", json!({"file_id": video["file_id"]})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: file is too big"))
    );
    // The test itself can still read it, without the limit.
    let stored = emu
        .client()
        .file_bytes(video["file_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), bytes.len());
}

#[tokio::test]
async fn a_user_animation_is_an_mp4_that_is_also_the_messages_document() {
    let emu = start().await;
    let bytes = mp4(2048);
    let options = UserMessageOptions {
        caption: Some("lol".into()),
        ..Default::default()
    };
    let queued = emu
        .client()
        .send_user_animation(34, bytes.clone(), &VideoMeta::new(480, 270, 3), &options)
        .await
        .unwrap();
    let message = &queued.update["message"];
    let animation = &message["animation"];
    assert!(animation["file_id"].as_str().unwrap().starts_with("CgAC"));
    assert_eq!(
        (
            &animation["width"],
            &animation["height"],
            &animation["duration"]
        ),
        (&json!(480), &json!(270), &json!(3))
    );
    assert_eq!(animation["mime_type"], "video/mp4");
    assert_eq!(animation["file_name"], "animation.gif.mp4");
    let document = &message["document"];
    for field in [
        "file_id",
        "file_unique_id",
        "file_name",
        "mime_type",
        "file_size",
    ] {
        assert_eq!(document[field], animation[field], "document.{field}");
    }
    assert!(document.get("width").is_none(), "a Document has no width");
    assert_eq!(message["caption"], "lol");

    match media_kind(&queued.update) {
        MediaKind::Animation(media) => {
            assert_eq!(media.animation.duration.seconds(), 3);
            assert_eq!(media.caption.as_deref(), Some("lol"));
        }
        other => panic!("expected an animation, got {other:?}"),
    }
    assert_eq!(download(&emu, &animation["file_id"]).await, bytes);
}

#[tokio::test]
async fn a_user_video_note_has_a_length_and_duration_but_no_width_or_caption() {
    let emu = start().await;
    let bytes = mp4(3000);
    let queued = emu
        .client()
        .send_user_video_note(35, bytes.clone(), 384, 12, &UserMessageOptions::default())
        .await
        .unwrap();
    let note = &queued.update["message"]["video_note"];
    assert!(note["file_id"].as_str().unwrap().starts_with("DQAC"));
    assert_eq!(
        (&note["length"], &note["duration"]),
        (&json!(384), &json!(12))
    );
    assert_eq!(note["file_size"], bytes.len());
    for absent in ["width", "height", "file_name", "mime_type"] {
        assert!(note.get(absent).is_none(), "VideoNote has no {absent}");
    }
    match media_kind(&queued.update) {
        MediaKind::VideoNote(media) => {
            assert_eq!(media.video_note.length, 384);
            assert_eq!(media.video_note.duration.seconds(), 12);
        }
        other => panic!("expected a video note, got {other:?}"),
    }
    assert_eq!(download(&emu, &note["file_id"]).await, bytes);
}

#[tokio::test]
async fn user_stickers_say_whether_they_are_static_animated_or_video() {
    let emu = start().await;
    let mut webp = Vec::new();
    image::RgbaImage::from_pixel(256, 128, image::Rgba([0, 128, 255, 255]))
        .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut webp))
        .unwrap();
    let tgs = b"\x1f\x8b\x08\x00lottie".to_vec();
    let webm = b"\x1a\x45\xdf\xa3webm".to_vec();
    let cases = [
        (
            StickerKind::Static,
            webp,
            (256, 128),
            StickerFormat::Static,
            ".webp",
        ),
        (
            StickerKind::Animated,
            tgs,
            (512, 512),
            StickerFormat::Animated,
            ".tgs",
        ),
        (
            StickerKind::Video,
            webm,
            (512, 512),
            StickerFormat::Video,
            ".webm",
        ),
    ];
    for (kind, bytes, (width, height), format, ext) in cases {
        let queued = emu
            .client()
            .send_user_sticker(36, bytes.clone(), kind, &UserMessageOptions::default())
            .await
            .unwrap();
        let sticker = &queued.update["message"]["sticker"];
        assert!(sticker["file_id"].as_str().unwrap().starts_with("CAAC"));
        assert_eq!(sticker["type"], "regular");
        assert_eq!(
            (&sticker["width"], &sticker["height"]),
            (&json!(width), &json!(height))
        );
        assert_eq!(sticker["is_animated"], kind == StickerKind::Animated);
        assert_eq!(sticker["is_video"], kind == StickerKind::Video);
        assert_eq!(sticker["emoji"], "👍");
        assert_eq!(sticker["file_size"], bytes.len());
        match media_kind(&queued.update) {
            MediaKind::Sticker(media) => assert_eq!(media.sticker.format(), format),
            other => panic!("expected a sticker, got {other:?}"),
        }
        let file = ok(&emu, "getFile", json!({"file_id": sticker["file_id"]})).await;
        let path = file["file_path"].as_str().unwrap();
        assert!(
            path.starts_with("stickers/") && path.ends_with(ext),
            "{path}"
        );
        assert_eq!(download(&emu, &sticker["file_id"]).await, bytes);
    }
}

#[tokio::test]
async fn captions_and_albums_are_refused_where_telegram_has_none() {
    let emu = start().await;
    let client = emu.client();
    let caption = UserMessageOptions {
        caption: Some("hi".into()),
        ..Default::default()
    };
    let album = UserMessageOptions {
        media_group_id: Some("g1".into()),
        ..Default::default()
    };
    let note = client
        .send_user_video_note(37, mp4(10), 240, 1, &caption)
        .await;
    assert!(note.unwrap_err().to_string().contains("no caption"));
    let sticker = client
        .send_user_sticker(37, mp4(10), StickerKind::Static, &caption)
        .await;
    assert!(sticker.unwrap_err().to_string().contains("no caption"));
    let animation = client
        .send_user_animation(37, mp4(10), &VideoMeta::default(), &album)
        .await;
    assert!(animation.unwrap_err().to_string().contains("album"));
    let empty = client
        .send_user_video(37, Vec::new(), &VideoMeta::default(), &caption)
        .await;
    assert!(empty.unwrap_err().to_string().contains("400"));

    // Videos do make albums.
    for _ in 0..2 {
        let queued = client
            .send_user_video(37, mp4(10), &VideoMeta::default(), &album)
            .await
            .unwrap();
        assert_eq!(queued.update["message"]["media_group_id"], "g1");
    }
    assert_eq!(
        ok(&emu, "getUpdates", json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn send_video_records_a_video_message_with_its_caption_and_bytes() {
    let emu = start().await;
    let asked = emu.client().send_user_text(40, "/track").await.unwrap();
    let bytes = mp4(50_000);
    let keyboard = json!({"inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]});
    let reply = json!({"message_id": asked.message_id}).to_string();
    let (status, body) = send_video(
        &emu,
        &[
            ("chat_id", "40"),
            ("caption", "<b>3</b> buses tracked"),
            ("parse_mode", "HTML"),
            ("width", "1280"),
            ("height", "720"),
            ("duration", "9"),
            ("supports_streaming", "true"),
            ("reply_parameters", &reply),
            ("reply_markup", &keyboard.to_string()),
        ],
        bytes.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let message = &body["result"];
    let video = &message["video"];
    assert_eq!(
        (&video["width"], &video["height"], &video["duration"]),
        (&json!(1280), &json!(720), &json!(9))
    );
    assert_eq!(video["file_name"], "clip.mp4");
    assert_eq!(video["mime_type"], "video/mp4");
    assert_eq!(video["file_size"], bytes.len());
    assert_eq!(message["caption"], "3 buses tracked");
    assert_eq!(message["reply_to_message"]["text"], "/track");
    assert_eq!(message["reply_markup"], keyboard);

    let sent = emu
        .client()
        .wait_for_messages(40, 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(sent[0].kind, SentKind::Video);
    assert_eq!(sent[0].method, "sendVideo");
    assert_eq!(sent[0].caption.as_deref(), Some("<b>3</b> buses tracked"));
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(sent[0].reply_to_message_id, asked.message_id);
    assert_eq!(sent[0].callback_data("Again"), Some("again"));
    let file = sent[0].file.clone().unwrap();
    assert_eq!(
        (file.width, file.height, file.duration),
        (Some(1280), Some(720), Some(9))
    );
    assert_eq!(emu.client().file_bytes(&file.file_id).await.unwrap(), bytes);
    assert_eq!(download(&emu, &video["file_id"]).await, bytes);
}

#[tokio::test]
async fn teloxide_sends_a_video_and_reads_the_answer() {
    let emu = start().await;
    let bot = bot(&emu);
    let bytes = mp4(8000);
    let message = bot
        .send_video(
            ChatId(41),
            InputFile::memory(bytes.clone()).file_name("result.mp4"),
        )
        .caption("tracked")
        .width(640)
        .height(480)
        .duration(4)
        .supports_streaming(true)
        .await
        .expect("sendVideo");
    let video = message.video().expect("a video message");
    assert_eq!((video.width, video.height), (640, 480));
    assert_eq!(video.duration.seconds(), 4);
    assert_eq!(message.caption(), Some("tracked"));

    let sent = emu.client().messages(41).await.unwrap();
    assert_eq!(sent[0].kind, SentKind::Video);
    let file_id = &sent[0].file.as_ref().unwrap().file_id;
    assert_eq!(emu.client().file_bytes(file_id).await.unwrap(), bytes);
}

#[tokio::test]
async fn send_video_reuses_a_file_id_and_keeps_its_size_and_duration() {
    let emu = start().await;
    let queued = emu
        .client()
        .send_user_video(
            42,
            mp4(100),
            &VideoMeta::new(320, 240, 5),
            &UserMessageOptions::default(),
        )
        .await
        .unwrap();
    let file_id = queued.update["message"]["video"]["file_id"].clone();
    let message = ok(&emu, "sendVideo", json!({"chat_id": 42, "video": file_id})).await;
    assert_eq!(message["video"]["file_id"], file_id);
    assert_eq!(
        (&message["video"]["width"], &message["video"]["duration"]),
        (&json!(320), &json!(5))
    );
    let (status, body) = call(&emu, "sendVideo", json!({"chat_id": 42})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: there is no video in the request"))
    );
}

#[tokio::test]
async fn send_video_refuses_a_caption_over_1024_characters_after_entity_parsing() {
    let emu = start().await;
    let long = "x".repeat(1025);
    let (status, body) = send_video(&emu, &[("chat_id", "43"), ("caption", &long)], mp4(100)).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message caption is too long"))
    );
    assert!(emu.client().messages(43).await.unwrap().is_empty());

    // Markup does not count: 1024 characters of text in bold fit.
    let bold = format!("<b>{}</b>", "x".repeat(1024));
    let (status, body) = send_video(
        &emu,
        &[
            ("chat_id", "43"),
            ("caption", &bold),
            ("parse_mode", "HTML"),
        ],
        mp4(100),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn send_video_over_50_mb_is_request_entity_too_large() {
    let emu = start().await;
    let (status, body) = send_video(&emu, &[("chat_id", "44")], mp4(50 * 1024 * 1024 + 1)).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (413, Some("Request Entity Too Large"))
    );
    assert!(emu.client().messages(44).await.unwrap().is_empty());
}

#[tokio::test]
async fn scripted_faults_apply_to_send_video_and_to_get_file_of_a_video() {
    let emu = start().await;
    let client = emu.client();
    let queued = client
        .send_user_video(
            45,
            mp4(64),
            &VideoMeta::default(),
            &UserMessageOptions::default(),
        )
        .await
        .unwrap();
    let file_id = queued.update["message"]["video"]["file_id"].clone();

    client.fail_next("sendVideo", 1, 500).await.unwrap();
    client.fail_next("getFile", 1, 502).await.unwrap();
    let params = json!({"chat_id": 45, "video": file_id});
    assert_eq!(call(&emu, "sendVideo", params.clone()).await.0, 500);
    assert_eq!(
        call(&emu, "getFile", json!({"file_id": file_id})).await.0,
        502
    );
    ok(&emu, "sendVideo", params).await;
    ok(&emu, "getFile", json!({"file_id": file_id})).await;

    client.rate_limit(Some("sendVideo"), 1, 3).await.unwrap();
    let (status, body) = send_video(&emu, &[("chat_id", "45")], mp4(64)).await;
    assert_eq!(
        (status, &body["parameters"]["retry_after"]),
        (429, &json!(3))
    );
    let stats = client.requests().await.unwrap();
    assert_eq!(stats.count("sendVideo"), 3);
    assert_eq!(client.messages(45).await.unwrap().len(), 1);
}

#[tokio::test]
async fn every_telegram_chat_action_is_accepted_and_an_unknown_one_is_refused() {
    let emu = start().await;
    let actions = [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ];
    for action in actions {
        ok(
            &emu,
            "sendChatAction",
            json!({"chat_id": 46, "action": action}),
        )
        .await;
    }
    let (status, body) = call(
        &emu,
        "sendChatAction",
        json!({"chat_id": 46, "action": "upload_gif"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: wrong parameter action in request"))
    );
    let recorded: Vec<String> = emu
        .client()
        .chat_actions(46)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(recorded, actions);
}

#[tokio::test]
async fn an_album_can_mix_photos_and_videos() {
    let emu = start().await;
    let media = json!([
        {"type": "photo", "media": "attach://a", "caption": "before"},
        {"type": "video", "media": "attach://b", "width": 1280, "height": 720, "duration": 6},
    ]);
    let form = Form::new()
        .text("chat_id", "47")
        .text("media", media.to_string())
        .part("a", Part::bytes(jpeg(64, 48)).file_name("a.jpg"))
        .part("b", Part::bytes(mp4(500)).file_name("b.mp4"));
    let response = http()
        .post(emu.method_url("sendMediaGroup"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let video = &body["result"][1]["video"];
    assert_eq!(
        (&video["width"], &video["height"], &video["duration"]),
        (&json!(1280), &json!(720), &json!(6))
    );
    let groups = emu.client().media_groups(47).await.unwrap();
    let kinds: Vec<SentKind> = groups[0].iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [SentKind::Photo, SentKind::Video]);
    let file_id = &groups[0][1].file.as_ref().unwrap().file_id;
    assert_eq!(emu.client().file_bytes(file_id).await.unwrap(), mp4(500));
}
