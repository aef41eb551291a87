//! A job queue with SQS semantics on SQLite.
//!
//! Each message is a row of the `messages` table, tagged with its queue's
//! name, so a queue and its dead-letter queue live in one database and a
//! dead-lettered message moves with one UPDATE. A message is visible when
//! its `visible_at` has passed; receiving it pushes `visible_at` forward by
//! the visibility timeout, counts the receive and stores a fresh random
//! token. The receipt handed out is `"<row id>:<token>"`, and delete and
//! heartbeat only act on the row whose token still matches: after the
//! message was delivered again, an earlier receipt is stale.
//!
//! Stale receipts, as in SQS:
//! - `delete` with a stale receipt is a no-op that returns `Ok` (logged at
//!   warn level). SQS documents the same ("the request succeeds, but the
//!   message might not be deleted"); the worker that lost its lease has no
//!   better option than carrying on.
//! - `set_visibility` with a stale receipt fails with
//!   [`StorageError::NotFound`]: a worker heartbeating a message that was
//!   handed to someone else should know it lost it. With the latest
//!   receipt it works even after the timeout ran out, as long as nobody
//!   received the message since (the holder simply keeps it).
//!
//! Fair receives: a message may name its tenant (a chat); a receive takes
//! the oldest visible message of the tenant with the fewest messages in
//! flight, and among those of the tenant served longest ago (the `tenants`
//! table remembers when each was last served), as SQS fair queues favour
//! quiet tenants over a noisy one. So one chat's backlog delays another
//! chat's job by about one job time per worker lane, even with one lane.
//!
//! Redrive: a queue opened with a [`Redrive`] moves a message to the
//! dead-letter queue when a receive finds it visible with `receive_count`
//! already at `max_receives` (SQS `maxReceiveCount`). The move keeps body,
//! attributes, `sent_at` and the receive count, as SQS does.
//!
//! Long polling wakes on a per-database, per-queue [`Notify`] that every
//! handle in this process shares, and also re-reads the database every
//! [`POLL_INTERVAL`] so that messages sent by another process, or whose
//! visibility timeout ran out, are found.
//!
//! A receive dropped (cancelled) while its database call runs may still
//! have taken messages; they come back after the visibility timeout, just
//! as when an SQS response is lost on the way.
//!
//! The visibility timeout and redrive policy are properties of the handle,
//! not stored in the database: processes sharing a queue should open it with
//! the same settings.
//!
//! Unlike SQS, there is no message size limit, no retention period and no
//! cap on the visibility timeout; `max` is clamped to SQS's 1..=10.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::sqlite::{Db, sql_error};
use super::{duration_ms, now_ms};
use crate::{Attributes, Delivery, JobQueue, QueueStats, Receipt, Result, StorageError, Tenant};

/// How often a waiting receive re-reads the database, to see messages from
/// other processes and messages whose visibility timeout ran out.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// SQS's limit on messages per receive.
const MAX_BATCH: usize = 10;

/// Settings of one queue handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a received message stays invisible before it is delivered
    /// again, unless deleted or its visibility is changed.
    pub visibility_timeout: Duration,
    /// Where messages go after too many receives; `None` keeps them forever.
    pub redrive: Option<Redrive>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            redrive: None,
        }
    }
}

/// A redrive policy, as SQS's `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// Name of the dead-letter queue, in the same database.
    pub dead_letter_queue: String,
    /// A message received this many times moves to the dead-letter queue
    /// instead of being received again. At least 1.
    pub max_receives: u32,
}

/// A named queue in the data folder's database. Cheap to clone.
#[derive(Clone)]
pub struct LocalQueue {
    db: Arc<Db>,
    name: Arc<str>,
    visibility_ms: i64,
    redrive: Option<Redrive>,
    /// Woken when a message may have become visible in this queue.
    wake: Arc<Notify>,
    /// The dead-letter queue's wake-up, told when messages move there.
    dead_letter_wake: Option<Arc<Notify>>,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue")
            .field("database", &self.db.path())
            .field("name", &self.name)
            .field("visibility_ms", &self.visibility_ms)
            .field("redrive", &self.redrive)
            .finish()
    }
}

impl LocalQueue {
    /// Opens the queue `name` in the database of `data_dir`, creating the
    /// folder and database if needed. Blocking: call at start-up.
    pub fn open(data_dir: &Path, name: &str, config: QueueConfig) -> Result<Self> {
        Self::with_db(Db::open(data_dir)?, name, config)
    }

