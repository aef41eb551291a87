//! Black-box tests of groups and albums as chat users meet them: through
//! the Telegram Bot API emulator, with Telegram's privacy mode on in
//! groups (its default) unless a test turns it off, to the whole mesh on
//! the embedded backend with the real model.
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use std::time::Duration;

use polybot_testkit::{caption, sample_photo};
use serde_json::json;
use support::WAIT;
use support::in_process::InProcess;
use tg_emulator::{EmulatorClient, SentKind, SentMessage, UserMessageOptions};

const BOT: &str = "polybot_test_bot";

/// The bot, and the users who talk to it.
struct Bot(InProcess);

impl Bot {
    async fn start() -> Self {
        Self(InProcess::without_notice().await)
    }

    fn client(&self) -> &EmulatorClient {
        &self.0.client
    }

    async fn photo(&self, chat: i64, name: &str, options: UserMessageOptions) -> Option<i64> {
        self.client()
            .send_user_photo(chat, sample_photo(name), &options)
            .await
            .expect("send")
            .message_id
    }

    async fn wait(&self, chat: i64, n: usize) -> Vec<SentMessage> {
        self.client()
            .wait_for_messages(chat, n, WAIT)
            .await
            .expect("the bot answers in time")
    }

    /// Asserts the chat still has exactly `n` messages after a quiet period
    /// longer than an album's quiet window.
    async fn assert_stays_at(&self, chat: i64, n: usize) {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let messages = self.client().messages(chat).await.expect("messages");
        assert_eq!(messages.len(), n, "unexpected replies: {messages:#?}");
    }

