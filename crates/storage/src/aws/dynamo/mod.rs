//! The prediction table on one DynamoDB table (single-table design), one
//! file per concern: [`Predictions`] (`predictions.rs`), [`Leases`]
//! (`leases.rs`), [`Notices`] (`notices.rs`), [`Albums`] (`albums.rs`),
//! [`SentAnswers`] (`answers.rs`), [`Windows`] (`windows.rs`),
//! [`DeferredUpdates`] (`deferred.rs`), [`Preferences`] (`settings.rs`),
//! [`Backlog`] (`backlog.rs`) and [`Erasure`] (`erasure.rs`); this file
//! holds the table itself and what they share.
//!
//! Items, all under the string hash key `pk`:
//!
//! | `pk` | attributes |
//! |---|---|
//! | `prediction#<uuid>` | `prediction_id` (S), `chat_id` (N), `status` (S: pending, succeeded, failed), `original_key` (S), `kind` (S, what the caption asked for as JSON; absent: detect), `summary` (S, the result as JSON once stored: a detection's course-format summary or a filter's output), `failure` (S, the failure kind), `answer_file_id` (S, Telegram's `file_id` of the picture the bot answered with, once recorded), `created_at`, `updated_at` (N, epoch seconds), `time` (N, = `created_at`, the GSI's sort key), `expires_at` (N) |
//! | `update#<bot>#<update_id>` | `done` (BOOL), `lease_until` (N), `expires_at` (N, epoch seconds: the TTL attribute) |
//! | `reply#<uuid>`, `extra#<uuid>#<extra>` | `done` (BOOL), `lease_until` (N), `holder` (S), `expires_at` (N) |
//! | `album#<chat>:<media_group_id>` | `photos` (SS, each photo as JSON), `last_joined` (N, epoch ms), `closed` (BOOL, once first claimed), `claimed_until` (N, epoch ms: a closer's claim), `finished` (BOOL, once it became its request), `chat_id` (N) and `time` (N): 0 and `last_joined` while not finished, then `<chat>.5` and the finish (epoch seconds), `expires_at` (N) |
//! | `notice#<uuid>` | `message_id` (N, the chat's "still working" notice), `answered` (BOOL), `expires_at` (N) |
//! | `answer#<chat>:<message_id>` | `prediction_id` (S), `original_key` (S, the photo the bot's answer was made from), `chat_id` (N, `<chat>.5`), `time` (N, epoch seconds when recorded), `expires_at` (N) |
//! | `deferred#<bot>#<update_id>` | `body` (S, the update's JSON), `bot_id`, `update_id` (N), `chat_id` (N, 0) and `time` (N, epoch ms when another gateway may take it up), `expires_at` (N); deleted once answered |
//! | `window#<what>@<start ms>` | `members` (SS, the window's counted members, added to with `ADD`), `expires_at` (N, a window after it ends) |
//! | `settings#<chat>` | `settings` (S, the chat's settings as JSON; `{}` the defaults), `version` (N, raised by each change, which is conditional on it); no `expires_at`: kept until changed |
//! | `model#classes` | `classes` (S, the model's class names as a JSON array, in its order), `updated_at` (N, epoch seconds); no `expires_at` |
//! | `backlog#costs` | one attribute per queued job with an extra cost, `c_<prediction id, 32 hex digits>` (M: `extra` N, in photos; `until` N, epoch seconds); the one item of its kind; no `expires_at` |
//!
//! The GSI `chat_id-time-index` (hash `chat_id` N, range `time` N) serves
//! `list_by_chat`; prediction items carry those attributes under their
//! chat, and albums not yet finished and deferred updates under chat 0 (no
//! Telegram chat has that id), where `pending_albums` and `due_updates`
//! find them (each filtering by its `pk` prefix). A chat's answers and
//! finished albums sit under its side key `<chat>.5` (no chat id has a
//! fraction, so `list_by_chat`'s query of `<chat>` never meets them, in an
//! older build either), where erasing the chat finds them. Other items
//! stay out of the index.
//!
//! Every "only if" is a `ConditionExpression`, evaluated by DynamoDB
//! atomically with the write, so two workers handling a redelivered job
//! cannot both store a summary or both take a lease. When a condition fails
//! the item is read back (strongly consistent) to tell the trait's outcomes
//! apart, e.g. "already stored" from "no such prediction". A settings
//! change is conditional on the `version` it read; when that fails, another
//! change came first, so it reads again and reapplies its own.
//!
//! Leases compare `lease_until` with the writer's clock, so they assume the
//! hosts' clocks agree to well within a lease (NTP on EC2 does).
//!
//! Finished update claims get `expires_at` = finish time + 24 h
//! ([`crate::UPDATE_DEDUPE_TTL`]); DynamoDB's TTL deletes them some time
//! after that (not exactly then: an expired item may linger, which only
//! makes deduplication last longer). An update claim that is acquired but
//! never finished (the gateway crashed) gets the same TTL from its lease, so
//! it does not stay forever. Predictions, reply and extra claims, notices
//! and answers expire the configured [`crate::Retention`] (default 30
//! days, `POLYBOT_RETENTION_DAYS`) after they are written, as the images
//! do in the bucket (its lifecycle rule).

//!
//! [`Predictions`]: crate::Predictions
//! [`Leases`]: crate::Leases
//! [`Notices`]: crate::Notices
//! [`Albums`]: crate::Albums
//! [`SentAnswers`]: crate::SentAnswers
//! [`Windows`]: crate::Windows
//! [`DeferredUpdates`]: crate::DeferredUpdates
//! [`Preferences`]: crate::Preferences
//! [`Backlog`]: crate::Backlog
//! [`Erasure`]: crate::Erasure

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType};

