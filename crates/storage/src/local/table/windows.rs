//! [`Windows`] on SQLite: the `window_members` table, one row per counted
//! member of a window; a count is an insert (ignored for a member counted
//! already) and a count of the window's rows, in one transaction.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::LocalTable;
use crate::local::now_ms;
use crate::local::sqlite::sql_error;
use crate::{Result, WindowKey, Windows, window_bounds};

#[async_trait]
impl Windows for LocalTable {
    async fn count_in_window(
        &self,
        key: &WindowKey,
        member: &str,
        window: Duration,
    ) -> Result<u64> {
        let (key, member) = (*key, member.to_owned());
        self.db
            .write(move |tx| {
                let now = now_ms();
                let (start, forget_at) = window_bounds(now, window);
                let row = format!("{key}@{start}");
                tx.execute(
                    "INSERT INTO window_members (window_key, member, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (window_key, member) DO NOTHING",
                    params![row, member, forget_at],
                )
                .map_err(sql_error)?;
                let count: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM window_members WHERE window_key = ?1",
                        params![row],
                        |r| r.get(0),
                    )
                    .map_err(sql_error)?;
                // Housekeeping: windows long over.
                tx.execute(
                    "DELETE FROM window_members WHERE expires_at <= ?1",
                    params![now],
                )
                .map_err(sql_error)?;
                Ok(u64::try_from(count).unwrap_or_default())
            })
            .await
    }
}
