//! [`DeferredUpdates`] on SQLite: the `deferred` table, one row per update
//! kept until answered.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{BotId, UpdateId};
use rusqlite::params;

use super::LocalTable;
use crate::local::sqlite::sql_error;
use crate::local::{duration_ms, now_ms};
use crate::{DeferredUpdate, DeferredUpdates, Result, UPDATE_DEDUPE_TTL};

#[async_trait]
impl DeferredUpdates for LocalTable {
    async fn defer_update(
        &self,
        bot: BotId,
        update: UpdateId,
        body: &str,
        grace: Duration,
    ) -> Result<()> {
        let body = body.to_owned();
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO deferred (bot_id, update_id, body, due_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (bot_id, update_id) DO NOTHING",
                    params![
                        bot.0,
                        update.0,
                        body,
                        now.saturating_add(duration_ms(grace)),
                        now.saturating_add(duration_ms(UPDATE_DEDUPE_TTL))
                    ],
                )
                .map_err(sql_error)?;
                // Housekeeping: updates nobody could answer in a day.
                tx.execute("DELETE FROM deferred WHERE expires_at <= ?1", params![now])
                    .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn due_updates(&self, grace: Duration, limit: usize) -> Result<Vec<DeferredUpdate>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write(move |tx| {
                let now = now_ms();
                let due: Vec<(i64, i64, String)> = tx
                    .prepare(
                        "SELECT bot_id, update_id, body FROM deferred
                         WHERE due_at <= ?1 AND expires_at > ?1 ORDER BY due_at LIMIT ?2",
                    )
                    .map_err(sql_error)?
                    .query_map(params![now, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_error)?;
                let again = now.saturating_add(duration_ms(grace));
                for (bot, update, _) in &due {
                    tx.execute(
                        "UPDATE deferred SET due_at = ?1 WHERE bot_id = ?2 AND update_id = ?3",
                        params![again, bot, update],
                    )
                    .map_err(sql_error)?;
                }
                Ok(due
                    .into_iter()
                    .map(|(bot, update, body)| DeferredUpdate {
                        bot: BotId(bot),
                        update: UpdateId(update),
                        body,
                    })
                    .collect())
            })
            .await
    }

    async fn finish_deferred(&self, bot: BotId, update: UpdateId) -> Result<()> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM deferred WHERE bot_id = ?1 AND update_id = ?2",
                    params![bot.0, update.0],
                )
                .map_err(sql_error)
                .map(drop)
            })
            .await
    }
}
