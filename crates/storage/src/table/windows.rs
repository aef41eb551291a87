//! The windows concern: how often something happened in the current
//! fixed time window (a user's photos this minute, the "please wait"
//! messages a chat got), counted in the shared table so that a limit holds
//! across every gateway.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::ChatId;

use crate::Result;

/// Counters per fixed window of time. A window starts at a multiple of its
/// length since the Unix epoch; its counter is forgotten some time after it
/// ends.
#[async_trait]
pub trait Windows: Send + Sync + 'static {
    /// Counts `member` (e.g. an update) under `key` in the current window
    /// of length `window`, once however often it is counted (a redelivered
    /// update is the same update), and returns how many distinct members
    /// the window holds, this one included. Atomic: two gateways counting
    /// different members at once get different counts.
    async fn count_in_window(&self, key: &WindowKey, member: &str, window: Duration)
    -> Result<u64>;
}

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKey {
    /// Photos a Telegram user sent (an album's photos each count).
    UserPhotos(i64),
    /// "Please wait" messages a chat was sent.
    WaitNotices(ChatId),
}

impl std::fmt::Display for WindowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPhotos(user) => write!(f, "user-photos:{user}"),
            Self::WaitNotices(chat) => write!(f, "wait-notices:{chat}"),
        }
    }
}

/// The start of the window of length `window` that `now_ms` falls in, in
/// epoch milliseconds, and when its counter may be forgotten.
pub(crate) fn window_bounds(now_ms: i64, window: Duration) -> (i64, i64) {
    let length = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let start = now_ms - now_ms.rem_euclid(length);
    (start, start.saturating_add(length.saturating_mul(2)))
}
