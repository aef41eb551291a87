//! The leases concern: claims that make a piece of work run at most once to
//! completion, and the exactly-once protocol over them, written once: claim
//! the key; if this caller acquired it, run the work while the lease is
//! renewed; finish the key when the work succeeded, release it when the
//! work failed so a retry can take it at once.
//!
//! Intake (one Telegram update becomes one job) and replies (one prediction
//! gets one answer) both run their work through [`run_once`].

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{AnswerExtra, BotId, PredictionId, UpdateId};
use tracing::warn;

use crate::{Result, StorageError};

/// Leases on pieces of work, which make replies and intake exactly-once.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes a lease on `key` for `lease` unless it is held or done.
    async fn claim(&self, key: ClaimKey, lease: Duration) -> Result<Claim>;
    /// Marks the work done; later claims return [`Claim::Done`]. Needs no
    /// lease: work that was done is done, whoever holds the lease now.
    async fn finish(&self, key: ClaimKey) -> Result<()>;
    /// Gives `lease` up so a retry can claim the work at once. A no-op when
    /// the work is done or the lease is no longer the caller's.
    async fn release(&self, key: ClaimKey, lease: LeaseId) -> Result<()>;
    /// Extends the caller's `lease` to `duration` from now, while its work
    /// is still running. `false` when the lease is no longer the caller's
    /// (it expired and someone else claimed the work, or it was finished).
    async fn renew(&self, key: ClaimKey, lease: LeaseId, duration: Duration) -> Result<bool>;
}

/// Names one holder of a lease. `release` needs it, so a holder whose lease
/// expired (it was slow, and someone else claimed the work since) cannot
/// free the newer holder's lease and let a third start the same work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(uuid::Uuid);

impl LeaseId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.simple().fmt(f)
    }
}

/// Result of trying to take a lease on a piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease and must `finish` or `release` it.
    Acquired(LeaseId),
    /// Someone else holds an unexpired lease.
    InProgress,
    /// The work was finished before: do nothing.
    Done,
}

impl Claim {
    pub fn is_acquired(&self) -> bool {
        matches!(self, Self::Acquired(_))
    }

    /// The lease, when this claim acquired one.
    pub fn lease(&self) -> Option<LeaseId> {
        match self {
            Self::Acquired(lease) => Some(*lease),
            _ => None,
        }
    }
}

/// What a lease guards; each key is claimed at most once to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKey {
    /// Turning a Telegram update into a job (dedupes webhook deliveries).
    /// Keyed by bot and update: update ids are unique only per bot, and a
    /// new token (or a second bot on the same table) starts them again.
    /// Finished claims expire after 24 h, as long as Telegram keeps updates.
    Update(BotId, UpdateId),
    /// Sending the reply for a prediction (dedupes Results reports).
    Reply(PredictionId),
    /// Sending an extra of a prediction's answer (a pressed `Details`,
    /// `Crops` or `Original` button): once, however often it is pressed
    /// and on whichever gateway. Kept as long as the prediction.
    Extra(PredictionId, AnswerExtra),
}

/// What [`run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once<T> {
    /// The work was finished before: it was not run again.
    Done,
    /// Another caller holds an unexpired lease and is running it now.
    Busy,
    /// This caller ran the work, and it succeeded; the key is finished.
    Ran(T),
}

/// Runs `work` at most once to completion for `key`.
///
/// While the work runs its lease is renewed every third of `lease`, so a
/// slow send is not repeated by a retry that arrives meanwhile. When the
/// work fails, the lease is released and the error returned: the caller's
/// retry (a redelivered update, a repeated report) claims it at once.
///
/// Finishing and releasing are best effort: if the table is unreachable
/// right then, the lease simply expires. The work must therefore be safe to
/// repeat after `lease` (a repeated prediction id, a conditional write).
pub async fn run_once<T, E, F>(
    table: &dyn Leases,
    key: ClaimKey,
    lease: Duration,
    work: F,
) -> Result<Once<T>, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<StorageError>,
{
    let holder = match table.claim(key, lease).await? {
        Claim::Done => return Ok(Once::Done),
        Claim::InProgress => return Ok(Once::Busy),
        Claim::Acquired(holder) => holder,
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        never = keep_leased(table, key, holder, lease) => match never {},
    };
    match outcome {
        Ok(value) => {
            if let Err(e) = table.finish(key).await {
                // The work is done and idempotent: a retry after the lease
                // expires repeats it harmlessly.
                warn!(error = %e, ?key, "could not record that the work was done");
            }
            Ok(Once::Ran(value))
        }
        Err(e) => {
            if let Err(release) = table.release(key, holder).await {
                warn!(error = %release, ?key, "could not release the lease; a retry waits for it to expire");
            }
            Err(e)
        }
    }
}

/// Renews the lease every third of its term for as long as it is polled.
/// Never returns: the work beside it decides when this ends.
async fn keep_leased(
    table: &dyn Leases,
    key: ClaimKey,
    holder: LeaseId,
    lease: Duration,
) -> std::convert::Infallible {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match table.renew(key, holder, lease).await {
            Ok(true) => {}
            Ok(false) => warn!(
                ?key,
                "the lease was lost while working; a retry may repeat the work"
            ),
            Err(e) => warn!(error = %e, ?key, "could not renew the lease"),
        }
    }
}
