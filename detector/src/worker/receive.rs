//! The receive loop and the jobs it starts.
//!
//! Back-pressure: the loop reserves free inference lanes before it asks the
//! queue for messages, and never asks for more messages than it has lanes.
//! Each message becomes a job task of the supervisor, tracked in
//! [`Jobs`] so that shutdown can let the running ones finish within the
//! grace period and release the rest to the queue. The loop itself is
//! supervised: if it dies, the jobs it started run on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use polybot_storage::{Delivery, JobQueue, Receipt};
use polybot_telemetry::tasks::Supervisor;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ports::Lane;
use super::step::{Ctx, process};

/// Most messages one receive asks for (SQS's limit).
const MAX_BATCH: usize = 10;

/// The jobs running now, by receipt, and whether new ones may start.
#[derive(Default)]
struct Running {
    stopping: bool,
    receipts: HashSet<Receipt>,
}

/// The worker's job tasks: started through the supervisor, finished or
/// released on shutdown.
#[derive(Clone)]
pub(super) struct Jobs {
    ctx: Arc<Ctx>,
    supervisor: Supervisor,
    running: Arc<watch::Sender<Running>>,
    /// Cancelled when the grace period is over: each job still running
    /// stops at its next await and releases its message.
    abort: CancellationToken,
}

impl Jobs {
    pub fn new(ctx: Arc<Ctx>, supervisor: Supervisor) -> Self {
        Self {
            ctx,
            supervisor,
            running: Arc::new(watch::Sender::new(Running::default())),
            abort: CancellationToken::new(),
        }
    }

    /// The receive loop: runs until the supervisor's token is cancelled.
    pub async fn receive_loop(self) {
        let cancel = self.supervisor.cancel_token();
        let engine = Arc::clone(&self.ctx.step.engine);
        let queue = Arc::clone(&self.ctx.step.backends.jobs);
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                lane = engine.reserve() => lane,
            };
            let Ok(first) = first else {
                warn!("the engine has shut down; no more jobs");
                return;
            };
            let mut lanes = vec![first];
            while lanes.len() < MAX_BATCH {
                match engine.try_reserve() {
                    Some(lane) => lanes.push(lane),
                    None => break,
                }
            }
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = queue.receive(lanes.len(), self.ctx.config.receive_wait) => r,
            };
            let deliveries = match received {
                Ok(d) => d,
                Err(e) => {
                    warn!(error = %e, "receiving jobs failed; retrying");
                    drop(lanes);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut lanes = lanes.into_iter();
            for delivery in deliveries {
                match lanes.next() {
                    Some(lane) => self.start(delivery, lane).await,
                    // The queue returned more than asked; give the extra back.
                    None => release(queue.as_ref(), &delivery.receipt).await,
                }
            }
        }
    }

    /// Starts a job for `delivery` on `lane`, unless shutdown has begun:
    /// then its message goes back to the queue at once.
    async fn start(&self, delivery: Delivery, lane: Lane) {
        let receipt = delivery.receipt.clone();
        let started = self.running.send_if_modified(|running| {
            !running.stopping && running.receipts.insert(receipt.clone())
        });
        if !started {
            release(self.ctx.step.backends.jobs.as_ref(), &receipt).await;
            return;
        }
        let ctx = Arc::clone(&self.ctx);
        let abort = self.abort.clone();
        // Counted out on every way the task ends, a panic included.
        let done = Done {
            running: Arc::clone(&self.running),
            receipt,
        };
        self.supervisor.spawn("job", async move {
            tokio::select! {
                () = process(&ctx, delivery, lane) => {}
                () = abort.cancelled() => {
                    // The job's work was dropped at its last await, so it
                    // cannot delete or report after this release.
                    release(ctx.step.backends.jobs.as_ref(), &done.receipt).await;
                }
            }
            drop(done);
        });
    }

    /// Shutting down: no job starts any more; the running ones get `grace`
    /// to finish, then are stopped and their messages released.
    pub async fn finish(&self, grace: Duration) {
        let running = {
            let mut count = 0;
            self.running.send_modify(|r| {
                r.stopping = true;
                count = r.receipts.len();
            });
            count
        };
        if running > 0 {
            info!(running, ?grace, "finishing in-flight jobs");
        }
        if tokio::time::timeout(grace, self.all_done()).await.is_ok() {
            return;
        }
        self.abort.cancel();
        // Releasing is one queue call per job; bounded all the same, but
        // not by the grace (which may be zero): the releases must finish
        // before the process exits.
        if tokio::time::timeout(RELEASE_LIMIT, self.all_done())
            .await
            .is_err()
        {
            warn!("some jobs did not stop; their messages return after the visibility timeout");
        }
    }

    async fn all_done(&self) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|r| r.receipts.is_empty()).await;
    }
}

/// How long the stopped jobs' releases may take on shutdown.
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

/// A running job's place in [`Jobs`], given up when the job's task ends.
struct Done {
    running: Arc<watch::Sender<Running>>,
    receipt: Receipt,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.running.send_modify(|r| {
            r.receipts.remove(&self.receipt);
        });
    }
}

/// Makes a message visible again at once, so another worker picks it up
/// now rather than after the visibility timeout.
async fn release(queue: &dyn JobQueue, receipt: &Receipt) {
    match queue.set_visibility(receipt, Duration::ZERO).await {
        Ok(()) => info!("released an unfinished job to the queue"),
        Err(e) => {
            warn!(error = %e, "could not release a job; it returns after its visibility timeout")
        }
    }
}
