//! The outbox: every message to Telegram goes through it.
//!
//! - **Fair per chat.** Each chat has its own queue; senders take chats in
//!   turn (round robin), one message in flight per chat so a chat's
//!   messages keep their order. A chat with 80 queued messages gets one
//!   turn like every other chat, so it cannot delay anyone's answer.
//! - **A 429 delays that chat only.** Its queue waits out `retry_after`;
//!   the other chats keep being served.
//! - **Bounded waits.** A caller waits at most its deadline; a message not
//!   yet sent by then is taken back out of the queue (never sent late), and
//!   the caller hears "unavailable" and decides (retry, release its lease).
//! - **Notices give way.** The "processing" notice is droppable: it is not
//!   queued under back-pressure (a long chat queue or a full outbox) and is
//!   dropped when it waited too long. Answers are never dropped.
//! - A global token bucket keeps under Telegram's overall limit (30/s).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use polybot_domain::ChatId;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use crate::botapi::{BotApi, BotApiError, ErrorClass, Upload};
use crate::messenger::MessengerError;

/// Outbox settings.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Concurrent sends (to different chats).
    pub senders: usize,
    /// Messages per second over all chats (Telegram allows about 30).
    pub global_rate: f64,
    /// How long a caller waits for an answer to be sent.
    pub answer_wait: Duration,
    /// How long a notice may wait before it is dropped.
    pub notice_max_age: Duration,
    /// A notice is not queued when its chat already has this many messages waiting.
    pub notice_chat_backlog: usize,
    /// A notice is not queued when the outbox holds this many messages.
    pub notice_total_backlog: usize,
    /// Sends that failed with a network error or 5xx are tried this many times in all.
    pub max_attempts: u32,
    /// 429s one message waits out before it fails as unavailable.
    pub max_rate_limited: u32,
    /// Deadline of one send call.
    pub call_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            senders: 8,
            global_rate: 30.0,
            answer_wait: Duration::from_secs(45),
            notice_max_age: Duration::from_secs(10),
            notice_chat_backlog: 3,
            notice_total_backlog: 200,
            max_attempts: 3,
            max_rate_limited: 5,
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub enum OutMessage {
    Text {
        text: String,
        reply_to: Option<i64>,
    },
    Photo {
        jpeg: Bytes,
        caption: String,
        reply_to: Option<i64>,
    },
    /// A file as a document (no recompression, up to 50 MB).
    Document {
        bytes: Bytes,
        file_name: &'static str,
        mime: &'static str,
        caption: String,
        reply_to: Option<i64>,
    },
    /// Photos (or documents) sent together as one album, the caption on
    /// the first. 2–10 items.
    MediaGroup {
        items: Vec<crate::messenger::MediaItem>,
        caption: String,
        reply_to: Option<i64>,
    },
    /// New text for a message the bot sent (the notice becoming an error).
    Edit {
        message_id: i64,
        text: String,
    },
    /// Removes a message the bot sent (the notice, once answered). Queued
    /// like a message so it never overtakes the answer before it.
    Delete {
        message_id: i64,
    },
}

impl OutMessage {
    fn method(&self) -> &'static str {
        match self {
            Self::Text { .. } => "sendMessage",
            Self::Photo { .. } => "sendPhoto",
            Self::Document { .. } => "sendDocument",
            Self::MediaGroup { .. } => "sendMediaGroup",
            Self::Edit { .. } => "editMessageText",
            Self::Delete { .. } => "deleteMessage",
        }
    }
}

/// What a sent message is known by: its `message_id`, when the call
/// returns a message.
pub type Sent = Option<i64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Notice,
    Answer,
}

type Done = oneshot::Sender<Result<Sent, MessengerError>>;

struct Entry {
    id: u64,
    chat: ChatId,
    message: OutMessage,
    kind: Kind,
    queued_at: Instant,
    /// The caller's span: the send's client span is its child.
    parent: tracing::Span,
    done: Option<Done>,
    /// A notice no longer worth sending once cancelled (the answer came).
    cancel: Option<CancellationToken>,
    attempts: u32,
    rate_limited: u32,
}

#[derive(Default)]
struct ChatQueue {
    queue: VecDeque<Entry>,
    not_before: Option<Instant>,
    busy: bool,
}

