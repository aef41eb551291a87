//! Text answers off the webhook's path. An update answered with text
//! (`/start`, `/help`, a caption we cannot carry out, a message we cannot
//! analyse) can wait its turn in the outbox for a while (a group gets a
//! message every 3 s), and Telegram's webhook connections, 40 at most,
//! must not wait with it. So the webhook keeps the update in the shared
//! table, answers 200 at once, and the answer is sent from a task of its
//! own; the update is forgotten once answered. If the gateway dies first,
//! any gateway's sweep ([`crate::deferred`]) takes it up after
//! [`DEFERRED_GRACE`]; the update's own claim keeps it answered once.

use std::time::Duration;

use polybot_domain::Lang;
use polybot_storage::DeferredUpdate;
use tracing::{info, warn};

use super::{Intake, IntakeError};
use crate::inbound::Inbound;

/// How long a gateway has to answer an update it deferred before another
/// may take it up: longer than an answer can wait in the outbox.
pub const DEFERRED_GRACE: Duration = Duration::from_secs(60);

impl Inbound {
    /// Whether the update is answered with text only, and so may be
    /// answered after the webhook returned.
    pub fn answers_with_text(&self) -> bool {
        matches!(
            self,
            Self::Command { .. }
                | Self::Settings { .. }
                | Self::Button { .. }
                | Self::Refused { .. }
                | Self::Other { .. }
        )
    }
}

impl Intake {
    /// Keeps `inbound` (Telegram's `body`) until it is answered.
    pub async fn defer(&self, inbound: &Inbound, body: &[u8]) -> Result<(), IntakeError> {
        // It was read as JSON, so it is UTF-8.
        let body = String::from_utf8_lossy(body);
        self.backends
            .table
            .defer_update(self.bot, inbound.update_id(), &body, DEFERRED_GRACE)
            .await?;
        Ok(())
    }

    /// Answers a deferred update, then forgets it; if it cannot be
    /// answered yet, it is left for a later sweep.
    pub async fn answer_deferred(&self, inbound: Inbound, sender: Option<Lang>) {
        let update = inbound.update_id();
        match self.handle_in(inbound, sender).await {
            Ok(handled) => {
                info!(
                    update_id = update.0,
                    outcome = handled.as_str(),
                    "deferred update handled"
                );
                if let Err(e) = self.backends.table.finish_deferred(self.bot, update).await {
                    // Its claim is finished: a sweep finds it a duplicate.
                    warn!(update_id = update.0, error = %e, "could not forget a deferred update");
                }
            }
            Err(e) => {
                warn!(update_id = update.0, error = %e, retry_in = ?DEFERRED_GRACE,
                    "deferred update not handled yet; a sweep takes it up again");
            }
        }
    }

    /// Up to `limit` deferred updates past their grace, taken for another
    /// grace.
    pub async fn due_deferred(&self, limit: usize) -> Result<Vec<DeferredUpdate>, IntakeError> {
        let due = self
            .backends
            .table
            .due_updates(DEFERRED_GRACE, limit)
            .await?;
        // Another bot's updates (a table shared by two bots) are not ours.
        Ok(due.into_iter().filter(|d| d.bot == self.bot).collect())
    }
}
