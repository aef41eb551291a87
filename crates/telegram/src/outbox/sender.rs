//! The outbox's shared state and its sender tasks: each takes the next
//! message in turn (see [`crate::outbox::queue`]), sends it, and settles
//! it (sent, refused, or back in its queue to be tried again, see
//! [`crate::outbox::retry`]). The senders run under a
//! [`Supervisor`]: restarted if one panics, and on shutdown they send what
//! is queued, then stop.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use polybot_domain::ChatId;
use polybot_telemetry::tasks::{Backoff, Supervisor};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::observe;
use crate::outbox::message::OutboxConfig;
use crate::outbox::queue::{Entry, Next, State};
use crate::outbox::retry::{self, Outcome};
use crate::outbox::wire::{self, Transport};

/// The senders' name for the supervisor (restarts, readiness).
const SENDER_TASK: &str = "telegram_outbox";

/// What the outbox handles and its senders share.
pub(crate) struct Inner {
    api: Arc<dyn Transport>,
    pub(crate) config: OutboxConfig,
    state: Mutex<State>,
    wake: Notify,
    tasks: Supervisor,
    started: OnceLock<()>,
}

impl Inner {
    pub(crate) fn new(api: Arc<dyn Transport>, config: OutboxConfig, tasks: Supervisor) -> Self {
        Self {
            api,
            state: Mutex::new(State::new(config.global_rate)),
            config,
            wake: Notify::new(),
            tasks,
            started: OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the senders to look again (a message came, a chat is free).
    pub(crate) fn wake(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// Removes a queued (not in flight) message; whether it was there.
    pub(crate) fn withdraw(&self, chat: ChatId, id: u64) -> bool {
        self.lock().withdraw(chat, id)
    }

    /// Sends `entry` and settles it.
    async fn send_one(&self, mut entry: Entry) {
        let mut turn = Turn {
            inner: self,
            chat: entry.chat,
            settled: false,
        };
        let method = entry.message.method();
        let span = observe::bot_api_span(&entry.parent, method, Some(entry.chat));
        let result = wire::send(
            &*self.api,
            entry.chat,
            &entry.message,
            self.config.call_timeout,
        )
        .instrument(span.clone())
        .await;
        let outcome = match result {
            Ok(sent) => Outcome::Finished(Ok(sent)),
            Err(e) => {
                observe::record_error(&span, e.kind());
                retry::after_failure(&mut entry, e, &self.config, &span)
            }
        };
        turn.settled = true;
        self.settle(entry, outcome);
    }

    /// Ends a send: a finished message leaves the outbox, a retried one goes
    /// back to the front of its chat's queue.
    fn settle(&self, mut entry: Entry, outcome: Outcome) {
        match outcome {
            Outcome::Again(not_before) => self.lock().requeue(entry, not_before),
            Outcome::Finished(result) => {
                self.lock().finish(entry.chat);
                if let Some(done) = entry.done.take() {
                    let _ = done.send(result);
                }
            }
        }
        self.wake();
    }
}

/// A chat's turn while its message is in flight. Should the send never
/// settle (its sender panicked, or was stopped mid-call), dropping the turn
/// frees the chat, so its next messages are not held for good; the caller
/// hears that the outbox stopped.
struct Turn<'a> {
    inner: &'a Inner,
    chat: ChatId,
    settled: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.inner.lock().finish(self.chat);
            self.inner.wake();
        }
    }
}

/// Starts the sender tasks under the outbox's supervisor, once. They start
/// with the first message (so a messenger can be built outside a runtime).
pub(crate) fn ensure_started(inner: &Arc<Inner>) {
    inner.started.get_or_init(|| {
        // The senders outlive the send that starts them: they get a span of
        // their own rather than staying inside (and holding open) its span.
        let span = tracing::info_span!(parent: None, "telegram.outbox");
        let _in_span = span.enter();
        for _ in 0..inner.config.senders.max(1) {
            let weak = Arc::downgrade(inner);
            let cancel = inner.tasks.cancel_token();
            inner
                .tasks
                .supervise(SENDER_TASK, Backoff::default(), move || {
                    sender(weak.clone(), cancel.clone())
                });
        }
    });
}

/// One sender: takes the next message in turn and sends it, until the
/// outbox is gone or, after `cancel`, nothing is left to send.
async fn sender(inner: Weak<Inner>, cancel: CancellationToken) {
    loop {
        let Some(outbox) = inner.upgrade() else {
            // Nothing will ever be sent again. Returning would have the
            // supervisor restart this loop, so it waits for shutdown.
            cancel.cancelled().await;
            return;
        };
        // Register interest before looking, so no wake-up is missed.
        let notified = outbox.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = outbox.lock().next(&outbox.config);
        match next {
            Next::Send(entry) => outbox.send_one(entry).await,
            Next::Wait(until) => {
                if cancel.is_cancelled() && outbox.lock().queued() == 0 {
                    return;
                }
                let until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(until) => {}
                    _ = cancel.cancelled(), if !cancel.is_cancelled() => {}
                }
            }
        }
    }
}
