//! [`PredictionTable`] on one DynamoDB table (single-table design).
//!
//! Items, all under the string hash key `pk`:
//!
//! | `pk` | attributes |
//! |---|---|
//! | `prediction#<uuid>` | `prediction_id` (S), `chat_id` (N), `status` (S: pending, succeeded, failed), `original_key` (S), `kind` (S, what the caption asked for as JSON; absent: detect), `summary` (S, the result as JSON once stored: a detection's course-format summary or a filter's output), `failure` (S, the failure kind), `created_at`, `updated_at` (N, epoch seconds), `time` (N, = `created_at`, the GSI's sort key), `expires_at` (N) |
//! | `update#<update_id>` | `done` (BOOL), `lease_until` (N), `expires_at` (N, epoch seconds: the TTL attribute) |
//! | `reply#<uuid>` | `done` (BOOL), `lease_until` (N), `expires_at` (N) |
//! | `album#<chat>:<media_group_id>` | `photos` (SS, each photo as JSON), `last_joined` (N, epoch ms), `closed` (BOOL, once closed), `expires_at` (N) |
//! | `notice#<uuid>` | `message_id` (N, the chat's "still working" notice), `answered` (BOOL), `expires_at` (N) |
//!
//! The GSI `chat_id-time-index` (hash `chat_id` N, range `time` N) serves
//! `list_by_chat`; only prediction items carry those attributes, so claim
//! items stay out of the index.
//!
//! Every "only if" is a `ConditionExpression`, evaluated by DynamoDB
//! atomically with the write, so two workers handling a redelivered job
//! cannot both store a summary or both take a lease. When a condition fails
//! the item is read back (strongly consistent) to tell the trait's outcomes
//! apart, e.g. "already stored" from "no such prediction".
//!
//! Leases compare `lease_until` with the writer's clock, so they assume the
//! hosts' clocks agree to well within a lease (NTP on EC2 does).
//!
//! Finished update claims get `expires_at` = finish time + 24 h
//! ([`crate::UPDATE_DEDUPE_TTL`]); DynamoDB's TTL deletes them some time
//! after that (not exactly then: an expired item may linger, which only
//! makes deduplication last longer). An update claim that is acquired but
//! never finished (the gateway crashed) gets the same TTL from its lease, so
//! it does not stay forever. Predictions and reply claims expire
//! [`crate::RECORD_RETENTION`] (30 days) after they are written, as the
//! images do in the bucket.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType};
use polybot_domain::{
    AlbumPhoto, ChatId, FailureKind, JobKind, JobResult, ObjectKey, PredictionId, PredictionRecord,
    PredictionStatus, now_epoch,
};

use super::error::{classify, service_code};
use crate::{
    AlbumClose, AlbumJoin, AlbumKey, Claim, ClaimKey, LeaseId, NoticeState, PredictionTable,
    RECORD_RETENTION, Result, StorageError, UPDATE_DEDUPE_TTL,
};

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
}

/// The hash key of a prediction's item.
pub fn prediction_pk(id: PredictionId) -> String {
    format!("prediction#{id}")
}

/// The hash key of a claim's item.
pub fn claim_pk(key: ClaimKey) -> String {
    match key {
        ClaimKey::Update(bot, u) => format!("update#{bot}#{u}"),
        ClaimKey::Reply(p) => format!("reply#{p}"),
    }
}

/// The hash key of a prediction's notice item.
pub fn notice_pk(id: PredictionId) -> String {
    format!("notice#{id}")
}

