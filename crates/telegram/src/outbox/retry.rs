//! What a failed send leads to: a 429 makes its chat wait `retry_after`
//! (a notice that would outlive its age is dropped instead, and a message
//! rate limited too often fails as unavailable); a network error or 5xx is
//! tried again after a growing pause, up to `max_attempts` (a notice is
//! not retried); anything else is final.

use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::botapi::{BotApiError, ErrorClass};
use crate::error::{MessengerError, classify};
use crate::observe;
use crate::outbox::message::{OutboxConfig, Sent};
use crate::outbox::queue::{Entry, Kind};

/// How a send ended.
pub(crate) enum Outcome {
    /// The message leaves the outbox; its caller hears this.
    Finished(Result<Sent, MessengerError>),
    /// Try again, not before this time.
    Again(Instant),
}

/// The outcome of `entry`'s send that failed with `e` (already recorded
/// on `span`, the call's span).
pub(crate) fn after_failure(
    entry: &mut Entry,
    e: BotApiError,
    config: &OutboxConfig,
    span: &tracing::Span,
) -> Outcome {
    let method = entry.message.method();
    let now = Instant::now();
    let notice_expires = entry.queued_at + config.notice_max_age;
    match e.class() {
        ErrorClass::RateLimited(after) => {
            observe::rate_limited(method);
            entry.rate_limited += 1;
            if entry.kind == Kind::Notice && now + after > notice_expires {
                observe::dropped("notice", "stale");
                return Outcome::Finished(Ok(None));
            }
            if entry.rate_limited > config.max_rate_limited {
                return Outcome::Finished(Err(MessengerError::Unavailable(e.into())));
            }
            warn!(
                parent: span,
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
                // `classify` keeps a refused token apart from other outages.
                return Outcome::Finished(Err(classify(e)));
            }
            warn!(parent: span, error = %e, attempt = attempts, "Telegram send failed; retrying");
            Outcome::Again(now + Duration::from_millis(500 * u64::from(attempts)))
        }
        ErrorClass::Permanent => Outcome::Finished(Err(classify(e))),
    }
}
