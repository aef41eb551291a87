//! Storage ports and their adapters.
//!
//! The object store, job queue and prediction table are traits; business
//! logic only sees these. Each has an embedded adapter (`local`: files and
//! SQLite under one data folder, surviving restarts) and an AWS adapter
//! (`aws`: S3, SQS, DynamoDB). Errors say whether a retry can help, which
//! decides whether a queue message is retried or dead-lettered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{
    BotId, FailureKind, JobResult, ObjectKey, PredictionId, PredictionRecord, UpdateId,
};

pub mod aws;
pub mod config;
#[cfg(feature = "test-util")]
pub mod contract;
mod lease;
pub mod local;

pub use lease::{Once, run_once};

pub use polybot_domain::BoxError;

/// Errors at the storage boundary. Each says whether a retry can help; the
/// underlying error, when there is one, is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend could not be reached or refused for now: retry later.
    #[error("{backend} is unavailable: {what}{}", because(.source))]
    Unavailable {
        backend: &'static str,
        /// The call that failed and on what, e.g. `reading /data/x.jpg`.
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Stored data that cannot be understood: retrying will not help.
    #[error("invalid data: {what}{}", because(.source))]
    Invalid {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A setting is missing or wrong; `what` names the setting.
    #[error("configuration error: {what}{}", because(.source))]
    Config {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
}

/// The cause's own line after ours, so a log line says both without
/// walking the chain.
fn because(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// A temporary failure of `backend`, caused by `source`.
    pub fn unavailable(
        backend: &'static str,
        what: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Unavailable {
            backend,
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// Data that breaks a rule of ours (no underlying error).
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            source: None,
        }
    }

    /// Data that could not be read, because of `source`.
    pub fn invalid_from(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Invalid {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// A missing or wrong setting (no underlying error).
    pub fn config(what: impl Into<String>) -> Self {
        Self::Config {
            what: what.into(),
            source: None,
        }
    }

    /// A setting that does not work, because of `source`.
    pub fn config_from(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Config {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Whether a put may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    Overwrite,
    /// Fail with [`StorageError::AlreadyExists`] if the key exists: originals
    /// are never overwritten.
    CreateOnly,
}

/// Photos: originals and annotated images.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
        mode: PutMode,
    ) -> Result<()>;
    async fn get(&self, key: &ObjectKey) -> Result<Bytes>;
    /// Readiness: the store answers.
    async fn check(&self) -> Result<()>;
}

/// Message attributes that travel beside a job's body (trace context,
/// schema version). Keys are ASCII; values are short strings.
pub type Attributes = BTreeMap<String, String>;

/// Opaque handle to one receipt of a message, for delete and heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(pub String);

/// One received message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message body as sent (JSON of a `Job`, parsed by the consumer so
    /// that a malformed body is a per-message problem, not a queue error).
    pub body: String,
    pub attributes: Attributes,
    pub receipt: Receipt,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
    /// Seconds since the Unix epoch when the message was first sent.
    pub sent_at: f64,
}

/// Queue depth, for the reporter's scaling metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet deleted or released.
    pub in_flight: u64,
}

/// A queue's own settings, as its backend reports them (`None`: unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays invisible unless extended.
    pub visibility: Option<Duration>,
    /// Receives after which the message moves to the dead-letter queue.
    pub max_receives: Option<u32>,
}

/// A queue with SQS semantics: at-least-once delivery, a visibility timeout
/// after which an undeleted message is delivered again, and (for queues
/// with a redrive policy) a move to a dead-letter queue after N receives.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    async fn send(&self, body: &str, attributes: &Attributes) -> Result<()>;
    /// Waits up to `wait` for at least one message; returns at most `max`.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>>;
    async fn delete(&self, receipt: &Receipt) -> Result<()>;
    /// Sets the message's visibility timeout from now: a heartbeat for a long
    /// job, or `Duration::ZERO` to release it for another worker at once.
    async fn set_visibility(&self, receipt: &Receipt, timeout: Duration) -> Result<()>;
    async fn stats(&self) -> Result<QueueStats>;
    /// Readiness: the queue answers.
    async fn check(&self) -> Result<()>;
    /// The queue's visibility timeout and redrive limit, so that a worker
    /// can check its heartbeat against them at start-up.
    async fn settings(&self) -> Result<QueueSettings> {
        Ok(QueueSettings::default())
    }
    /// The OpenTelemetry `messaging.system` of this queue (`aws_sqs`, or
    /// `local` for the embedded queue), for producer and consumer spans.
    fn messaging_system(&self) -> &'static str;
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
}

