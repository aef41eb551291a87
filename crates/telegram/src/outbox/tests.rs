//! The outbox against a fake Bot API ([`Transport`]) on a paused clock:
//! fairness across chats, deadlines, and 429s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::ChatId;
use polybot_telemetry::tasks::{Components, Supervisor};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{OutMessage, Outbox, OutboxConfig, Transport};
use crate::botapi::{BotApiError, Upload};
use crate::error::MessengerError;

/// One call the fake Bot API received.
#[derive(Debug, Clone)]
struct Received {
    method: &'static str,
    chat: i64,
    text: String,
    /// Since the fake was made.
    at: Duration,
}

/// What a scripted call does instead of succeeding.
enum Scripted {
    Fail(BotApiError),
    /// The call panics (a bug in a sender).
    Panic,
}

/// A Bot API that records every call, answers each chat's calls as
/// scripted for it (then with success), and takes `latency` per call.
struct FakeApi {
    start: Instant,
    latency: Duration,
    received: Mutex<Vec<Received>>,
    script: Mutex<HashMap<i64, VecDeque<Scripted>>>,
}

impl FakeApi {
    fn new(latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            latency,
            received: Mutex::new(Vec::new()),
            script: Mutex::new(HashMap::new()),
        })
    }

    /// `chat`'s next call answers `error` (scripts queue up).
    fn fail_next(&self, chat: i64, error: BotApiError) {
        self.script_next(chat, Scripted::Fail(error));
    }

    fn script_next(&self, chat: i64, what: Scripted) {
        self.script
            .lock()
            .unwrap()
            .entry(chat)
            .or_default()
            .push_back(what);
    }

    /// Waits until the first call came.
    async fn until_called(&self) {
        while self.received().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The texts sent to `chat`, in order, one per call (retries included).
    fn texts(&self, chat: i64) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| r.chat == chat)
            .map(|r| r.text)
            .collect()
    }

    async fn answer(
        &self,
        method: &'static str,
        chat: i64,
        text: String,
    ) -> Result<Value, BotApiError> {
        let at = self.start.elapsed();
        self.received.lock().unwrap().push(Received {
            method,
            chat,
            text,
            at,
        });
        tokio::time::sleep(self.latency).await;
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(&chat)
            .and_then(VecDeque::pop_front);
        match scripted {
            Some(Scripted::Fail(error)) => Err(error),
            Some(Scripted::Panic) => panic!("a scripted panic in {method}"),
            None => Ok(json!({"message_id": 1000 + at.as_millis() as i64})),
        }
    }
}

#[async_trait]
impl Transport for FakeApi {
    async fn call(
        &self,
        method: &'static str,
        params: &Value,
        _timeout: Duration,
    ) -> Result<Value, BotApiError> {
        let chat = params["chat_id"].as_i64().expect("a chat_id");
        let text = params["text"].as_str().unwrap_or_default().to_owned();
        self.answer(method, chat, text).await
    }

