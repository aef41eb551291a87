//! Embedded adapters: everything under one data folder, surviving restarts.
//!
//! Layout of a data folder:
//!
//! ```text
//! <data_dir>/
//!   objects/<key>        one file per object (see [`LocalObjectStore`])
//!   objects.tmp/         half-written objects, renamed into place when whole
//!   polybot.sqlite3      queues, predictions and claims (WAL mode, so also
//!   polybot.sqlite3-wal  -wal and -shm files while it is open)
//! ```
//!
//! Nothing here expires by itself: [`crate::Backends::sweep_expired`]
//! deletes the pictures and records past the retention
//! ([`LocalOptions::retention`]) when the service calls it.
//!
//! Several processes may share one data folder (a gateway and a detector
//! worker started separately, say): SQLite serialises their writes, every
//! conditional change is one transaction, and queue receivers poll the file
//! so they see messages another process sent. Within one process, queue
//! handles on the same file also wake each other at once.

mod objects;
mod queue;
mod sqlite;
mod table;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use objects::LocalObjectStore;
pub use queue::{LocalQueue, QueueConfig, Redrive};
pub use table::LocalTable;

use crate::{Backends, DEFAULT_RETENTION, Result, Retention, StorageError};

/// Folder, under the data folder, that holds the objects.
pub const OBJECTS_DIR: &str = "objects";
/// SQLite database file, under the data folder, for queues and the table.
pub const DATABASE_FILE: &str = "polybot.sqlite3";
/// Name of the jobs queue in the database.
pub const JOBS_QUEUE: &str = "jobs";
/// Name of the jobs queue's dead-letter queue in the database.
pub const DEAD_LETTER_QUEUE: &str = "jobs-dead";

/// Settings of the embedded backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// How long a received job stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// Receives after which a job moves to the dead-letter queue (SQS
    /// `maxReceiveCount`): it is moved instead of being received for the
    /// `max_receives + 1`-th time. At least 1.
    pub max_receives: u32,
    /// How long records and pictures are kept.
    pub retention: Retention,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Opens (creating if needed) the embedded backends in `data_dir`: the
/// object store, the `jobs` queue with its `jobs-dead` dead-letter queue,
/// and the prediction table.
///
/// This does blocking file IO (creating folders, opening SQLite); call it
/// once at start-up, before serving, or inside `spawn_blocking`.
pub fn open(data_dir: &Path, options: LocalOptions) -> Result<Backends> {
    let objects = LocalObjectStore::open(data_dir)?.with_retention(options.retention);
    let db = sqlite::Db::open(data_dir)?;
    let jobs = LocalQueue::with_db(
        db.clone(),
        JOBS_QUEUE,
        QueueConfig {
            visibility_timeout: options.visibility_timeout,
            redrive: Some(Redrive {
                dead_letter_queue: DEAD_LETTER_QUEUE.to_owned(),
                max_receives: options.max_receives,
            }),
        },
    )?;
    let dead_letters = LocalQueue::with_db(
        db,
        DEAD_LETTER_QUEUE,
        QueueConfig {
            visibility_timeout: options.visibility_timeout,
            redrive: None,
        },
    )?;
    // The table gets its own connection, so that queue polling and table
    // writes in one process do not wait for each other's lock.
    let table = LocalTable::open(data_dir)?.with_retention(options.retention);
    Ok(Backends {
        objects: Arc::new(objects),
        jobs: Arc::new(jobs),
        dead_letters: Arc::new(dead_letters),
        table: Arc::new(table),
        retention: options.retention,
    })
}

/// Creates the data folder, with an error that names it.
fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        StorageError::config_from(
            format!("cannot create the data folder {}", data_dir.display()),
            e,
        )
    })
}

/// Milliseconds since the Unix epoch: the clock that visibility timeouts,
/// leases and expiries are measured against. Wall-clock time rather than a
/// monotonic clock because other processes, and this one after a restart,
/// must read the same deadlines from the database.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(duration_ms)
        .unwrap_or_default()
}

/// A duration in whole milliseconds, saturating instead of overflowing.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