fn message_id_of(item: Option<&Item>) -> Option<i64> {
    item.and_then(|i| i.get("message_id"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn album_pk(key: &AlbumKey) -> String {
    format!("album#{key}")
}

/// Milliseconds since the Unix epoch: an album's quiet window is short.
fn now_millis() -> i64 {
    (now_epoch() * 1000.0) as i64
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Numbers go to DynamoDB as decimal text; Rust's `Display` for floats
/// never uses exponent notation, which DynamoDB would also accept.
fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn status_str(s: PredictionStatus) -> &'static str {
    match s {
        PredictionStatus::Pending => "pending",
        PredictionStatus::Succeeded => "succeeded",
        PredictionStatus::Failed => "failed",
    }
}

fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    service_code(err) == Some(CONDITION_FAILED)
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
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
        let out = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return Err(super::startup_error(
                    setting,
                    &self.table,
                    "the table does not exist or is not accessible",
                    self.client.config().region(),
                    classify(BACKEND, &format!("DescribeTable {}", self.table), e),
                ));
            }
        };
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

    /// A `map_err` adapter naming the call and the item.
    fn err<E>(
        &self,
        call: &str,
        key: &str,
    ) -> impl FnOnce(
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> StorageError
    + use<E>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
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

    /// After a failed condition on a prediction: `Ok(())` if the item
    /// exists (the condition was about its state), `NotFound` otherwise.
    async fn require_prediction(&self, id: PredictionId) -> Result<()> {
        match self.get_item(&prediction_pk(id)).await? {
            Some(_) => Ok(()),
            None => Err(StorageError::NotFound(format!("prediction {id}"))),
        }
    }
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

fn record_from_item(item: &Item) -> Result<PredictionRecord> {
    let pk = get_s(item, "pk").unwrap_or("?");
    let bad = |what: &str| StorageError::invalid(format!("item {pk}: {what}"));
    let prediction_id: PredictionId = get_s(item, "prediction_id")
        .ok_or_else(|| bad("no prediction_id"))?
        .parse()
        .map_err(|e| bad(&format!("prediction_id: {e}")))?;
    let chat_id = ChatId(get_n(item, "chat_id").ok_or_else(|| bad("no numeric chat_id"))?);
    let status = match get_s(item, "status") {
        Some("pending") => PredictionStatus::Pending,
        Some("succeeded") => PredictionStatus::Succeeded,
        Some("failed") => PredictionStatus::Failed,
        other => return Err(bad(&format!("unknown status {other:?}"))),
    };
    let original_key =
        ObjectKey::parse(get_s(item, "original_key").ok_or_else(|| bad("no original_key"))?)
            .map_err(|e| bad(&e.to_string()))?;
    let result = match get_s(item, "summary") {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<JobResult>(json)
                .map_err(|e| bad(&format!("summary is not a job result: {e}")))?,
        ),
    };
    let kind = match get_s(item, "kind") {
        None => JobKind::Detect,
        Some(json) => serde_json::from_str::<JobKind>(json)
            .map_err(|e| bad(&format!("kind is not a job kind: {e}")))?,
    };
    let failure = match get_s(item, "failure") {
        None => None,
        Some(f) => {
            Some(FailureKind::parse(f).ok_or_else(|| bad(&format!("unknown failure {f:?}")))?)
        }
    };
    Ok(PredictionRecord {
        prediction_id,
        chat_id,
        status,
        original_key,
        kind,
        result,
        failure,
        created_at: get_n(item, "created_at").ok_or_else(|| bad("no created_at"))?,
        updated_at: get_n(item, "updated_at").ok_or_else(|| bad("no updated_at"))?,
    })
}

#[async_trait]
impl PredictionTable for DynamoTable {
    async fn create(&self, record: &PredictionRecord) -> Result<()> {
        let pk = prediction_pk(record.prediction_id);
        let mut item: Item = HashMap::new();
        item.insert("pk".into(), s(&pk));
        item.insert("prediction_id".into(), s(record.prediction_id.to_string()));
        item.insert("chat_id".into(), n(record.chat_id.0));
        item.insert("status".into(), s(status_str(record.status)));
        item.insert("original_key".into(), s(record.original_key.as_str()));
        item.insert("created_at".into(), n(record.created_at));
        item.insert("updated_at".into(), n(record.updated_at));
        item.insert("time".into(), n(record.created_at));
        item.insert(
            TTL_ATTRIBUTE.into(),
            n((record.created_at + RECORD_RETENTION.as_secs_f64()).ceil() as i64),
        );
        let kind = serde_json::to_string(&record.kind)
            .map_err(|e| StorageError::invalid_from(format!("kind of {pk}"), e))?;
        item.insert("kind".into(), s(kind));
        if let Some(result) = &record.result {
            let json = serde_json::to_string(result)
                .map_err(|e| StorageError::invalid_from(format!("result of {pk}"), e))?;
            item.insert("summary".into(), s(json));
        }
        if let Some(f) = record.failure {
            item.insert("failure".into(), s(f.as_str()));
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StorageError::AlreadyExists(format!(
                "prediction {}",
                record.prediction_id
            ))),
            Err(e) => Err(self.err("PutItem", &pk)(e)),
        }
    }

    async fn save_result(&self, result: &JobResult) -> Result<bool> {
        let id = result.prediction_id();
        let pk = prediction_pk(id);
        let json = serde_json::to_string(result)
            .map_err(|e| StorageError::invalid_from(format!("result of {pk}"), e))?;
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression(
                "SET summary = :summary, #status = :succeeded, updated_at = :now REMOVE failure",
            )
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(summary)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":summary", s(json))
            .expression_attribute_values(":succeeded", s("succeeded"))
            .expression_attribute_values(":now", n(now_epoch()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => {
                // Either a summary is already stored (a redelivered job:
                // not an error) or there is no such prediction.
                self.require_prediction(id).await.map(|()| false)
            }
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()> {
        let pk = prediction_pk(id);
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET #status = :failed, failure = :kind, updated_at = :now")
            .condition_expression("attribute_exists(pk) AND #status <> :succeeded")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":succeeded", s("succeeded"))
            .expression_attribute_values(":kind", s(kind.as_str()))
            .expression_attribute_values(":now", n(now_epoch()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already succeeded: a late failure report must not undo that.
            Err(e) if is_condition_failed(&e) => self.require_prediction(id).await,
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>> {
        self.get_item(&prediction_pk(id))
            .await?
            .map(|item| record_from_item(&item))
            .transpose()
    }

    async fn list_by_chat(&self, chat: ChatId, limit: usize) -> Result<Vec<PredictionRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // Every item in the index is a prediction, so `Limit` (which counts
        // items read) is also the number returned; GSI reads are eventually
        // consistent, so a prediction created a moment ago may be missing.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CHAT_INDEX)
            .key_condition_expression("chat_id = :chat")
            .expression_attribute_values(":chat", n(chat.0))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(self.err("Query", &format!("{CHAT_INDEX} chat_id={chat}")))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(record_from_item)
            .collect()
    }

    async fn claim(&self, key: ClaimKey, lease: Duration) -> Result<Claim> {
        let pk = claim_pk(key);
        let holder = LeaseId::new();
        let now = now_epoch();
        let lease_until = now + lease.as_secs_f64();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .condition_expression(
                "attribute_not_exists(pk) OR (done = :false AND lease_until <= :now)",
            )
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(lease_until))
            .expression_attribute_values(":holder", s(holder.to_string()));
        request = if matches!(key, ClaimKey::Update(..)) {
            // An abandoned lease cleans itself up like a finished one.
            let expires = (lease_until + UPDATE_DEDUPE_TTL.as_secs_f64()).ceil() as i64;
            request
                .update_expression(
                    "SET lease_until = :until, done = :false, holder = :holder, expires_at = :expires",
                )
                .expression_attribute_values(":expires", n(expires))
        } else {
            let expires = (now + RECORD_RETENTION.as_secs_f64()).ceil() as i64;
            request
                .update_expression(
                    "SET lease_until = :until, done = :false, holder = :holder, expires_at = :expires",
                )
                .expression_attribute_values(":expires", n(expires))
        };
        match request.send().await {
            Ok(_) => Ok(Claim::Acquired(holder)),
            Err(e) if is_condition_failed(&e) => {
                let item = self.get_item(&pk).await?;
                let done = item
                    .as_ref()
                    .and_then(|i| i.get("done"))
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false);
                // If the item vanished (released) in between, a retry can
                // take it; "in progress" makes the caller try again later.
                Ok(if done { Claim::Done } else { Claim::InProgress })
            }
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn finish(&self, key: ClaimKey) -> Result<()> {
        let pk = claim_pk(key);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let keep = match key {
            ClaimKey::Update(..) => UPDATE_DEDUPE_TTL,
            ClaimKey::Reply(_) => RECORD_RETENTION,
        };
        let expires = (now_epoch() + keep.as_secs_f64()).ceil() as i64;
        let request = request
            .update_expression("SET done = :true, expires_at = :expires REMOVE lease_until")
            .expression_attribute_values(":expires", n(expires));
        request
            .send()
            .await
            .map(|_| ())
            .map_err(self.err("UpdateItem", &pk))
    }

    async fn release(&self, key: ClaimKey, lease: LeaseId) -> Result<()> {
        let pk = claim_pk(key);
        // Deleting (rather than expiring) the lease lets the next claim
        // succeed at once; the condition keeps a finished claim finished and
        // a newer holder's lease held.
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .condition_expression("done = :false AND holder = :holder")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":holder", s(lease.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Done already, taken by someone else, or nothing to release.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(self.err("DeleteItem", &pk)(e)),
        }
    }

    async fn renew(&self, key: ClaimKey, lease: LeaseId, duration: Duration) -> Result<bool> {
        let pk = claim_pk(key);
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET lease_until = :until")
            .condition_expression("done = :false AND holder = :holder")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":holder", s(lease.to_string()))
            .expression_attribute_values(":until", n(now_epoch() + duration.as_secs_f64()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool> {
        let pk = notice_pk(id);
        let expires = (now_epoch() + RECORD_RETENTION.as_secs_f64()).ceil() as i64;
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET message_id = :m, expires_at = :expires")
            .condition_expression("attribute_not_exists(answered) OR answered = :false")
            .expression_attribute_values(":m", n(message_id))
            .expression_attribute_values(":expires", n(expires))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn notice(&self, id: PredictionId) -> Result<NoticeState> {
        let item = self.get_item(&notice_pk(id)).await?;
        Ok(NoticeState {
            message_id: message_id_of(item.as_ref()),
            answered: item
                .as_ref()
                .and_then(|i| i.get("answered"))
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }

    async fn close_notice(&self, id: PredictionId) -> Result<Option<i64>> {
        let pk = notice_pk(id);
        let expires = (now_epoch() + RECORD_RETENTION.as_secs_f64()).ceil() as i64;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET answered = :true, expires_at = :expires")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":expires", n(expires))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(self.err("UpdateItem", &pk))?;
        Ok(message_id_of(out.attributes.as_ref()))
    }

    async fn join_album(&self, key: &AlbumKey, photo: &AlbumPhoto) -> Result<AlbumJoin> {
        let pk = album_pk(key);
        // A string set of the photos as JSON: a redelivered photo adds the
        // same string, which the set already holds.
        let json = serde_json::to_string(photo)
            .map_err(|e| StorageError::invalid_from(format!("photo of {pk}"), e))?;
        let expires = (now_epoch() + UPDATE_DEDUPE_TTL.as_secs_f64()).ceil() as i64;
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("ADD photos :photo SET last_joined = :now, expires_at = :expires")
            .condition_expression("attribute_not_exists(closed)")
            .expression_attribute_values(":photo", AttributeValue::Ss(vec![json]))
            .expression_attribute_values(":now", n(now_millis()))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await
        {
            Ok(_) => Ok(AlbumJoin::Joined),
            Err(e) if is_condition_failed(&e) => Ok(AlbumJoin::TooLate),
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose> {
        let pk = album_pk(key);
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_millis().saturating_sub(quiet_ms);
        let closed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .update_expression("SET closed = :true")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(closed) AND last_joined <= :cutoff",
            )
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":cutoff", n(cutoff))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match closed {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let mut photos = match item.get("photos") {
                    Some(AttributeValue::Ss(set)) => set
                        .iter()
                        .map(|json| serde_json::from_str::<AlbumPhoto>(json))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| StorageError::invalid_from(format!("photos of {pk}"), e))?,
                    _ => Vec::new(),
                };
                photos.sort_by_key(|p| p.message_id);
                photos.dedup_by_key(|p| p.message_id);
                Ok(AlbumClose::Closed(photos))
            }
            Err(e) if is_condition_failed(&e) => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(self.err("GetItem", &pk))?
                    .item;
                match item {
                    Some(item) if !item.contains_key("closed") => {
                        let last: i64 = get_n(&item, "last_joined").unwrap_or(0);
                        let wait = (last + quiet_ms).saturating_sub(now_millis()).max(1);
                        Ok(AlbumClose::Open {
                            wait: Duration::from_millis(u64::try_from(wait).unwrap_or(1)),
                        })
                    }
                    _ => Ok(AlbumClose::AlreadyClosed),
                }
            }
            Err(e) => Err(self.err("UpdateItem", &pk)(e)),
        }
    }

    async fn check(&self) -> Result<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(BACKEND, &format!("DescribeTable {}", self.table), e))
    }
}