    async fn call_multipart(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        _uploads: Vec<Upload>,
        _timeout: Duration,
    ) -> Result<Value, BotApiError> {
        let field = |name: &str| {
            params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let chat = field("chat_id").parse().expect("a numeric chat_id");
        self.answer(method, chat, field("caption")).await
    }
}

fn rate_limited(retry_after_secs: u64) -> BotApiError {
    BotApiError::Api {
        method: "sendMessage",
        code: 429,
        description: format!("Too Many Requests: retry after {retry_after_secs}"),
        retry_after: Some(Duration::from_secs(retry_after_secs)),
    }
}

/// A fake Bot API that takes `latency` per call, and an outbox sending
/// through it: one sender, so the order of turns is the order of calls, and
/// a global rate high enough never to be the reason anything waits; `tune`
/// sets the rest.
fn setup(latency: Duration, tune: impl FnOnce(&mut OutboxConfig)) -> (Arc<FakeApi>, Outbox) {
    let tasks = Supervisor::new(CancellationToken::new(), Components::default());
    setup_under(&tasks, latency, tune)
}

/// [`setup`] with the outbox's senders run by `tasks`.
fn setup_under(
    tasks: &Supervisor,
    latency: Duration,
    tune: impl FnOnce(&mut OutboxConfig),
) -> (Arc<FakeApi>, Outbox) {
    let api = FakeApi::new(latency);
    let mut config = OutboxConfig {
        senders: 1,
        global_rate: 1000.0,
        ..OutboxConfig::default()
    };
    tune(&mut config);
    let outbox = Outbox::new(
        Arc::clone(&api) as Arc<dyn Transport>,
        config,
        tasks.clone(),
    );
    (api, outbox)
}

fn text(t: &str) -> OutMessage {
    OutMessage::Text {
        text: t.to_owned(),
        reply_to: None,
        keyboard: None,
    }
}

/// Sends `t` to `chat` on a task of its own; its outcome.
fn spawn_send(
    outbox: &Outbox,
    chat: i64,
    t: &str,
) -> tokio::task::JoinHandle<Result<super::Sent, MessengerError>> {
    let outbox = outbox.clone();
    let message = text(t);
    tokio::spawn(async move { outbox.send(ChatId(chat), message).await })
}

#[tokio::test(start_paused = true)]
async fn one_chats_burst_does_not_hold_back_other_chats_messages() {
    let (api, outbox) = setup(Duration::from_millis(100), |_| {});
    let (a, b, c) = (1, 2, 3);
    // Chat A queues 20 messages, then B and C one each.
    let burst: Vec<_> = (0..20)
        .map(|i| spawn_send(&outbox, a, &format!("a{i}")))
        .collect();
    let b_answer = spawn_send(&outbox, b, "b");
    let c_answer = spawn_send(&outbox, c, "c");

    b_answer.await.unwrap().expect("B's message is sent");
    c_answer.await.unwrap().expect("C's message is sent");
    // A had one turn before B and C, not twenty.
    let order: Vec<i64> = api.received().iter().map(|r| r.chat).collect();
    assert_eq!(order[..3], [a, b, c], "one turn each, in turn order");

    for sent in burst {
        sent.await.unwrap().expect("A's messages are all sent");
    }
    let a_texts = api.texts(a);
    let expected: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    assert_eq!(a_texts, expected, "A's messages keep their order");
}

#[tokio::test(start_paused = true)]
async fn a_chat_takes_turns_with_the_others_while_its_queue_is_long() {
    let (api, outbox) = setup(Duration::from_millis(100), |_| {});
    let burst: Vec<_> = (0..6)
        .map(|i| spawn_send(&outbox, 1, &format!("a{i}")))
        .collect();
    let others: Vec<_> = (0..3)
        .map(|i| spawn_send(&outbox, 2, &format!("b{i}")))
        .collect();
    for sent in burst.into_iter().chain(others) {
        sent.await.unwrap().expect("sent");
    }
    let order: Vec<i64> = api.received().iter().map(|r| r.chat).collect();
    // Strict alternation while both have messages, then A's remainder.
    assert_eq!(order, [1, 2, 1, 2, 1, 2, 1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_only_its_chat_and_the_message_is_retried_after_retry_after() {
    let (api, outbox) = setup(Duration::from_millis(10), |_| {});
    let (a, b) = (1, 2);
    api.fail_next(a, rate_limited(3));
    let first = spawn_send(&outbox, a, "a0");
    let second = spawn_send(&outbox, a, "a1");
    // Once A got its 429, B's messages go out while A waits.
    api.until_called().await;
    let b_sent = spawn_send(&outbox, b, "b0");
    b_sent
        .await
        .unwrap()
        .expect("B is not held back by A's 429");
    let at_b_sent = api.start.elapsed();
    assert!(
        at_b_sent < Duration::from_secs(1),
        "B waited for A's pause: {at_b_sent:?}"
    );

    first
        .await
        .unwrap()
        .expect("A's message is sent in the end");
    second.await.unwrap().expect("and the one queued behind it");
    let received = api.received();
    let a_calls: Vec<&Received> = received.iter().filter(|r| r.chat == a).collect();
    let texts: Vec<&str> = a_calls.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        ["a0", "a0", "a1"],
        "retried first, order kept: {received:?}"
    );
    let pause = a_calls[1].at - a_calls[0].at;
    assert!(
        pause >= Duration::from_secs(3),
        "the retry honoured retry_after: {pause:?}"
    );
    assert!(
        pause < Duration::from_secs(4),
        "the retry came once the pause passed: {pause:?}"
    );
    assert!(received.iter().all(|r| r.method == "sendMessage"));
}

#[tokio::test(start_paused = true)]
async fn a_message_rate_limited_more_than_allowed_fails_as_unavailable() {
    let (api, outbox) = setup(Duration::from_millis(10), |c| c.max_rate_limited = 2);
    for _ in 0..3 {
        api.fail_next(1, rate_limited(1));
    }
    let result = outbox.send(ChatId(1), text("a")).await;
    assert!(
        matches!(result, Err(MessengerError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        api.texts(1).len(),
        3,
        "two 429s waited out, the third ends it"
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_not_sent_by_its_deadline_is_withdrawn_and_never_sent_late() {
    let (api, outbox) = setup(Duration::from_millis(10), |c| {
        c.answer_wait = Duration::from_secs(5)
    });
    // The chat's first message is rate limited for longer than the
    // second one's caller waits.
    api.fail_next(1, rate_limited(30));
    let first = spawn_send(&outbox, 1, "first");
    let second = spawn_send(&outbox, 1, "second");

    for waiting in [first, second] {
        let result = waiting.await.unwrap();
        match result {
            Err(MessengerError::Unavailable(e)) => {
                assert!(e.to_string().contains("not sent within"), "{e}");
            }
            other => panic!("expected a deadline, got {other:?}"),
        }
    }
    assert_eq!(outbox.queued(), 0, "both were taken back out of the queue");
    // Long after the chat's pause, nothing was sent late.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(api.texts(1), ["first"], "only the rate-limited try");
}

#[tokio::test(start_paused = true)]
async fn an_answer_in_flight_at_its_deadline_is_awaited() {
    // Telegram takes 8 s to answer; the caller's wait is 5 s.
    let (api, outbox) = setup(Duration::from_secs(8), |c| {
        c.answer_wait = Duration::from_secs(5)
    });
    let sent = outbox.send(ChatId(1), text("slow")).await;
    assert!(sent.is_ok(), "{sent:?}");
    assert!(api.start.elapsed() >= Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn a_notice_older_than_its_max_age_is_dropped_unsent() {
    let (api, outbox) = setup(Duration::from_millis(10), |c| {
        c.notice_max_age = Duration::from_secs(10)
    });
    // The chat waits out a 20 s pause; its notice cannot wait that long.
    api.fail_next(1, rate_limited(20));
    let answer = spawn_send(&outbox, 1, "answer");
    api.until_called().await;
    let notice = outbox
        .notice(ChatId(1), text("still working"), CancellationToken::new())
        .await;
    assert_eq!(notice, None);
    answer.await.unwrap().expect("the answer is sent");
    assert_eq!(api.texts(1), ["answer", "answer"], "no notice went out");
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_up_to_max_attempts() {
    let (api, outbox) = setup(Duration::from_millis(10), |_| {});
    let server_error = || BotApiError::Api {
        method: "sendMessage",
        code: 502,
        description: "Bad Gateway".into(),
        retry_after: None,
    };
    // Two failures, then success: sent on the third try.
    api.fail_next(1, server_error());
    api.fail_next(1, server_error());
    outbox
        .send(ChatId(1), text("a"))
        .await
        .expect("sent on the third try");
    // Three failures: given up after three tries.
    for _ in 0..3 {
        api.fail_next(2, server_error());
    }
    let result = outbox.send(ChatId(2), text("b")).await;
    assert!(
        matches!(result, Err(MessengerError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(api.texts(1).len(), 3);
    assert_eq!(api.texts(2).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_is_final_and_not_retried() {
    let (api, outbox) = setup(Duration::from_millis(10), |_| {});
    api.fail_next(
        1,
        BotApiError::Api {
            method: "sendMessage",
            code: 403,
            description: "Forbidden: bot was blocked by the user".into(),
            retry_after: None,
        },
    );
    let result = outbox.send(ChatId(1), text("a")).await;
    assert!(
        matches!(result, Err(MessengerError::Rejected(_))),
        "{result:?}"
    );
    assert_eq!(api.texts(1).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn photos_and_documents_go_as_uploads_with_their_captions() {
    let (api, outbox) = setup(Duration::from_millis(10), |_| {});
    let photo = OutMessage::Photo {
        jpeg: bytes::Bytes::from_static(b"jpeg"),
        caption: "a bus".into(),
        reply_to: Some(7),
        keyboard: None,
    };
    let document = OutMessage::Document {
        bytes: bytes::Bytes::from_static(b"png"),
        file_name: "full.png",
        mime: "image/png",
        caption: "full size".into(),
        reply_to: None,
    };
    outbox.send(ChatId(1), photo).await.expect("photo");
    outbox.send(ChatId(1), document).await.expect("document");
    let calls: Vec<(&str, String)> = api
        .received()
        .into_iter()
        .map(|r| (r.method, r.text))
        .collect();
    assert_eq!(
        calls,
        [
            ("sendPhoto", "a bus".to_owned()),
            ("sendDocument", "full size".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_sender_that_panics_is_restarted_and_its_chat_is_not_held() {
    let components = Components::default();
    let tasks = Supervisor::new(CancellationToken::new(), components.clone());
    let (api, outbox) = setup_under(&tasks, Duration::from_millis(10), |_| {});
    api.script_next(1, Scripted::Panic);
    let lost = outbox.send(ChatId(1), text("lost")).await;
    match lost {
        Err(MessengerError::Unavailable(e)) => {
            assert!(e.to_string().contains("the outbox stopped"), "{e}");
        }
        other => panic!("expected the outbox to have stopped, got {other:?}"),
    }
    assert_eq!(outbox.queued(), 0, "the lost message left the outbox");
    // The chat's next message goes out once the sender is back.
    outbox
        .send(ChatId(1), text("next"))
        .await
        .expect("the restarted sender sends it");
    assert_eq!(api.texts(1), ["lost", "next"]);
    assert!(components.ok("telegram_outbox"));
    assert_eq!(tasks.shutdown(Duration::from_secs(5)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_the_senders_send_what_is_queued_then_stop() {
    let tasks = Supervisor::new(CancellationToken::new(), Components::default());
    let (api, outbox) = setup_under(&tasks, Duration::from_millis(100), |_| {});
    let sends: Vec<_> = (0..3)
        .map(|i| spawn_send(&outbox, 1, &format!("m{i}")))
        .collect();
    api.until_called().await;
    let aborted = tasks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(aborted, 0, "the senders stopped by themselves");
    for sent in sends {
        sent.await
            .unwrap()
            .expect("sent before the senders stopped");
    }
    assert_eq!(api.texts(1), ["m0", "m1", "m2"]);
}

#[tokio::test(start_paused = true)]
async fn chat_actions_take_only_spare_sends_of_the_global_budget() {
    let (_api, outbox) = setup(Duration::from_millis(100), |c| c.global_rate = 5.0);
    // An idle outbox: the budget's five sends, then none until it refills.
    let spent = (0..10).filter(|_| outbox.spare_for_action()).count();
    assert_eq!(spent, 5, "the burst of a 5/s budget");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(
        outbox.spare_for_action(),
        "one more send 200 ms later, at 5/s"
    );
    assert!(!outbox.spare_for_action());

    // Messages waiting for their turn: no action, however full the bucket.
    tokio::time::advance(Duration::from_secs(2)).await;
    let answers: Vec<_> = (0..3)
        .map(|i| spawn_send(&outbox, 1, &format!("answer {i}")))
        .collect();
    tokio::task::yield_now().await;
    assert!(
        !outbox.spare_for_action(),
        "answers waiting: the action gives way"
    );
    for sent in answers {
        sent.await.unwrap().expect("the answers are sent");
    }
}

#[tokio::test(start_paused = true)]
async fn a_groups_new_messages_are_paced_under_telegrams_limit_and_others_are_not_held() {
    let (api, outbox) = setup(Duration::from_millis(10), |_| {});
    let group = -100_123;
    let sends: Vec<_> = (0..3)
        .map(|i| spawn_send(&outbox, group, &format!("g{i}")))
        .chain((0..3).map(|i| spawn_send(&outbox, 7, &format!("p{i}"))))
        .collect();
    for sent in sends {
        sent.await.unwrap().expect("sent");
    }
    let at = |chat: i64| -> Vec<Duration> {
        api.received()
            .iter()
            .filter(|r| r.chat == chat)
            .map(|r| r.at)
            .collect()
    };
    let group_at = at(group);
    assert!(
        group_at
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_secs(3)),
        "20 a minute at most: {group_at:?}"
    );
    let private_at = at(7);
    assert!(
        private_at[2] < Duration::from_secs(1),
        "a private chat is not paced: {private_at:?}"
    );
    // Removing a message is not a new one: not paced.
    let before = api.received().len();
    let started = Instant::now();
    outbox
        .send(ChatId(group), OutMessage::Delete { message_id: 1 })
        .await
        .expect("deleted");
    assert_eq!(api.received().len(), before + 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}
