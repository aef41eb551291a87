//! Storage ports and their adapters.
//!
//! The object store, job queue and prediction table are traits; business
//! logic only sees these. Each has an embedded adapter (`local`: files and
//! SQLite under one data folder, surviving restarts) and an AWS adapter
//! (`aws`: S3, SQS, DynamoDB). Errors say whether a retry can help, which
//! decides whether a queue message is retried or dead-lettered.
//!
//! # The table's concerns
//!
//! One table (a SQLite database, a DynamoDB table) serves several concerns,
//! each its own port so that a component asks only for what it uses:
//!
//! | trait | what for | methods |
//! |---|---|---|
//! | [`Predictions`] | requests and their results | `create`, `save_result`, `save_failure`, `set_answer_file`, `get`, `list_by_chat` |
//! | [`Leases`] | exactly-once work ([`run_once`]) | `claim`, `finish`, `release`, `renew` |
//! | [`Notices`] | the "still working" message of a slow request | `attach_notice`, `notice`, `close_notice` |
//! | [`Albums`] | photos sent together, put together | `join_album`, `close_album`, `finish_album`, `pending_albums` |
//! | [`SentAnswers`] | which bot message answered which photo (for replies to answers) | `record_answer`, `answered_photo` |
//! | [`Windows`] | how often something happened this window (admission limits across gateways) | `count_in_window` |
//! | [`DeferredUpdates`] | updates acknowledged before their answer was sent, kept until answered | `defer_update`, `due_updates`, `finish_deferred` |
//! | [`Preferences`] | each chat's settings, and the model's class names | `chat_settings`, `change_chat_settings`, `publish_model_classes`, `model_classes` |
//! | [`Backlog`] | what queued jobs cost beyond one photo each (a clip's frames), for the scaling metric | `add_cost`, `remove_cost`, `extra_cost` |
//! | [`Erasure`] | forgetting a chat (`/forget`), and what is past its retention | `erase_chat`, `sweep_expired` |
//!
//! # One retention clock
//!
//! Records, their claims, notices and answers are kept for the configured
//! [`Retention`] (`--retention-days`, `POLYBOT_RETENTION_DAYS`, default
//! 30 days), which [`Backends::retention`] carries: DynamoDB's TTL
//! attribute and the embedded tables' expiries are set from it. The images
//! bucket's lifecycle rule expires pictures on AWS; on the embedded
//! backend [`Backends::sweep_expired`], called now and then, deletes
//! pictures and records past it.
//!
//! # Forgetting a chat
//!
//! [`Backends::erase_chat`] erases the table's items of a chat
//! ([`Erasure::erase_chat`]), then its pictures ([`ObjectStore::erase_chat`],
//! every version on a versioned bucket). The table goes first: a job of the
//! chat still running then finds its prediction gone when it saves its
//! result ([`Saved::Gone`]) and deletes the pictures it stored itself
//! ([`ObjectStore::erase`]), whichever side of the pictures' erasure it
//! stored them on.//!
//! [`PredictionTable`] is all of them at once plus the table's readiness
//! `check`; [`Backends::table`] is one. A component that needs one concern
//! takes the narrow trait: `&dyn Leases` (as [`run_once`] does) or
//! `Arc<dyn Notices>`, which an `Arc<dyn PredictionTable>` coerces to
//! (trait upcasting).
//!
//! # Adding a concern (as per-chat settings were)
//!
//! A new store in the table, say [`Preferences`], is one file per side plus
//! the lines that list it:
//!
//! 1. `src/table/settings.rs`: the trait (`Send + Sync + 'static`,
//!    `#[async_trait]`) and its types; in `src/table/mod.rs` a `mod` and a
//!    `pub use` line, and the trait added to [`PredictionTable`]'s
//!    supertraits.
//! 2. `src/local/table/settings.rs`: `impl Preferences for LocalTable`; a
//!    `mod` line in `src/local/table/mod.rs`, and its SQL table in the
//!    `SCHEMA` of `src/local/sqlite.rs` (`CREATE TABLE IF NOT EXISTS`, so
//!    existing data folders get it when they are next opened).
//! 3. `src/aws/dynamo/settings.rs`: `impl Preferences for DynamoTable`,
//!    with items under a `pk` prefix of its own (`settings#<chat>`); a `mod`
//!    line and a row in the item table of `src/aws/dynamo/mod.rs`. The
//!    single-table design needs no new AWS resource, IAM permission or
//!    Terraform.
//! 4. `src/contract/settings.rs`: the behaviour both adapters must show; a
//!    `mod` line and a call in `contract::prediction_table` (which
//!    `tests/local.rs` and `tests/aws.rs` already run against both
//!    backends).
//!
//! Callers reach it through [`Backends::table`] unchanged. The only other
//! file is any test double that wraps a whole table and so implements every
//! concern (gateway's `tests/intake.rs`): it gets one delegating `impl`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{ChatId, ObjectKey};

