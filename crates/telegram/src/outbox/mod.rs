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
//! - A global token bucket keeps under Telegram's overall limit (30/s);
//!   chat actions ("sending photo…") take from it too, only a spare token.
//!
//! The parts: `message` (what is sent, the settings), `queue` (turns and
//! fairness), `retry` (what a failure leads to), `wire` (the Bot API call
//! per message) and `sender` (the tasks that send); this module is the
//! handle callers queue through.

mod message;
mod queue;
mod retry;
mod sender;
mod wire;

#[cfg(test)]
mod tests;

pub use message::{OutMessage, OutboxConfig, SavedPhoto, Sent, SentMessage};

use std::sync::Arc;

use polybot_domain::ChatId;
use polybot_telemetry::tasks::Supervisor;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::MessengerError;
use crate::observe;
use queue::{Done, Kind};
use sender::Inner;
pub(crate) use wire::Transport;

/// Handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl Outbox {
    /// An outbox sending through `api`, its senders run by `tasks`.
    pub(crate) fn new(api: Arc<dyn Transport>, config: OutboxConfig, tasks: Supervisor) -> Self {
        Self {
            inner: Arc::new(Inner::new(api, config, tasks)),
        }
    }

    /// Messages waiting or in flight.
    pub fn queued(&self) -> usize {
        self.inner.lock().queued()
    }

    /// One send of the global budget (Telegram's 30 a second across all
    /// chats) for a chat action, if one is spare: none while messages wait
    /// for their turn, so progress never takes an answer's place.
    pub fn spare_for_action(&self) -> bool {
        let rate = self.inner.config.global_rate;
        self.inner.lock().spare_token(rate)
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
            Ok(Ok(sent)) => sent.map(|m| m.id),
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
            if state.backlog(chat) >= config.notice_chat_backlog
                || state.queued() >= config.notice_total_backlog
            {
                drop(state);
                observe::dropped("notice", "backlog");
                debug!(chat_id = chat.0, "outbox busy: the notice is not sent");
                return false;
            }
            state.push(chat, message, Kind::Notice, Some(done), Some(cancel));
        }
        sender::ensure_started(&self.inner);
        self.inner.wake();
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
            .push(chat, message, Kind::Answer, Some(tx), None);
        sender::ensure_started(&self.inner);
        self.inner.wake();
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
                    observe::dropped("answer", "deadline");
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

/// Withdraws a queued answer whose caller stopped waiting.
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
