//! [`Notices`] on DynamoDB: `notice#<uuid>` items, whose `answered` flag
//! decides, in a conditional write, whether a notice may still attach.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use polybot_domain::{PredictionId, now_epoch};

use super::{DynamoTable, Item, get_bool, get_n, n};
use crate::{NoticeState, Notices, Result};

/// The hash key of a prediction's notice item.
pub fn notice_pk(id: PredictionId) -> String {
    format!("notice#{id}")
}

fn message_id_of(item: Option<&Item>) -> Option<i64> {
    item.and_then(|i| get_n(i, "message_id"))
}

#[async_trait]
impl Notices for DynamoTable {
    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool> {
        let pk = notice_pk(id);
        let update = self
            .update(&pk)
            .update_expression("SET message_id = :m, expires_at = :expires")
            .condition_expression("attribute_not_exists(answered) OR answered = :false")
            .expression_attribute_values(":m", n(message_id))
            .expression_attribute_values(":expires", self.record_expiry(now_epoch()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send();
        Ok(self.conditional("UpdateItem", &pk, update).await?.is_some())
    }

    async fn notice(&self, id: PredictionId) -> Result<NoticeState> {
        let item = self.get_item(&notice_pk(id)).await?;
        Ok(NoticeState {
            message_id: message_id_of(item.as_ref()),
            answered: get_bool(item.as_ref(), "answered"),
        })
    }

    async fn close_notice(&self, id: PredictionId) -> Result<Option<i64>> {
        let pk = notice_pk(id);
        let out = self
            .update(&pk)
            .update_expression("SET answered = :true, expires_at = :expires")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":expires", self.record_expiry(now_epoch()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(self.err("UpdateItem", &pk))?;
        Ok(message_id_of(out.attributes.as_ref()))
    }
}
