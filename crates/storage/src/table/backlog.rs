//! The backlog concern: what queued jobs cost beyond one photo each, so
//! the scaling metric counts a clip by its expected cost. A queue counts
//! messages; a clip's job is worth tens of photos (one detection per
//! sampled frame, and the decoding), so each such job's extra cost is
//! recorded here while it waits or runs, and the reporter adds the sum to
//! the queue's depth.
//!
//! An entry is removed when its job ends; one whose job never ended (a
//! detector killed at the wrong moment, a dead letter) stops counting at
//! its `until`, so a lost removal cannot inflate the metric for ever.

use async_trait::async_trait;
use polybot_domain::PredictionId;

use crate::{Result, StorageError};

/// The extra cost of queued jobs, in photos.
#[async_trait]
pub trait Backlog: Send + Sync + 'static {
    /// Records that the queued job `id` costs `extra` photos more than
    /// one, until it ends or `until` (seconds since the Unix epoch)
    /// passes. Recording the same job again replaces its entry. An
    /// `until` that is not finite is refused ([`StorageError::Invalid`]).
    async fn add_cost(&self, id: PredictionId, extra: u32, until: f64) -> Result<()>;
    /// The job ended (answered, failed or dead-lettered): its cost stops
    /// counting. Idempotent.
    async fn remove_cost(&self, id: PredictionId) -> Result<()>;
    /// The sum of the extra costs whose `until` has not passed.
    async fn extra_cost(&self) -> Result<u64>;
}

/// Refuses an `until` that is not a time (NaN, infinite): no adapter can
/// store it, and one that never passes would count for ever.
pub(crate) fn check_until(until: f64) -> Result<()> {
    if until.is_finite() {
        Ok(())
    } else {
        Err(StorageError::invalid(format!(
            "a backlog entry's until must be a time, not {until}"
        )))
    }
}
