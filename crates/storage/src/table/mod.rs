//! The prediction table's ports, one trait per concern it serves (see the
//! crate documentation for the list and how to add one), and
//! [`PredictionTable`], all of them on one table.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

mod albums;
mod answers;
mod backlog;
mod deferred;
mod erasure;
mod leases;
mod notices;
mod predictions;
mod settings;
mod windows;

pub use albums::{AlbumClose, AlbumJoin, AlbumKey, Albums};
pub use answers::{AnsweredPhoto, SentAnswers};
pub use backlog::Backlog;
pub(crate) use backlog::check_until;
pub(crate) use deferred::chat_of_update;
pub use deferred::{DeferredUpdate, DeferredUpdates};
pub use erasure::Erasure;
pub use leases::{Claim, ClaimKey, LeaseId, Leases, Once, run_once};
pub use notices::{NoticeState, Notices};
pub use predictions::{ListCursor, Predictions, Saved, TimeWindow};
pub(crate) use predictions::{parse_status, status_text};
pub use settings::Preferences;
pub(crate) use windows::window_bounds;
pub use windows::{WindowKey, Windows};

/// How long finished update claims (and albums being put together) are
/// kept.
pub const UPDATE_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Every concern of the table, on one table: what [`crate::Backends`]
/// carries. Upcast an `Arc<dyn PredictionTable>` to the one concern a
/// component needs:
///
/// ```
/// use std::sync::Arc;
/// use polybot_storage::{Notices, PredictionTable};
///
/// fn notices_only(table: Arc<dyn PredictionTable>) -> Arc<dyn Notices> {
///     table
/// }
/// ```
#[async_trait]
pub trait PredictionTable:
    Predictions
    + Leases
    + Notices
    + Albums
    + SentAnswers
    + Windows
    + DeferredUpdates
    + Preferences
    + Backlog
    + Erasure
{
    /// Readiness: the table answers. One check serves every concern, since
    /// they all live in the one table.
    async fn check(&self) -> Result<()>;
}
