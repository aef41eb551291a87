//! [`Windows`] on SQLite: the `windows` table, one row per counter and
//! window, counted up with one upsert.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::LocalTable;
use crate::local::now_ms;
use crate::local::sqlite::sql_error;
use crate::{Result, WindowKey, Windows, window_bounds};

#[async_trait]
impl Windows for LocalTable {
    async fn count_in_window(&self, key: &WindowKey, window: Duration) -> Result<u64> {
        let key = *key;
        self.db
            .write(move |tx| {
                let now = now_ms();
                let (start, forget_at) = window_bounds(now, window);
                let row = format!("{key}@{start}");
                let count: i64 = tx
                    .query_row(
                        "INSERT INTO windows (window_key, count, expires_at) VALUES (?1, 1, ?2)
                         ON CONFLICT (window_key) DO UPDATE SET count = count + 1
                         RETURNING count",
                        params![row, forget_at],
                        |r| r.get(0),
                    )
                    .map_err(sql_error)?;
                // Housekeeping: windows long over.
                tx.execute("DELETE FROM windows WHERE expires_at <= ?1", params![now])
                    .map_err(sql_error)?;
                Ok(u64::try_from(count).unwrap_or_default())
            })
            .await
    }
}
