//! [`Windows`] on DynamoDB: `window#<what>@<start ms>` items holding the
//! window's members in a string set, added to with an atomic `ADD` (a
//! member in the set already changes nothing) whose new set comes back in
//! the same call (the whole item: a member already there changes nothing).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use polybot_domain::now_epoch;

use super::{DynamoTable, n};
use crate::{Result, StorageError, WindowKey, Windows, window_bounds};

/// The hash key of `key`'s counter in the window starting at `start_ms`.
fn window_pk(key: &WindowKey, start_ms: i64) -> String {
    format!("window#{key}@{start_ms}")
}

#[async_trait]
impl Windows for DynamoTable {
    async fn count_in_window(
        &self,
        key: &WindowKey,
        member: &str,
        window: Duration,
    ) -> Result<u64> {
        // Whole milliseconds of the epoch: the table's clock is the writer's.
        #[allow(clippy::cast_possible_truncation)]
        let now_ms = (now_epoch() * 1000.0) as i64;
        let (start, forget_at) = window_bounds(now_ms, window);
        let pk = window_pk(key, start);
        let out = self
            .update(&pk)
            .update_expression("ADD members :member SET expires_at = :expires")
            .expression_attribute_values(":member", AttributeValue::Ss(vec![member.to_owned()]))
            // The TTL attribute is in seconds.
            .expression_attribute_values(":expires", n(forget_at / 1000 + 1))
            // ALL_NEW: a member already in the set changes nothing, and
            // UPDATED_NEW may then leave the set out.
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(self.err("UpdateItem", &pk))?;
        match out.attributes.as_ref().and_then(|item| item.get("members")) {
            Some(AttributeValue::Ss(members)) => Ok(members.len() as u64),
            _ => Err(StorageError::invalid(format!(
                "item {pk}: no members after ADD"
            ))),
        }
    }
}
