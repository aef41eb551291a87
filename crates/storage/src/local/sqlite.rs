//! The SQLite database shared by the local queues and table.
//!
//! One connection per handle, guarded by a mutex and only ever used from
//! `spawn_blocking`, so SQLite's blocking calls (including waiting for
//! another process's lock) never stall the async runtime. WAL mode lets
//! readers proceed while another process writes, and the busy timeout makes
//! a writer wait for the lock instead of failing at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use crate::{BoxError, Result, StorageError};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema version stored in `PRAGMA user_version`; a database written by a
/// newer schema is refused rather than misread. Only a change to an existing
/// table (a new column an older build would misread) raises it: a new
/// table (`CREATE TABLE IF NOT EXISTS` below) does not, since older builds
/// simply never look at it and so can still open the folder.
const SCHEMA_VERSION: i64 = 6;

/// Every table, for queues and the prediction table alike, so whichever
/// opens the file first creates everything. Times are milliseconds since
/// the Unix epoch unless named otherwise.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    attributes    TEXT    NOT NULL,  -- JSON object of strings
    sent_at       REAL    NOT NULL,  -- seconds since the epoch
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,              -- token of the latest receive
    tenant        TEXT               -- whom it is for, for fair receives (schema 5; NULL: its own)
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);

CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT    PRIMARY KEY,
    chat_id       INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    original_key  TEXT    NOT NULL,
    summary       TEXT,              -- JSON of the JobResult
    failure       TEXT,
    created_at    REAL    NOT NULL,  -- seconds since the epoch
    updated_at    REAL    NOT NULL,  -- seconds since the epoch
    kind          TEXT,              -- JSON of the JobKind (schema 3; NULL: detect)
    answer_file_id TEXT,             -- Telegram file_id of the answer's picture (schema 6)
    expires_at    INTEGER NOT NULL   -- when the row is forgotten (schema 6)
);
CREATE INDEX IF NOT EXISTS predictions_by_chat ON predictions (chat_id, created_at);

CREATE TABLE IF NOT EXISTS claims (
    claim_key  TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,     -- 'leased' or 'done'
    expires_at INTEGER NOT NULL,     -- lease end, or when a done claim is forgotten
    holder     TEXT                  -- the lease's LeaseId (schema 2)
);
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at);
CREATE TABLE IF NOT EXISTS albums (
    album_key   TEXT    PRIMARY KEY,  -- chat:media_group_id
    last_joined INTEGER NOT NULL,     -- when the latest photo joined
    closed      INTEGER NOT NULL DEFAULT 0,
    photos      TEXT    NOT NULL,     -- JSON object: message id -> AlbumMember
    expires_at  INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0,  -- a closer's claim (schema 4)
    finished    INTEGER NOT NULL DEFAULT 0     -- it became its request (schema 4)
);
CREATE TABLE IF NOT EXISTS notices (
    prediction_id TEXT    PRIMARY KEY,
    message_id    INTEGER,           -- the notice, once sent
    answered      INTEGER NOT NULL DEFAULT 0,
    expires_at    INTEGER NOT NULL   -- when the row is forgotten
);
CREATE TABLE IF NOT EXISTS answers (
    chat_id       INTEGER NOT NULL,
    message_id    INTEGER NOT NULL,  -- the bot's answer in the chat
    prediction_id TEXT    NOT NULL,
    original_key  TEXT    NOT NULL,  -- the photo the answer was made from
    expires_at    INTEGER NOT NULL,  -- when the row is forgotten
    PRIMARY KEY (chat_id, message_id)
);
CREATE TABLE IF NOT EXISTS tenants (
    queue         TEXT    NOT NULL,
    tenant        TEXT    NOT NULL,
    served_at     INTEGER NOT NULL,  -- when a message of the tenant was last received
    PRIMARY KEY (queue, tenant)
);
CREATE TABLE IF NOT EXISTS deferred (
    bot_id        INTEGER NOT NULL,
    update_id     INTEGER NOT NULL,
    body          TEXT    NOT NULL,  -- the update's JSON
    due_at        INTEGER NOT NULL,  -- when another gateway may take it up
    expires_at    INTEGER NOT NULL,  -- when the row is forgotten, answered or not
    PRIMARY KEY (bot_id, update_id)
);
CREATE TABLE IF NOT EXISTS window_members (
    window_key    TEXT    NOT NULL,  -- what is counted, and the window's start
    member        TEXT    NOT NULL,  -- one counted thing (an update)
    expires_at    INTEGER NOT NULL,  -- when the row is forgotten
    PRIMARY KEY (window_key, member)
);
CREATE TABLE IF NOT EXISTS chat_settings (
    chat_id       INTEGER PRIMARY KEY,
    settings      TEXT    NOT NULL,  -- JSON of the chat's ChatSettings ('{}': the defaults)
    version       INTEGER NOT NULL   -- changes made so far, as DynamoDB's item counts them
);
CREATE TABLE IF NOT EXISTS model_classes (
    id            INTEGER PRIMARY KEY CHECK (id = 1),  -- one row: the model's
    classes       TEXT    NOT NULL,  -- JSON array of its class names, in its order
    updated_at    INTEGER NOT NULL   -- when a detector last published them
);
CREATE TABLE IF NOT EXISTS backlog (
    prediction_id TEXT    PRIMARY KEY,  -- a queued job that costs more than one photo
    extra         INTEGER NOT NULL,  -- its cost beyond one photo, in photos
    until         REAL    NOT NULL   -- seconds since the epoch: when it stops counting
);
";

