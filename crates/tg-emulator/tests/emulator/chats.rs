//! Group chats set up through the control API, entities on user messages
//! and replies to photos.

use serde_json::{Value, json};
use tg_emulator::{ChatSetup, ChatType, EmulatorConfig, Member, UserMessageOptions};

use crate::{jpeg, ok, start};

mod privacy;

fn bus_spotters() -> ChatSetup {
    ChatSetup {
        chat_id: -1_001_234_567_890,
        kind: ChatType::Supergroup,
        title: Some("Bus spotters".into()),
        members: vec![
            Member::new(1001, "Ann").with_username("ann"),
            Member::new(1002, "Bob"),
        ],
    }
}

#[tokio::test]
async fn a_created_group_gives_its_title_and_first_member_to_user_messages() {
    let emu = start().await;
    let client = emu.client();
    let setup = bus_spotters();
    let info = client.create_chat(&setup).await.unwrap();
    assert!(info.created);
    assert_eq!(
        info.chat,
        json!({"id": setup.chat_id, "type": "supergroup", "title": "Bus spotters"})
    );

    let queued = client
        .send_user_photo(setup.chat_id, jpeg(64, 48), &UserMessageOptions::default())
        .await
        .unwrap();
    let message = &queued.update["message"];
    assert_eq!(message["chat"]["title"], "Bus spotters");
    assert_eq!(message["chat"]["type"], "supergroup");
    assert_eq!(message["from"]["id"], 1001);
    assert_eq!(message["from"]["first_name"], "Ann");
    assert_eq!(message["from"]["username"], "ann");

    // Another member by from_id; a stranger is refused.
    let bob = UserMessageOptions {
        from_id: Some(1002),
        ..Default::default()
    };
    let queued = client
        .send_user_text_with(setup.chat_id, "hello", &bob)
        .await
        .unwrap();
    assert_eq!(queued.update["message"]["from"]["first_name"], "Bob");
    let stranger = UserMessageOptions {
        from_id: Some(7),
        ..Default::default()
    };
    let err = client
        .send_user_text_with(setup.chat_id, "hi", &stranger)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    assert!(err.to_string().contains("not a member"), "{err}");

    // The bot's messages in the chat carry the same Chat object.
    let sent = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": setup.chat_id, "text": "hi all"}),
    )
    .await;
    assert_eq!(sent["chat"]["title"], "Bus spotters");

    let read = client.chat(setup.chat_id).await.unwrap();
    assert_eq!(read, info);
    assert_eq!(read.members.len(), 2);
}

#[tokio::test]
async fn chat_setup_is_validated_and_unknown_chats_are_404() {
    let emu = start().await;
    let client = emu.client();
    let group_with_positive_id = ChatSetup {
        chat_id: 5,
        ..bus_spotters()
    };
    let untitled = ChatSetup {
        title: None,
        ..bus_spotters()
    };
    let negative_private = ChatSetup {
        chat_id: -5,
        kind: ChatType::Private,
        title: None,
        members: vec![],
    };
    for bad in [group_with_positive_id, untitled, negative_private] {
        let err = client.create_chat(&bad).await.unwrap_err();
        assert!(err.to_string().contains("400"), "{bad:?}: {err}");
    }
    let err = client.chat(-42).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    // Chats only used by messages keep their made-up Chat object.
    client.send_user_text(-42, "x").await.unwrap();
    let info = client.chat(-42).await.unwrap();
    assert!(!info.created);
    assert_eq!(info.chat["title"], "Test group -42");

    // A private chat is named after its user.
    let private = ChatSetup {
        chat_id: 77,
        kind: ChatType::Private,
        title: None,
        members: vec![Member::new(77, "Zoe").with_username("zoe_k")],
    };
    client.create_chat(&private).await.unwrap();
    let queued = client.send_user_text(77, "hey").await.unwrap();
    assert_eq!(
        queued.update["message"]["chat"],
        json!({"id": 77, "type": "private", "first_name": "Zoe", "username": "zoe_k"})
    );
    assert_eq!(queued.update["message"]["from"]["username"], "zoe_k");
}

#[tokio::test]
async fn captions_and_texts_carry_command_and_mention_entities() {
    let emu = start().await;
    let client = emu.client();
    let bot = EmulatorConfig::default().bot_username;
    let setup = bus_spotters();
    client.create_chat(&setup).await.unwrap();

    let caption = format!("/detect@{bot}");
    let options = UserMessageOptions {
        caption: Some(caption.clone()),
        ..Default::default()
    };
    let queued = client
        .send_user_photo(setup.chat_id, jpeg(32, 32), &options)
        .await
        .unwrap();
    assert_eq!(
        queued.update["message"]["caption_entities"],
        json!([{"type": "bot_command", "offset": 0, "length": caption.encode_utf16().count()}])
    );

    let queued = client
        .send_user_text(setup.chat_id, &format!("hey @{bot} look"))
        .await
        .unwrap();
    assert_eq!(
        queued.update["message"]["entities"],
        json!([{"type": "mention", "offset": 4, "length": bot.len() + 1}])
    );

    // Offsets count UTF-16 units: the bus emoji is two.
    let queued = client
        .send_user_document(
            setup.chat_id,
            b"x".to_vec(),
            &UserMessageOptions {
                caption: Some("🚌 /detect".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        queued.update["message"]["caption_entities"],
        json!([{"type": "bot_command", "offset": 3, "length": 7}])
    );

    let plain = client
        .send_user_text(setup.chat_id, "no entities")
        .await
        .unwrap();
    assert!(plain.update["message"].get("entities").is_none());
}

#[tokio::test]
async fn replies_to_photos_carry_the_photo_and_caption() {
    let emu = start().await;
    let client = emu.client();
    let options = UserMessageOptions {
        caption: Some("what bus?".into()),
        ..Default::default()
    };
    let photo = client
        .send_user_photo(9, jpeg(400, 300), &options)
        .await
        .unwrap();
    let photo_message = &photo.update["message"];

    // A user's text replying to their photo, with a command in it.
    let reply_options = UserMessageOptions {
        reply_to_message_id: photo.message_id,
        ..Default::default()
    };
    let reply = client
        .send_user_text_with(9, "/detect please", &reply_options)
        .await
        .unwrap();
    let message = &reply.update["message"];
    let replied = &message["reply_to_message"];
    assert_eq!(replied["photo"], photo_message["photo"]);
    assert_eq!(replied["caption"], "what bus?");
    assert_eq!(replied["message_id"], photo_message["message_id"]);
    assert_eq!(
        message["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 7}])
    );

    // A reply to a photo the bot sent carries the bot's photo.
    let file_id = photo_message["photo"][0]["file_id"].clone();
    let sent = ok(
        &emu,
        "sendPhoto",
        json!({"chat_id": 9, "photo": file_id, "caption": "a bus"}),
    )
    .await;
    let reply_options = UserMessageOptions {
        reply_to_message_id: sent["message_id"].as_i64(),
        ..Default::default()
    };
    let reply = client
        .send_user_text_with(9, "thanks", &reply_options)
        .await
        .unwrap();
    let replied = &reply.update["message"]["reply_to_message"];
    assert_eq!(replied["photo"], sent["photo"]);
    assert_eq!(replied["caption"], "a bus");
    assert_eq!(replied["from"]["is_bot"], Value::Bool(true));
    assert!(replied.get("reply_to_message").is_none());
}
