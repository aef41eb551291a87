//! The queue worker: receive a job → fetch the photo → detect → store the
//! annotated photo and the summary → report to `Results` over gRPC → delete
//! the job, only once the report is acknowledged.
//!
//! Back-pressure: the worker reserves free inference lanes before it asks
//! the queue for messages, and never asks for more messages than it has
//! lanes. A heartbeat keeps a long job's message invisible to other
//! workers, from receipt until the report is acknowledged. A permanent
//! failure (not an image) is reported and the job deleted; a transient one
//! is left for redelivery, and after N receives the queue dead-letters it
//! (the gateway then tells the user).
//!
//! Deadlines: every job has a limit ([`WorkerConfig::job_timeout`], default
//! [`DEFAULT_JOB_TIMEOUT`]); past it the job ends as a failure the user is
//! told about, and the heartbeat stops. A report that Results does not
//! acknowledge (the gateway restarting, Telegram failing) is retried with
//! backoff while the heartbeat runs, within the job's limit: an outage does
//! not use up a receive, and the finished work is not redone. At start-up
//! the heartbeat is checked against the queue's own visibility timeout.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use polybot_domain::{
    AlbumItem, AlbumPhoto, AlbumSummary, FailureKind, Filter, FilterSummary, Job, JobKind,
    JobResult, JoinedSummary, ObjectKey, PredictionId, now_epoch,
};
use polybot_proto::v1::results_client::ResultsClient;
use polybot_proto::{Outcome, Report};
use polybot_storage::{Backends, Delivery, JobQueue, PutMode, Receipt};
use polybot_telemetry::grpc::TraceInterceptor;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::{Instrument, error, info, warn};

use crate::{AnnotatedSize, DetectError, Detector, Slot};

/// How long one job may take, from receipt to acknowledged report, unless
/// configured (`POLYBOT_JOB_TIMEOUT`).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long in-flight jobs get to finish on SIGTERM before they are
/// released to the queue, unless configured (`POLYBOT_SHUTDOWN_GRACE`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Visibility a heartbeat sets when neither the configuration nor the
/// queue says (a queue backend that does not report it).
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(60);
/// Deadline of one `ReportResult` call, above the gateway's own wait
/// (`gateway::grpc::REPORT_WAIT`, 45 s) so the gateway's answer arrives.
pub const REPORT_RPC_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest pause between two report attempts.
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// gRPC URL of the gateway's Results service.
    pub results_url: String,
    /// How long one receive waits for messages (SQS long polling, ≤ 20 s).
    pub receive_wait: Duration,
    /// Visibility a heartbeat sets while a job runs (every third of it);
    /// `None` uses the queue's own visibility timeout.
    pub visibility: Option<Duration>,
    /// A job's limit, from receipt to acknowledged report.
    pub job_timeout: Duration,
    /// On shutdown, how long in-flight jobs may take before they are released.
    pub shutdown_grace: Duration,
    /// Told each successful job's processing time (the reporter averages them).
    pub on_processed: Option<ProcessingHook>,
    /// Bearer token presented to Results (`authorization` metadata).
    pub results_token: Option<secrecy::SecretString>,
}

/// A callback for processing times; a newtype so the config stays `Debug`.
#[derive(Clone)]
pub struct ProcessingHook(pub Arc<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for ProcessingHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessingHook")
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            results_url: "http://127.0.0.1:50051".into(),
            receive_wait: Duration::from_secs(20),
            visibility: None,
            job_timeout: DEFAULT_JOB_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            on_processed: None,
            results_token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("POLYBOT_RESULTS_URL={url} is not a valid URL: {source}")]
    ResultsUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("could not read the jobs queue's settings: {0}")]
    QueueSettings(#[source] polybot_storage::StorageError),
    #[error(
        "the heartbeat would run every {interval:?} (a third of POLYBOT_VISIBILITY={}s), which is not comfortably below the jobs queue's visibility timeout of {}s: a job would go to another worker before its first heartbeat. Set POLYBOT_VISIBILITY to at most {}s, or leave it unset to use the queue's",
        visibility.as_secs(), queue.as_secs(), (queue.as_secs() * 3) / 2
    )]
    Heartbeat {
        interval: Duration,
        visibility: Duration,
        queue: Duration,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How often the heartbeat extends a job's visibility to `visibility`.
pub fn heartbeat_interval(visibility: Duration) -> Duration {
    (visibility / 3).max(Duration::from_millis(200))
}

/// The visibility the heartbeat sets: `configured`, else the queue's.
/// Fails when the heartbeat would not come well within the queue's
/// visibility timeout (its interval must be at most half of it), since a
/// job would then be delivered twice.
pub fn heartbeat_visibility(
    configured: Option<Duration>,
    queue: Option<Duration>,
) -> Result<Duration, WorkerError> {
    let visibility = configured.or(queue).unwrap_or(DEFAULT_VISIBILITY);
    let interval = heartbeat_interval(visibility);
    match queue {
        Some(queue) if interval * 2 > queue => Err(WorkerError::Heartbeat {
            interval,
            visibility,
            queue,
        }),
        _ => Ok(visibility),
    }
}

/// [`heartbeat_visibility`] against the queue's reported settings: the
/// start-up check (run it before loading the model, to fail fast).
pub async fn check_heartbeat(
    queue: &dyn JobQueue,
    configured: Option<Duration>,
) -> Result<Duration, WorkerError> {
    let settings = queue.settings().await.map_err(WorkerError::QueueSettings)?;
    heartbeat_visibility(configured, settings.visibility)
}

/// Whether the worker is ready (model loaded, warmed up, not stopping).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn set(&self, v: bool) {
        self.0.store(v, Ordering::SeqCst)
    }
}

