//! [`Backlog`] on SQLite: the `backlog` table, one row per queued job with
//! an extra cost (`prediction_id`, `extra` in photos, `until` in epoch
//! seconds). A re-add is an upsert; the sum counts only rows whose `until`
//! is still ahead. Rows past their `until` are deleted on each add, so a
//! lost removal leaves a row behind only until the next clip is queued.

use async_trait::async_trait;
use polybot_domain::{PredictionId, now_epoch};
use rusqlite::params;

use super::LocalTable;
use crate::local::sqlite::sql_error;
use crate::{Backlog, Result};

#[async_trait]
impl Backlog for LocalTable {
    async fn add_cost(&self, id: PredictionId, extra: u32, until: f64) -> Result<()> {
        crate::table::check_until(until)?;
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO backlog (prediction_id, extra, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (prediction_id) DO UPDATE SET extra = ?2, until = ?3",
                    params![id.to_string(), extra, until],
                )
                .map_err(sql_error)?;
                // Housekeeping: entries whose job never said it ended.
                tx.execute(
                    "DELETE FROM backlog WHERE until <= ?1",
                    params![now_epoch()],
                )
                .map_err(sql_error)
                .map(drop)
            })
            .await
    }

    async fn remove_cost(&self, id: PredictionId) -> Result<()> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM backlog WHERE prediction_id = ?1",
                    params![id.to_string()],
                )
                .map_err(sql_error)
                .map(drop)
            })
            .await
    }

    async fn extra_cost(&self) -> Result<u64> {
        let sum: i64 = self
            .db
            .call(|conn| {
                conn.query_row(
                    "SELECT COALESCE(SUM(extra), 0) FROM backlog WHERE until > ?1",
                    params![now_epoch()],
                    |r| r.get(0),
                )
                .map_err(sql_error)
            })
            .await?;
        // Each `extra` is a u32, so the sum is never negative.
        Ok(u64::try_from(sum).unwrap_or_default())
    }
}
