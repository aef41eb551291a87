//! [`SentAnswers`] on DynamoDB: `answer#<chat>:<message_id>` items, written
//! once an answer is sent and read when a user replies to it. Each sits in
//! the chat index under its chat's side key ([`side_chat_id`]), where
//! erasing the chat finds it.

use async_trait::async_trait;
use polybot_domain::{ChatId, ObjectKey, PredictionId, now_epoch};

use super::{DynamoTable, get_n, get_s, n, s, side_chat_id};
use crate::{AnsweredPhoto, Result, SentAnswers, StorageError};

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
            .update_expression(
                "SET prediction_id = :p, original_key = :o, expires_at = :expires, \
                 chat_id = :side, #time = :now",
            )
            .expression_attribute_names("#time", "time")
            .expression_attribute_values(":side", side_chat_id(chat))
            .expression_attribute_values(":now", n(now_epoch()))
            .expression_attribute_values(":p", s(photo.prediction_id.to_string()))
            .expression_attribute_values(":o", s(photo.original_key.to_string()))
            .expression_attribute_values(":expires", self.record_expiry(now_epoch()))
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
