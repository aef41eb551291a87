//! [`Albums`] on DynamoDB: `album#<chat>:<media_group_id>` items, the
//! album's items a string set (attribute `photos`) that a redelivered item
//! does not grow, closed once by a conditional write.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use polybot_domain::{AlbumMember, now_epoch};

use super::{DynamoTable, expiry, get_n, n};
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums, Result, StorageError, UPDATE_DEDUPE_TTL};

fn album_pk(key: &AlbumKey) -> String {
    format!("album#{key}")
}

/// Milliseconds since the Unix epoch: an album's quiet window is short.
fn now_millis() -> i64 {
    (now_epoch() * 1000.0) as i64
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
            .update_expression("ADD photos :photo SET last_joined = :now, expires_at = :expires")
            .condition_expression("attribute_not_exists(closed)")
            .expression_attribute_values(":photo", AttributeValue::Ss(vec![json]))
            .expression_attribute_values(":now", n(now_millis()))
            .expression_attribute_values(":expires", expiry(now_epoch(), UPDATE_DEDUPE_TTL))
            .send();
        Ok(match self.conditional("UpdateItem", &pk, update).await? {
            Some(_) => AlbumJoin::Joined,
            None => AlbumJoin::TooLate,
        })
    }

    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose> {
        let pk = album_pk(key);
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_millis().saturating_sub(quiet_ms);
        let update = self
            .update(&pk)
            .update_expression("SET closed = :true")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(closed) AND last_joined <= :cutoff",
            )
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":cutoff", n(cutoff))
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
        match self.get_item(&pk).await? {
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
}
