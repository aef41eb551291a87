//! The exactly-once protocol over [`PredictionTable`] leases, written once:
//! claim the key; if this caller acquired it, run the work while the lease
//! is renewed; finish the key when the work succeeded, release it when the
//! work failed so a retry can take it at once.
//!
//! Intake (one Telegram update becomes one job) and replies (one prediction
//! gets one answer) both run their work through [`run_once`].

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::{Claim, ClaimKey, LeaseId, PredictionTable, StorageError};

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
    table: &dyn PredictionTable,
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
    table: &dyn PredictionTable,
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