use polybot_domain::ChatId;

use super::error::{classify, service_code};
use crate::{PredictionTable, Result, Retention, StorageError};

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

pub use answers::answer_pk;
pub use backlog::BACKLOG_PK;
pub use leases::claim_pk;
pub use notices::notice_pk;
pub use predictions::prediction_pk;
pub use settings::{MODEL_CLASSES_PK, settings_pk};

const BACKEND: &str = "DynamoDB";
/// The GSI that `list_by_chat` queries; must exist on the table.
pub const CHAT_INDEX: &str = "chat_id-time-index";
/// The TTL attribute that must be enabled on the table.
pub const TTL_ATTRIBUTE: &str = "expires_at";
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

type Item = HashMap<String, AttributeValue>;

/// Predictions and claims in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    /// How long records, claims, notices and answers are kept (their TTL).
    retention: Retention,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Numbers go to DynamoDB as decimal text; Rust's `Display` for floats
/// never uses exponent notation, which DynamoDB would also accept.
fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The TTL value (`expires_at`, whole epoch seconds) of an item kept for
/// `keep` from `since` (epoch seconds).
fn expiry(since: f64, keep: Duration) -> AttributeValue {
    n((since + keep.as_secs_f64()).ceil() as i64)
}

/// The chat index's `chat_id` of a chat's items that are not predictions
/// (answers, finished albums): `<chat>.5`. No chat id has a fraction, so
/// a query of the chat's predictions (`chat_id` = `<chat>`, in this build
/// or an older one) never meets them, and erasing the chat finds them with
/// one query of their own.
fn side_chat_id(chat: ChatId) -> AttributeValue {
    AttributeValue::N(format!("{chat}.5"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A boolean attribute; absent counts as `false`.
fn get_bool(item: Option<&Item>, name: &str) -> bool {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

impl DynamoTable {
    /// The table `table`, keeping records for [`crate::DEFAULT_RETENTION`]
    /// unless [`DynamoTable::with_retention`] says otherwise.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: Retention::default(),
        }
    }

    /// The same table, writing `retention` as the records' TTL.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The TTL value of a record written at `since` (epoch seconds).
    fn record_expiry(&self, since: f64) -> AttributeValue {
        expiry(since, self.retention.as_duration())
    }

    /// A table with a client of its own, for callers that need no other
    /// AWS service (the reporter, reading the backlog).
    pub fn from_config(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Start-up check: the table exists, has the hash key `pk` (S) and the
    /// GSI `chat_id-time-index`. `setting` names where the table name came
    /// from (e.g. `POLYBOT_TABLE`) for the error.
    pub async fn verify(&self, setting: &str) -> Result<()> {
        if self.table.is_empty() {
            return Err(StorageError::config(format!("{setting} is not set")));
        }
        let out = self.describe().await.map_err(|e| {
            super::startup_error(
                setting,
                &self.table,
                "the table does not exist or is not accessible",
                self.client.config().region(),
                e,
            )
        })?;
        let wrong =
            |what: String| StorageError::config(format!("{setting}={}: {what}", self.table));
        let Some(desc) = out.table else {
            return Err(wrong("DescribeTable returned no description".into()));
        };
        let hash_is_pk = desc
            .key_schema()
            .iter()
            .any(|k| k.key_type == KeyType::Hash && k.attribute_name == "pk");
        let pk_is_string = desc
            .attribute_definitions()
            .iter()
            .any(|a| a.attribute_name == "pk" && a.attribute_type == ScalarAttributeType::S);
        if !hash_is_pk || !pk_is_string {
            return Err(wrong("the table's hash key must be `pk` of type S".into()));
        }
        if !desc
            .global_secondary_indexes()
            .iter()
            .any(|g| g.index_name() == Some(CHAT_INDEX))
        {
            return Err(wrong(format!(
                "the table has no global secondary index {CHAT_INDEX} (hash chat_id N, range time N)"
            )));
        }
        Ok(())
    }

    async fn describe(&self) -> Result<DescribeTableOutput> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| classify(BACKEND, &format!("DescribeTable {}", self.table), e))
    }

    /// A `map_err` adapter naming the call and the item.
    fn err<E>(
        &self,
        call: &str,
        key: &str,
    ) -> impl FnOnce(SdkError<E, HttpResponse>) -> StorageError + use<E>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let what = format!("{call} {} {key}", self.table);
        move |e| classify(BACKEND, &what, e)
    }

    async fn get_item(&self, pk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(self.err("GetItem", pk))?;
        Ok(out.item)
    }

    /// An UpdateItem of the item `pk`, for the caller to complete.
    fn update(&self, pk: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
    }

    /// Awaits a conditional write (`call` on the item `pk`): `None` when its
    /// condition failed, which each caller reads as an outcome of its own.
    async fn conditional<T, E>(
        &self,
        call: &str,
        pk: &str,
        sent: impl Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<Option<T>>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match sent.await {
            Ok(out) => Ok(Some(out)),
            Err(e) if service_code(&e) == Some(CONDITION_FAILED) => Ok(None),
            Err(e) => Err(self.err(call, pk)(e)),
        }
    }
}

#[async_trait]
impl PredictionTable for DynamoTable {
    async fn check(&self) -> Result<()> {
        self.describe().await.map(drop)
    }
}