    pub(super) fn with_db(db: Arc<Db>, name: &str, config: QueueConfig) -> Result<Self> {
        if name.is_empty() {
            return Err(StorageError::config("a queue name must not be empty"));
        }
        if let Some(redrive) = &config.redrive {
            if redrive.max_receives == 0 {
                return Err(StorageError::config(format!(
                    "max_receives of queue {name:?} must be at least 1"
                )));
            }
            if redrive.dead_letter_queue == name || redrive.dead_letter_queue.is_empty() {
                return Err(StorageError::config(format!(
                    "queue {name:?} needs a dead-letter queue with another, non-empty name, not {:?}",
                    redrive.dead_letter_queue
                )));
            }
        }
        let wake = waker(db.path(), name);
        let dead_letter_wake = config
            .redrive
            .as_ref()
            .map(|r| waker(db.path(), &r.dead_letter_queue));
        Ok(Self {
            name: name.into(),
            visibility_ms: duration_ms(config.visibility_timeout),
            redrive: config.redrive,
            wake,
            dead_letter_wake,
            db,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database file this queue lives in.
    pub fn database(&self) -> &Path {
        self.db.path()
    }

    /// One non-waiting receive attempt.
    async fn receive_now(&self, max: usize) -> Result<Vec<Delivery>> {
        let name = Arc::clone(&self.name);
        let visibility_ms = self.visibility_ms;
        let redrive = self.redrive.clone();
        let (deliveries, moved) = self
            .db
            .call(move |conn| {
                receive_rows(conn, &name, max, visibility_ms, redrive.as_ref()).map_err(sql_error)
            })
            .await?;
        if moved > 0
            && let (Some(wake), Some(redrive)) = (&self.dead_letter_wake, &self.redrive)
        {
            tracing::warn!(
                queue = %self.name,
                dead_letter_queue = %redrive.dead_letter_queue,
                count = moved,
                "moved messages received {} times to the dead-letter queue",
                redrive.max_receives
            );
            wake.notify_waiters();
        }
        Ok(deliveries)
    }

    fn parse_receipt(&self, receipt: &Receipt) -> Result<(i64, String)> {
        receipt
            .0
            .split_once(':')
            .and_then(|(id, token)| Some((id.parse().ok()?, token.to_owned())))
            .ok_or_else(|| {
                StorageError::invalid(format!(
                    "{:?} is not a receipt of the local queue {:?}",
                    receipt.0, self.name
                ))
            })
    }
}

/// The shared wake-up signal of one queue in one database file.
fn waker(db_path: &Path, queue: &str) -> Arc<Notify> {
    type Wakers = HashMap<(PathBuf, String), Weak<Notify>>;
    static WAKERS: LazyLock<Mutex<Wakers>> = LazyLock::new(Mutex::default);
    // The map holds nothing that a panic could leave half-updated.
    let mut wakers = WAKERS.lock().unwrap_or_else(PoisonError::into_inner);
    wakers.retain(|_, w| w.strong_count() > 0);
    let key = (db_path.to_path_buf(), queue.to_owned());
    if let Some(existing) = wakers.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    let notify = Arc::new(Notify::new());
    wakers.insert(key, Arc::downgrade(&notify));
    notify
}

/// Receives up to `max` visible messages in one transaction, moving those
/// over the redrive limit to the dead-letter queue on the way. Returns the
/// deliveries and how many messages were dead-lettered.
fn receive_rows(
    conn: &mut Connection,
    queue: &str,
    max: usize,
    visibility_ms: i64,
    redrive: Option<&Redrive>,
) -> rusqlite::Result<(Vec<Delivery>, usize)> {
    // Idle receivers poll often: a plain read first keeps them from taking
    // the write lock (and queueing behind, or in front of, real writers)
    // when there is nothing to receive.
    let any_visible: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at <= ?2)",
        )?
        .query_row(params![queue, now_ms()], |r| r.get(0))?;
    if !any_visible {
        return Ok((Vec::new(), 0));
    }
    // IMMEDIATE takes the write lock up front: a read that later upgrades
    // could fail with SQLITE_BUSY without waiting when another process
    // wrote in between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let invisible_until = now.saturating_add(visibility_ms);
    let mut deliveries = Vec::new();
    let mut moved = 0;
    let mut fair = FairOrder::load(&tx, queue, now)?;
    while deliveries.len() < max {
        let Some(head) = fair.next() else { break };
        let (body, attributes, sent_at, receive_count): (String, String, f64, i64) = tx
            .prepare_cached(
                "SELECT body, attributes, sent_at, receive_count FROM messages WHERE id = ?1",
            )?
            .query_row(params![head.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        let id = head.id;
        if let Some(r) = redrive
            && receive_count >= i64::from(r.max_receives)
        {
            // Visible again in the dead-letter queue at once, and no
            // receipt of the source queue works on it any more.
            tx.execute(
                "UPDATE messages SET queue = ?1, visible_at = ?2, receipt = NULL WHERE id = ?3",
                params![r.dead_letter_queue, now, id],
            )?;
            moved += 1;
            fair.advance(&tx, queue, now, head, false)?;
            continue;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        tx.execute(
            "UPDATE messages SET receive_count = receive_count + 1, receipt = ?1, visible_at = ?2
             WHERE id = ?3",
            params![token, invisible_until, id],
        )?;
        fair.advance(&tx, queue, now, head, true)?;
        let attributes = serde_json::from_str::<Attributes>(&attributes).unwrap_or_else(|e| {
            // We wrote this JSON ourselves; if it is damaged, deliver
            // the body anyway rather than block the queue on it.
            tracing::warn!(queue, message = id, error = %e, "unreadable message attributes");
            Attributes::new()
        });
        deliveries.push(Delivery {
            body,
            attributes,
            receipt: Receipt(format!("{id}:{token}")),
            receive_count: u32::try_from(receive_count + 1).unwrap_or(u32::MAX),
            sent_at,
        });
    }
    tx.commit()?;
    Ok((deliveries, moved))
}

/// The oldest visible message of one tenant (`None`: the messages sent
/// without one, each a tenant of its own, so never held back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    /// The tenant's messages in flight: fewer goes first.
    in_flight: i64,
    /// Then the tenant served longest ago (epoch ms; 0: never).
    served: i64,
    /// Then the older message.
    id: i64,
    tenant: Option<String>,
}

/// SQS fair queues' order: while one tenant has messages in flight, or was
/// served more recently, the others' oldest messages are received before
/// its next one. Receiving a message counts it in flight for the rest of
/// the batch, so a batch takes one message of each waiting tenant in turn.
struct FairOrder {
    heads: BinaryHeap<Reverse<Head>>,
    /// When this receive serves.
    now: i64,
}

impl FairOrder {
    fn load(tx: &rusqlite::Transaction<'_>, queue: &str, now: i64) -> rusqlite::Result<Self> {
        let in_flight: HashMap<String, i64> = tx
            .prepare_cached(
                "SELECT tenant, COUNT(*) FROM messages
                 WHERE queue = ?1 AND visible_at > ?2 AND tenant IS NOT NULL GROUP BY tenant",
            )?
            .query_map(params![queue, now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let heads = tx
            .prepare_cached(
                "SELECT m.tenant, MIN(m.id), COALESCE(t.served_at, 0) FROM messages m
                 LEFT JOIN tenants t ON t.queue = m.queue AND t.tenant = m.tenant
                 WHERE m.queue = ?1 AND m.visible_at <= ?2 GROUP BY m.tenant",
            )?
            .query_map(params![queue, now], |r| {
                let tenant: Option<String> = r.get(0)?;
                let in_flight = tenant
                    .as_ref()
                    .and_then(|t| in_flight.get(t).copied())
                    .unwrap_or(0);
                Ok(Reverse(Head {
                    in_flight,
                    served: r.get(2)?,
                    id: r.get(1)?,
                    tenant,
                }))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // Tenants not served for a day are as good as new.
        tx.prepare_cached("DELETE FROM tenants WHERE queue = ?1 AND served_at < ?2")?
            .execute(params![queue, now.saturating_sub(24 * 3600 * 1000)])?;
        Ok(Self { heads, now })
    }

    fn next(&mut self) -> Option<Head> {
        self.heads.pop().map(|Reverse(head)| head)
    }

    /// Puts the tenant of `taken` back with its next visible message, one
    /// more in flight if `taken` was received (not dead-lettered).
    fn advance(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        queue: &str,
        now: i64,
        taken: Head,
        received: bool,
    ) -> rusqlite::Result<()> {
        let next: Option<i64> = tx
            .prepare_cached(
                "SELECT MIN(id) FROM messages
                 WHERE queue = ?1 AND tenant IS ?2 AND visible_at <= ?3 AND id > ?4",
            )?
            .query_row(params![queue, taken.tenant, now, taken.id], |r| r.get(0))?;
        let (mut in_flight, mut served) = (taken.in_flight, taken.served);
        if let (Some(tenant), true) = (&taken.tenant, received) {
            in_flight += 1;
            served = self.now;
            tx.prepare_cached(
                "INSERT INTO tenants (queue, tenant, served_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (queue, tenant) DO UPDATE SET served_at = ?3",
            )?
            .execute(params![queue, tenant, self.now])?;
        }
        if let Some(id) = next {
            self.heads.push(Reverse(Head {
                in_flight,
                served,
                id,
                tenant: taken.tenant,
            }));
        }
        Ok(())
    }
}

#[async_trait]
impl JobQueue for LocalQueue {
    fn messaging_system(&self) -> &'static str {
        "local"
    }

    async fn send_for(
        &self,
        tenant: Option<&Tenant>,
        body: &str,
        attributes: &Attributes,
    ) -> Result<()> {
        let attributes = serde_json::to_string(attributes)
            .map_err(|e| StorageError::invalid_from("message attributes", e))?;
        let name = Arc::clone(&self.name);
        let body = body.to_owned();
        let tenant = tenant.map(|t| t.as_str().to_owned());
        let sent_at = polybot_domain::now_epoch();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO messages (queue, body, attributes, sent_at, visible_at, tenant)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![name, body, attributes, sent_at, now_ms(), tenant],
                )
                .map_err(sql_error)
            })
            .await?;
        self.wake.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let max = max.clamp(1, MAX_BATCH);
        let start = Instant::now();
        // A wait too long to represent is as good as forever.
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        loop {
            // Register for the wake-up before looking, so a send between
            // the look and the wait is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let deliveries = self.receive_now(max).await?;
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(deliveries);
            }
            let nap = POLL_INTERVAL.min(deadline - now);
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn delete(&self, receipt: &Receipt) -> Result<()> {
        let (id, token) = self.parse_receipt(receipt)?;
        let name = Arc::clone(&self.name);
        let deleted = self
            .db
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM messages WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                    params![id, name, token],
                )
                .map_err(sql_error)
            })
            .await?;
        if deleted == 0 {
            tracing::warn!(
                queue = %self.name,
                message = id,
                "delete with a stale receipt ignored: the message was already deleted, \
                 or received again after its visibility timeout"
            );
        }
        Ok(())
    }

    async fn set_visibility(&self, receipt: &Receipt, timeout: Duration) -> Result<()> {
        let (id, token) = self.parse_receipt(receipt)?;
        let name = Arc::clone(&self.name);
        let timeout_ms = duration_ms(timeout);
        let changed = self
            .db
            .call(move |conn| {
                conn.execute(
                    "UPDATE messages SET visible_at = ?1 WHERE id = ?2 AND queue = ?3 AND receipt = ?4",
                    params![now_ms().saturating_add(timeout_ms), id, name, token],
                )
                .map_err(sql_error)
            })
            .await?;
        if changed == 0 {
            return Err(StorageError::NotFound(format!(
                "message {id} of queue {:?} under this receipt (deleted, or received again since)",
                self.name
            )));
        }
        if timeout.is_zero() {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats> {
        let name = Arc::clone(&self.name);
        let (visible, in_flight): (i64, i64) = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0)
                     FROM messages WHERE queue = ?1",
                    params![name, now_ms()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql_error)
            })
            .await?;
        Ok(QueueStats {
            visible: u64::try_from(visible).unwrap_or_default(),
            in_flight: u64::try_from(in_flight).unwrap_or_default(),
        })
    }

    async fn check(&self) -> Result<()> {
        let name = Arc::clone(&self.name);
        self.db
            .call(move |conn| {
                conn.query_row(
                    "SELECT id FROM messages WHERE queue = ?1 LIMIT 1",
                    params![name],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map(drop)
                .map_err(sql_error)
            })
            .await
    }

    async fn settings(&self) -> Result<crate::QueueSettings> {
        Ok(crate::QueueSettings {
            visibility: Some(Duration::from_millis(
                u64::try_from(self.visibility_ms).unwrap_or_default(),
            )),
            max_receives: self.redrive.as_ref().map(|r| r.max_receives),
        })
    }
}
