//! The erasure concern: what the table forgets, at a chat's request
//! (`/forget`: everything of the chat at once) and by the retention clock
//! (on the embedded backend, which has no TTL of its own to do it).

use std::time::SystemTime;

use async_trait::async_trait;
use polybot_domain::ChatId;

use crate::Result;

/// Forgetting a chat, and what is past its retention.
#[async_trait]
pub trait Erasure: Send + Sync + 'static {
    /// Deletes everything the table holds of `chat`: its prediction
    /// records, their reply and extra claims and notices, the answers the
    /// bot sent in it, its albums (finished or not), its deferred updates
    /// and its settings. Returns how many prediction records were erased,
    /// so a second call finds nothing and returns 0.
    ///
    /// A job of the chat still running finds its prediction gone
    /// ([`crate::Saved::Gone`]) and stores nothing; work of the chat that
    /// starts after the call (a new photo) is new and kept.
    async fn erase_chat(&self, chat: ChatId) -> Result<u64>;
    /// Deletes the prediction records (and other items) whose retention
    /// ran out before `now`, returning how many prediction records. For a
    /// table that expires items itself (DynamoDB's TTL) this does nothing.
    async fn sweep_expired(&self, now: SystemTime) -> Result<u64>;
}
