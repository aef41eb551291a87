//! The predictions concern: each request and, once known, its result or
//! failure.

use async_trait::async_trait;
use polybot_domain::{
    ChatId, FailureKind, JobResult, PredictionId, PredictionRecord, PredictionStatus,
};

use crate::Result;

/// Predictions and their results.
#[async_trait]
pub trait Predictions: Send + Sync + 'static {
    /// Records a new pending prediction. `AlreadyExists` if the id is taken.
    async fn create(&self, record: &PredictionRecord) -> Result<()>;
    /// Stores the result (a detection's summary or a filter's output) and
    /// marks the prediction succeeded, unless a result is already stored (a
    /// redelivered job) or the prediction failed (its user was told so: a
    /// late success must not turn the record against the answer sent):
    /// returns whether this call stored it.
    async fn save_result(&self, result: &JobResult) -> Result<bool>;
    /// Marks the prediction failed, unless it already succeeded.
    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()>;
    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>>;
    /// Most recent first.
    async fn list_by_chat(&self, chat: ChatId, limit: usize) -> Result<Vec<PredictionRecord>>;
}

/// How a status is spelled in storage, the same by every adapter.
pub(crate) fn status_text(status: PredictionStatus) -> &'static str {
    match status {
        PredictionStatus::Pending => "pending",
        PredictionStatus::Succeeded => "succeeded",
        PredictionStatus::Failed => "failed",
    }
}

/// The status spelled `text` in storage.
pub(crate) fn parse_status(text: &str) -> Option<PredictionStatus> {
    Some(match text {
        "pending" => PredictionStatus::Pending,
        "succeeded" => PredictionStatus::Succeeded,
        "failed" => PredictionStatus::Failed,
        _ => return None,
    })
}
