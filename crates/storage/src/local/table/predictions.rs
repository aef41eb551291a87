//! [`Predictions`] on SQLite: the `predictions` table, one row a request,
//! kept until its `expires_at` (its creation plus the table's retention)
//! and then swept ([`crate::Erasure::sweep_expired`]). Every write after
//! `create` is an UPDATE, so a prediction erased with its chat is never
//! written back.

use async_trait::async_trait;
use polybot_domain::{
    Action, ChatId, FailureKind, JobResult, ObjectKey, PredictionId, PredictionRecord,
};
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::duration_ms;
use crate::local::sqlite::{is_constraint_violation, sql_error};
use crate::table::{parse_status, status_text};
use crate::{ListCursor, Predictions, Result, Saved, StorageError, TimeWindow};

/// The columns a record is read from (and, with `expires_at`, written to).
const COLUMNS: &str = "prediction_id, chat_id, status, original_key, summary, failure, \
     created_at, updated_at, kind, answer_file_id";

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
    answer_file_id: Option<String>,
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
            answer_file_id: r.get(9)?,
        })
    }

    fn parse(self) -> Result<PredictionRecord> {
        let unreadable = |what: &str| {
            format!(
                "prediction {}: stored {what} is unreadable",
                self.prediction_id
            )
        };
        // Text that is no error of a parser's: say what it was.
        let invalid =
            |what: &str, text: &str| StorageError::invalid(format!("{}: {text}", unreadable(what)));
        let result = match &self.summary {
            Some(json) => Some(
                serde_json::from_str::<JobResult>(json)
                    .map_err(|e| StorageError::invalid_from(unreadable("result"), e))?,
            ),
            None => None,
        };
        let kind = match &self.kind {
            Some(json) => serde_json::from_str::<Action>(json)
                .map_err(|e| StorageError::invalid_from(unreadable("kind"), e))?,
            None => Action::Detect,
        };
        let failure = match &self.failure {
            Some(text) => Some(FailureKind::parse(text).ok_or_else(|| invalid("failure", text))?),
            None => None,
        };
        Ok(PredictionRecord {
            prediction_id: self
                .prediction_id
                .parse()
                .map_err(|e| StorageError::invalid_from(unreadable("id"), e))?,
            chat_id: ChatId(self.chat_id),
            status: parse_status(&self.status).ok_or_else(|| invalid("status", &self.status))?,
            original_key: ObjectKey::parse(self.original_key.clone())
                .map_err(|e| StorageError::invalid_from(unreadable("original key"), e))?,
            kind,
            result,
            failure,
            created_at: self.created_at,
            updated_at: self.updated_at,
            answer_file_id: self.answer_file_id,
        })
    }
}

fn not_found(id: PredictionId) -> StorageError {
    StorageError::NotFound(format!("prediction {id}"))
}

#[async_trait]
impl Predictions for LocalTable {
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
        // As on DynamoDB, a record is kept the retention from its creation.
        let created_ms = (record.created_at * 1000.0) as i64;
        let expires_at = created_ms.saturating_add(duration_ms(self.retention.as_duration()));
        self.db
            .call(move |conn| {
                let inserted = conn.execute(
                    &format!(
                        "INSERT INTO predictions ({COLUMNS}, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
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
                        record.answer_file_id,
                        expires_at,
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

    async fn save_result(&self, result: &JobResult) -> Result<Saved> {
        let id = result.prediction_id();
        let json = serde_json::to_string(result)
            .map_err(|e| StorageError::invalid_from(format!("prediction {id}: result"), e))?;
        self.db
            .write(move |tx| {
                let stored = tx
                    .execute(
                        "UPDATE predictions
                         SET summary = ?1, status = 'succeeded', failure = NULL, updated_at = ?2
                         WHERE prediction_id = ?3 AND summary IS NULL AND status <> 'failed'",
                        params![json, polybot_domain::now_epoch(), id.to_string()],
                    )
                    .map_err(sql_error)?
                    == 1;
                Ok(if stored {
                    Saved::Stored
                } else if exists(tx, id)? {
                    Saved::Unchanged
                } else {
                    Saved::Gone
                })
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

    async fn set_answer_file(&self, id: PredictionId, file_id: &str) -> Result<()> {
        let file_id = file_id.to_owned();
        self.db
            .call(move |conn| {
                // No row changed: the prediction is gone, and stays gone.
                conn.execute(
                    "UPDATE predictions SET answer_file_id = ?1 WHERE prediction_id = ?2",
                    params![file_id, id.to_string()],
                )
                .map(drop)
                .map_err(sql_error)
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

    async fn chat_predictions(
        &self,
        chat: ChatId,
        window: TimeWindow,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<Vec<PredictionRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // NULL bounds stand for "no bound"; the id compares as stored text,
        // which orders UUIDs as their bytes do (lowercase hex, fixed width).
        let from = window.from;
        let until = window.until;
        let (after_time, after_id) = match after {
            Some(c) => (Some(c.created_at), Some(c.id.to_string())),
            None => (None, None),
        };
        let rows = self
            .db
            .call(move |conn| {
                let mut select = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM predictions WHERE chat_id = ?1
                           AND (?2 IS NULL OR created_at >= ?2)
                           AND (?3 IS NULL OR created_at < ?3)
                           AND (?4 IS NULL OR created_at < ?4
                                OR (created_at = ?4 AND prediction_id < ?5))
                         ORDER BY created_at DESC, prediction_id DESC LIMIT ?6"
                    ))
                    .map_err(sql_error)?;
                select
                    .query_map(
                        params![chat.0, from, until, after_time, after_id, limit],
                        Row::read,
                    )
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(sql_error)
            })
            .await?;
        rows.into_iter().map(Row::parse).collect()
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
