//! A conformance suite for the storage traits, shared by every backend.
//!
//! Each function drives one trait object through the behaviour the rest
//! of Polybot relies on and panics, with a message saying which promise was
//! broken, at the first deviation: it is test support, called from the
//! adapters' integration tests (`tests/local.rs` here; the AWS adapter's
//! tests against a moto server).
//!
//! Every key, id and message body carries a fresh random run id, so the
//! object store and table suites can run against a shared server, in
//! parallel, without cleaning up. Queues are different: [`job_queue`]
//! counts messages, so it needs a queue and dead-letter queue that start
//! empty and that nobody else uses while it runs (create them with unique
//! names).
//!
//! Only portable behaviour is asserted. For example, SQS documents that a
//! delete with a stale receipt "succeeds, but the message might not be
//! deleted", and moto does delete it, so the suite only checks that such a
//! call does not break the current receipt; the local adapter's stricter
//! promise is tested in its own tests.
//!
//! One file per port, and for the prediction table one per concern
//! ([`predictions()`], [`leases()`], [`notices()`], [`albums()`],
//! [`answers()`], [`windows()`], [`deferred()`], [`settings()`],
//! [`backlog()`], [`erasure()`]); [`prediction_table`] runs them all on one
//! table, and [`object_store`] includes [`object_erasure`]. The retention
//! clock ([`retention()`]) needs a table opened with a chosen retention and
//! a look at what the adapter stored ([`ExpiryProbe`]), so each adapter's
//! tests call it themselves. The
//! model's classes ([`settings()`]) and the backlog ([`backlog()`]) are one
//! per table, so those suites need a table nobody else writes them in.

use crate::PredictionTable;

mod albums;
mod answers;
mod backlog;
mod deferred;
mod erasure;
mod leases;
mod notices;
mod objects;
mod predictions;
mod queue;
mod settings;
mod windows;

pub use albums::albums;
pub use answers::answers;
pub use backlog::backlog;
pub use deferred::deferred;
pub use erasure::{ExpiryProbe, Retained, erasure, object_erasure, retention};
pub use leases::leases;
pub use notices::notices;
pub use objects::object_store;
pub use predictions::{pending, predictions, summary};
pub use queue::job_queue;
pub use settings::settings;
pub use windows::windows;

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A random positive id, for chats and updates nobody else uses.
fn random_i64() -> i64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    (i64::from_le_bytes(first) & i64::MAX).max(1)
}

/// The [`PredictionTable`] contract: its readiness check, then every
/// concern's contract on the one table (a fresh one: see [`settings()`]).
pub async fn prediction_table(table: &dyn PredictionTable) {
    table
        .check()
        .await
        .expect("table: check() must succeed on a working table");
    albums(table).await;
    predictions(table).await;
    leases(table).await;
    notices(table).await;
    answers(table).await;
    windows(table).await;
    deferred(table).await;
    settings(table).await;
    backlog(table).await;
    erasure(table).await;
}
