//! [`Notices`] on SQLite: the `notices` table, one row a prediction.

use async_trait::async_trait;
use polybot_domain::PredictionId;
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::now_ms;
use crate::local::sqlite::sql_error;
use crate::{NoticeState, Notices, Result};

#[async_trait]
impl Notices for LocalTable {
    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool> {
        let kept = self.retention_ms();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let changed = tx
                    .execute(
                        "INSERT INTO notices (prediction_id, message_id, answered, expires_at)
                         VALUES (?1, ?2, 0, ?3)
                         ON CONFLICT (prediction_id) DO UPDATE SET message_id = ?2
                         WHERE answered = 0",
                        params![id.to_string(), message_id, now.saturating_add(kept)],
                    )
                    .map_err(sql_error)?;
                // Housekeeping, as for claims.
                tx.execute("DELETE FROM notices WHERE expires_at <= ?1", params![now])
                    .map_err(sql_error)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn notice(&self, id: PredictionId) -> Result<NoticeState> {
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT message_id, answered FROM notices WHERE prediction_id = ?1",
                    params![id.to_string()],
                    |r| {
                        Ok(NoticeState {
                            message_id: r.get(0)?,
                            answered: r.get::<_, i64>(1)? != 0,
                        })
                    },
                )
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(sql_error)
            })
            .await
    }

    async fn close_notice(&self, id: PredictionId) -> Result<Option<i64>> {
        let expires_at = now_ms().saturating_add(self.retention_ms());
        self.db
            .write(move |tx| {
                let attached = tx
                    .query_row(
                        "SELECT message_id FROM notices WHERE prediction_id = ?1",
                        params![id.to_string()],
                        |r| r.get::<_, Option<i64>>(0),
                    )
                    .optional()
                    .map_err(sql_error)?
                    .flatten();
                tx.execute(
                    "INSERT INTO notices (prediction_id, answered, expires_at) VALUES (?1, 1, ?2)
                     ON CONFLICT (prediction_id) DO UPDATE SET answered = 1",
                    params![id.to_string(), expires_at],
                )
                .map_err(sql_error)?;
                Ok(attached)
            })
            .await
    }
}