struct State {
    chats: HashMap<i64, ChatQueue>,
    /// Chats with queued messages, in turn order.
    ring: VecDeque<i64>,
    next_id: u64,
    queued: usize,
    tokens: f64,
    refilled: Instant,
}

struct Inner {
    api: BotApi,
    config: OutboxConfig,
    state: Mutex<State>,
    wake: Notify,
    started: OnceLock<()>,
}

/// Handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

static DROPPED: std::sync::LazyLock<polybot_telemetry::metrics::Counter> =
    std::sync::LazyLock::new(|| {
        polybot_telemetry::metrics::Counter::new(
            "polybot_outbox_dropped_total",
            "polybot.outbox.dropped",
            "Messages the outbox did not send, by kind and reason (backlog, stale, deadline)",
            &["kind", "reason"],
        )
    });

impl Outbox {
    pub fn new(api: BotApi, config: OutboxConfig) -> Self {
        let tokens = config.global_rate.max(1.0);
        Self {
            inner: Arc::new(Inner {
                api,
                config,
                state: Mutex::new(State {
                    chats: HashMap::new(),
                    ring: VecDeque::new(),
                    next_id: 0,
                    queued: 0,
                    tokens,
                    refilled: Instant::now(),
                }),
                wake: Notify::new(),
                started: OnceLock::new(),
            }),
        }
    }

    /// The sender tasks start with the first message (so a messenger can be
    /// built outside a runtime) and end when the last handle is dropped.
    fn ensure_started(&self) {
        self.inner.started.get_or_init(|| {
            for _ in 0..self.inner.config.senders.max(1) {
                let weak = Arc::downgrade(&self.inner);
                tokio::spawn(sender(weak));
            }
        });
    }

    /// Messages waiting or in flight.
    pub fn queued(&self) -> usize {
        self.inner.lock().queued
    }

    /// Queues a droppable notice and waits for it to be sent, dropped (too
    /// long a wait, back-pressure, `cancel` before its turn) or refused: its
    /// message id when sent.
    pub async fn notice(
        &self,
        chat: ChatId,
        message: OutMessage,
        cancel: CancellationToken,
    ) -> Option<i64> {
        let (tx, rx) = oneshot::channel();
        if !self.queue_notice(chat, message, tx, cancel) {
            return None;
        }
        match rx.await {
            Ok(Ok(sent)) => sent,
            Ok(Err(e)) => {
                debug!(chat_id = chat.0, error = %e, "the notice was not sent");
                None
            }
            // Dropped as stale.
            Err(_) => None,
        }
    }

    /// Queues a droppable notice without waiting. Returns whether it was queued.
    fn queue_notice(
        &self,
        chat: ChatId,
        message: OutMessage,
        done: Done,
        cancel: CancellationToken,
    ) -> bool {
        let config = &self.inner.config;
        {
            let mut state = self.inner.lock();
            let backlog = state.chats.get(&chat.0).map_or(0, |c| c.queue.len());
            if backlog >= config.notice_chat_backlog || state.queued >= config.notice_total_backlog
            {
                drop(state);
                DROPPED.inc(&["notice", "backlog"]);
                debug!(chat_id = chat.0, "outbox busy: the notice is not sent");
                return false;
            }
            let id = state.push(chat, message, Kind::Notice, Some(done));
            if let Some(entry) = state
                .chats
                .get_mut(&chat.0)
                .and_then(|q| q.queue.iter_mut().find(|e| e.id == id))
            {
                entry.cancel = Some(cancel);
            }
        }
        self.ensure_started();
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
        true
    }

