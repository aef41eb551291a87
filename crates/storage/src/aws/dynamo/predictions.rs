//! [`Predictions`] on DynamoDB: `prediction#<uuid>` items, listed by chat
//! through the GSI [`CHAT_INDEX`]. Every write after `create` is
//! conditional on the item existing, so a prediction erased with its chat
//! is never written back.

use std::collections::HashMap;

use async_trait::async_trait;
use polybot_domain::{
    Action, ChatId, FailureKind, JobResult, ObjectKey, PredictionId, PredictionRecord, now_epoch,
};

use super::{CHAT_INDEX, DynamoTable, Item, TTL_ATTRIBUTE, get_n, get_s, n, s};
use crate::table::{parse_status, status_text};
use crate::{BoxError, ListCursor, Predictions, Result, Saved, StorageError, TimeWindow};

/// The hash key of a prediction's item.
pub fn prediction_pk(id: PredictionId) -> String {
    format!("prediction#{id}")
}

fn record_from_item(item: &Item) -> Result<PredictionRecord> {
    let pk = get_s(item, "pk").unwrap_or("?");
    let bad = |what: &str| StorageError::invalid(format!("item {pk}: {what}"));
    let unreadable =
        |what: &str, e: BoxError| StorageError::invalid_from(format!("item {pk}: {what}"), e);
    let prediction_id = get_s(item, "prediction_id")
        .ok_or_else(|| bad("no prediction_id"))?
        .parse::<PredictionId>()
        .map_err(|e| unreadable("prediction_id", e.into()))?;
    let chat_id = ChatId(get_n(item, "chat_id").ok_or_else(|| bad("no numeric chat_id"))?);
    let status = get_s(item, "status");
    let status = status
        .and_then(parse_status)
        .ok_or_else(|| bad(&format!("unknown status {status:?}")))?;
    let original_key =
        ObjectKey::parse(get_s(item, "original_key").ok_or_else(|| bad("no original_key"))?)
            .map_err(|e| unreadable("original_key", e.into()))?;
    let result = match get_s(item, "summary") {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<JobResult>(json)
                .map_err(|e| unreadable("summary is not a job result", e.into()))?,
        ),
    };
    let kind = match get_s(item, "kind") {
        None => Action::Detect,
        Some(json) => serde_json::from_str::<Action>(json)
            .map_err(|e| unreadable("kind is not an action", e.into()))?,
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
        answer_file_id: get_s(item, "answer_file_id").map(str::to_owned),
    })
}

impl DynamoTable {
    /// After a failed condition on a prediction: whether the item exists
    /// (the condition was about its state) or is gone.
    async fn prediction_exists(&self, id: PredictionId) -> Result<bool> {
        Ok(self.get_item(&prediction_pk(id)).await?.is_some())
    }

    /// After a failed condition on a prediction: `Ok(())` if the item
    /// exists (the condition was about its state), `NotFound` otherwise.
    async fn require_prediction(&self, id: PredictionId) -> Result<()> {
        if self.prediction_exists(id).await? {
            Ok(())
        } else {
            Err(StorageError::NotFound(format!("prediction {id}")))
        }
    }
}

#[async_trait]
impl Predictions for DynamoTable {
    async fn create(&self, record: &PredictionRecord) -> Result<()> {
        let pk = prediction_pk(record.prediction_id);
        let mut item: Item = HashMap::new();
        item.insert("pk".into(), s(&pk));
        item.insert("prediction_id".into(), s(record.prediction_id.to_string()));
        item.insert("chat_id".into(), n(record.chat_id.0));
        item.insert("status".into(), s(status_text(record.status)));
        item.insert("original_key".into(), s(record.original_key.as_str()));
        item.insert("created_at".into(), n(record.created_at));
        item.insert("updated_at".into(), n(record.updated_at));
        item.insert("time".into(), n(record.created_at));
        item.insert(TTL_ATTRIBUTE.into(), self.record_expiry(record.created_at));
        if let Some(file_id) = &record.answer_file_id {
            item.insert("answer_file_id".into(), s(file_id));
        }
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
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send();
        match self.conditional("PutItem", &pk, put).await? {
            Some(_) => Ok(()),
            None => Err(StorageError::AlreadyExists(format!(
                "prediction {}",
                record.prediction_id
            ))),
        }
    }