/// A running worker.
pub struct WorkerHandle {
    cancel: CancellationToken,
    main: tokio::task::JoinHandle<()>,
    http: Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>,
    readiness: Readiness,
}

impl WorkerHandle {
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
    }

    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }

    /// Graceful shutdown: not ready first, stop receiving, let in-flight jobs
    /// finish within the grace period, release the rest to the queue.
    pub async fn shutdown(self) {
        self.readiness.set(false);
        self.cancel.cancel();
        if let Err(e) = self.main.await {
            warn!(error = %e, "worker loop ended abnormally");
        }
        if let Some((_, http)) = self.http {
            let _ = http.await;
        }
    }

    /// Resolves when the worker has stopped by itself (it only stops on shutdown).
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

struct Ctx {
    detector: Detector,
    backends: Backends,
    /// Every report carries the job's trace context (the interceptor).
    results: ResultsClient<InterceptedService<Channel, TraceInterceptor>>,
    config: WorkerConfig,
    /// What the heartbeat sets, checked against the queue at start-up.
    visibility: Duration,
    in_flight: Mutex<HashSet<Receipt>>,
}

/// Starts the worker loop, and the health/metrics endpoint if a listener is given.
pub async fn start(
    detector: Detector,
    backends: Backends,
    config: WorkerConfig,
    http_listener: Option<TcpListener>,
) -> Result<WorkerHandle, WorkerError> {
    let channel = Endpoint::from_shared(config.results_url.clone())
        .map_err(|e| WorkerError::ResultsUrl {
            url: config.results_url.clone(),
            source: e,
        })?
        .connect_timeout(Duration::from_secs(5))
        .timeout(REPORT_RPC_TIMEOUT)
        .connect_lazy();
    let visibility = check_heartbeat(backends.jobs.as_ref(), config.visibility).await?;
    let cancel = CancellationToken::new();
    let readiness = Readiness::default();
    let http = match http_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            let router = health_router(readiness.clone());
            let c = cancel.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router)
                    .with_graceful_shutdown(c.cancelled_owned())
                    .await
                {
                    warn!(error = %e, "detector HTTP server failed");
                }
            });
            Some((addr, task))
        }
        None => None,
    };
    let ctx = Arc::new(Ctx {
        detector,
        backends,
        results: ResultsClient::with_interceptor(channel, TraceInterceptor),
        config,
        visibility,
        in_flight: Mutex::new(HashSet::new()),
    });
    // The model is loaded and warmed up by `Detector::load` before we get here.
    readiness.set(true);
    info!(
        lanes = ctx.detector.lanes(),
        precision = %ctx.detector.precision(),
        visibility = ?ctx.visibility,
        heartbeat = ?heartbeat_interval(ctx.visibility),
        job_timeout = ?ctx.config.job_timeout,
        "detector worker started"
    );
    let main = tokio::spawn(run(ctx, cancel.clone(), readiness.clone()));
    Ok(WorkerHandle {
        cancel,
        main,
        http,
        readiness,
    })
}

fn health_router(readiness: Readiness) -> axum::Router {
    polybot_telemetry::ops::router(Arc::new(move || readiness.is_ready()))
}

async fn run(ctx: Arc<Ctx>, cancel: CancellationToken, readiness: Readiness) {
    let mut tasks = JoinSet::new();
    loop {
        // Reap finished jobs so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            s = ctx.detector.reserve() => s,
        };
        let Ok(first) = first else { break };
        let mut slots = vec![first];
        while slots.len() < 10 {
            match ctx.detector.try_reserve() {
                Some(s) => slots.push(s),
                None => break,
            }
        }
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            r = ctx.backends.jobs.receive(slots.len(), ctx.config.receive_wait) => r,
        };
        let deliveries = match received {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "receiving jobs failed; retrying");
                drop(slots);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut slots = slots.into_iter();
        for delivery in deliveries {
            let Some(slot) = slots.next() else {
                // The queue returned more than asked; give the extra back.
                let _ = ctx
                    .backends
                    .jobs
                    .set_visibility(&delivery.receipt, Duration::ZERO)
                    .await;
                continue;
            };
            if let Ok(mut set) = ctx.in_flight.lock() {
                set.insert(delivery.receipt.clone());
            }
            let ctx = Arc::clone(&ctx);
            tasks.spawn(async move {
                let receipt = delivery.receipt.clone();
                process(&ctx, delivery, slot).await;
                if let Ok(mut set) = ctx.in_flight.lock() {
                    set.remove(&receipt);
                }
            });
        }
    }

    // Shutting down: no more receives. Finish what is running, within the grace.
    readiness.set(false);
    let running = tasks.len();
    if running > 0 {
        info!(running, grace = ?ctx.config.shutdown_grace, "finishing in-flight jobs");
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(ctx.config.shutdown_grace, drain)
        .await
        .is_err()
    {
        tasks.abort_all();
        // Wait until the aborted jobs have really stopped (they stop at their
        // next await), so none deletes or reports after its release.
        while tasks.join_next().await.is_some() {}
        let left: Vec<Receipt> = ctx
            .in_flight
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for receipt in left {
            // Visible again at once, so another worker picks it up now
            // rather than after the visibility timeout.
            match ctx
                .backends
                .jobs
                .set_visibility(&receipt, Duration::ZERO)
                .await
            {
                Ok(()) => info!("released an unfinished job to the queue"),
                Err(e) => {
                    warn!(error = %e, "could not release a job; it returns after its visibility timeout")
                }
            }
        }
    }
    ctx.detector.close();
    info!("detector worker stopped");
}

