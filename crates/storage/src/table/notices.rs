//! The notices concern: the chat's "still working" message for a slow
//! request, which must never outlive its answer.

use async_trait::async_trait;
use polybot_domain::PredictionId;

use crate::Result;

/// Each prediction's notice, and whether its answer was sent.
#[async_trait]
pub trait Notices: Send + Sync + 'static {
    /// Attaches the chat's "still working" notice to a prediction, unless
    /// its answer was already sent ([`Notices::close_notice`]): `false`
    /// means the caller must remove the notice itself. Together the two
    /// make sure a notice never outlives its answer, whichever of them
    /// comes second and on whichever gateway.
    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool>;
    /// The notice attached to a prediction, and whether the answer was
    /// sent (a strongly consistent read).
    async fn notice(&self, id: PredictionId) -> Result<NoticeState>;
    /// Records that the prediction's answer was sent, and returns the notice
    /// attached until then for the caller to remove. Idempotent.
    async fn close_notice(&self, id: PredictionId) -> Result<Option<i64>>;
}

/// A prediction's notice, as [`Notices::notice`] reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeState {
    /// The "still working" message in the chat, once attached.
    pub message_id: Option<i64>,
    /// The answer was sent ([`Notices::close_notice`]).
    pub answered: bool,
}
