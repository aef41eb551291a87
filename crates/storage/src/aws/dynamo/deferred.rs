//! [`DeferredUpdates`] on DynamoDB: `deferred#<bot>#<update_id>` items. An
//! item sits in the GSI under the pseudo-chat of things pending (chat 0,
//! shared with unfinished albums) with `time` = when another gateway may
//! take it up, so `due_updates` is one query.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use polybot_domain::{BotId, UpdateId, now_epoch};

use super::albums::{PENDING_ALBUMS, now_millis};
use super::{CHAT_INDEX, DynamoTable, expiry, get_n, get_s, n, s};
use crate::{DeferredUpdate, DeferredUpdates, Result, UPDATE_DEDUPE_TTL};

pub(super) const PREFIX: &str = "deferred#";

fn deferred_pk(bot: BotId, update: UpdateId) -> String {
    format!("{PREFIX}{bot}#{update}")
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl DeferredUpdates for DynamoTable {
    async fn defer_update(
        &self,
        bot: BotId,
        update: UpdateId,
        body: &str,
        grace: Duration,
    ) -> Result<()> {
        let pk = deferred_pk(bot, update);
        let put = self
            .update(&pk)
            .update_expression(
                "SET body = :body, bot_id = :bot, update_id = :update, chat_id = :pending, \
                 #time = :due, expires_at = :expires",
            )
            .condition_expression("attribute_not_exists(pk)")
            .expression_attribute_names("#time", "time")
            .expression_attribute_values(":body", s(body))
            .expression_attribute_values(":bot", n(bot.0))
            .expression_attribute_values(":update", n(update.0))
            .expression_attribute_values(":pending", n(PENDING_ALBUMS))
            .expression_attribute_values(":due", n(now_millis().saturating_add(millis(grace))))
            .expression_attribute_values(":expires", expiry(now_epoch(), UPDATE_DEDUPE_TTL))
            .send();
        // Kept already: nothing changes.
        self.conditional("UpdateItem", &pk, put).await.map(drop)
    }

    async fn due_updates(&self, grace: Duration, limit: usize) -> Result<Vec<DeferredUpdate>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_millis();
        let out = self
            .pending_query(PREFIX, now, limit)
            .send()
            .await
            .map_err(self.err("Query", &format!("{CHAT_INDEX} deferred updates")))?;
        let again = now.saturating_add(millis(grace));
        let mut due = Vec::new();
        for item in out.items.unwrap_or_default() {
            let (Some(pk), Some(bot), Some(update), Some(body)) = (
                get_s(&item, "pk"),
                get_n::<i64>(&item, "bot_id"),
                get_n::<i64>(&item, "update_id"),
                get_s(&item, "body"),
            ) else {
                continue;
            };
            let Some(time) = get_n::<i64>(&item, "time") else {
                continue;
            };
            // Taken only if nobody took it since the (eventually
            // consistent) index was read.
            let take = self
                .update(pk)
                .update_expression("SET #time = :again")
                .condition_expression("#time = :seen")
                .expression_attribute_names("#time", "time")
                .expression_attribute_values(":again", n(again))
                .expression_attribute_values(":seen", AttributeValue::N(time.to_string()))
                .send();
            if self.conditional("UpdateItem", pk, take).await?.is_some() {
                due.push(DeferredUpdate {
                    bot: BotId(bot),
                    update: UpdateId(update),
                    body: body.to_owned(),
                });
            }
        }
        Ok(due)
    }

    async fn finish_deferred(&self, bot: BotId, update: UpdateId) -> Result<()> {
        let pk = deferred_pk(bot, update);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .send()
            .await
            .map_err(self.err("DeleteItem", &pk))?;
        Ok(())
    }
}