/// An error and its causes on one line, for a log field.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a job could not finish this time: the message is left for
/// redelivery (and after N receives, the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum RetryLater {
    #[error("fetching the photo")]
    Fetch(#[source] polybot_storage::StorageError),
    #[error("running the job on the engine")]
    Engine(#[source] DetectError),
    #[error("storing the {what}")]
    Store {
        what: &'static str,
        #[source]
        source: polybot_storage::StorageError,
    },
    #[error("saving the result")]
    Save(#[source] polybot_storage::StorageError),
}

async fn process(ctx: &Ctx, delivery: Delivery, slot: Slot) {
    let span = tracing::info_span!(
        "detector.job",
        otel.name = "jobs process",
        otel.kind = "consumer",
        messaging.system = ctx.backends.jobs.messaging_system(),
        messaging.operation.type = "process",
        messaging.destination.name = "jobs",
        messaging.message.delivery_count = delivery.receive_count,
        prediction_id = tracing::field::Empty,
        chat_id = tracing::field::Empty,
        update_id = tracing::field::Empty,
    );
    // Before the span is entered: the parent is the gateway's publish span.
    polybot_telemetry::set_parent_from(&span, &delivery.attributes);
    async move {
        crate::metrics::job_received();
        crate::metrics::queue_wait(now_epoch() - delivery.sent_at);
        let job = match Job::parse(&delivery.body) {
            Ok(j) => j,
            Err(e) => {
                // Nobody to tell; after N receives the queue dead-letters it
                // and the DLQ alarm tells operators.
                error!(error = %e, "unreadable job left for the dead-letter queue");
                crate::metrics::job_failed("unreadable");
                return;
            }
        };
        let span = tracing::Span::current();
        span.record("prediction_id", tracing::field::display(job.prediction_id));
        span.record("chat_id", job.chat_id.0);
        span.record("update_id", job.update_id.0);

        // The heartbeat runs until the job is reported or given up, and
        // the job is bounded by its deadline, so no message stays
        // invisible for ever.
        let deadline = tokio::time::Instant::now() + ctx.config.job_timeout;
        tokio::select! {
            () = run_job(ctx, &job, &delivery, slot, deadline) => {}
            () = heartbeat(ctx, delivery.receipt.clone()) => {}
        }
    }
    .instrument(span)
    .await
}

/// Detects, stores and reports one job within its deadline; deletes the
/// message once the report is acknowledged.
async fn run_job(
    ctx: &Ctx,
    job: &Job,
    delivery: &Delivery,
    slot: Slot,
    deadline: tokio::time::Instant,
) {
    let report = match tokio::time::timeout_at(deadline, handle(ctx, job, slot)).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            warn!(error = %chain(&e), "transient failure; the job will be delivered again");
            crate::metrics::job_failed("transient");
            return;
        }
        Err(_) => {
            let limit = ctx.config.job_timeout;
            warn!(?limit, "the job ran past its limit; it ends as a failure");
            Report {
                prediction_id: job.prediction_id,
                chat_id: job.chat_id,
                reply_to_message_id: Some(job.message_id),
                outcome: Outcome::Failure {
                    kind: FailureKind::GaveUp,
                    detail: format!("the job took longer than its {}s limit", limit.as_secs()),
                },
            }
        }
    };
    let failed = matches!(report.outcome, Outcome::Failure { .. });
    match report_until(ctx, &report, deadline).await {
        Ok(duplicate) => {
            if let Err(e) = ctx.backends.jobs.delete(&delivery.receipt).await {
                warn!(error = %e, "could not delete the finished job; a redelivery will be deduplicated");
            }
            if let Outcome::Failure { kind, .. } = &report.outcome {
                crate::metrics::job_failed(kind.as_str());
            } else {
                crate::metrics::job_succeeded();
            }
            crate::metrics::end_to_end(now_epoch() - job.submitted_at);
            info!(duplicate, failed, "job done and reported");
        }
        Err(status) => {
            warn!(
                code = ?status.code(),
                grpc_message = status.message(),
                "Results did not acknowledge within the job's limit; the job will be delivered again"
            );
            crate::metrics::job_failed("report");
        }
    }
}

/// Whether a failed `ReportResult` may succeed later: Results restarting
/// or unreachable, a reply still being sent, Telegram failing for now.
fn report_retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
    )
}

/// The pause before report attempt `attempt + 1` (0-based): doubling from
/// half a second, at most [`MAX_REPORT_BACKOFF`].
fn report_backoff(attempt: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_REPORT_BACKOFF)
}