/// What the error messages call this backend.
pub(super) const BACKEND: &str = "local database";

/// One connection to the data folder's database.
pub(super) struct Db {
    /// Canonical path of the database file: also the key under which queue
    /// handles in this process find each other's wake-up signals.
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database in `data_dir`.
    pub(super) fn open(data_dir: &Path) -> Result<Arc<Self>> {
        super::create_data_dir(data_dir)?;
        let path = data_dir.join(super::DATABASE_FILE);
        let config_error = |e: BoxError| {
            StorageError::config_from(
                format!(
                    "cannot open the database {} in the data folder {}",
                    path.display(),
                    data_dir.display()
                ),
                e,
            )
        };
        let mut conn = Connection::open(&path).map_err(|e| config_error(e.into()))?;
        init(&mut conn).map_err(|e| config_error(e.into()))?;
        let path = std::fs::canonicalize(&path).map_err(|e| config_error(e.into()))?;
        Ok(Arc::new(Self {
            path,
            conn: Mutex::new(conn),
        }))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on a blocking thread.
    pub(super) async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held left no transaction open
            // (rusqlite rolls back on drop while unwinding), so the
            // connection is still usable: recover it from the poison.
            let mut conn = db.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        });
        match task.await {
            Ok(result) => result,
            // A panic in our closure is a bug: let it surface as one.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StorageError::unavailable(
                BACKEND,
                "the database task was cancelled",
                e,
            )),
        }
    }

    /// Runs `f` in an immediate (write-locking) transaction on a blocking
    /// thread, committing when it returns `Ok`; an `Err` rolls back.
    pub(super) async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql_error)?;
            Ok(out)
        })
        .await
    }
}

/// Connection settings and schema.
fn init(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems (network shares) cannot do WAL; SQLite then
        // keeps its rollback journal, which is still correct, only slower
        // when several processes share the file.
        tracing::warn!(journal_mode = %mode, "SQLite could not switch to WAL mode");
    }
    // FULL: a message acknowledged to its sender survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the database has schema version {version}, this build understands up to {SCHEMA_VERSION}"
            )),
        ));
    }
    if version == 1 {
        // Schema 2 names each lease's holder. Leases taken by version-1
        // builds have none; they are released only by expiring.
        tx.execute_batch("ALTER TABLE claims ADD COLUMN holder TEXT")?;
    }
    tx.execute_batch(SCHEMA)?;
    // Schema 3 stores each request's kind; older rows are detections. (A
    // table the line above just created has the column already.)
    let has_kind: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('predictions') WHERE name = 'kind'",
        [],
        |row| row.get(0),
    )?;
    if !has_kind {
        tx.execute_batch("ALTER TABLE predictions ADD COLUMN kind TEXT")?;
    }
    // Schema 4 keeps an album's close durable: older builds finished an
    // album when they closed it.
    let has_finished: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('albums') WHERE name = 'finished'",
        [],
        |row| row.get(0),
    )?;
    if !has_finished {
        tx.execute_batch(
            "ALTER TABLE albums ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE albums ADD COLUMN finished INTEGER NOT NULL DEFAULT 0;
             UPDATE albums SET finished = closed;",
        )?;
    }
    // Schema 5 names each message's tenant, so receives serve tenants
    // fairly; older messages are each a tenant of their own.
    let has_tenant: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'tenant'",
        [],
        |row| row.get(0),
    )?;
    if !has_tenant {
        tx.execute_batch("ALTER TABLE messages ADD COLUMN tenant TEXT")?;
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_tenant ON messages (queue, tenant, visible_at)",
    )?;
    // Schema 6 keeps each request's answer file and its expiry (the
    // embedded backend forgets records past the retention too). Older
    // rows were written to be kept 30 days, as on AWS.
    let has_expiry: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('predictions') WHERE name = 'expires_at'",
        [],
        |row| row.get(0),
    )?;
    if !has_expiry {
        tx.execute_batch(&format!(
            "ALTER TABLE predictions ADD COLUMN answer_file_id TEXT;
             ALTER TABLE predictions ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
             UPDATE predictions SET expires_at = CAST(created_at * 1000 AS INTEGER) + {};",
            super::duration_ms(crate::DEFAULT_RETENTION.as_duration())
        ))?;
    }
    tx.execute_batch("CREATE INDEX IF NOT EXISTS predictions_expiry ON predictions (expires_at)")?;
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()
}

/// Maps a SQLite error to whether a retry can help.
pub(super) fn sql_error(e: rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::TypeMismatch) => {
            StorageError::invalid_from("the database", e)
        }
        // Locked past the busy timeout, disk full, IO errors and the like:
        // conditions that pass.
        Some(_) => StorageError::unavailable(BACKEND, "the database", e),
        // Not an error from SQLite itself: a value of the wrong type in a
        // column and similar, which no retry fixes.
        None => StorageError::invalid_from("the database", e),
    }
}

/// Whether the error is a UNIQUE or PRIMARY KEY violation.
pub(super) fn is_constraint_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}
