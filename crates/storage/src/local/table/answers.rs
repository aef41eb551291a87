//! [`SentAnswers`] on SQLite: the `answers` table, one row per answer
//! message, keyed by chat and message id.

use async_trait::async_trait;
use polybot_domain::{ChatId, ObjectKey, PredictionId};
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::now_ms;
use crate::local::sqlite::sql_error;
use crate::{AnsweredPhoto, Result, SentAnswers, StorageError};

#[async_trait]
impl SentAnswers for LocalTable {
    async fn record_answer(
        &self,
        chat: ChatId,
        message_id: i64,
        photo: &AnsweredPhoto,
    ) -> Result<()> {
        let prediction = photo.prediction_id.to_string();
        let original = photo.original_key.to_string();
        let kept = self.retention_ms();
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO answers (chat_id, message_id, prediction_id, original_key, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (chat_id, message_id) DO UPDATE
                     SET prediction_id = ?3, original_key = ?4, expires_at = ?5",
                    params![
                        chat.0,
                        message_id,
                        prediction,
                        original,
                        now.saturating_add(kept)
                    ],
                )
                .map_err(sql_error)?;
                // Housekeeping, as for notices.
                tx.execute("DELETE FROM answers WHERE expires_at <= ?1", params![now])
                    .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn answered_photo(&self, chat: ChatId, message_id: i64) -> Result<Option<AnsweredPhoto>> {
        let row = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT prediction_id, original_key FROM answers
                     WHERE chat_id = ?1 AND message_id = ?2 AND expires_at > ?3",
                    params![chat.0, message_id, now_ms()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(sql_error)
            })
            .await?;
        row.map(|(prediction, original)| {
            let what = || format!("the answer {chat}:{message_id}");
            Ok(AnsweredPhoto {
                prediction_id: prediction
                    .parse::<PredictionId>()
                    .map_err(|e| StorageError::invalid_from(what(), e))?,
                original_key: ObjectKey::parse(original)
                    .map_err(|e| StorageError::invalid_from(what(), e))?,
            })
        })
        .transpose()
    }
}
