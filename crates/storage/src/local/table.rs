//! Predictions and claims on SQLite.
//!
//! Every conditional change is a single conditional statement or one
//! IMMEDIATE transaction (which takes the database's write lock before
//! reading), so two processes sharing the data folder cannot both win a
//! create, a summary or a claim.
//!
//! Claims are rows `(claim_key, state, expires_at)`. A row whose
//! `expires_at` has passed counts as absent: for a lease that means its
//! holder is presumed dead, for a finished claim that it has been forgotten
//! (update claims after [`UPDATE_DEDUPE_TTL`]; reply claims after
//! [`RECORD_RETENTION`], like the records and images they belong to on AWS).
//! Expired rows are deleted in passing by [`PredictionTable::finish`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{
    AlbumPhoto, ChatId, FailureKind, JobKind, JobResult, ObjectKey, PredictionId, PredictionRecord,
    PredictionStatus,
};
use rusqlite::{OptionalExtension, params};

use super::sqlite::{Db, is_constraint_violation, sql_error};
use super::{duration_ms, now_ms};
use crate::{
    AlbumClose, AlbumJoin, AlbumKey, Claim, ClaimKey, LeaseId, NoticeState, PredictionTable,
    RECORD_RETENTION, Result, StorageError, UPDATE_DEDUPE_TTL,
};

/// The prediction table in the data folder's database. Cheap to clone.
#[derive(Clone)]
pub struct LocalTable {
    db: Arc<Db>,
}

impl std::fmt::Debug for LocalTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTable")
            .field("database", &self.db.path())
            .finish()
    }
}

impl LocalTable {
    /// Opens the table in the database of `data_dir`, creating the folder
    /// and database if needed. Blocking: call at start-up.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Ok(Self {
            db: Db::open(data_dir)?,
        })
    }

    /// The database file the table lives in.
    pub fn database(&self) -> &Path {
        self.db.path()
    }
}

const COLUMNS: &str =
    "prediction_id, chat_id, status, original_key, summary, failure, created_at, updated_at, kind";