    /// Queues an answer and waits until it is sent, refused, or the wait
    /// (`answer_wait`) is over; in that last case it is taken back out of
    /// the queue unless a send is already under way, which is awaited.
    pub async fn send(&self, chat: ChatId, message: OutMessage) -> Result<Sent, MessengerError> {
        let (tx, mut rx) = oneshot::channel();
        let id = self
            .inner
            .lock()
            .push(chat, message, Kind::Answer, Some(tx));
        self.ensure_started();
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
        // If the caller is cancelled, a message not yet in flight is withdrawn.
        let mut guard = Withdraw {
            inner: &self.inner,
            chat,
            id,
            armed: true,
        };
        let waited = tokio::time::timeout(self.inner.config.answer_wait, &mut rx).await;
        let result = match waited {
            Ok(r) => r,
            Err(_) => {
                if self.inner.withdraw(chat, id) {
                    guard.armed = false;
                    DROPPED.inc(&["answer", "deadline"]);
                    return Err(MessengerError::Unavailable(
                        format!(
                            "not sent within {:?} (Telegram is slowing this chat down)",
                            self.inner.config.answer_wait
                        )
                        .into(),
                    ));
                }
                // In flight: its call has its own deadline.
                rx.await
            }
        };
        guard.armed = false;
        result.unwrap_or_else(|_| Err(MessengerError::Unavailable("the outbox stopped".into())))
    }
}

struct Withdraw<'a> {
    inner: &'a Inner,
    chat: ChatId,
    id: u64,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.withdraw(self.chat, self.id);
        }
    }
}

impl State {
    fn push(&mut self, chat: ChatId, message: OutMessage, kind: Kind, done: Option<Done>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let q = self.chats.entry(chat.0).or_default();
        if q.queue.is_empty() && !q.busy {
            self.ring.push_back(chat.0);
        }
        q.queue.push_back(Entry {
            id,
            chat,
            message,
            kind,
            queued_at: Instant::now(),
            parent: tracing::Span::current(),
            done,
            cancel: None,
            attempts: 0,
            rate_limited: 0,
        });
        self.queued += 1;
        id
    }

    fn refill(&mut self, rate: f64) {
        let now = Instant::now();
        let burst = rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(burst);
        self.refilled = now;
    }
}

/// What a sender should do next.
enum Next {
    Send(Entry),
    Wait(Option<Instant>),
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes a queued (not in flight) message; whether it was there.
    fn withdraw(&self, chat: ChatId, id: u64) -> bool {
        let mut state = self.lock();
        let Some(q) = state.chats.get_mut(&chat.0) else {
            return false;
        };
        let Some(pos) = q.queue.iter().position(|e| e.id == id) else {
            return false;
        };
        q.queue.remove(pos);
        let idle = q.queue.is_empty() && !q.busy;
        if idle {
            state.chats.remove(&chat.0);
            state.ring.retain(|c| *c != chat.0);
        }
        state.queued -= 1;
        true
    }