pub mod aws;
pub mod config;
#[cfg(feature = "test-util")]
pub mod contract;
pub mod local;
mod retention;
mod table;

pub use retention::{DEFAULT_RETENTION, Retention, RetentionError};
pub use table::*;

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
    /// Deletes every object of `chat` (every key under `<chat>/`, see
    /// [`ObjectKey`]), with every version a versioned bucket keeps of it
    /// and every delete marker, and returns how many objects there were.
    /// Idempotent: a second call returns 0.
    async fn erase_chat(&self, chat: ChatId) -> Result<u64>;
    /// Deletes `keys` (every version of each), returning how many of them
    /// existed. Keys that do not exist are fine.
    async fn erase(&self, keys: &[ObjectKey]) -> Result<u64>;
    /// Deletes the objects written longer than the retention before `now`,
    /// returning how many, for a store that does not expire objects itself
    /// (the embedded one). S3's lifecycle rule does this on AWS, where
    /// this does nothing.
    async fn sweep_expired(&self, now: SystemTime) -> Result<u64>;
}

/// Message attributes that travel beside a job's body (trace context,
/// schema version). Keys are ASCII; values are short strings.
pub type Attributes = BTreeMap<String, String>;

/// Whom a queued message is for, so that the queue serves tenants fairly:
/// one chat's hundred photos do not hold another chat's one (SQS's
/// `MessageGroupId` on a standard queue, which makes it a fair queue).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// The tenant of a chat's jobs.
    pub fn chat(chat: ChatId) -> Self {
        Self(format!("chat:{}", chat.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
    /// Sends a message on behalf of `tenant`: while one tenant has a
    /// backlog, the others' messages are received first (SQS fair queues).
    /// A message without a tenant is a tenant of its own.
    async fn send_for(
        &self,
        tenant: Option<&Tenant>,
        body: &str,
        attributes: &Attributes,
    ) -> Result<()>;
    /// Sends a message that belongs to no tenant.
    async fn send(&self, body: &str, attributes: &Attributes) -> Result<()> {
        self.send_for(None, body, attributes).await
    }
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

/// The three stores a service runs against, whatever the backend.
#[derive(Clone)]
pub struct Backends {
    pub objects: Arc<dyn ObjectStore>,
    /// The jobs queue.
    pub jobs: Arc<dyn JobQueue>,
    /// The jobs queue's dead-letter queue.
    pub dead_letters: Arc<dyn JobQueue>,
    pub table: Arc<dyn PredictionTable>,
    /// The retention the table and the object store were opened with
    /// (read it with [`Backends::retention`]). Public so that tests can
    /// wrap one store and keep the rest (`Backends { table, ..b }`);
    /// changing it changes neither store.
    pub retention: Retention,
}

/// What [`Backends::erase_chat`] erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Prediction records (the chat's requests and their results).
    pub results: u64,
    /// Pictures: originals and everything made from them.
    pub pictures: u64,
}

/// What [`Backends::sweep_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub records: u64,
    pub pictures: u64,
}

impl Backends {
    /// How long records (and, on the embedded backend, pictures) are kept.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Forgets `chat` (`/forget`): every item the table holds of it, then
    /// every picture of it. Idempotent; a second call erases nothing.
    pub async fn erase_chat(&self, chat: ChatId) -> Result<Erased> {
        // The table first: a job of the chat that is still running stores
        // its pictures, then finds its record gone and deletes them. The
        // other order would leave the pictures of a job that saved its
        // result between the two erasures.
        let results = self.table.erase_chat(chat).await?;
        let pictures = self.objects.erase_chat(chat).await?;
        Ok(Erased { results, pictures })
    }

    /// Deletes what is past the retention where no TTL or lifecycle rule
    /// does it (the embedded backend: call it now and then, say hourly);
    /// on AWS it does nothing.
    pub async fn sweep_expired(&self, now: SystemTime) -> Result<Swept> {
        let records = self.table.sweep_expired(now).await?;
        let pictures = self.objects.sweep_expired(now).await?;
        Ok(Swept { records, pictures })
    }
}
