//! The buttons under every detection answer as a chat user meets them,
//! through the real binaries (`polybot gateway`, `polybot detector` with
//! the real model) on one embedded-backend data folder, against the
//! Telegram emulator: `Details` lists each object with its score and box,
//! once (a second press gets a toast, no message); `Crops` sends one
//! picture per object, cut by a detector; a button whose prediction is
//! gone says the answer expired. Every press is answered exactly once.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use support::chat::{User, caption, objects};
use support::{Ground, Queue, WAIT};
use tg_emulator::{EmulatorClient, SentKind, SentMessage};

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

/// Presses the button labelled `label` under `answer` and returns the
/// toast the bot answered the press with.
async fn press(client: &EmulatorClient, answer: &SentMessage, label: &str) -> String {
    let data = answer
        .button(label)
        .and_then(|b| b.callback_data.clone())
        .unwrap_or_else(|| panic!("no {label} button: {answer:#?}"));
    assert!(data.len() <= 64, "{data}");
    let pressed = client
        .press(answer.chat_id, answer.message_id, None, &data)
        .await
        .expect("press");
    let answered = client
        .wait_callback_answer(&pressed.callback_query_id, WAIT)
        .await
        .expect("the press is answered");
    answered.text.unwrap_or_default()
}

/// Waits until the chat shows `n` messages quoting `answer`.
async fn replies_to(user: &User<'_>, answer: &SentMessage, n: usize) -> Vec<SentMessage> {
    let started = std::time::Instant::now();
    loop {
        let replies: Vec<SentMessage> = user
            .messages()
            .await
            .into_iter()
            .filter(|m| m.reply_to_message_id == Some(answer.message_id))
            .collect();
        if replies.len() >= n {
            return replies;
        }
        assert!(
            started.elapsed() < WAIT,
            "{n} replies to the answer: {replies:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn details_and_crops_come_once_each_below_the_answer_and_an_expired_button_says_so() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let mut gateway = ground.gateway(&ports).await;
    let mut detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 8901 };

    let answer = user.bus().await.remove(0);
    assert_eq!(answer.kind, SentKind::Photo);
    let found = objects(caption(&answer)) as usize;
    assert!(found >= 2, "{}", caption(&answer));
    let labels: Vec<&str> = answer.buttons().map(|b| b.text.as_str()).collect();
    // A photo within Telegram's limits has no larger original to offer.
    assert_eq!(labels, ["Details", "Crops"]);

    assert_eq!(press(client, &answer, "Details").await, "Details below");
    let details = replies_to(&user, &answer, 1).await.remove(0);
    let text = details.text.clone().unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("{found} objects, surest first:"),
        "{text}"
    );
    assert_eq!(lines.len(), found + 1, "a line per object: {text}");
    let scores: Vec<f32> = lines[1..]
        .iter()
        .map(|l| {
            l.split(' ')
                .nth(2)
                .and_then(|s| s.parse().ok())
                .expect("a score")
        })
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "surest first: {text}"
    );
    assert!(lines[1..].iter().all(|l| l.contains("%, y")), "{text}");

    let before = user.messages().await.len();
    assert_eq!(
        press(client, &answer, "Details").await,
        "Already sent: see above."
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(user.messages().await.len(), before, "no new message");

    assert_eq!(
        press(client, &answer, "Crops").await,
        "Cutting out the objects\u{2026}"
    );
    let crops = replies_to(&user, &answer, 2).await;
    let crops: Vec<&SentMessage> = crops.iter().filter(|m| m.kind == SentKind::Photo).collect();
    assert_eq!(crops.len(), found.min(10), "one picture per object");
    for crop in &crops {
        let caption = caption(crop);
        let (class, score) = caption
            .split(" \u{2014} ")
            .next()
            .and_then(|c| c.rsplit_once(' '))
            .expect("class and score");
        assert!(["person", "bus"].contains(&class), "{caption}");
        assert!(score.parse::<f32>().is_ok(), "{caption}");
    }
    // The largest first: the bus.
    assert!(
        caption(crops[0]).starts_with("bus "),
        "{}",
        caption(crops[0])
    );
    let picture = client
        .file_bytes(&crops[0].file.as_ref().expect("a file").file_id)
        .await
        .expect("the crop");
    let crop = image::load_from_memory(&picture).expect("a picture");
    assert!(
        crop.width() > 100 && crop.height() > 100,
        "{:?}",
        (crop.width(), crop.height())
    );

    // A button of an answer the table no longer has (past retention).
    let gone = polybot_domain::AnswerButton {
        extra: polybot_domain::AnswerExtra::Details,
        prediction: polybot_domain::PredictionId::new(),
    };
    let update = serde_json::json!({
        "callback_query": {
            "id": "9990001",
            "from": {"id": user.chat, "is_bot": false, "first_name": "Ada"},
            "chat_instance": "1",
            "message": {
                "message_id": answer.message_id,
                "date": 0,
                "chat": {"id": user.chat, "type": "private", "first_name": "Ada"}
            },
            "data": gone.encode(),
        }
    });
    client.queue_update(&update).await.expect("queue");
    let expired = client
        .wait_callback_answer("9990001", WAIT)
        .await
        .expect("the press is answered");
    assert_eq!(
        expired.text.as_deref(),
        Some("This answer has expired. Send the photo again.")
    );

    let answers = client
        .callback_answers(Some(user.chat))
        .await
        .expect("answers");
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a.answered), "{answers:#?}");

    detector.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    ground.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_press_and_telegram_failing_for_a_moment_still_give_one_of_each() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let mut gateway = ground.gateway(&ports).await;
    let mut detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 8902 };
    let answer = user.bus().await.remove(0);
    let found = objects(caption(&answer)) as usize;

    // Telegram fails the details once: the send is retried, not lost.
    client
        .fail_next("sendMessage", 1, 502)
        .await
        .expect("fault");
    let data = answer.callback_data("Details").expect("Details").to_owned();
    let pressed = client
        .press(user.chat, answer.message_id, None, &data)
        .await
        .expect("press");
    client
        .wait_callback_answer(&pressed.callback_query_id, WAIT)
        .await
        .expect("answered");
    replies_to(&user, &answer, 1).await;
    // Telegram delivers the same press again: nothing more is sent.
    client
        .redeliver(pressed.update_id)
        .await
        .expect("redeliver");
    client
        .wait_delivered(pressed.update_id, WAIT)
        .await
        .expect("delivered");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let replies = replies_to(&user, &answer, 1).await;
    assert_eq!(replies.len(), 1, "one details text: {replies:#?}");

    // The crops album fails once on the way: it comes, once.
    client
        .fail_next("sendMediaGroup", 1, 502)
        .await
        .expect("fault");
    let data = answer.callback_data("Crops").expect("Crops").to_owned();
    client
        .press(user.chat, answer.message_id, None, &data)
        .await
        .expect("press");
    let replies = replies_to(&user, &answer, 1 + found).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let crops = user
        .messages()
        .await
        .into_iter()
        .filter(|m| m.reply_to_message_id == Some(answer.message_id))
        .filter(|m| m.kind == SentKind::Photo)
        .count();
    assert_eq!(crops, found, "each crop once: {replies:#?}");
    let answers = client
        .callback_answers(Some(user.chat))
        .await
        .expect("answers");
    assert_eq!(answers.len(), 2, "two presses: {answers:#?}");
    assert!(answers.iter().all(|a| a.answered), "{answers:#?}");

    detector.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    ground.emulator.shutdown().await;
}
