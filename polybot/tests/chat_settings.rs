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

use support::chat::{User, caption, objects};
use support::{Ground, Queue, WAIT};
use tg_emulator::SentKind;

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_chats_settings_shape_its_answers_and_hold_across_gateways_and_restarts() {
    let ground = Ground::new(QUEUE).await;
    let (first, second) = (Ground::ports(), Ground::ports());
    let mut gateway = ground.gateway(&first).await;
    let mut detector = ground.detector(&first).await;
    let client = &ground.client;
    let user = User { client, chat: 8801 };

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
    let mut other = ground.gateway(&second).await;
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
    let mut gateway = ground.gateway(&first).await;
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
    ground.emulator.shutdown().await;
}
