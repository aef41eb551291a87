//! The outbox's queues and whose turn it is: one queue per chat, chats
//! served in turn (round robin) with one message in flight per chat, a
//! chat waiting out a 429 skipped until its pause is over, stale or
//! cancelled notices dropped before they take a turn, and a global token
//! bucket under Telegram's overall limit. Plain state under the outbox's
//! lock: no I/O, no waiting.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use polybot_domain::ChatId;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::MessengerError;
use crate::observe;
use crate::outbox::message::{OutMessage, OutboxConfig, Sent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Droppable: the "still working" notice.
    Notice,
    /// Never dropped; the caller waits for it.
    Answer,
}

/// Where a message's outcome goes: its caller.
pub(crate) type Done = oneshot::Sender<Result<Sent, MessengerError>>;

pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) chat: ChatId,
    pub(crate) message: OutMessage,
    pub(crate) kind: Kind,
    pub(crate) queued_at: Instant,
    /// The caller's span: the send's client span is its child.
    pub(crate) parent: tracing::Span,
    pub(crate) done: Option<Done>,
    /// A notice no longer worth sending once cancelled (the answer came).
    cancel: Option<CancellationToken>,
    /// Failed tries (network error, 5xx) so far.
    pub(crate) attempts: u32,
    /// 429s waited out so far.
    pub(crate) rate_limited: u32,
}

#[derive(Default)]
struct ChatQueue {
    queue: VecDeque<Entry>,
    not_before: Option<Instant>,
    busy: bool,
}

/// What a sender should do next.
pub(crate) enum Next {
    Send(Entry),
    /// Nothing to send now: look again at this time (or when woken).
    Wait(Option<Instant>),
}

pub(crate) struct State {
    chats: HashMap<i64, ChatQueue>,
    /// Chats with queued messages, in turn order.
    ring: VecDeque<i64>,
    next_id: u64,
    queued: usize,
    tokens: f64,
    refilled: Instant,
    /// Groups that sent a new message lately, and when they may send the
    /// next (kept apart from the chats' queues, which are dropped once
    /// empty).
    paced: HashMap<i64, Instant>,
}

impl State {
    /// An empty outbox whose token bucket starts full.
    pub(crate) fn new(global_rate: f64) -> Self {
        Self {
            chats: HashMap::new(),
            ring: VecDeque::new(),
            next_id: 0,
            queued: 0,
            tokens: global_rate.max(1.0),
            refilled: Instant::now(),
            paced: HashMap::new(),
        }
    }

    /// Messages waiting or in flight.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Messages waiting in `chat`'s queue (not counting one in flight).
    pub(crate) fn backlog(&self, chat: ChatId) -> usize {
        self.chats.get(&chat.0).map_or(0, |c| c.queue.len())
    }

    /// Queues `message` at the back of its chat's queue; its id.
    pub(crate) fn push(
        &mut self,
        chat: ChatId,
        message: OutMessage,
        kind: Kind,
        done: Option<Done>,
        cancel: Option<CancellationToken>,
    ) -> u64 {
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
            cancel,
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

    /// Takes one token of the global budget for something that is not a
    /// message (a chat action), only when no message waits for one: the
    /// messages' turns come first. Whether it got one.
    pub(crate) fn spare_token(&mut self, rate: f64) -> bool {
        self.refill(rate);
        let waiting = self.chats.values().any(|c| !c.queue.is_empty());
        if waiting || self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Removes a queued (not in flight) message; whether it was there.
    pub(crate) fn withdraw(&mut self, chat: ChatId, id: u64) -> bool {
        let Some(q) = self.chats.get_mut(&chat.0) else {
            return false;
        };
        let Some(pos) = q.queue.iter().position(|e| e.id == id) else {
            return false;
        };
        q.queue.remove(pos);
        let idle = q.queue.is_empty() && !q.busy;
        if idle {
            self.chats.remove(&chat.0);
            self.ring.retain(|c| *c != chat.0);
        }
        self.queued -= 1;
        true
    }

    /// Drops stale and cancelled notices everywhere, so they do not take
    /// turns (a notice whose answer came needs no sending).
    fn drop_stale_notices(&mut self, now: Instant, max_age: Duration) {
        let mut stale = 0;
        for q in self.chats.values_mut() {
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
            self.queued -= stale;
            for _ in 0..stale {
                observe::dropped("notice", "stale");
            }
        }
        let Self { chats, ring, .. } = self;
        ring.retain(|c| chats.get(c).is_some_and(|q| !q.queue.is_empty() || q.busy));
        chats.retain(|_, q| !q.queue.is_empty() || q.busy);
        self.paced.retain(|_, next| *next > now);
    }

    /// The next message to send: the first chat in turn that is not busy
    /// and not waiting out a 429, if the global rate allows a send now.
    /// Its chat is busy until [`State::requeue`] or [`State::finish`].
    pub(crate) fn next(&mut self, config: &OutboxConfig) -> Next {
        let now = Instant::now();
        self.drop_stale_notices(now, config.notice_max_age);

        let mut earliest: Option<Instant> = None;
        let mut pick = None;
        for (i, chat) in self.ring.iter().enumerate() {
            let Some(q) = self.chats.get(chat) else {
                continue;
            };
            if q.busy || q.queue.is_empty() {
                continue;
            }
            // A group's next new message waits for its pace.
            let paced = q
                .queue
                .front()
                .filter(|e| e.message.is_new_message())
                .and_then(|_| self.paced.get(chat).copied());
            match q.not_before.max(paced) {
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
        self.refill(config.global_rate);
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / config.global_rate.max(0.001);
            return Next::Wait(Some(now + Duration::from_secs_f64(wait)));
        }
        self.tokens -= 1.0;
        let chat = self.ring.remove(i).unwrap_or_default();
        self.ring.push_back(chat);
        let Some(q) = self.chats.get_mut(&chat) else {
            return Next::Wait(None);
        };
        q.busy = true;
        match q.queue.pop_front() {
            Some(entry) => {
                if is_group(chat) && entry.message.is_new_message() {
                    self.paced.insert(chat, now + config.group_interval);
                }
                Next::Send(entry)
            }
            None => {
                q.busy = false;
                Next::Wait(None)
            }
        }
    }

    /// Puts a message to retry back at the front of its chat's queue; the
    /// chat sends nothing before `not_before`.
    pub(crate) fn requeue(&mut self, entry: Entry, not_before: Instant) {
        let chat = entry.chat.0;
        let q = self.chats.entry(chat).or_default();
        q.busy = false;
        q.not_before = Some(not_before);
        q.queue.push_front(entry);
        if !self.ring.contains(&chat) {
            self.ring.push_back(chat);
        }
    }

    /// A message of `chat` has left the outbox (sent, refused or given up).
    pub(crate) fn finish(&mut self, chat: ChatId) {
        self.queued = self.queued.saturating_sub(1);
        if let Some(q) = self.chats.get_mut(&chat.0) {
            q.busy = false;
        }
    }
}

/// Group and supergroup chats have negative ids (channels too, which the
/// bot does not write to).
fn is_group(chat: i64) -> bool {
    chat < 0
}
