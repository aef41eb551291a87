//! [`Leases`] on SQLite: the `claims` table, one row a claim key.
//!
//! Claims are rows `(claim_key, state, expires_at, holder)`. A row whose
//! `expires_at` has passed counts as absent: for a lease that means its
//! holder is presumed dead, for a finished claim that it has been forgotten
//! (update claims after [`UPDATE_DEDUPE_TTL`]; reply and extra claims
//! after the table's [`crate::Retention`], like the records and images
//! they belong to).
//! Expired rows are deleted in passing by [`Leases::finish`].

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::sqlite::sql_error;
use crate::local::{duration_ms, now_ms};
use crate::{Claim, ClaimKey, LeaseId, Leases, Result, StorageError, UPDATE_DEDUPE_TTL};

pub(super) fn claim_key_text(key: ClaimKey) -> String {
    match key {
        ClaimKey::Update(bot, update) => format!("update:{bot}:{update}"),
        ClaimKey::Reply(prediction) => format!("reply:{prediction}"),
        ClaimKey::Extra(prediction, extra) => format!("extra:{prediction}:{extra}"),
    }
}

/// When a finished claim is forgotten: update ids are only worth
/// remembering while Telegram might deliver the update again; a reply's or
/// an extra's as long as its prediction (`retention_ms`).
fn done_expiry(key: ClaimKey, now: i64, retention_ms: i64) -> i64 {
    match key {
        ClaimKey::Update(..) => now.saturating_add(duration_ms(UPDATE_DEDUPE_TTL)),
        ClaimKey::Reply(_) | ClaimKey::Extra(..) => now.saturating_add(retention_ms),
    }
}

#[async_trait]
impl Leases for LocalTable {
    async fn claim(&self, key: ClaimKey, lease: Duration) -> Result<Claim> {
        let key_text = claim_key_text(key);
        let lease_ms = duration_ms(lease);
        self.db
            .write(move |tx| {
                let now = now_ms();
                let current: Option<(String, i64)> = tx
                    .query_row(
                        "SELECT state, expires_at FROM claims WHERE claim_key = ?1",
                        params![key_text],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql_error)?;
                let outcome = match current {
                    Some((state, expires_at)) if expires_at > now => match state.as_str() {
                        "done" => Claim::Done,
                        "leased" => Claim::InProgress,
                        other => {
                            return Err(StorageError::invalid(format!(
                                "claim {key_text}: unknown state {other:?}"
                            )));
                        }
                    },
                    // No row, an expired lease or a forgotten finish.
                    _ => {
                        let holder = LeaseId::new();
                        tx.execute(
                            "INSERT OR REPLACE INTO claims (claim_key, state, expires_at, holder)
                             VALUES (?1, 'leased', ?2, ?3)",
                            params![key_text, now.saturating_add(lease_ms), holder.to_string()],
                        )
                        .map_err(sql_error)?;
                        Claim::Acquired(holder)
                    }
                };
                Ok(outcome)
            })
            .await
    }

    async fn finish(&self, key: ClaimKey) -> Result<()> {
        let key_text = claim_key_text(key);
        let kept = self.retention_ms();
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO claims (claim_key, state, expires_at) VALUES (?1, 'done', ?2)
                     ON CONFLICT (claim_key) DO UPDATE SET state = 'done', expires_at = ?2",
                    params![key_text, done_expiry(key, now, kept)],
                )
                .map_err(sql_error)?;
                // Housekeeping: an expired row means the same as no row, so
                // dropping them changes no answer and keeps the table small.
                tx.execute("DELETE FROM claims WHERE expires_at <= ?1", params![now])
                    .map(drop)
                    .map_err(sql_error)
            })
            .await
    }

    async fn release(&self, key: ClaimKey, lease: LeaseId) -> Result<()> {
        let key_text = claim_key_text(key);
        self.db
            .call(move |conn| {
                // Only our own lease: releasing must never undo a finish, nor
                // free a lease someone took after ours expired.
                conn.execute(
                    "DELETE FROM claims WHERE claim_key = ?1 AND state = 'leased' AND holder = ?2",
                    params![key_text, lease.to_string()],
                )
                .map(drop)
                .map_err(sql_error)
            })
            .await
    }

    async fn renew(&self, key: ClaimKey, lease: LeaseId, duration: Duration) -> Result<bool> {
        let key_text = claim_key_text(key);
        let lease_ms = duration_ms(duration);
        self.db
            .call(move |conn| {
                // Still ours even if it ran out, as long as nobody claimed
                // the work since (the holder simply keeps it).
                conn.execute(
                    "UPDATE claims SET expires_at = ?1
                     WHERE claim_key = ?2 AND state = 'leased' AND holder = ?3",
                    params![
                        now_ms().saturating_add(lease_ms),
                        key_text,
                        lease.to_string()
                    ],
                )
                .map(|changed| changed == 1)
                .map_err(sql_error)
            })
            .await
    }
}