/// A `predictions` row as stored, before its text is parsed.
struct Row {
    prediction_id: String,
    chat_id: i64,
    status: String,
    original_key: String,
    summary: Option<String>,
    failure: Option<String>,
    created_at: f64,
    updated_at: f64,
    kind: Option<String>,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            prediction_id: r.get(0)?,
            chat_id: r.get(1)?,
            status: r.get(2)?,
            original_key: r.get(3)?,
            summary: r.get(4)?,
            failure: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            kind: r.get(8)?,
        })
    }

    fn parse(self) -> Result<PredictionRecord> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            StorageError::invalid(format!(
                "prediction {}: stored {what} is unreadable: {e}",
                self.prediction_id
            ))
        };
        let result = match &self.summary {
            Some(json) => {
                Some(serde_json::from_str::<JobResult>(json).map_err(|e| invalid("result", &e))?)
            }
            None => None,
        };
        let kind = match &self.kind {
            Some(json) => serde_json::from_str::<JobKind>(json).map_err(|e| invalid("kind", &e))?,
            None => JobKind::Detect,
        };
        let failure = match &self.failure {
            Some(text) => Some(FailureKind::parse(text).ok_or_else(|| invalid("failure", &text))?),
            None => None,
        };
        Ok(PredictionRecord {
            prediction_id: self.prediction_id.parse().map_err(|e| invalid("id", &e))?,
            chat_id: ChatId(self.chat_id),
            status: parse_status(&self.status).ok_or_else(|| invalid("status", &self.status))?,
            original_key: ObjectKey::parse(self.original_key.clone())
                .map_err(|e| invalid("original key", &e))?,
            kind,
            result,
            failure,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn status_text(status: PredictionStatus) -> &'static str {
    match status {
        PredictionStatus::Pending => "pending",
        PredictionStatus::Succeeded => "succeeded",
        PredictionStatus::Failed => "failed",
    }
}

fn parse_status(text: &str) -> Option<PredictionStatus> {
    Some(match text {
        "pending" => PredictionStatus::Pending,
        "succeeded" => PredictionStatus::Succeeded,
        "failed" => PredictionStatus::Failed,
        _ => return None,
    })
}

fn claim_key_text(key: ClaimKey) -> String {
    match key {
        ClaimKey::Update(bot, update) => format!("update:{bot}:{update}"),
        ClaimKey::Reply(prediction) => format!("reply:{prediction}"),
    }
}

/// When a finished claim is forgotten: update ids are only worth
/// remembering while Telegram might deliver the update again.
fn done_expiry(key: ClaimKey, now: i64) -> i64 {
    match key {
        ClaimKey::Update(..) => now.saturating_add(duration_ms(UPDATE_DEDUPE_TTL)),
        ClaimKey::Reply(_) => now.saturating_add(duration_ms(RECORD_RETENTION)),
    }
}

fn not_found(id: PredictionId) -> StorageError {
    StorageError::NotFound(format!("prediction {id}"))
}

#[async_trait]
impl PredictionTable for LocalTable {
    async fn create(&self, record: &PredictionRecord) -> Result<()> {
        let id = record.prediction_id;
        let summary = record
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::invalid_from(format!("prediction {id}: result"), e))?;
        let kind = serde_json::to_string(&record.kind)
            .map_err(|e| StorageError::invalid_from(format!("prediction {id}: kind"), e))?;
        let record = record.clone();
        self.db
            .call(move |conn| {
                let inserted = conn.execute(
                    &format!("INSERT INTO predictions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                    params![
                        record.prediction_id.to_string(),
                        record.chat_id.0,
                        status_text(record.status),
                        record.original_key.as_str(),
                        summary,
                        record.failure.map(|f| f.as_str()),
                        record.created_at,
                        record.updated_at,
                        kind,
                    ],
                );
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_constraint_violation(&e) => {
                        Err(StorageError::AlreadyExists(format!("prediction {id}")))
                    }
                    Err(e) => Err(sql_error(e)),
                }
            })
            .await
    }

    async fn save_result(&self, result: &JobResult) -> Result<bool> {
        let id = result.prediction_id();
        let json = serde_json::to_string(result)
            .map_err(|e| StorageError::invalid_from(format!("prediction {id}: result"), e))?;
        self.db
            .write(move |tx| {
                let stored = tx
                    .execute(
                        "UPDATE predictions
                         SET summary = ?1, status = 'succeeded', failure = NULL, updated_at = ?2
                         WHERE prediction_id = ?3 AND summary IS NULL",
                        params![json, polybot_domain::now_epoch(), id.to_string()],
                    )
                    .map_err(sql_error)?
                    == 1;
                if !stored && !exists(tx, id)? {
                    return Err(not_found(id));
                }
                Ok(stored)
            })
            .await
    }

    async fn save_failure(&self, id: PredictionId, kind: FailureKind) -> Result<()> {
        self.db
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE predictions SET status = 'failed', failure = ?1, updated_at = ?2
                         WHERE prediction_id = ?3 AND status <> 'succeeded'",
                        params![kind.as_str(), polybot_domain::now_epoch(), id.to_string()],
                    )
                    .map_err(sql_error)?;
                // Nothing changed: either it already succeeded (fine) or
                // there is no such prediction.
                if changed == 0 && !exists(tx, id)? {
                    return Err(not_found(id));
                }
                Ok(())
            })
            .await
    }

    async fn get(&self, id: PredictionId) -> Result<Option<PredictionRecord>> {
        let row = self
            .db
            .call(move |conn| {
                conn.query_row(
                    &format!("SELECT {COLUMNS} FROM predictions WHERE prediction_id = ?1"),
                    params![id.to_string()],
                    Row::read,
                )
                .optional()
                .map_err(sql_error)
            })
            .await?;
        row.map(Row::parse).transpose()
    }

    async fn list_by_chat(&self, chat: ChatId, limit: usize) -> Result<Vec<PredictionRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .call(move |conn| {
                let mut select = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM predictions WHERE chat_id = ?1
                         ORDER BY created_at DESC, rowid DESC LIMIT ?2"
                    ))
                    .map_err(sql_error)?;
                select
                    .query_map(params![chat.0, limit], Row::read)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(sql_error)
            })
            .await?;
        rows.into_iter().map(Row::parse).collect()
    }

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
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO claims (claim_key, state, expires_at) VALUES (?1, 'done', ?2)
                     ON CONFLICT (claim_key) DO UPDATE SET state = 'done', expires_at = ?2",
                    params![key_text, done_expiry(key, now)],
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

    async fn attach_notice(&self, id: PredictionId, message_id: i64) -> Result<bool> {
        self.db
            .write(move |tx| {
                let now = now_ms();
                let changed = tx
                    .execute(
                        "INSERT INTO notices (prediction_id, message_id, answered, expires_at)
                         VALUES (?1, ?2, 0, ?3)
                         ON CONFLICT (prediction_id) DO UPDATE SET message_id = ?2
                         WHERE answered = 0",
                        params![
                            id.to_string(),
                            message_id,
                            now.saturating_add(duration_ms(RECORD_RETENTION))
                        ],
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
                    params![
                        id.to_string(),
                        now_ms().saturating_add(duration_ms(RECORD_RETENTION))
                    ],
                )
                .map_err(sql_error)?;
                Ok(attached)
            })
            .await
    }

    async fn join_album(&self, key: &AlbumKey, photo: &AlbumPhoto) -> Result<AlbumJoin> {
        let album = key.to_string();
        let photo = photo.clone();
        self.db
            .write(move |tx| {
                let row = tx
                    .query_row(
                        "SELECT closed, photos FROM albums WHERE album_key = ?1",
                        params![album],
                        |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)),
                    )
                    .optional()
                    .map_err(sql_error)?;
                let mut photos: std::collections::BTreeMap<i64, AlbumPhoto> = match row {
                    Some((true, _)) => return Ok(AlbumJoin::TooLate),
                    Some((false, json)) => serde_json::from_str(&json).map_err(|e| {
                        StorageError::invalid_from(format!("album {album}: stored photos"), e)
                    })?,
                    None => Default::default(),
                };
                photos.insert(photo.message_id, photo);
                let json = serde_json::to_string(&photos)
                    .map_err(|e| StorageError::invalid_from(format!("album {album}"), e))?;
                let now = now_ms();
                tx.execute(
                    "INSERT INTO albums (album_key, last_joined, photos, expires_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (album_key) DO UPDATE SET last_joined = ?2, photos = ?3",
                    params![
                        album,
                        now,
                        json,
                        now.saturating_add(duration_ms(UPDATE_DEDUPE_TTL))
                    ],
                )
                .map_err(sql_error)?;
                Ok(AlbumJoin::Joined)
            })
            .await
    }

    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose> {
        let album = key.to_string();
        self.db
            .write(move |tx| {
                let row = tx
                    .query_row(
                        "SELECT closed, last_joined, photos FROM albums WHERE album_key = ?1",
                        params![album],
                        |r| {
                            Ok((
                                r.get::<_, bool>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(sql_error)?;
                let Some((false, last_joined, json)) = row else {
                    return Ok(AlbumClose::AlreadyClosed);
                };
                let quiet_ms = duration_ms(quiet);
                let since = now_ms().saturating_sub(last_joined);
                if since < quiet_ms {
                    let wait = u64::try_from(quiet_ms - since).unwrap_or(0);
                    return Ok(AlbumClose::Open {
                        wait: Duration::from_millis(wait),
                    });
                }
                tx.execute(
                    "UPDATE albums SET closed = 1 WHERE album_key = ?1",
                    params![album],
                )
                .map_err(sql_error)?;
                let photos: std::collections::BTreeMap<i64, AlbumPhoto> =
                    serde_json::from_str(&json).map_err(|e| {
                        StorageError::invalid_from(format!("album {album}: stored photos"), e)
                    })?;
                Ok(AlbumClose::Closed(photos.into_values().collect()))
            })
            .await
    }

    async fn check(&self) -> Result<()> {
        self.db
            .call(|conn| {
                conn.query_row("SELECT COUNT(*) FROM claims WHERE 0", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(drop)
                .map_err(sql_error)
            })
            .await
    }
}

fn exists(tx: &rusqlite::Transaction<'_>, id: PredictionId) -> Result<bool> {
    tx.query_row(
        "SELECT 1 FROM predictions WHERE prediction_id = ?1",
        params![id.to_string()],
        |_| Ok(()),
    )
    .optional()
    .map(|row| row.is_some())
    .map_err(sql_error)
}
