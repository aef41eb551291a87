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
    /// late success must not turn the record against the answer sent).
    /// Never creates a record: a prediction that is gone (its chat was
    /// erased) is [`Saved::Gone`].
    async fn save_result(&self, result: &JobResult) -> Result<Saved>;
    /// Marks the prediction failed, unless it already succeeded.
    /// [`crate::StorageError::NotFound`] (permanent) when there is no such
    /// prediction (its chat was erased); never creates a record.
    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()>;
    /// Records the Telegram `file_id` of the picture the bot answered the
    /// prediction with, for `/history` to show it again without storing
    /// it twice. A prediction that is gone (erased, expired) is left gone:
    /// that is a success, and no record is created.
    async fn set_answer_file(&self, id: PredictionId, file_id: &str) -> Result<()>;
    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>>;
    /// A chat's predictions created within `window`, most recent first
    /// (equal times in an order of the adapter's own), starting after `after`
    /// (the last record of an earlier call, see [`ListCursor::after`]), at
    /// most `limit`. Resuming from a cursor neither repeats nor skips a
    /// prediction that existed through both calls.
    async fn chat_predictions(
        &self,
        chat: ChatId,
        window: TimeWindow,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<Vec<PredictionRecord>>;
    /// A chat's `limit` most recent predictions.
    async fn list_by_chat(&self, chat: ChatId, limit: usize) -> Result<Vec<PredictionRecord>> {
        self.chat_predictions(chat, TimeWindow::ALL, None, limit)
            .await
    }
}

/// Creation times a listing keeps, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeWindow {
    /// Created at or after this (inclusive); `None`: from the first.
    pub from: Option<f64>,
    /// Created before this (exclusive); `None`: to the last.
    pub until: Option<f64>,
}

impl TimeWindow {
    /// Every creation time.
    pub const ALL: Self = Self {
        from: None,
        until: None,
    };

    /// Whether a prediction created at `created_at` is in the window.
    pub fn contains(&self, created_at: f64) -> bool {
        self.from.is_none_or(|from| created_at >= from)
            && self.until.is_none_or(|until| created_at < until)
    }
}

/// Where a listing of a chat's predictions resumes: just after the
/// prediction created at `created_at` with id `id`, in the listing's order
/// (time descending; equal times by id descending on SQLite, by DynamoDB's
/// own order in the index, where the id, part of the item's key, still
/// places the cursor exactly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListCursor {
    pub created_at: f64,
    pub id: PredictionId,
}

impl ListCursor {
    /// The cursor that resumes after `record`.
    pub fn after(record: &PredictionRecord) -> Self {
        Self {
            created_at: record.created_at,
            id: record.prediction_id,
        }
    }
}

/// What [`Predictions::save_result`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// This call stored the result: the prediction succeeded.
    Stored,
    /// The prediction already had its outcome (a result stored by an
    /// earlier delivery of the job, or a failure its user was told of):
    /// nothing changed.
    Unchanged,
    /// There is no such prediction: its chat was erased (`/forget`) while
    /// the job ran, or it expired. Nothing was stored, and nothing should
    /// be: the job's pictures are to be deleted and the job not answered.
    Gone,
}

impl Saved {
    /// Whether this call stored the result.
    pub fn is_stored(self) -> bool {
        self == Self::Stored
    }
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
