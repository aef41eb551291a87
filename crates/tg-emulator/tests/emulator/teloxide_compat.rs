//! A real teloxide 0.17 `Bot` against the emulator: the JSON the emulator
//! produces must deserialize into teloxide's types.

use std::time::Duration;

use teloxide::{
    RequestError,
    net::Download,
    prelude::*,
    types::{
        ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters,
        UpdateKind,
    },
};
use tg_emulator::{EmulatorHandle, SentKind, UserMessageOptions};

use crate::{jpeg, start};

fn bot(emu: &EmulatorHandle) -> Bot {
    let url = reqwest::Url::parse(&emu.base_url()).expect("base URL parses");
    Bot::new(emu.token()).set_api_url(url)
}

#[tokio::test]
async fn teloxide_bot_calls_get_me_send_message_and_send_photo() {
    let emu = start().await;
    let bot = bot(&emu);
    let chat = ChatId(4242);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), "polybot_test_bot");
    assert_eq!(me.id.0, 123456);

    let sent = bot
        .send_message(chat, "hello from teloxide")
        .await
        .expect("sendMessage");
    assert_eq!(sent.text(), Some("hello from teloxide"));
    assert_eq!(sent.chat.id, chat);

    let reply = bot
        .send_message(chat, "a reply")
        .reply_parameters(ReplyParameters::new(sent.id))
        .await
        .expect("reply");
    assert_eq!(reply.reply_to_message().map(|m| m.id), Some(sent.id));

    bot.send_chat_action(chat, ChatAction::UploadPhoto)
        .await
        .expect("sendChatAction");
    let bytes = jpeg(900, 700);
    let photo = bot
        .send_photo(
            chat,
            InputFile::memory(bytes.clone()).file_name("result.jpg"),
        )
        .caption("bus 0.94")
        .await
        .expect("sendPhoto");
    let sizes = photo.photo().expect("a photo message");
    let largest = sizes.last().expect("sizes");
    assert_eq!((largest.width, largest.height), (900, 700));
    assert_eq!(photo.caption(), Some("bus 0.94"));

    let document = bot
        .send_document(
            chat,
            InputFile::memory(b"id,label\n1,bus\n".to_vec()).file_name("detections.csv"),
        )
        .await
        .expect("sendDocument");
    assert_eq!(
        document.document().and_then(|d| d.file_name.as_deref()),
        Some("detections.csv")
    );

    let recorded = emu
        .client()
        .wait_for_messages(4242, 4, Duration::from_secs(2))
        .await
        .unwrap();
    let kinds: Vec<SentKind> = recorded.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            SentKind::Text,
            SentKind::Text,
            SentKind::Photo,
            SentKind::Document
        ]
    );
    let photo_file = recorded[2].file.clone().unwrap();
    assert_eq!(
        emu.client().file_bytes(&photo_file.file_id).await.unwrap(),
        bytes
    );
}

