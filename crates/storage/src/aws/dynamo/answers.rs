//! [`SentAnswers`] on DynamoDB: `answer#<chat>:<message_id>` items, written
//! once an answer is sent and read when a user replies to it.

use async_trait::async_trait;
use polybot_domain::{ChatId, ObjectKey, PredictionId, now_epoch};

use super::{DynamoTable, expiry, get_n, get_s, s};
use crate::{AnsweredPhoto, RECORD_RETENTION, Result, SentAnswers, StorageError};

/// The hash key of the bot's answer `message_id` in `chat`.
pub fn answer_pk(chat: ChatId, message_id: i64) -> String {
    format!("answer#{chat}:{message_id}")
}

#[async_trait]
impl SentAnswers for DynamoTable {
    async fn record_answer(
        &self,
        chat: ChatId,
        message_id: i64,
        photo: &AnsweredPhoto,
    ) -> Result<()> {
        let pk = answer_pk(chat, message_id);
        self.update(&pk)
            .update_expression("SET prediction_id = :p, original_key = :o, expires_at = :expires")
            .expression_attribute_values(":p", s(photo.prediction_id.to_string()))
            .expression_attribute_values(":o", s(photo.original_key.to_string()))
            .expression_attribute_values(":expires", expiry(now_epoch(), RECORD_RETENTION))
            .send()
            .await
            .map_err(self.err("UpdateItem", &pk))?;
        Ok(())
    }

    async fn answered_photo(&self, chat: ChatId, message_id: i64) -> Result<Option<AnsweredPhoto>> {
        let pk = answer_pk(chat, message_id);
        let Some(item) = self.get_item(&pk).await? else {
            return Ok(None);
        };
        // DynamoDB deletes expired items some time after they expire.
        if get_n::<f64>(&item, "expires_at").is_some_and(|at| at <= now_epoch()) {
            return Ok(None);
        }
        let bad = |what: &str| StorageError::invalid(format!("item {pk}: {what}"));
        let prediction_id = get_s(&item, "prediction_id")
            .ok_or_else(|| bad("no prediction_id"))?
            .parse::<PredictionId>()
            .map_err(|e| StorageError::invalid_from(format!("item {pk}: prediction_id"), e))?;
        let original_key =
            ObjectKey::parse(get_s(&item, "original_key").ok_or_else(|| bad("no original_key"))?)
                .map_err(|e| StorageError::invalid_from(format!("item {pk}: original_key"), e))?;
        Ok(Some(AnsweredPhoto {
            prediction_id,
            original_key,
        }))
    }
}
