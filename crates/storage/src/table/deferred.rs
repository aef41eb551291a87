//! The deferred-updates concern: updates the webhook acknowledged before
//! their answer was sent (a text answer can wait its turn in the outbox
//! for a while, and Telegram's webhook connections must not wait with it).
//! Each is kept, as Telegram sent it, until it is answered, so that a
//! gateway that dies meanwhile leaves it to another.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{BotId, UpdateId};

use crate::Result;

#[async_trait]
pub trait DeferredUpdates: Send + Sync + 'static {
    /// Keeps `body` (the update's JSON) until [`Self::finish_deferred`];
    /// another gateway may take it up once `grace` has passed. Keeping an
    /// update kept already changes nothing.
    async fn defer_update(
        &self,
        bot: BotId,
        update: UpdateId,
        body: &str,
        grace: Duration,
    ) -> Result<()>;
    /// Up to `limit` updates kept past their grace and not finished (their
    /// gateway died or could not answer yet). Each is given `grace` again,
    /// so that two gateways looking at once do not both take it (the
    /// update's own claim makes a second take harmless anyway).
    async fn due_updates(&self, grace: Duration, limit: usize) -> Result<Vec<DeferredUpdate>>;
    /// The update was answered: forget it. Finishing one not kept is fine.
    async fn finish_deferred(&self, bot: BotId, update: UpdateId) -> Result<()>;
}

/// An update kept until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredUpdate {
    pub bot: BotId,
    pub update: UpdateId,
    /// The update's JSON, as Telegram sent it.
    pub body: String,
}
