//! [`Windows`] on DynamoDB: `window#<what>@<start ms>` items, counted up
//! with an atomic `ADD` whose new value comes back in the same call.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use polybot_domain::now_epoch;

use super::{DynamoTable, get_n, n};
use crate::{Result, StorageError, WindowKey, Windows, window_bounds};

/// The hash key of `key`'s counter in the window starting at `start_ms`.
fn window_pk(key: &WindowKey, start_ms: i64) -> String {
    format!("window#{key}@{start_ms}")
}

#[async_trait]
impl Windows for DynamoTable {
    async fn count_in_window(&self, key: &WindowKey, window: Duration) -> Result<u64> {
        // Whole milliseconds of the epoch: the table's clock is the writer's.
        #[allow(clippy::cast_possible_truncation)]
        let now_ms = (now_epoch() * 1000.0) as i64;
        let (start, forget_at) = window_bounds(now_ms, window);
        let pk = window_pk(key, start);
        let out = self
            .update(&pk)
            .update_expression("ADD #count :one SET expires_at = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            // The TTL attribute is in seconds.
            .expression_attribute_values(":expires", n(forget_at / 1000 + 1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(self.err("UpdateItem", &pk))?;
        out.attributes
            .as_ref()
            .and_then(|item| get_n::<u64>(item, "count"))
            .ok_or_else(|| StorageError::invalid(format!("item {pk}: no count after ADD")))
    }
}
