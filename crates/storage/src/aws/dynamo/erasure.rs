//! [`Erasure`] on DynamoDB: a chat's items found through the chat index
//! ([`CHAT_INDEX`]), with no scan of the table:
//!
//! - its predictions, under `chat_id` = `<chat>`; from each prediction's
//!   id, the items keyed by it: `reply#<id>`, `extra#<id>#<extra>` and
//!   `notice#<id>`;
//! - its answers and finished albums, under its side key `<chat>.5`;
//! - its pending albums (`album#<chat>:…`) and deferred updates (whose
//!   JSON names the chat) among the pending items under chat 0, which are
//!   few: each is finished or answered within seconds;
//! - its `settings#<chat>` item, by key.
//!
//! Prediction items are deleted one by one (DeleteItem returning the old
//! item), first, so that a job still running finds its prediction gone at
//! once, and so that the count is of records that were there: the index is
//! eventually consistent and may list for a moment a record already
//! erased. The rest go 25 at a time (BatchWriteItem), unprocessed items
//! retried with backoff.
//!
//! Index reads are eventually consistent: an item written a moment before
//! the erasure may be missed (it then expires by its TTL). Answer and
//! finished album items written before they were given their side key
//! are not in the index under the chat; they expire by their TTL (at most
//! the retention, and a day for albums).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use polybot_domain::{AnswerExtra, ChatId, PredictionId};

use super::albums::{ALBUM_PREFIX, PENDING_ALBUMS};
use super::notices::notice_pk;
use super::{
    BACKEND, CHAT_INDEX, DynamoTable, Item, claim_pk, get_s, n, s, settings_pk, side_chat_id,
};
use crate::table::chat_of_update;
use crate::{ClaimKey, Erasure, Result, StorageError};

/// BatchWriteItem's most requests in one call.
const BATCH: usize = 25;
/// Calls one batch may take while DynamoDB leaves some of it unprocessed
/// (throttling) before the erasure fails, to be asked again.
const BATCH_ATTEMPTS: u32 = 8;
/// The first pause before retrying unprocessed items; doubled each time.
const FIRST_PAUSE: Duration = Duration::from_millis(50);

const PREDICTION_PREFIX: &str = "prediction#";

impl DynamoTable {
    /// Every item in the chat index under `chat_id` = `key`, with the
    /// attributes `projection` names (`#pk` is `pk`, `#body` is `body`).
    async fn index_items(&self, key: AttributeValue, projection: &str) -> Result<Vec<Item>> {
        let what = format!("{CHAT_INDEX} chat_id={}", key.as_n().map_or("?", |k| k));
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(CHAT_INDEX)
                .key_condition_expression("chat_id = :chat")
                .expression_attribute_values(":chat", key.clone())
                .projection_expression(projection)
                .set_expression_attribute_names(Some(
                    [("#pk", "pk"), ("#body", "body")]
                        .into_iter()
                        .filter(|(name, _)| projection.contains(name))
                        .map(|(name, attribute)| (name.to_owned(), attribute.to_owned()))
                        .collect(),
                ))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(self.err("Query", &what))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes the item `pk`; whether it was there.
    async fn delete_counted(&self, pk: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(self.err("DeleteItem", pk))?;
        Ok(out.attributes.is_some_and(|old| !old.is_empty()))
    }

    /// Deletes the items `pks`, 25 per BatchWriteItem, retrying what
    /// DynamoDB left unprocessed. Items that do not exist are fine.
    async fn delete_all(&self, pks: &[String]) -> Result<()> {
        for chunk in pks.chunks(BATCH) {
            let mut requests = chunk
                .iter()
                .map(|pk| {
                    DeleteRequest::builder()
                        .key("pk", s(pk))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| StorageError::invalid_from(format!("deleting {pk}"), e))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut pause = FIRST_PAUSE;
            for attempt in 1.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(self.err("BatchWriteItem", &format!("{} items", chunk.len())))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(StorageError::Unavailable {
                        backend: BACKEND,
                        what: format!(
                            "BatchWriteItem {}: {} deletes still unprocessed after {attempt} calls",
                            self.table,
                            requests.len()
                        ),
                        source: None,
                    });
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Ok(())
    }
}

/// The items keyed by a prediction's id, beside the prediction's own.
fn items_of_prediction(id: PredictionId) -> impl Iterator<Item = String> {
    let claims = std::iter::once(ClaimKey::Reply(id))
        .chain(AnswerExtra::ALL.map(|extra| ClaimKey::Extra(id, extra)))
        .map(claim_pk);
    claims.chain(std::iter::once(notice_pk(id)))
}

#[async_trait]
impl Erasure for DynamoTable {
    async fn erase_chat(&self, chat: ChatId) -> Result<u64> {
        let mut erased = 0;
        let mut rest = Vec::new();
        for item in self.index_items(n(chat.0), "#pk").await? {
            // Only predictions sit under the chat itself; anything else is
            // no item of ours, and left alone.
            let Some(pk) = get_s(&item, "pk") else {
                continue;
            };
            let Some(id) = pk
                .strip_prefix(PREDICTION_PREFIX)
                .and_then(|id| id.parse::<PredictionId>().ok())
            else {
                continue;
            };
            erased += u64::from(self.delete_counted(pk).await?);
            rest.extend(items_of_prediction(id));
        }
        let answer_prefix = format!("answer#{chat}:");
        let album_prefix = format!("{ALBUM_PREFIX}{chat}:");
        for item in self.index_items(side_chat_id(chat), "#pk").await? {
            if let Some(pk) = get_s(&item, "pk")
                && (pk.starts_with(&answer_prefix) || pk.starts_with(&album_prefix))
            {
                rest.push(pk.to_owned());
            }
        }
        for item in self.index_items(n(PENDING_ALBUMS), "#pk, #body").await? {
            let Some(pk) = get_s(&item, "pk") else {
                continue;
            };
            let of_chat = pk.starts_with(&album_prefix)
                || pk.starts_with(super::deferred::PREFIX)
                    && get_s(&item, "body").and_then(chat_of_update) == Some(chat);
            if of_chat {
                rest.push(pk.to_owned());
            }
        }
        rest.push(settings_pk(chat));
        // BatchWriteItem refuses a key twice in one call, and the index
        // may for a moment show an album both pending and finished.
        rest.sort_unstable();
        rest.dedup();
        self.delete_all(&rest).await?;
        Ok(erased)
    }

    async fn sweep_expired(&self, _now: SystemTime) -> Result<u64> {
        // The table's TTL on `expires_at` deletes expired items.
        Ok(0)
    }
}