    /// A user's video as an item of album `album` (the control API sends
    /// photos and documents; a video is queued as Telegram writes it).
    async fn video(&self, chat: i64, album: &str, message_id: i64) {
        let update = json!({"message": {
            "message_id": message_id,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private", "first_name": "Test"},
            "from": {"id": chat, "is_bot": false, "first_name": "Test"},
            "media_group_id": album,
            "video": {"file_id": "BAACvideo", "file_unique_id": "uvideo", "width": 64,
                "height": 64, "duration": 2, "mime_type": "video/mp4", "file_size": 4000},
        }});
        self.client().queue_update(&update).await.expect("queued");
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

fn captioned(text: &str) -> UserMessageOptions {
    UserMessageOptions {
        caption: Some(text.to_owned()),
        ..Default::default()
    }
}

fn in_album(album: &str, caption: Option<&str>) -> UserMessageOptions {
    UserMessageOptions {
        media_group_id: Some(album.to_owned()),
        caption: caption.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_privacy_mode_commands_for_the_bot_work_and_mentions_do_not_arrive() {
    let bot = Bot::start().await;
    let group = -6001;
    // A bare mention is not delivered: no answer at all.
    let mention = bot
        .photo(group, "bus.jpg", captioned(&format!("@{BOT} blur")))
        .await;
    assert_eq!(
        bot.client().undelivered(group).await.expect("undelivered"),
        vec![mention.expect("id")]
    );
    // The command for this bot, as a caption: the detection answer.
    let asked = bot
        .photo(group, "bus.jpg", captioned(&format!("/detect@{BOT}")))
        .await;
    let m = bot.wait(group, 1).await;
    assert_eq!(m[0].reply_to_message_id, asked, "{m:#?}");
    assert!(caption(&m[0]).contains("bus ×1"), "{m:#?}");
    // A photo nobody addressed, then the command for this bot replying to it.
    let plain = bot
        .photo(group, "zidane.jpg", UserMessageOptions::default())
        .await;
    let reply = bot
        .client()
        .send_user_text_with(
            group,
            &format!("/blur@{BOT}"),
            &UserMessageOptions {
                reply_to_message_id: plain,
                ..Default::default()
            },
        )
        .await
        .expect("send");
    assert!(reply.delivered);
    let m = bot.wait(group, 2).await;
    assert_eq!(m[1].kind, SentKind::Photo, "{m:#?}");
    assert_eq!(m[1].reply_to_message_id, reply.message_id, "{m:#?}");
    assert!(caption(&m[1]).starts_with("blur"), "{m:#?}");
    bot.assert_stays_at(group, 2).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_of_two_photos_and_a_video_gets_one_answer_naming_the_video() {
    let bot = Bot::start().await;
    let chat = 6101;
    let album = "mixed-6101";
    let first = bot
        .photo(chat, "bus.jpg", in_album(album, Some("detect")))
        .await;
    let second = bot.photo(chat, "zidane.jpg", in_album(album, None)).await;
    bot.video(chat, album, second.expect("id") + 1).await;
    let m = bot.wait(chat, 2).await;
    assert!(
        m.iter().all(|m| m.media_group_id.is_some()),
        "one album, no help: {m:#?}"
    );
    assert_eq!(m[0].reply_to_message_id, first, "{m:#?}");
    let caption = caption(&m[0]);
    assert!(caption.contains("1: person ×4, bus ×1"), "{caption}");
    assert!(caption.contains("2: person ×2, tie ×1"), "{caption}");
    assert!(caption.contains("3: a video, skipped"), "{caption}");
    bot.assert_stays_at(chat, 2).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_of_only_videos_gets_one_clear_answer() {
    let bot = Bot::start().await;
    let chat = 6102;
    bot.video(chat, "videos-6102", 1).await;
    bot.video(chat, "videos-6102", 2).await;
    let m = bot.wait(chat, 1).await;
    assert_eq!(m[0].kind, SentKind::Text, "{m:#?}");
    let text = m[0].text.as_deref().unwrap_or_default();
    assert!(text.contains("None of this album"), "{text}");
    assert!(
        text.contains("1: a video, skipped") && text.contains("2: a video, skipped"),
        "{text}"
    );
    bot.assert_stays_at(chat, 1).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_privacy_mode_a_group_album_is_answered_saying_the_others_were_not_seen() {
    let bot = Bot::start().await;
    let group = -6201;
    let album = "album-6201";
    let asked = bot
        .photo(
            group,
            "bus.jpg",
            in_album(album, Some(&format!("/detect@{BOT}"))),
        )
        .await;
    bot.photo(group, "zidane.jpg", in_album(album, None)).await;
    assert_eq!(
        bot.client()
            .undelivered(group)
            .await
            .expect("undelivered")
            .len(),
        1,
        "the uncaptioned photo never reaches the bot"
    );
    let m = bot.wait(group, 1).await;
    assert_eq!(m[0].reply_to_message_id, asked, "{m:#?}");
    let caption = caption(&m[0]);
    assert!(caption.contains("bus ×1"), "{caption}");
    assert!(
        caption.contains(&polybot_gateway::only_captioned_used(
            polybot_domain::Lang::En
        )),
        "{caption}"
    );
    bot.assert_stays_at(group, 1).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_privacy_mode_off_a_group_album_addressed_to_the_bot_gets_one_album() {
    let bot = Bot::start().await;
    let group = -6301;
    bot.client()
        .set_group_privacy(group, false)
        .await
        .expect("privacy off");
    // An album nobody addressed: nothing.
    bot.photo(group, "bus.jpg", in_album("chatter-6301", None))
        .await;
    bot.photo(group, "zidane.jpg", in_album("chatter-6301", None))
        .await;
    // The album addressed on its second photo: one album answer.
    let album = "album-6301";
    let first = bot.photo(group, "bus.jpg", in_album(album, None)).await;
    bot.photo(
        group,
        "zidane.jpg",
        in_album(album, Some(&format!("/detect@{BOT}"))),
    )
    .await;
    let m = bot.wait(group, 2).await;
    assert!(
        m.iter().all(|m| m.media_group_id.is_some()),
        "one album: {m:#?}"
    );
    assert_eq!(m[0].reply_to_message_id, first, "{m:#?}");
    let caption = caption(&m[0]);
    assert!(
        caption.contains("1: person ×4, bus ×1") && caption.contains("2: person ×2, tie ×1"),
        "{caption}"
    );
    bot.assert_stays_at(group, 2).await;
    bot.stop().await;
}
