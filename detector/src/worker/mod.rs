//! The queue worker: receive a job → fetch its photos → run its kind on
//! the engine → store the pictures and the result → report to `Results` →
//! delete the job, only once the report is acknowledged.
//!
//! - [`receive`]: the receive loop (lanes reserved before messages are
//!   asked for) and the job tasks it starts;
//! - [`step`]: one delivery's job step (heartbeat, deadline, report,
//!   delete), and `JobStep::handle`, which picks the handler for the job's
//!   input;
//! - the handlers, one per kind: [`photo`] (a kind on one photo:
//!   [`detect`], [`filter`]), [`album`] (a kind on each photo of an album,
//!   through [`photo`]), [`concat`] and [`crops`] (a detection's objects
//!   cut out of its photo);
//! - [`reporting`]: reports retried with backoff within the job's limit;
//! - [`heartbeat`]: the message kept invisible while its job runs;
//! - [`ports`]: what the step needs, as traits, with the ONNX engine
//!   ([`onnx`]) and the gRPC Results client ([`grpc`]) as adapters, and
//!   fakes of them for tests (`testing`, with the `test-util` feature).
//!
//! The receive loop and the ops server run under the service kit's
//! [`Supervisor`]: a loop that dies is restarted, and `/readyz` says not
//! ready while it is down.

mod album;
mod concat;
mod config;
mod crops;
mod detect;
mod error;
mod filter;
mod grpc;
mod heartbeat;
mod job;
mod onnx;
mod patience;
mod photo;
mod ports;
mod receive;
mod reporting;
mod step;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod video;

use std::sync::Arc;
use std::time::Duration;

use polybot_inference::Detector;
use polybot_storage::Backends;
use polybot_telemetry::tasks::{Backoff, Components, Supervisor};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{
    DEFAULT_JOB_TIMEOUT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_VIDEO_JOB_TIMEOUT, DEFAULT_VISIBILITY,
    ProcessingHook, REPORT_RPC_TIMEOUT, WorkerConfig,
};
pub use error::WorkerError;
pub use grpc::GrpcResults;
pub use heartbeat::{check_heartbeat, heartbeat_interval, heartbeat_visibility};
pub use job::{JobStep, RetryLater};
pub use ports::{
    Cropped, Detected, EngineLane, Filtered, JobEngine, Lane, ReportError, ResultsSink,
};

use receive::Jobs;
use step::Ctx;

/// Readiness components of the worker: it takes jobs (false once shutdown
/// begins), its receive loop runs, its ops server serves.
const TAKING_JOBS: &str = "taking jobs";
const RECEIVE_LOOP: &str = "receive loop";
const OPS_SERVER: &str = "ops server";

/// A running worker.
pub struct WorkerHandle {
    supervisor: Supervisor,
    jobs: Jobs,
    engine: Arc<dyn JobEngine>,
    http_addr: Option<std::net::SocketAddr>,
    grace: Duration,
}

impl WorkerHandle {
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    /// Ready while every part works (`/readyz` says the same).
    pub fn is_ready(&self) -> bool {
        self.supervisor.components().all_ok()
    }

    /// The worker's readiness components, to watch them change.
    pub fn components(&self) -> &Components {
        self.supervisor.components()
    }

    /// Graceful shutdown: not ready first, stop receiving, let in-flight jobs
    /// finish within the grace period, release the rest to the queue.
    pub async fn shutdown(self) {
        self.supervisor.components().set(TAKING_JOBS, false);
        self.supervisor.cancel_token().cancel();
        self.jobs.finish(self.grace).await;
        let aborted = self.supervisor.shutdown(self.grace).await;
        if aborted > 0 {
            warn!(aborted, "worker tasks did not stop in time");
        }
        self.engine.close();
        info!("detector worker stopped");
    }

    /// Cancelled when the worker stops (it only stops on shutdown).
    pub fn cancellation(&self) -> CancellationToken {
        self.supervisor.cancel_token()
    }
}

/// Starts the worker on the ONNX engine, reporting to the gRPC Results
/// service at `config.results_url`, and the health/metrics endpoint if a
/// listener is given.
pub async fn start(
    detector: Detector,
    backends: Backends,
    config: WorkerConfig,
    http_listener: Option<TcpListener>,
) -> Result<WorkerHandle, WorkerError> {
    let results = GrpcResults::connect_lazy(&config.results_url, config.results_token.clone())?;
    start_with(
        Arc::new(detector),
        backends,
        Arc::new(results),
        config,
        http_listener,
    )
    .await
}

/// Starts the worker on any engine and Results sink.
pub async fn start_with(
    engine: Arc<dyn JobEngine>,
    backends: Backends,
    results: Arc<dyn ResultsSink>,
    config: WorkerConfig,
    http_listener: Option<TcpListener>,
) -> Result<WorkerHandle, WorkerError> {
    let visibility = check_heartbeat(backends.jobs.as_ref(), config.visibility).await?;
    let components = Components::default();
    let supervisor = Supervisor::new(CancellationToken::new(), components.clone());
    // The engine is loaded and warmed up before we get here.
    components.set(TAKING_JOBS, true);
    let http_addr = match http_listener {
        Some(listener) => Some(serve_ops(&supervisor, listener)?),
        None => None,
    };
    let grace = config.shutdown_grace;
    supervisor.spawn(
        PUBLISH_CLASSES,
        publish_classes(
            engine.classes(),
            backends.clone(),
            supervisor.cancel_token(),
        ),
    );
    let step = JobStep::new(Arc::clone(&engine), backends, config.on_processed.clone())
        .reporting_progress_to(Arc::clone(&results));
    let ctx = Arc::new(Ctx {
        step,
        results,
        config,
        visibility,
    });
    info!(
        lanes = engine.lanes(),
        precision = %engine.precision(),
        visibility = ?ctx.visibility,
        heartbeat = ?heartbeat_interval(ctx.visibility),
        job_timeout = ?ctx.config.job_timeout,
        "detector worker started"
    );
    let jobs = Jobs::new(ctx, supervisor.clone());
    supervisor.supervise(RECEIVE_LOOP, Backoff::default(), {
        let jobs = jobs.clone();
        move || jobs.clone().receive_loop()
    });
    Ok(WorkerHandle {
        supervisor,
        jobs,
        engine,
        http_addr,
        grace,
    })
}

/// The one-off task that tells gateways the model's classes.
const PUBLISH_CLASSES: &str = "publish_classes";

/// Publishes the model's class names to the table, so that gateways check
/// `/only dog` against the model that will run (a custom one too): retried
/// with backoff while the table is down, until it is done or shutdown.
async fn publish_classes(classes: Vec<String>, backends: Backends, cancel: CancellationToken) {
    let mut pause = Duration::from_millis(500);
    loop {
        match backends.table.publish_model_classes(&classes).await {
            Ok(()) => {
                info!(classes = classes.len(), "model classes published");
                return;
            }
            Err(e) => warn!(error = %e, retry_in = ?pause, "could not publish the model's classes"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Serves /healthz, /readyz (every component works) and /metrics until
/// shutdown begins.
fn serve_ops(
    supervisor: &Supervisor,
    listener: TcpListener,
) -> Result<std::net::SocketAddr, WorkerError> {
    let addr = listener.local_addr()?;
    let components = supervisor.components().clone();
    let router = polybot_telemetry::ops::router(Arc::new(move || components.all_ok()));
    let stop = supervisor.cancel_token();
    supervisor.spawn_critical(OPS_SERVER, async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            warn!(error = %e, "detector HTTP server failed");
        }
    });
    Ok(addr)
}
