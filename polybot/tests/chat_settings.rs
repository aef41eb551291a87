//! A chat's own settings as its users meet them, through the real
//! binaries (`polybot gateway` ×2, `polybot detector` with the real model)
//! on one embedded-backend data folder, against the Telegram emulator:
//! `/only bus` leaves the people out of the answer to `bus.jpg`,
//! `/confidence 0.9` shows fewer objects, `/output counts` answers with
//! one text, `/settings` shows a keyboard whose buttons edit that message
//! (one `answerCallbackQuery` per press, no new message), and the settings
//! hold when another gateway takes the updates and after a restart.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use std::time::Duration;

use polybot_testkit::process::{Proc, free_port};
use support::{GatewayPorts, Queue, WAIT, detector_command, photo, start_gateway};
use tg_emulator::{Emulator, EmulatorClient, SentKind, SentMessage, UserMessageOptions};

/// How the "still working" notice begins.
const NOTICE: &str = "Looking for objects";

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

/// A user of one private chat.
struct User<'a> {
    client: &'a EmulatorClient,
    chat: i64,
}

impl User<'_> {
    /// Sends `text` and returns the bot's one answer (quoting it).
    async fn say(&self, text: &str) -> SentMessage {
        let sent = self
            .client
            .send_user_text(self.chat, text)
            .await
            .expect("send");
        let started = std::time::Instant::now();
        loop {
            let answers: Vec<SentMessage> = self
                .messages()
                .await
                .into_iter()
                .filter(|m| m.reply_to_message_id == sent.message_id)
                .collect();
            if let [answer] = answers.as_slice() {
                return answer.clone();
            }
            assert!(answers.len() < 2, "{text}: one answer: {answers:#?}");
            assert!(started.elapsed() < WAIT, "{text}: the bot answers in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `bus.jpg` and returns the bot's answer to it: every message
    /// quoting it (the answer, and any text below it), once it came. The
    /// "still working" notice of a slow answer is progress, not the
    /// answer: it is left out.
    async fn bus(&self) -> Vec<SentMessage> {
        let sent = self
            .client
            .send_user_photo(self.chat, photo("bus.jpg"), &UserMessageOptions::default())
            .await
            .expect("send");
        let answers = || async {
            self.messages()
                .await
                .into_iter()
                .filter(|m| m.reply_to_message_id == sent.message_id)
                .filter(|m| !m.text.as_deref().is_some_and(|t| t.starts_with(NOTICE)))
                .collect::<Vec<_>>()
        };
        let started = std::time::Instant::now();
        while answers().await.is_empty() {
            assert!(started.elapsed() < WAIT, "the bot answers in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A details text follows its photo: give it a moment to arrive.
        tokio::time::sleep(Duration::from_millis(700)).await;
        answers().await
    }

    /// What the chat shows: the bot's messages it did not delete.
    async fn messages(&self) -> Vec<SentMessage> {
        let all = self.client.messages(self.chat).await.expect("messages");
        all.into_iter().filter(|m| !m.deleted).collect()
    }
}

/// How many objects a counts text names ("person ×4, bus ×1": 5).
fn objects(counts: &str) -> u32 {
    counts
        .split(", ")
        .filter_map(|c| c.rsplit_once('\u{d7}')?.1.parse::<u32>().ok())
        .sum()
}

fn caption(m: &SentMessage) -> &str {
    m.caption.as_deref().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chats_settings_shape_its_answers_and_hold_across_gateways_and_restarts() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    let client = emulator.client();
    let first = GatewayPorts {
        http: free_port(),
        grpc: free_port(),
    };
    let second = GatewayPorts {
        http: free_port(),
        grpc: free_port(),
    };
    let mut gateway = start_gateway(&emulator, &first, &data, &QUEUE, dir.path()).await;
    let port = free_port();
    let results = format!("http://127.0.0.1:{}", first.grpc);
    let mut detector = Proc::spawn(
        "detector",
        detector_command(&results, port, &data, &QUEUE),
        dir.path(),
    );
    detector
        .wait_http_ok(&format!("http://127.0.0.1:{port}/readyz"), WAIT)
        .await;
    let user = User {
        client: &client,
        chat: 8801,
    };

    // The defaults: the people and the bus.
    let standard = user.bus().await;
    assert_eq!(standard.len(), 1, "{standard:#?}");
    assert_eq!(standard[0].kind, SentKind::Photo);
    let counts = caption(&standard[0]).to_owned();
    assert!(
        counts.contains("person") && counts.contains("bus"),
        "{counts}"
    );

    // Unknown names are named, with the valid ones.
    let unknown = user.say("/only unicorns").await;
    let text = unknown.text.unwrap_or_default();
    assert!(
        text.contains("unicorns") && text.contains("person, bicycle, car"),
        "{text}"
    );

    let done = user.say("/only Buses").await;
    assert!(done.text.unwrap_or_default().contains("Classes: bus"));
    let only_bus = user.bus().await;
    assert_eq!(caption(&only_bus[0]), "bus \u{d7}1", "{only_bus:#?}");

    // Another gateway takes the updates (it registers the webhook): the
    // chat's settings are in the shared table, not in a gateway.
    let mut other = start_gateway(&emulator, &second, &data, &QUEUE, dir.path()).await;
    let via_other = user.bus().await;
    assert_eq!(caption(&via_other[0]), "bus \u{d7}1", "{via_other:#?}");

    user.say("/only all").await;
    let out_of_range = user.say("/confidence 1.5").await;
    assert!(
        out_of_range
            .text
            .unwrap_or_default()
            .contains("0.05 to 0.95")
    );
    user.say("/confidence 0.9").await;
    let sure = user.bus().await;
    assert!(
        objects(caption(&sure[0])) < objects(&counts),
        "0.9 shows fewer than {counts}: {:?}",
        caption(&sure[0])
    );

    user.say("/output counts").await;
    let counts_only = user.bus().await;
    assert_eq!(counts_only.len(), 1, "{counts_only:#?}");
    assert_eq!(counts_only[0].kind, SentKind::Text, "no picture");

    // The keyboard: a press edits the settings message, answers once, and
    // adds no message; pressing it again changes nothing more.
    let settings = user.say("/settings").await;
    let text = settings.text.clone().unwrap_or_default();
    assert!(text.contains("Output: counts only"), "{text}");
    let button = settings
        .buttons()
        .find(|b| b.text == "Photo + details")
        .and_then(|b| b.callback_data.clone())
        .expect("a details button");
    assert!(button.len() <= 64);
    let before = user.messages().await.len();
    for _ in 0..2 {
        let pressed = client
            .press(user.chat, settings.message_id, None, &button)
            .await
            .expect("press");
        let answer = client
            .wait_callback_answer(&pressed.callback_query_id, WAIT)
            .await
            .expect("the press is answered");
        assert_eq!(answer.text.as_deref(), Some("Output: photo and details"));
    }
    let answers = client
        .callback_answers(Some(user.chat))
        .await
        .expect("answers");
    assert_eq!(answers.len(), 2, "one answer a press: {answers:#?}");
    let now = user.messages().await;
    assert_eq!(now.len(), before, "no new message: {now:#?}");
    let edited = now
        .iter()
        .find(|m| m.message_id == settings.message_id)
        .expect("the settings message");
    let text = edited.text.clone().unwrap_or_default();
    assert!(text.contains("Output: photo and details"), "{text}");
    assert!(
        edited.button("\u{2713} Photo + details").is_some(),
        "{edited:#?}"
    );

    // Both gateways stop; one starts again: the settings are still there.
    other.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    let mut gateway = start_gateway(&emulator, &first, &data, &QUEUE, dir.path()).await;
    let after_restart = user.bus().await;
    assert_eq!(
        after_restart.len(),
        2,
        "photo and details: {after_restart:#?}"
    );
    assert_eq!(after_restart[0].kind, SentKind::Photo);
    assert!(objects(caption(&after_restart[0])) < objects(&counts));
    let details = after_restart[1].text.clone().unwrap_or_default();
    assert!(details.contains("surest first"), "{details}");
    assert!(
        details.lines().nth(1).is_some_and(|l| l.starts_with("1. ")),
        "{details}"
    );

    detector.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    emulator.shutdown().await;
}