/// Reports until Results acknowledges, retrying retryable refusals with
/// backoff until `deadline` (at least one attempt is made).
async fn report_until(
    ctx: &Ctx,
    report: &Report,
    deadline: tokio::time::Instant,
) -> Result<bool, tonic::Status> {
    let mut attempt = 0;
    loop {
        match send_report(ctx, report).await {
            Ok(duplicate) => return Ok(duplicate),
            Err(status) if report_retryable(status.code()) => {
                let pause = report_backoff(attempt);
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(status);
                }
                warn!(
                    code = ?status.code(),
                    grpc_message = status.message(),
                    retry_in = ?pause,
                    "Results did not acknowledge; keeping the job and retrying"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Keeps the message invisible while the job runs. Never returns.
async fn heartbeat(ctx: &Ctx, receipt: Receipt) {
    let every = heartbeat_interval(ctx.visibility);
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = ctx
            .backends
            .jobs
            .set_visibility(&receipt, ctx.visibility)
            .await
        {
            warn!(error = %e, "heartbeat failed; the job may be delivered to another worker");
        }
    }
}

/// How a job's work ended, short of a transient failure.
enum Done {
    /// The result is stored in the object store; the table is next.
    Made(JobResult),
    /// The photo cannot be used (not an image, too small for the filter…):
    /// tell the user, never retry.
    Refused(FailureKind, String),
}

/// The report that answers `job` with `outcome`.
fn report_for(job: &Job, outcome: Outcome) -> Report {
    Report {
        prediction_id: job.prediction_id,
        chat_id: job.chat_id,
        reply_to_message_id: Some(job.message_id),
        outcome,
    }
}

/// Stores a job's result (a redelivered job's second save is a no-op) and
/// makes the report that answers it.
async fn save_success(ctx: &Ctx, job: &Job, result: JobResult) -> Result<Report, RetryLater> {
    ctx.backends
        .table
        .save_result(&result)
        .instrument(tracing::info_span!("save summary"))
        .await
        .map_err(RetryLater::Save)?;
    Ok(report_for(job, Outcome::Success(result)))
}

/// Runs the job up to the report: a success, or a failure the user is
/// told about. `Err` is transient: leave the message.
async fn handle(ctx: &Ctx, job: &Job, slot: Slot) -> Result<Report, RetryLater> {
    let report = |outcome| report_for(job, outcome);
    if !job.album.is_empty() {
        return handle_album(ctx, job, slot).await;
    }
    let original = match fetch(ctx, &job.original_key).await {
        Ok(b) => b,
        Err(e) if e.is_retryable() => return Err(RetryLater::Fetch(e)),
        Err(e) => {
            // The photo is gone and will not come back: tell the user.
            return Ok(report(Outcome::Failure {
                kind: FailureKind::Internal,
                detail: format!("fetching the photo: {e}"),
            }));
        }
    };
    let started = Instant::now();
    let done = match job.kind {
        JobKind::Detect => detect(ctx, job, slot, original).await?,
        JobKind::Filter(filter) => apply_filter(ctx, job, slot, original, filter).await?,
    };
    let result = match done {
        Done::Made(result) => result,
        Done::Refused(kind, detail) => {
            return Ok(report(Outcome::Failure { kind, detail }));
        }
    };
    crate::metrics::processing(started.elapsed().as_secs_f64());
    if let Some(hook) = &ctx.config.on_processed {
        (hook.0)(started.elapsed());
    }
    save_success(ctx, job, result).await
}

/// An album: every photo fetched, then joined into one picture (`concat`)
/// or each one run as the job's kind; a photo that cannot be used is
/// named in the answer, and the others are still answered.
async fn handle_album(ctx: &Ctx, job: &Job, slot: Slot) -> Result<Report, RetryLater> {
    let report = |outcome| report_for(job, outcome);
    let started = Instant::now();
    let mut photos = Vec::with_capacity(job.album.len());
    for photo in &job.album {
        photos.push(match fetch(ctx, &photo.original_key).await {
            Ok(bytes) => Some(bytes),
            Err(e) if e.is_retryable() => return Err(RetryLater::Fetch(e)),
            Err(e) => {
                warn!(error = %e, key = %photo.original_key, "an album's photo is gone");
                None
            }
        });
    }
    let result = match job.concat {
        Some(direction) => {
            let Some(photos) = photos.into_iter().collect::<Option<Vec<Bytes>>>() else {
                return Ok(report(Outcome::Failure {
                    kind: FailureKind::Internal,
                    detail: "a photo of the album is gone".into(),
                }));
            };
            let bytes = photos.iter().map(|b| b.to_vec()).collect();
            let out = match slot.concat(bytes, direction).await {
                Ok(out) => out,
                Err(e) if e.is_permanent() => {
                    info!(error = %e, "the album cannot be joined");
                    return Ok(report(Outcome::Failure {
                        kind: e.failure_kind(),
                        detail: e.to_string(),
                    }));
                }
                Err(e) => return Err(RetryLater::Engine(e)),
            };
            let key = ObjectKey::filtered(job.chat_id, job.prediction_id, out.extension);
            store(ctx, &key, out.bytes, out.mime, "joined picture").await?;
            JobResult::Joined(JoinedSummary {
                prediction_id: job.prediction_id,
                direction,
                original_img_paths: job
                    .album
                    .iter()
                    .map(|p| p.original_key.to_string())
                    .collect(),
                output_img_path: key.to_string(),
                mime_type: out.mime.to_owned(),
                width: out.width,
                height: out.height,
                time: now_epoch(),
            })
        }
        None => {
            let mut items = Vec::with_capacity(photos.len());
            let mut slot = Some(slot);
            for (index, (photo, bytes)) in job.album.iter().zip(photos).enumerate() {
                let Some(bytes) = bytes else {
                    items.push(AlbumItem {
                        result: None,
                        failure: Some(FailureKind::Internal),
                    });
                    continue;
                };
                let lane = match slot.take() {
                    Some(lane) => lane,
                    None => ctx.detector.reserve().await.map_err(RetryLater::Engine)?,
                };
                let item = AlbumPart {
                    index,
                    photo,
                    bytes,
                };
                items.push(album_item(ctx, job, lane, item).await?);
            }
            JobResult::Album(AlbumSummary {
                prediction_id: job.prediction_id,
                items,
            })
        }
    };
    crate::metrics::processing(started.elapsed().as_secs_f64());
    save_success(ctx, job, result).await
}

/// One photo of an album, for [`album_item`].
struct AlbumPart<'a> {
    index: usize,
    photo: &'a AlbumPhoto,
    bytes: Bytes,
}

/// One photo of an album, run as the job's kind and stored under the
/// album's key for it.
async fn album_item(
    ctx: &Ctx,
    job: &Job,
    lane: Slot,
    part: AlbumPart<'_>,
) -> Result<AlbumItem, RetryLater> {
    let refused = |e: DetectError| {
        info!(error = %e, index = part.index, "an album's photo cannot be used");
        AlbumItem {
            result: None,
            failure: Some(e.failure_kind()),
        }
    };
    match job.kind {
        JobKind::Detect => {
            let out = match lane
                .detect_sized(part.bytes.to_vec(), AnnotatedSize::Bounded)
                .await
            {
                Ok(out) => out,
                Err(e) if e.is_permanent() => return Ok(refused(e)),
                Err(e) => return Err(RetryLater::Engine(e)),
            };
            crate::metrics::inference(out.timings.inference.as_secs_f64());
            let key = ObjectKey::album_item(job.chat_id, job.prediction_id, part.index, "jpg");
            let summary = out.summary(
                job.prediction_id,
                part.photo.original_key.to_string(),
                key.to_string(),
            );
            store(ctx, &key, out.annotated_jpeg, "image/jpeg", "album picture").await?;
            Ok(AlbumItem {
                result: Some(JobResult::Detected(summary)),
                failure: None,
            })
        }
        JobKind::Filter(filter) => {
            // Each photo its own noise, the same on every delivery.
            let seed = filter_seed(job.prediction_id) ^ part.index as u64;
            let out = match lane.filter(part.bytes.to_vec(), filter, seed).await {
                Ok(out) => out,
                Err(e) if e.is_permanent() => return Ok(refused(e)),
                Err(e) => return Err(RetryLater::Engine(e)),
            };
            let key =
                ObjectKey::album_item(job.chat_id, job.prediction_id, part.index, out.extension);
            store(ctx, &key, out.bytes, out.mime, "album picture").await?;
            Ok(AlbumItem {
                result: Some(JobResult::Filtered(FilterSummary {
                    prediction_id: job.prediction_id,
                    filter,
                    original_img_path: part.photo.original_key.to_string(),
                    output_img_path: key.to_string(),
                    mime_type: out.mime.to_owned(),
                    width: out.width,
                    height: out.height,
                    time: now_epoch(),
                })),
                failure: None,
            })
        }
    }
}

/// Stores a picture the job made (`what` names it in spans and errors).
async fn store(
    ctx: &Ctx,
    key: &ObjectKey,
    bytes: Vec<u8>,
    mime: &str,
    what: &'static str,
) -> Result<(), RetryLater> {
    ctx.backends
        .objects
        .put(key, Bytes::from(bytes), mime, PutMode::Overwrite)
        .instrument(tracing::info_span!("store image", %key, what))
        .await
        .map_err(|source| RetryLater::Store { what, source })
}

/// Detection: the annotated photo (and a full-resolution copy when the
/// original is past Telegram's photo limits) and the labels.
async fn detect(ctx: &Ctx, job: &Job, slot: Slot, original: Bytes) -> Result<Done, RetryLater> {
    let mut out = match slot
        .detect_sized(original.to_vec(), AnnotatedSize::ForTelegram)
        .await
    {
        Ok(out) => out,
        Err(e) if e.is_permanent() => {
            info!(error = %e, "the photo cannot be analysed");
            return Ok(Done::Refused(e.failure_kind(), e.to_string()));
        }
        Err(e) => return Err(RetryLater::Engine(e)),
    };
    crate::metrics::inference(out.timings.inference.as_secs_f64());
    tracing::info!(
        objects = out.detections.len(),
        inference_ms = out.timings.inference.as_secs_f64() * 1e3,
        "detected"
    );

    let predicted_key = ObjectKey::predicted(job.chat_id, job.prediction_id);
    // Taken, not copied: the summary needs only the detections.
    let annotated = std::mem::take(&mut out.annotated_jpeg);
    store(
        ctx,
        &predicted_key,
        annotated,
        "image/jpeg",
        "annotated photo",
    )
    .await?;
    let mut summary = out.summary(
        job.prediction_id,
        job.original_key.to_string(),
        predicted_key.to_string(),
    );
    if let Some(full) = out.full_jpeg.take() {
        // A large file: its full detail goes back too, as a document.
        let full_key = ObjectKey::predicted_full(job.chat_id, job.prediction_id);
        store(ctx, &full_key, full, "image/jpeg", "full-resolution photo").await?;
        summary.full_img_path = Some(full_key.to_string());
    }
    Ok(Done::Made(JobResult::Detected(summary)))
}

/// A caption's filter: the filtered picture, stored under `filtered/`.
async fn apply_filter(
    ctx: &Ctx,
    job: &Job,
    slot: Slot,
    original: Bytes,
    filter: Filter,
) -> Result<Done, RetryLater> {
    let out = match slot
        .filter(original.to_vec(), filter, filter_seed(job.prediction_id))
        .await
    {
        Ok(out) => out,
        Err(e) if e.is_permanent() => {
            info!(error = %e, %filter, "the filter cannot be applied to this photo");
            return Ok(Done::Refused(e.failure_kind(), e.to_string()));
        }
        Err(e) => return Err(RetryLater::Engine(e)),
    };
    tracing::info!(%filter, width = out.width, height = out.height, "filtered");
    let key = ObjectKey::filtered(job.chat_id, job.prediction_id, out.extension);
    store(ctx, &key, out.bytes, out.mime, "filtered picture").await?;
    Ok(Done::Made(JobResult::Filtered(FilterSummary {
        prediction_id: job.prediction_id,
        filter,
        original_img_path: job.original_key.to_string(),
        output_img_path: key.to_string(),
        mime_type: out.mime.to_owned(),
        width: out.width,
        height: out.height,
        time: now_epoch(),
    })))
}

/// The salt-and-pepper seed of a request: from its id, so every delivery
/// of one job makes the same picture.
fn filter_seed(id: PredictionId) -> u64 {
    id.as_uuid().as_u64_pair().0
}

async fn fetch(ctx: &Ctx, key: &ObjectKey) -> Result<Bytes, polybot_storage::StorageError> {
    ctx.backends
        .objects
        .get(key)
        .instrument(tracing::info_span!("fetch original", %key))
        .await
}

async fn send_report(ctx: &Ctx, report: &Report) -> Result<bool, tonic::Status> {
    let span = tracing::info_span!(
        "polybot.v1.Results/ReportResult",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = "polybot.v1.Results",
        rpc.method = "ReportResult",
        rpc.grpc.status_code = tracing::field::Empty,
        prediction_id = %report.prediction_id,
    );
    async {
        let mut request = tonic::Request::new(polybot_proto::v1::ReportResultRequest::from(report));
        if let Some(token) = &ctx.config.results_token {
            let bearer = polybot_proto::auth::bearer(token)
                .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            request
                .metadata_mut()
                .insert(polybot_proto::auth::AUTHORIZATION, bearer);
        }
        let mut client = ctx.results.clone();
        let result = client
            .report_result(request)
            .await
            .map(|r| r.into_inner().duplicate);
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        let span = tracing::Span::current();
        span.record("rpc.grpc.status_code", code as i32);
        if code != tonic::Code::Ok {
            span.record("otel.status_code", "ERROR");
        }
        result
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_heartbeat_defaults_to_the_queues_own_visibility() {
        assert_eq!(
            heartbeat_visibility(None, Some(S(10))).expect("fits"),
            S(10)
        );
        assert_eq!(
            heartbeat_visibility(None, Some(S(60))).expect("fits"),
            S(60)
        );
        assert_eq!(
            heartbeat_visibility(None, None).expect("fits"),
            DEFAULT_VISIBILITY
        );
    }

    #[test]
    fn a_heartbeat_not_comfortably_below_the_queues_visibility_is_refused_with_the_settings_named()
    {
        // Every 20 s against a 30 s queue: over half of it.
        let err = heartbeat_visibility(Some(S(60)), Some(S(30))).expect_err("too slow");
        let message = err.to_string();
        assert!(matches!(err, WorkerError::Heartbeat { .. }), "{err:?}");
        assert!(
            message.contains("POLYBOT_VISIBILITY=60s") && message.contains("30s"),
            "{message}"
        );
        assert!(message.contains("at most 45s"), "{message}");
        // Every 15 s against a 30 s queue: half of it, accepted.
        assert_eq!(
            heartbeat_visibility(Some(S(45)), Some(S(30))).expect("fits"),
            S(45)
        );
        // A longer visibility than the queue's is fine when the beat is quick.
        assert_eq!(
            heartbeat_visibility(Some(S(12)), Some(S(10))).expect("fits"),
            S(12)
        );
    }

    #[test]
    fn report_retries_back_off_from_half_a_second_to_at_most_thirty() {
        let pauses: Vec<Duration> = (0..8).map(report_backoff).collect();
        assert_eq!(pauses[0], Duration::from_millis(500));
        assert_eq!(pauses[1], S(1));
        assert_eq!(pauses[2], S(2));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(report_backoff(7), MAX_REPORT_BACKOFF);
        assert_eq!(report_backoff(u32::MAX), MAX_REPORT_BACKOFF);
    }

    /// The per-job step, against the embedded backend and the real model.
    mod job_step {
        use super::*;
        use crate::model::{default_assets_dir, default_model_path, default_ort_library};
        use crate::{DetectConfig, ModelSource, PoolOptions, Precision};
        use polybot_domain::{
            ChatId, JOB_SCHEMA_VERSION, PredictionRecord, PredictionStatus, QuarterTurns, UpdateId,
        };
        use polybot_storage::{ObjectStore, StorageError};

        struct Fixture {
            ctx: Ctx,
            _dir: tempfile::TempDir,
        }

        fn detector() -> Detector {
            Detector::load(&PoolOptions {
                source: ModelSource {
                    model: default_model_path(),
                    ort_library: default_ort_library(),
                    intra_threads: 1,
                    precision: Precision::Fp32,
                },
                lanes: 1,
                config: DetectConfig::default(),
            })
            .expect("the model loads; run `cargo xtask setup` first")
        }

        fn fixture() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let backends = polybot_storage::local::open(dir.path(), Default::default())
                .expect("local backends");
            // Never called by the step: the report is sent by its caller.
            let channel = Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
            let ctx = Ctx {
                detector: detector(),
                backends,
                results: ResultsClient::with_interceptor(channel, TraceInterceptor),
                config: WorkerConfig::default(),
                visibility: DEFAULT_VISIBILITY,
                in_flight: Mutex::new(HashSet::new()),
            };
            Fixture { ctx, _dir: dir }
        }

        /// A request for `photo` with `kind`, stored as the gateway stores it.
        async fn request(ctx: &Ctx, photo: Vec<u8>, kind: JobKind) -> Job {
            let chat = ChatId(42);
            let id = PredictionId::new();
            let job = Job {
                schema_version: JOB_SCHEMA_VERSION,
                prediction_id: id,
                chat_id: chat,
                message_id: 7,
                update_id: UpdateId(1),
                original_key: ObjectKey::original(chat, id, "jpg"),
                submitted_at: now_epoch(),
                kind,
                album: vec![],
                concat: None,
            };
            ctx.backends
                .objects
                .put(
                    &job.original_key,
                    Bytes::from(photo),
                    "image/jpeg",
                    PutMode::CreateOnly,
                )
                .await
                .expect("put");
            ctx.backends
                .table
                .create(&PredictionRecord::pending(&job))
                .await
                .expect("create");
            job
        }

        /// A Results service that records the reports it gets and answers
        /// them only once `answer` is set: until then a report hangs, as
        /// when the gateway is slow or gone.
        #[derive(Clone, Default)]
        struct FakeResults {
            reports: Arc<std::sync::atomic::AtomicUsize>,
            answer: Arc<AtomicBool>,
        }

        #[tonic::async_trait]
        impl polybot_proto::v1::results_server::Results for FakeResults {
            async fn report_result(
                &self,
                _request: tonic::Request<polybot_proto::v1::ReportResultRequest>,
            ) -> Result<tonic::Response<polybot_proto::v1::ReportResultResponse>, tonic::Status>
            {
                self.reports.fetch_add(1, Ordering::SeqCst);
                while !self.answer.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(tonic::Response::new(
                    polybot_proto::v1::ReportResultResponse { duplicate: false },
                ))
            }

            async fn get_prediction(
                &self,
                _request: tonic::Request<polybot_proto::v1::GetPredictionRequest>,
            ) -> Result<tonic::Response<polybot_proto::v1::Prediction>, tonic::Status> {
                Err(tonic::Status::unimplemented("not in this fake"))
            }

            async fn list_predictions(
                &self,
                _request: tonic::Request<polybot_proto::v1::ListPredictionsRequest>,
            ) -> Result<tonic::Response<polybot_proto::v1::ListPredictionsResponse>, tonic::Status>
            {
                Err(tonic::Status::unimplemented("not in this fake"))
            }
        }

        /// Serves `fake` on a loopback port; returns its URL.
        async fn serve(fake: FakeResults) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(polybot_proto::v1::results_server::ResultsServer::new(fake))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );
            url
        }

        async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done().await {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_job_cut_off_by_shutdown_mid_report_is_released_and_done_by_the_next_worker() {
            let Fixture { ctx, _dir } = fixture();
            let backends = ctx.backends.clone();
            let job = request(&ctx, bus(), JobKind::Detect).await;
            backends
                .jobs
                .send(&job.to_json(), &Default::default())
                .await
                .expect("send");
            let fake = FakeResults::default();
            let config = WorkerConfig {
                results_url: serve(fake.clone()).await,
                receive_wait: Duration::from_millis(100),
                shutdown_grace: Duration::from_millis(300),
                ..WorkerConfig::default()
            };
            let worker = start(detector(), backends.clone(), config.clone(), None)
                .await
                .expect("the worker starts");
            // Mid-job: detected, stored, and now waiting for its report.
            until("the report", async || {
                fake.reports.load(Ordering::SeqCst) > 0
            })
            .await;
            worker.shutdown().await;
            let stats = backends.jobs.stats().await.expect("stats");
            assert_eq!(
                (stats.visible, stats.in_flight),
                (1, 0),
                "the unfinished job goes back to the queue at once, not deleted"
            );

            // The next worker does it again, and this time it is answered.
            fake.answer.store(true, Ordering::SeqCst);
            let worker = start(detector(), backends.clone(), config, None)
                .await
                .expect("the worker starts");
            until("the queue to empty", async || {
                let stats = backends.jobs.stats().await.expect("stats");
                stats.visible + stats.in_flight == 0
            })
            .await;
            worker.shutdown().await;
            assert!(fake.reports.load(Ordering::SeqCst) >= 2, "reported again");
            let record = backends
                .table
                .get(job.prediction_id)
                .await
                .expect("get")
                .expect("the record");
            assert_eq!(record.status, PredictionStatus::Succeeded);
        }

        fn bus() -> Vec<u8> {
            std::fs::read(default_assets_dir().join("bus.jpg")).expect("bus.jpg; run setup")
        }

        async fn step(ctx: &Ctx, job: &Job) -> Result<Report, RetryLater> {
            let slot = ctx.detector.reserve().await.expect("a lane");
            handle(ctx, job, slot).await
        }

        #[tokio::test]
        async fn a_detection_is_stored_and_reported_with_its_labels() {
            let f = fixture();
            let job = request(&f.ctx, bus(), JobKind::Detect).await;
            let report = step(&f.ctx, &job).await.expect("done");
            let Outcome::Success(JobResult::Detected(summary)) = &report.outcome else {
                panic!("{report:?}");
            };
            assert!(summary.counts_text().contains("bus ×1"), "{summary:?}");
            assert_eq!(report.reply_to_message_id, Some(7));
            let predicted = ObjectKey::parse(summary.predicted_img_path.clone()).expect("key");
            f.ctx
                .backends
                .objects
                .get(&predicted)
                .await
                .expect("stored");
            let record = f
                .ctx
                .backends
                .table
                .get(job.prediction_id)
                .await
                .expect("get");
            assert_eq!(
                record.and_then(|r| r.result),
                Some(JobResult::Detected(summary.clone()))
            );
        }

        #[tokio::test]
        async fn a_filter_job_stores_and_reports_the_filtered_picture() {
            let f = fixture();
            let turn = Filter::Rotate {
                quarter_turns: QuarterTurns::DEFAULT,
            };
            let job = request(&f.ctx, bus(), JobKind::Filter(turn)).await;
            let report = step(&f.ctx, &job).await.expect("done");
            let Outcome::Success(JobResult::Filtered(out)) = &report.outcome else {
                panic!("{report:?}");
            };
            assert_eq!((out.width, out.height, out.filter), (1080, 810, turn));
            let key = ObjectKey::parse(out.output_img_path.clone()).expect("key");
            let bytes = f.ctx.backends.objects.get(&key).await.expect("stored");
            let img = image::load_from_memory(&bytes).expect("decodes");
            assert_eq!((img.width(), img.height()), (1080, 810));
        }

        #[tokio::test]
        async fn a_file_that_is_not_a_picture_is_a_failure_to_tell_not_to_retry() {
            let f = fixture();
            let job = request(&f.ctx, b"not a picture".to_vec(), JobKind::Detect).await;
            let report = step(&f.ctx, &job)
                .await
                .expect("a permanent failure is reported");
            assert!(
                matches!(
                    report.outcome,
                    Outcome::Failure {
                        kind: FailureKind::NotAnImage,
                        ..
                    }
                ),
                "{report:?}"
            );
            let record = f
                .ctx
                .backends
                .table
                .get(job.prediction_id)
                .await
                .expect("get");
            assert_eq!(record.and_then(|r| r.result), None, "nothing stored");
        }

        /// An object store that is down.
        struct Down;

        #[async_trait::async_trait]
        impl ObjectStore for Down {
            async fn put(
                &self,
                _: &ObjectKey,
                _: Bytes,
                _: &str,
                _: PutMode,
            ) -> polybot_storage::Result<()> {
                Err(down())
            }
            async fn get(&self, _: &ObjectKey) -> polybot_storage::Result<Bytes> {
                Err(down())
            }
            async fn check(&self) -> polybot_storage::Result<()> {
                Err(down())
            }
        }

        fn down() -> StorageError {
            StorageError::unavailable(
                "test store",
                "reading",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            )
        }

        #[tokio::test]
        async fn an_object_store_outage_leaves_the_job_for_redelivery_with_its_cause() {
            let mut f = fixture();
            let job = request(&f.ctx, bus(), JobKind::Detect).await;
            f.ctx.backends.objects = Arc::new(Down);
            let err = step(&f.ctx, &job).await.expect_err("retry later");
            assert!(
                matches!(err, RetryLater::Fetch(ref e) if e.is_retryable()),
                "{err:?}"
            );
            assert!(
                chain(&err).contains("connection refused"),
                "{}",
                chain(&err)
            );
            let record = f
                .ctx
                .backends
                .table
                .get(job.prediction_id)
                .await
                .expect("get");
            assert_eq!(record.map(|r| r.status), Some(PredictionStatus::Pending));
        }
    }

    #[test]
    fn outages_are_retried_and_refusals_are_not() {
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Unknown,
        ] {
            assert!(report_retryable(code), "{code:?}");
        }
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
            tonic::Code::NotFound,
        ] {
            assert!(!report_retryable(code), "{code:?}");
        }
    }
}
