//! The prediction table on SQLite, one file per concern: [`Predictions`]
//! (`predictions.rs`), [`Leases`] (`leases.rs`), [`Notices`]
//! (`notices.rs`), [`Albums`] (`albums.rs`), [`SentAnswers`]
//! (`answers.rs`), [`Windows`] (`windows.rs`), [`DeferredUpdates`]
//! (`deferred.rs`), [`Preferences`] (`settings.rs`), [`Backlog`]
//! (`backlog.rs`) and [`Erasure`] (`erasure.rs`), each in its own SQL
//! table (or two) of the data folder's database (the schema is in
//! `local/sqlite.rs`).
//!
//! Every conditional change is a single conditional statement or one
//! IMMEDIATE transaction (which takes the database's write lock before
//! reading), so two processes sharing the data folder cannot both win a
//! create, a summary or a claim, nor lose one of two settings changes.
//!
//! [`Predictions`]: crate::Predictions
//! [`Leases`]: crate::Leases
//! [`Notices`]: crate::Notices
//! [`Albums`]: crate::Albums
//! [`SentAnswers`]: crate::SentAnswers
//! [`Windows`]: crate::Windows
//! [`DeferredUpdates`]: crate::DeferredUpdates
//! [`Preferences`]: crate::Preferences
//! [`Backlog`]: crate::Backlog
//! [`Erasure`]: crate::Erasure

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::sqlite::{Db, sql_error};
use crate::local::duration_ms;
use crate::{PredictionTable, Result, Retention};

mod albums;
mod answers;
mod backlog;
mod deferred;
mod erasure;
mod leases;
mod notices;
mod predictions;
mod settings;
mod windows;

/// The prediction table in the data folder's database. Cheap to clone.
#[derive(Clone)]
pub struct LocalTable {
    db: Arc<Db>,
    /// How long records, claims, notices and answers are kept.
    retention: Retention,
}

impl std::fmt::Debug for LocalTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTable")
            .field("database", &self.db.path())
            .field("retention", &self.retention)
            .finish()
    }
}

impl LocalTable {
    /// Opens the table in the database of `data_dir`, creating the folder
    /// and database if needed. Blocking: call at start-up.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Ok(Self {
            db: Db::open(data_dir)?,
            retention: Retention::default(),
        })
    }

    /// The same table, keeping records for `retention`.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How long a record is kept, in milliseconds (the columns' unit).
    fn retention_ms(&self) -> i64 {
        duration_ms(self.retention.as_duration())
    }

    /// The database file the table lives in.
    pub fn database(&self) -> &Path {
        self.db.path()
    }
}

#[async_trait]
impl PredictionTable for LocalTable {
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