    /// The next message to send: the first chat in turn that is not busy
    /// and not waiting out a 429, if the global rate allows a send now.
    fn next(&self) -> Next {
        let mut state = self.lock();
        let now = Instant::now();
        let max_age = self.config.notice_max_age;
        // Drop stale and cancelled notices everywhere first, so they do not
        // take turns (a notice whose answer came needs no sending).
        let mut stale = 0;
        for q in state.chats.values_mut() {
            let before = q.queue.len();
            q.queue.retain(|e| {
                e.kind != Kind::Notice
                    || (now.duration_since(e.queued_at) <= max_age
                        && !e
                            .cancel
                            .as_ref()
                            .is_some_and(CancellationToken::is_cancelled))
            });
            stale += before - q.queue.len();
        }
        if stale > 0 {
            state.queued -= stale;
            for _ in 0..stale {
                DROPPED.inc(&["notice", "stale"]);
            }
        }
        let State { chats, ring, .. } = &mut *state;
        ring.retain(|c| chats.get(c).is_some_and(|q| !q.queue.is_empty() || q.busy));
        chats.retain(|_, q| !q.queue.is_empty() || q.busy);

        let mut earliest: Option<Instant> = None;
        let mut pick = None;
        for (i, chat) in state.ring.iter().enumerate() {
            let Some(q) = state.chats.get(chat) else {
                continue;
            };
            if q.busy || q.queue.is_empty() {
                continue;
            }
            match q.not_before {
                Some(t) if t > now => {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
                _ => {
                    pick = Some(i);
                    break;
                }
            }
        }
        let Some(i) = pick else {
            return Next::Wait(earliest);
        };
        state.refill(self.config.global_rate);
        if state.tokens < 1.0 {
            let wait = (1.0 - state.tokens) / self.config.global_rate.max(0.001);
            return Next::Wait(Some(now + Duration::from_secs_f64(wait)));
        }
        state.tokens -= 1.0;
        let chat = state.ring.remove(i).unwrap_or_default();
        state.ring.push_back(chat);
        let Some(q) = state.chats.get_mut(&chat) else {
            return Next::Wait(None);
        };
        q.busy = true;
        match q.queue.pop_front() {
            Some(entry) => Next::Send(entry),
            None => {
                q.busy = false;
                Next::Wait(None)
            }
        }
    }

    /// Ends a send: a finished message leaves the outbox, a retried one goes
    /// back to the front of its chat's queue.
    fn settle(&self, mut entry: Entry, outcome: Outcome) {
        let chat = entry.chat.0;
        match outcome {
            Outcome::Again(not_before) => {
                let mut state = self.lock();
                let q = state.chats.entry(chat).or_default();
                q.busy = false;
                q.not_before = Some(not_before);
                q.queue.push_front(entry);
                if !state.ring.contains(&chat) {
                    state.ring.push_back(chat);
                }
            }
            Outcome::Finished(result) => {
                {
                    let mut state = self.lock();
                    state.queued = state.queued.saturating_sub(1);
                    if let Some(q) = state.chats.get_mut(&chat) {
                        q.busy = false;
                    }
                }
                if let Some(done) = entry.done.take() {
                    let _ = done.send(result);
                }
            }
        }
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}

enum Outcome {
    Finished(Result<Sent, MessengerError>),
    Again(Instant),
}

/// One sender task: takes the next message in turn and sends it.
async fn sender(inner: std::sync::Weak<Inner>) {
    loop {
        let (next, notified) = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let notified = {
                // Register interest before looking, so no wake-up is missed.
                let n = Arc::clone(&inner);
                async move { n.wake.notified().await }
            };
            (inner.next(), notified)
        };
        match next {
            Next::Send(mut entry) => {
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let outcome = send_one(&inner, &mut entry).await;
                inner.settle(entry, outcome);
            }
            Next::Wait(until) => {
                let until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
        }
    }
}

/// A client span for one Bot API call. The URL is left out on purpose: it
/// contains the bot token.
pub(crate) fn bot_api_span(
    parent: &tracing::Span,
    method: &'static str,
    chat: Option<ChatId>,
) -> tracing::Span {
    tracing::info_span!(
        parent: parent,
        "telegram.request",
        otel.name = format!("telegram {method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        telegram.method = method,
        chat_id = chat.map(|c| c.0),
        error.type = tracing::field::Empty,
    )
}

pub(crate) fn record_error(span: &tracing::Span, kind: &'static str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
}

async fn send_one(inner: &Inner, entry: &mut Entry) -> Outcome {
    let method = entry.message.method();
    let span = bot_api_span(&entry.parent, method, Some(entry.chat));
    let result = call(
        &inner.api,
        entry.chat,
        &entry.message,
        inner.config.call_timeout,
    )
    .instrument(span.clone())
    .await;
    let e = match result {
        Ok(sent) => return Outcome::Finished(Ok(sent)),
        Err(e) => e,
    };
    record_error(&span, e.kind());
    let config = &inner.config;
    let now = Instant::now();
    let notice_expires = entry.queued_at + config.notice_max_age;
    match e.class() {
        ErrorClass::RateLimited(after) => {
            crate::metrics::telegram_rate_limited(method);
            entry.rate_limited += 1;
            if entry.kind == Kind::Notice && now + after > notice_expires {
                DROPPED.inc(&["notice", "stale"]);
                return Outcome::Finished(Ok(None));
            }
            if entry.rate_limited > config.max_rate_limited {
                return Outcome::Finished(Err(MessengerError::Unavailable(e.into())));
            }
            warn!(
                parent: &span,
                telegram.method = method,
                chat_id = entry.chat.0,
                retry_after_secs = after.as_secs(),
                "Telegram rate limit (429): this chat waits before sending again"
            );
            Outcome::Again(now + after)
        }
        ErrorClass::Retryable => {
            entry.attempts += 1;
            let attempts = entry.attempts;
            if attempts >= config.max_attempts || entry.kind == Kind::Notice {
                return Outcome::Finished(Err(MessengerError::Unavailable(e.into())));
            }
            warn!(parent: &span, error = %e, attempt = attempts, "Telegram send failed; retrying");
            Outcome::Again(now + Duration::from_millis(500 * u64::from(attempts)))
        }
        ErrorClass::Permanent => Outcome::Finished(Err(crate::messenger::classify(e))),
    }
}

fn reply_parameters(reply_to: Option<i64>) -> Option<Value> {
    reply_to.map(|id| {
        // The user may have deleted their photo meanwhile; answer anyway.
        json!({"message_id": id, "allow_sending_without_reply": true})
    })
}

/// The `message_id` of a Bot API answer that is a `Message`.
fn message_id(answer: &Value) -> Sent {
    answer.get("message_id").and_then(Value::as_i64)
}

async fn call(
    api: &BotApi,
    chat: ChatId,
    message: &OutMessage,
    timeout: Duration,
) -> Result<Sent, BotApiError> {
    let method = message.method();
    let (caption, reply_to, upload) = match message {
        OutMessage::Text { text, reply_to } => {
            let mut params = json!({"chat_id": chat.0, "text": text});
            if let Some(rp) = reply_parameters(*reply_to) {
                params["reply_parameters"] = rp;
            }
            let answer = api.call::<Value>(method, &params, timeout).await?;
            return Ok(message_id(&answer));
        }
        OutMessage::Edit { message_id, text } => {
            let params = json!({"chat_id": chat.0, "message_id": message_id, "text": text});
            api.call::<Value>(method, &params, timeout).await?;
            return Ok(Some(*message_id));
        }
        OutMessage::Delete { message_id } => {
            let params = json!({"chat_id": chat.0, "message_id": message_id});
            api.call::<Value>(method, &params, timeout).await?;
            return Ok(None);
        }
        OutMessage::MediaGroup {
            items,
            caption,
            reply_to,
        } => {
            const FIELDS: [&str; 10] = [
                "item0", "item1", "item2", "item3", "item4", "item5", "item6", "item7", "item8",
                "item9",
            ];
            let mut media = Vec::new();
            let mut uploads = Vec::new();
            for (i, (item, field)) in items.iter().zip(FIELDS).enumerate() {
                let kind = if item.document { "document" } else { "photo" };
                let mut entry = json!({"type": kind, "media": format!("attach://{field}")});
                if i == 0 && !caption.is_empty() {
                    entry["caption"] = json!(caption);
                }
                media.push(entry);
                uploads.push(Upload {
                    field,
                    file_name: item.file_name,
                    mime: item.mime,
                    bytes: item.bytes.clone(),
                });
            }
            let mut params = vec![
                ("chat_id", chat.0.to_string()),
                ("media", Value::Array(media).to_string()),
            ];
            if let Some(rp) = reply_parameters(*reply_to) {
                params.push(("reply_parameters", rp.to_string()));
            }
            // The answer is the album's messages; the first stands for it.
            let answer = api
                .call_multipart::<Value>(method, &params, uploads, timeout)
                .await?;
            return Ok(answer
                .get(0)
                .and_then(|m| m.get("message_id"))
                .and_then(Value::as_i64));
        }
        OutMessage::Photo {
            jpeg,
            caption,
            reply_to,
        } => (
            caption,
            reply_to,
            Upload {
                field: "photo",
                file_name: "detections.jpg",
                mime: "image/jpeg",
                bytes: jpeg.clone(),
            },
        ),
        OutMessage::Document {
            bytes,
            file_name,
            mime,
            caption,
            reply_to,
        } => (
            caption,
            reply_to,
            Upload {
                field: "document",
                file_name,
                mime,
                bytes: bytes.clone(),
            },
        ),
    };
    let mut params = vec![
        ("chat_id", chat.0.to_string()),
        ("caption", caption.clone()),
    ];
    if let Some(rp) = reply_parameters(*reply_to) {
        params.push(("reply_parameters", rp.to_string()));
    }
    let answer = api
        .call_multipart::<Value>(method, &params, vec![upload], timeout)
        .await?;
    Ok(message_id(&answer))
}
