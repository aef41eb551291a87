//! [`Albums`] on DynamoDB: `album#<chat>:<media_group_id>` items, the
//! album's items a string set (attribute `photos`) that a redelivered item
//! does not grow, claimed by conditional writes (the first claim closes
//! it). An album not yet finished carries `chat_id` = [`PENDING_ALBUMS`]
//! and `time` = its last join, which puts it in the GSI under a chat that
//! cannot exist; [`Albums::pending_albums`] queries it there, and finishing
//! the album moves it to its chat's side key (`<chat>.5`, epoch seconds),
//! where erasing the chat finds it. So the table needs no index of its own.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use polybot_domain::{AlbumMember, now_epoch};

use super::{CHAT_INDEX, DynamoTable, expiry, get_n, get_s, n, s, side_chat_id};
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums, Result, StorageError, UPDATE_DEDUPE_TTL};

/// The GSI's `chat_id` of albums not yet finished: no Telegram chat has id 0.
pub(super) const PENDING_ALBUMS: i64 = 0;

pub(super) const ALBUM_PREFIX: &str = "album#";

fn album_pk(key: &AlbumKey) -> String {
    format!("{ALBUM_PREFIX}{key}")
}

fn wait_until(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis.saturating_sub(now_millis())).unwrap_or(0))
}

/// Milliseconds since the Unix epoch: an album's quiet window is short.
pub(super) fn now_millis() -> i64 {
    (now_epoch() * 1000.0) as i64
}

impl DynamoTable {
    /// The index's pending pseudo-chat: items under `prefix` whose `time`
    /// is at most `cutoff` (eventually consistent, as every GSI read).
    pub(super) fn pending_query(
        &self,
        prefix: &str,
        cutoff: i64,
        limit: usize,
    ) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(CHAT_INDEX)
            .key_condition_expression("chat_id = :pending AND #time <= :cutoff")
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_names("#time", "time")
            .expression_attribute_values(":pending", n(PENDING_ALBUMS))
            .expression_attribute_values(":cutoff", n(cutoff))
            .expression_attribute_values(":prefix", s(prefix))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
    }
}

#[async_trait]
impl Albums for DynamoTable {
    async fn join_album(&self, key: &AlbumKey, item: &AlbumMember) -> Result<AlbumJoin> {
        let pk = album_pk(key);
        // A string set of the items as JSON: a redelivered item adds the
        // same string, which the set already holds.
        let json = serde_json::to_string(item)
            .map_err(|e| StorageError::invalid_from(format!("photo of {pk}"), e))?;
        let update = self
            .update(&pk)
            .update_expression(
                "ADD photos :photo SET last_joined = :now, expires_at = :expires, \
                 chat_id = :pending, #time = :now",
            )
            .condition_expression("attribute_not_exists(closed)")
            .expression_attribute_names("#time", "time")
            .expression_attribute_values(":photo", AttributeValue::Ss(vec![json]))
            .expression_attribute_values(":pending", n(PENDING_ALBUMS))
            .expression_attribute_values(":now", n(now_millis()))
            .expression_attribute_values(":expires", expiry(now_epoch(), UPDATE_DEDUPE_TTL))
            .send();
        Ok(match self.conditional("UpdateItem", &pk, update).await? {
            Some(_) => AlbumJoin::Joined,
            None => AlbumJoin::TooLate,
        })
    }

    async fn close_album(
        &self,
        key: &AlbumKey,
        quiet: Duration,
        lease: Duration,
    ) -> Result<AlbumClose> {
        let pk = album_pk(key);
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let now = now_millis();
        let update = self
            .update(&pk)
            .update_expression("SET closed = :true, claimed_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(finished) \
                 AND (attribute_exists(closed) OR last_joined <= :cutoff) \
                 AND (attribute_not_exists(claimed_until) OR claimed_until <= :now)",
            )
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":cutoff", n(now.saturating_sub(quiet_ms)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(now.saturating_add(lease_ms)))
            .return_values(ReturnValue::AllNew)
            .send();
        if let Some(out) = self.conditional("UpdateItem", &pk, update).await? {
            let item = out.attributes.unwrap_or_default();
            let mut photos = match item.get("photos") {
                Some(AttributeValue::Ss(set)) => set
                    .iter()
                    .map(|json| serde_json::from_str::<AlbumMember>(json))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| StorageError::invalid_from(format!("photos of {pk}"), e))?,
                _ => Vec::new(),
            };
            photos.sort_by_key(AlbumMember::message_id);
            photos.dedup_by_key(|p| p.message_id());
            return Ok(AlbumClose::Closed(photos));
        }
        Ok(match self.get_item(&pk).await? {
            Some(item) if !item.contains_key("finished") => {
                if item.contains_key("closed") {
                    // Held, or its claim lapsed a moment ago: ask again then.
                    let until: i64 = get_n(&item, "claimed_until").unwrap_or(0);
                    AlbumClose::Held {
                        wait: wait_until(until).max(Duration::from_millis(1)),
                    }
                } else {
                    let last: i64 = get_n(&item, "last_joined").unwrap_or(0);
                    AlbumClose::Open {
                        wait: wait_until(last.saturating_add(quiet_ms))
                            .max(Duration::from_millis(1)),
                    }
                }
            }
            _ => AlbumClose::AlreadyClosed,
        })
    }

    async fn finish_album(&self, key: &AlbumKey) -> Result<()> {
        let pk = album_pk(key);
        let update = self
            .update(&pk)
            .update_expression(
                "SET finished = :true, closed = :true, chat_id = :side, #time = :now",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#time", "time")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":side", side_chat_id(key.chat))
            .expression_attribute_values(":now", n(now_epoch()))
            .send();
        // No such album (expired): nothing is pending.
        self.conditional("UpdateItem", &pk, update).await.map(drop)
    }

    async fn pending_albums(&self, quiet: Duration, limit: usize) -> Result<Vec<AlbumKey>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let now = now_millis();
        // Eventually consistent, as every GSI read: an album that went
        // quiet a moment ago may show up on the next look.
        let out = self
            .pending_query(ALBUM_PREFIX, now.saturating_sub(quiet_ms), limit)
            .filter_expression(
                "begins_with(pk, :prefix) AND \
                 (attribute_not_exists(claimed_until) OR claimed_until <= :now)",
            )
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(self.err("Query", &format!("{CHAT_INDEX} pending albums")))?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| get_s(item, "pk"))
            .filter_map(|pk| AlbumKey::parse(pk.strip_prefix(ALBUM_PREFIX)?))
            .collect())
    }
}
