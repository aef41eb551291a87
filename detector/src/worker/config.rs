//! The worker's settings and their defaults.

use std::sync::Arc;
use std::time::Duration;

/// How long one job may take, from receipt to acknowledged report, unless
/// configured (`POLYBOT_JOB_TIMEOUT`).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a clip's job may take, from receipt to acknowledged report,
/// unless configured (`POLYBOT_VIDEO_JOB_TIMEOUT`): decoding is bounded
/// by its own limit (`POLYBOT_VIDEO_DECODE_TIMEOUT`), 30 frames detect in
/// seconds, and the rest is room for storing and reporting.
pub const DEFAULT_VIDEO_JOB_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long in-flight jobs get to finish on SIGTERM before they are
/// released to the queue, unless configured (`POLYBOT_SHUTDOWN_GRACE`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Visibility a heartbeat sets when neither the configuration nor the
/// queue says (a queue backend that does not report it).
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(60);
/// How long the report of a job that ran past its limit may be retried:
/// that report is the user's only answer ("it took too long"), so it gets
/// more than the one try the spent deadline would leave it. The heartbeat
/// keeps the message meanwhile.
pub const GAVE_UP_REPORT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Deadline of one `ReportResult` call, above the gateway's own wait
/// (`gateway::grpc::REPORT_WAIT`, 45 s) so the gateway's answer arrives.
pub const REPORT_RPC_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// A clip's job's limit, from receipt to acknowledged report.
    pub video_job_timeout: Duration,
    /// On shutdown, how long in-flight jobs may take before they are released.
    pub shutdown_grace: Duration,
    /// Told each successful job's processing time (the reporter averages them).
    pub on_processed: Option<ProcessingHook>,
    /// Bearer token presented to Results (`authorization` metadata).
    pub results_token: Option<secrecy::SecretString>,
}

impl WorkerConfig {
    /// The limit of `job`, by its kind.
    pub fn deadline_for(&self, job: &polybot_domain::Job) -> Duration {
        match job.input {
            polybot_domain::JobInput::Video { .. } => self.video_job_timeout,
            _ => self.job_timeout,
        }
    }
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
            video_job_timeout: DEFAULT_VIDEO_JOB_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            on_processed: None,
            results_token: None,
        }
    }
}
