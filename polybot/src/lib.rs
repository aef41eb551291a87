//! The all-in-one runner: gateway, detector worker and reporter in one
//! process, on whichever backend is configured (embedded by default). It
//! starts exactly the libraries the separate binaries run, wired through
//! the same gRPC and queue paths, so `polybot demo` shows production's path.

pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod stack;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use polybot_detector::worker::{ProcessingHook, WorkerConfig, WorkerHandle};
use polybot_detector::{Detector, PoolOptions};
use polybot_gateway::messenger::TelegramMessenger;
use polybot_gateway::{Gateway, GatewayConfig};
use polybot_storage::Backends;
use polybot_telemetry::tasks::{Backoff, Supervisor};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// What to run and where.
pub struct MeshOptions {
    pub backends: Backends,
    pub telegram: TelegramMessenger,
    pub gateway: GatewayConfig,
    /// Bound by the caller, so it knows the addresses (port 0 in tests)
    /// before the webhook is registered.
    pub http_listener: TcpListener,
    pub grpc_listener: TcpListener,
    /// The detector worker's /healthz, /readyz, /metrics (None: not served).
    pub detector_http_listen: Option<SocketAddr>,
    /// None runs the mesh without a detector (jobs wait in the queue).
    pub detector: Option<PoolOptions>,
    pub worker: WorkerConfig,
    /// Report BacklogPerInstance every so often (to the log on the local backend).
    pub reporter_interval: Option<Duration>,
}

/// Writes the operator token to `dir/operator-token`, readable only by its
/// owner, so local operators can call the read RPCs with grpcurl (`-H
/// "authorization: Bearer $(cat …)"`) without the token being logged.
pub fn write_operator_token(
    dir: &std::path::Path,
    token: &secrecy::SecretString,
) -> anyhow::Result<std::path::PathBuf> {
    use secrecy::ExposeSecret;
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("operator-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{}", token.expose_secret())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// How long the reporter gets to stop.
const REPORTER_STOP_GRACE: Duration = Duration::from_secs(5);

/// A running mesh.
pub struct Mesh {
    pub gateway: Gateway,
    pub worker: Option<WorkerHandle>,
    /// Runs the reporter (the gateway and the worker supervise their own tasks).
    tasks: Supervisor,
    pub backends: Backends,
}

impl Mesh {
    pub async fn start(opts: MeshOptions) -> anyhow::Result<Self> {
        // The in-process detector presents the gateway's own results token.
        let results_token = opts.gateway.results_credentials.results.clone();
        let (messenger, control) = opts.telegram.ports();
        let gateway = Gateway::start(
            opts.gateway,
            opts.backends.clone(),
            messenger,
            control,
            opts.http_listener,
            opts.grpc_listener,
        )
        .await?;

        let processing_times = polybot_reporter::ProcessingTimes::new();
        let worker = match opts.detector {
            Some(pool) => {
                let detector = tokio::task::spawn_blocking(move || Detector::load(&pool))
                    .await
                    .context("loading the model")??;
                let listener = match opts.detector_http_listen {
                    Some(addr) => Some(
                        TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("cannot listen on {addr} (detector HTTP)"))?,
                    ),
                    None => None,
                };
                let times = processing_times.clone();
                let config = WorkerConfig {
                    // The worker reaches Results over real gRPC, as in production.
                    results_url: format!("http://{}", gateway.grpc_addr()),
                    on_processed: Some(ProcessingHook(Arc::new(move |d| times.record(d)))),
                    results_token: Some(results_token),
                    ..opts.worker
                };
                Some(
                    polybot_detector::worker::start(
                        detector,
                        opts.backends.clone(),
                        config,
                        listener,
                    )
                    .await?,
                )
            }
            None => None,
        };

        let tasks = Supervisor::default();
        if let Some(interval) = opts.reporter_interval {
            let reporter = polybot_reporter::Reporter {
                queue: Arc::clone(&opts.backends.jobs),
                instances: Arc::new(polybot_reporter::FixedInstances(u32::from(
                    worker.is_some(),
                ))),
                sink: Arc::new(polybot_reporter::LogSink::new()),
                processing_times: Some(Arc::new(processing_times.clone())),
                settings: polybot_reporter::ReportSettings {
                    interval,
                    ..Default::default()
                },
            }
            // Queued clips count by their cost.
            .with_backlog(opts.backends.table.clone());
            let cancel = tasks.cancel_token();
            tasks.supervise("reporter", Backoff::default(), move || {
                let run = polybot_reporter::run(reporter.clone(), cancel.clone().cancelled_owned());
                async move {
                    if let Err(e) = run.await {
                        warn!(error = %e, "reporter stopped");
                    }
                }
            });
        }
        info!(
            http = %gateway.http_addr(),
            grpc = %gateway.grpc_addr(),
            detector = worker.is_some(),
            "polybot is up"
        );
        Ok(Self {
            gateway,
            worker,
            tasks,
            backends: opts.backends,
        })
    }

    /// Stops in dependency order: the worker first (it stops taking jobs and
    /// reports the running ones to the still-serving gateway), then the
    /// reporter, then the gateway.
    pub async fn shutdown(self) {
        if let Some(w) = self.worker {
            w.shutdown().await;
        }
        self.tasks.shutdown(REPORTER_STOP_GRACE).await;
        self.gateway.shutdown().await;
    }
}
