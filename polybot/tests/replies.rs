//! Black-box tests of replies to the bot's own answers, as a chat user
//! meets them through the Telegram Bot API emulator and the whole mesh
//! (embedded backend, real model): a reply asking for an action is applied
//! to the original photo the answer was made from, never to the annotated
//! copy; any other reply ("thank you") is left in silence. Needs
//! `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use std::time::Duration;

use polybot_testkit::{caption, sample_photo};
use support::WAIT;
use support::in_process::InProcess;
use support::pictures::{mean_difference, picture};
use tg_emulator::{EmulatorClient, SentKind, SentMessage, UserMessageOptions};

/// How long the bot is given to (wrongly) answer chatter.
const QUIET: Duration = Duration::from_secs(4);

/// The bot, and users who talk to it.
struct Bot(InProcess);

impl Bot {
    async fn start() -> Self {
        Self(InProcess::without_notice().await)
    }

    /// The emulator's control API, where users speak and answers are read.
    fn client(&self) -> &EmulatorClient {
        &self.0.client
    }

    /// A user's photo in `chat` with `caption`: its message id.
    async fn photo(&self, chat: i64, photo: Vec<u8>, caption: Option<&str>) -> i64 {
        let options = UserMessageOptions {
            caption: caption.map(str::to_owned),
            ..Default::default()
        };
        let sent = self.client().send_user_photo(chat, photo, &options).await;
        sent.expect("send").message_id.expect("a message id")
    }

    /// A user's text in `chat` replying to the message `to`: its id.
    async fn reply(&self, chat: i64, to: i64, text: &str) -> i64 {
        let options = UserMessageOptions {
            reply_to_message_id: Some(to),
            ..Default::default()
        };
        let sent = self
            .client()
            .send_user_text_with(chat, text, &options)
            .await;
        sent.expect("send").message_id.expect("a message id")
    }

    /// The bot's `n`th message (from 1) in `chat`, once it came, which must
    /// quote `request`.
    async fn answer(&self, chat: i64, n: usize, request: i64) -> SentMessage {
        let m = self
            .client()
            .wait_for_messages(chat, n, WAIT)
            .await
            .expect("the bot answers in time");
        assert_eq!(m.len(), n, "one answer per request: {m:#?}");
        let answer = m.into_iter().nth(n - 1).expect("the nth message");
        assert_eq!(
            answer.reply_to_message_id,
            Some(request),
            "the answer quotes its request: {answer:#?}"
        );
        answer
    }

    /// Asks for `caption` on `photo` in a private chat of its own: the
    /// bot's answer.
    async fn ask(&self, chat: i64, photo: Vec<u8>, caption: &str) -> SentMessage {
        let request = self.photo(chat, photo, Some(caption)).await;
        self.answer(chat, 1, request).await
    }

    /// Asserts the bot sent nothing more to `chat` than its `n` messages
    /// for a while.
    async fn assert_quiet(&self, chat: i64, n: usize, what: &str) {
        tokio::time::sleep(QUIET).await;
        let m = self.client().messages(chat).await.expect("messages");
        assert_eq!(m.len(), n, "{what}: the bot stays silent: {m:#?}");
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn blur_replying_to_the_answer_blurs_the_original_photo_not_the_annotated_copy() {
    let bot = Bot::start().await;
    let chat = 9601;
    let request = bot.photo(chat, sample_photo("bus.jpg"), None).await;
    let detected = bot.answer(chat, 1, request).await;
    assert!(caption(&detected).contains("bus ×1"), "{detected:#?}");

    let reply = bot.reply(chat, detected.message_id, "blur").await;
    let blurred = bot.answer(chat, 2, reply).await;
    assert_eq!(blurred.kind, SentKind::Photo, "{blurred:#?}");
    assert_eq!(caption(&blurred), "blur 16");
    let got = picture(bot.client(), &blurred).await;

    // What blurring the original gives, and what blurring the annotated
    // copy gives, each asked for directly in a chat of its own.
    let want = bot.ask(9602, sample_photo("bus.jpg"), "blur").await;
    let want = picture(bot.client(), &want).await;
    let annotated = bot
        .client()
        .file_bytes(&detected.file.as_ref().expect("the annotated photo").file_id);
    let annotated = annotated.await.expect("bytes");
    let wrong = bot.ask(9603, annotated, "blur").await;
    let wrong = picture(bot.client(), &wrong).await;

    let off = mean_difference(&got, &want);
    let boxes = mean_difference(&got, &wrong);
    assert!(off < 0.5, "{off:.2} grey levels from the blurred original");
    assert!(
        boxes > 4.0 * off.max(0.1),
        "as close to the blurred boxes ({boxes:.2}) as to the blurred original ({off:.2})"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn thanks_replying_to_the_answer_gets_no_picture_and_no_help() {
    let bot = Bot::start().await;
    let chat = 9611;
    let request = bot.photo(chat, sample_photo("bus.jpg"), None).await;
    let detected = bot.answer(chat, 1, request).await;
    for chatter in ["thank you", "nice, thanks", "👍"] {
        bot.reply(chat, detected.message_id, chatter).await;
    }
    bot.assert_quiet(chat, 1, "chatter replying to the answer")
        .await;
    // The bot is alive and answers the next request: the silence was chosen.
    let next = bot.reply(chat, detected.message_id, "rotate").await;
    let rotated = bot.answer(chat, 2, next).await;
    assert_eq!(caption(&rotated), "rotated 90° clockwise", "{rotated:#?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_group_rotate_left_replying_to_the_answer_without_a_mention_turns_the_original() {
    let bot = Bot::start().await;
    let group = -9621;
    // Under privacy mode (Telegram's default) a bare /detect is not
    // delivered before the bot posted in the group; one addressed to it is.
    let request = bot
        .photo(
            group,
            sample_photo("bus.jpg"),
            Some("/detect@polybot_test_bot"),
        )
        .await;
    let detected = bot.answer(group, 1, request).await;
    assert!(caption(&detected).contains("bus ×1"), "{detected:#?}");

    let reply = bot.reply(group, detected.message_id, "rotate left").await;
    let rotated = bot.answer(group, 2, reply).await;
    assert_eq!(caption(&rotated), "rotated 90° anticlockwise");
    let got = picture(bot.client(), &rotated).await;
    assert_eq!(got.dimensions(), (1080, 810), "810×1080 turned a quarter");

    let want = bot.ask(9622, sample_photo("bus.jpg"), "rotate left").await;
    let want = picture(bot.client(), &want).await;
    let off = mean_difference(&got, &want);
    assert!(off < 0.5, "{off:.2} grey levels from the turned original");

    // Chatter replying to the answer stays chatter in a group too.
    bot.reply(group, rotated.message_id, "cool").await;
    bot.assert_quiet(group, 2, "chatter in a group").await;
    bot.stop().await;
}