#[tokio::test]
async fn teloxide_deserializes_emulated_user_updates_and_downloads_their_files() {
    let emu = start().await;
    let bot = bot(&emu);
    let client = emu.client();
    let image = jpeg(1280, 960);
    client
        .send_user_photo(
            7,
            image.clone(),
            &UserMessageOptions {
                caption: Some("detect".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .send_user_document(7, jpeg(300, 200), &UserMessageOptions::default())
        .await
        .unwrap();
    client.send_user_text(7, "/start now").await.unwrap();
    // Privacy mode off: every group message reaches the bot.
    client
        .set_group_privacy(-1001234567890, false)
        .await
        .unwrap();
    client
        .send_user_text(-1001234567890, "in a supergroup")
        .await
        .unwrap();

    let updates = bot.get_updates().await.expect("updates deserialize");
    assert_eq!(updates.len(), 4);
    let messages: Vec<Message> = updates
        .into_iter()
        .map(|u| match u.kind {
            UpdateKind::Message(m) => m,
            other => panic!("unexpected update kind {other:?}"),
        })
        .collect();

    let sizes = messages[0].photo().expect("photo message");
    assert_eq!(sizes.len(), 4);
    assert_eq!(messages[0].caption(), Some("detect"));
    let largest = sizes.last().unwrap();
    let file = bot
        .get_file(largest.file.id.clone())
        .await
        .expect("getFile");
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .expect("download");
    assert_eq!(downloaded, image);

    let document = messages[1].document().expect("document message");
    assert_eq!(
        document.mime_type.as_ref().map(|m| m.essence_str()),
        Some("image/jpeg")
    );
    assert!(document.thumbnail.is_some());

    assert_eq!(messages[2].text(), Some("/start now"));
    assert!(messages[3].chat.is_supergroup());
}

#[tokio::test]
async fn teloxide_sees_retry_after_on_a_429() {
    let emu = start().await;
    let bot = bot(&emu);
    emu.client()
        .rate_limit(Some("sendMessage"), 1, 7)
        .await
        .unwrap();
    let error = bot
        .send_message(ChatId(1), "x")
        .await
        .expect_err("rate limited");
    match error {
        RequestError::RetryAfter(seconds) => assert_eq!(seconds.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    bot.send_message(ChatId(1), "x")
        .await
        .expect("second call passes");
    let stats = emu.client().requests().await.unwrap();
    assert_eq!(
        (
            stats.count("sendMessage"),
            stats.rate_limited_count("sendMessage")
        ),
        (2, 1)
    );
}

#[tokio::test]
async fn teloxide_webhook_management_calls_succeed() {
    let emu = start().await;
    let bot = bot(&emu);
    bot.set_webhook(reqwest::Url::parse("http://127.0.0.1:9/hook").unwrap())
        .secret_token("abc".to_owned())
        .await
        .expect("setWebhook");
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert_eq!(
        info.url.map(|u| u.to_string()),
        Some("http://127.0.0.1:9/hook".to_owned())
    );
    bot.delete_webhook().await.expect("deleteWebhook");
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert!(info.url.is_none());
}

/// A handler like a real bot's: answers photos with how many sizes it saw.
async fn answer_photo(bot: Bot, msg: Message) -> ResponseResult<()> {
    if let Some(sizes) = msg.photo() {
        bot.send_message(msg.chat.id, format!("got {} sizes", sizes.len()))
            .reply_parameters(ReplyParameters::new(msg.id))
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn teloxide_dispatcher_long_polls_the_emulator_and_replies() {
    let emu = start().await;
    let mut dispatcher =
        Dispatcher::builder(bot(&emu), Update::filter_message().endpoint(answer_photo)).build();
    let shutdown = dispatcher.shutdown_token();
    let running = tokio::spawn(async move { dispatcher.dispatch().await });

    let queued = emu
        .client()
        .send_user_photo(55, jpeg(500, 400), &UserMessageOptions::default())
        .await
        .unwrap();
    let sent = emu
        .client()
        .wait_for_messages(55, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(sent[0].text.as_deref(), Some("got 3 sizes"));
    assert_eq!(sent[0].reply_to_message_id, queued.message_id);

    // Stopping needs the dispatcher to have started; retry until it has.
    loop {
        match shutdown.shutdown() {
            Ok(done) => {
                done.await;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    running.await.unwrap();
    let stats = emu.client().requests().await.unwrap();
    assert!(stats.count("getUpdates") >= 1);
}

#[tokio::test]
async fn teloxide_webhook_listener_accepts_the_emulators_deliveries() {
    use teloxide::update_listeners::webhooks;

    let emu = start().await;
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/webhook")).unwrap();
    let bot = bot(&emu);
    // teloxide calls setWebhook itself and rejects requests without the secret.
    let listener = webhooks::axum(
        bot.clone(),
        webhooks::Options::new(addr, url).secret_token("polybot-secret".into()),
    )
    .await
    .expect("webhook listener starts");
    let state = emu.client().webhook().await.unwrap();
    assert_eq!(state.secret_token.as_deref(), Some("polybot-secret"));

    let mut dispatcher =
        Dispatcher::builder(bot, Update::filter_message().endpoint(answer_photo)).build();
    let shutdown = dispatcher.shutdown_token();
    let running = tokio::spawn(async move {
        dispatcher
            .dispatch_with_listener(listener, LoggingErrorHandler::new())
            .await
    });

    emu.client()
        .send_user_photo(56, jpeg(100, 100), &UserMessageOptions::default())
        .await
        .unwrap();
    let sent = emu
        .client()
        .wait_for_messages(56, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(sent[0].text.as_deref(), Some("got 2 sizes"));
    let deliveries = emu.client().deliveries().await.unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d.delivered && d.status == Some(200)),
        "{deliveries:?}"
    );

    loop {
        match shutdown.shutdown() {
            Ok(done) => {
                done.await;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    running.await.unwrap();
}

#[tokio::test]
async fn teloxide_sends_an_album_and_reads_the_media_group() {
    use teloxide::types::{InputMedia, InputMediaPhoto};

    let emu = start().await;
    let bot = bot(&emu);
    let chat = ChatId(4343);
    let media = [jpeg(400, 300), jpeg(300, 400), jpeg(200, 200)]
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let photo =
                InputMediaPhoto::new(InputFile::memory(bytes).file_name(format!("{i}.jpg")));
            InputMedia::Photo(if i == 0 {
                photo.caption("3 buses")
            } else {
                photo
            })
        });
    let sent = bot
        .send_media_group(chat, media)
        .await
        .expect("sendMediaGroup");
    assert_eq!(sent.len(), 3);
    let group = sent[0].media_group_id().cloned().expect("a media group");
    assert!(sent.iter().all(|m| m.media_group_id() == Some(&group)));
    assert_eq!(sent[0].caption(), Some("3 buses"));
    assert_eq!(sent[1].caption(), None);
    let dims: Vec<(u32, u32)> = sent
        .iter()
        .filter_map(|m| m.photo()?.last().map(|p| (p.width, p.height)))
        .collect();
    assert_eq!(dims, [(400, 300), (300, 400), (200, 200)]);
    let groups = emu.client().media_groups(4343).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].len(), 3);
}

#[tokio::test]
async fn teloxide_sends_a_keyboard_reads_the_press_answers_and_edits_it() {
    let emu = start().await;
    let bot = bot(&emu);
    let client = emu.client();
    let chat = ChatId(4343);
    let keyboard = InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback("Blur", "blur:2"),
        InlineKeyboardButton::callback("Keep", "keep:2"),
    ]]);
    let sent = bot
        .send_message(chat, "Blur the faces?")
        .reply_markup(keyboard.clone())
        .await
        .expect("sendMessage with a keyboard");
    assert_eq!(sent.reply_markup(), Some(&keyboard));

    let recorded = client.messages(4343).await.unwrap();
    let data = recorded[0].callback_data("Blur").unwrap();
    let pressed = client
        .press(4343, i64::from(sent.id.0), None, data)
        .await
        .unwrap();

    let updates = bot
        .get_updates()
        .await
        .expect("a callback_query deserializes");
    let query = match &updates[0].kind {
        UpdateKind::CallbackQuery(q) => q.clone(),
        other => panic!("expected a callback query, got {other:?}"),
    };
    assert_eq!(query.id.0, pressed.callback_query_id);
    assert_eq!(query.data.as_deref(), Some("blur:2"));
    assert_eq!(query.from.id.0, 4343);
    let message = query.regular_message().expect("the bot's message");
    assert_eq!(message.id, sent.id);
    assert_eq!(message.reply_markup(), Some(&keyboard));

    bot.answer_callback_query(query.id.clone())
        .text("Blurring…")
        .await
        .expect("answerCallbackQuery");
    let error = bot
        .answer_callback_query(query.id.clone())
        .await
        .expect_err("a query is answered once");
    assert!(error.to_string().contains("query ID is invalid"), "{error}");
    let answer = client
        .wait_callback_answer(&pressed.callback_query_id, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(answer.text.as_deref(), Some("Blurring…"));

    let done =
        InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("Undo", "undo:2")]]);
    let edited = bot
        .edit_message_reply_markup(chat, sent.id)
        .reply_markup(done.clone())
        .await
        .expect("editMessageReplyMarkup");
    assert_eq!(edited.reply_markup(), Some(&done));
}