/// How long finished update claims are kept.
pub const UPDATE_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long predictions and their reply claims are kept: as long as the
/// images they describe (Terraform's `image_retention_days`, 30 days).
pub const RECORD_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Predictions, their summaries, and the leases that make replies exactly-once.
#[async_trait]
pub trait PredictionTable: Send + Sync + 'static {
    /// Records a new pending prediction. `AlreadyExists` if the id is taken.
    async fn create(&self, record: &PredictionRecord) -> Result<()>;
    /// Stores the result (a detection's summary or a filter's output) and
    /// marks the prediction succeeded, unless a result is already stored (a
    /// redelivered job): returns whether this call stored it.
    async fn save_result(&self, result: &JobResult) -> Result<bool>;
    /// Marks the prediction failed, unless it already succeeded.
    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()>;
    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>>;
    /// Most recent first.
    async fn list_by_chat(
        &self,
        chat: polybot_domain::ChatId,
        limit: usize,
    ) -> Result<Vec<PredictionRecord>>;

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

    /// Attaches the chat's "still working" notice to a prediction, unless
    /// its answer was already sent ([`PredictionTable::close_notice`]):
    /// `false` means the caller must remove the notice itself. Together the
    /// two make sure a notice never outlives its answer, whichever of them
    /// comes second and on whichever gateway.
    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool>;
    /// The notice attached to a prediction, and whether the answer was
    /// sent (a strongly consistent read).
    async fn notice(&self, id: PredictionId) -> Result<NoticeState>;
    /// Records that the prediction's answer was sent, and returns the notice
    /// attached until then for the caller to remove. Idempotent.
    async fn close_notice(&self, id: PredictionId) -> Result<Option<i64>>;
    /// Adds a photo to an album that is still open (idempotent for the
    /// same photo); `TooLate` once the album was closed.
    async fn join_album(
        &self,
        key: &AlbumKey,
        photo: &polybot_domain::AlbumPhoto,
    ) -> Result<AlbumJoin>;
    /// Closes the album if no photo joined it for `quiet`, atomically, so
    /// exactly one caller (on any gateway) gets its photos.
    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose>;

    /// Readiness: the table answers.
    async fn check(&self) -> Result<()>;
}

/// A prediction's notice, as [`PredictionTable::notice`] reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeState {
    /// The "still working" message in the chat, once attached.
    pub message_id: Option<i64>,
    /// The answer was sent ([`PredictionTable::close_notice`]).
    pub answered: bool,
}

/// An album being put together: the chat and Telegram's `media_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlbumKey {
    pub chat: polybot_domain::ChatId,
    pub album: polybot_domain::AlbumId,
}

impl std::fmt::Display for AlbumKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.chat, self.album)
    }
}

/// What [`PredictionTable::join_album`] did with a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbumJoin {
    /// The photo is part of the album (again, for a redelivery).
    Joined,
    /// The album was closed before this photo came: it is on its own.
    TooLate,
}

/// What [`PredictionTable::close_album`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlbumClose {
    /// A photo came less than the quiet window ago: try again after `wait`.
    Open { wait: Duration },
    /// This call closed the album: its photos, by message id. The caller
    /// turns them into one request.
    Closed(Vec<polybot_domain::AlbumPhoto>),
    /// Another caller closed it (or there is no such album).
    AlreadyClosed,
}

/// The three stores a service runs against, whatever the backend.
#[derive(Clone)]
pub struct Backends {
    pub objects: Arc<dyn ObjectStore>,
    /// The jobs queue.
    pub jobs: Arc<dyn JobQueue>,
    /// The jobs queue's dead-letter queue.
    pub dead_letters: Arc<dyn JobQueue>,
    pub table: Arc<dyn PredictionTable>,
}