    async fn save_result(&self, result: &JobResult) -> Result<Saved> {
        let id = result.prediction_id();
        let pk = prediction_pk(id);
        let json = serde_json::to_string(result)
            .map_err(|e| StorageError::invalid_from(format!("result of {pk}"), e))?;
        let update = self
            .update(&pk)
            .update_expression(
                "SET summary = :summary, #status = :succeeded, updated_at = :now REMOVE failure",
            )
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(summary) AND #status <> :failed",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":summary", s(json))
            .expression_attribute_values(":succeeded", s("succeeded"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":now", n(now_epoch()))
            .send();
        match self.conditional("UpdateItem", &pk, update).await? {
            Some(_) => Ok(Saved::Stored),
            // A summary is already stored (a redelivered job), the
            // prediction failed (its user was told), or there is no such
            // prediction (its chat was erased).
            None => Ok(if self.prediction_exists(id).await? {
                Saved::Unchanged
            } else {
                Saved::Gone
            }),
        }
    }

    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()> {
        let pk = prediction_pk(id);
        let update = self
            .update(&pk)
            .update_expression("SET #status = :failed, failure = :kind, updated_at = :now")
            .condition_expression("attribute_exists(pk) AND #status <> :succeeded")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":succeeded", s("succeeded"))
            .expression_attribute_values(":kind", s(kind.as_str()))
            .expression_attribute_values(":now", n(now_epoch()))
            .send();
        match self.conditional("UpdateItem", &pk, update).await? {
            Some(_) => Ok(()),
            // Already succeeded: a late failure report must not undo that.
            None => self.require_prediction(id).await,
        }
    }

    async fn set_answer_file(&self, id: PredictionId, file_id: &str) -> Result<()> {
        let pk = prediction_pk(id);
        let update = self
            .update(&pk)
            .update_expression("SET answer_file_id = :file")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":file", s(file_id))
            .send();
        // A failed condition: the prediction is gone, and stays gone.
        self.conditional("UpdateItem", &pk, update).await.map(drop)
    }

    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>> {
        self.get_item(&prediction_pk(id))
            .await?
            .map(|item| record_from_item(&item))
            .transpose()
    }

    async fn chat_predictions(
        &self,
        chat: ChatId,
        window: TimeWindow,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<Vec<PredictionRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // Every item in the index under a chat is a prediction (pending
        // albums and deferred updates sit under chat 0, which no chat has,
        // and a chat's answers and finished albums under its side key
        // `<chat>.5`), so `Limit` (which counts items read) is also the
        // number returned; GSI reads are eventually consistent, so a
        // prediction created a moment ago may be missing.
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CHAT_INDEX)
            .expression_attribute_values(":chat", n(chat.0))
            .scan_index_forward(false)
            .limit(limit);
        // `until` is exclusive and BETWEEN inclusive: its upper end is the
        // largest time before `until`.
        query = match (window.from, window.until) {
            (None, None) => query.key_condition_expression("chat_id = :chat"),
            (Some(from), None) => query
                .key_condition_expression("chat_id = :chat AND #t >= :from")
                .expression_attribute_names("#t", "time")
                .expression_attribute_values(":from", n(from)),
            (None, Some(until)) => query
                .key_condition_expression("chat_id = :chat AND #t < :until")
                .expression_attribute_names("#t", "time")
                .expression_attribute_values(":until", n(until)),
            (Some(from), Some(until)) => query
                .key_condition_expression("chat_id = :chat AND #t BETWEEN :from AND :until")
                .expression_attribute_names("#t", "time")
                .expression_attribute_values(":from", n(from))
                .expression_attribute_values(":until", n(until.next_down())),
        };
        // The index's position of the cursor's item: its index key and the
        // table's key (`time` is written from `created_at`, so they agree).
        if let Some(cursor) = after {
            query = query
                .exclusive_start_key("pk", s(prediction_pk(cursor.id)))
                .exclusive_start_key("chat_id", n(chat.0))
                .exclusive_start_key("time", n(cursor.created_at));
        }
        let out = query
            .send()
            .await
            .map_err(self.err("Query", &format!("{CHAT_INDEX} chat_id={chat}")))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(record_from_item)
            .collect()
    }
}
