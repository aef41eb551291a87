//! Command-line interface of the `detector` binary: `detect` for photos on
//! disk and `bench` for the performance figures.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use polybot_inference::{DetectOutput, Detector};

pub use crate::model_args::ModelArgs;

#[derive(Parser, Debug)]
#[command(
    name = "detector",
    version,
    about = "Polybot detector: YOLO object detection with ONNX Runtime"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up; boxing the worker's settings would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Detect objects in image files and print what was found.
    Detect(DetectArgs),
    /// Measure raw inference, end-to-end time, letterbox modes and lane scaling.
    Bench(crate::bench::BenchArgs),
    /// Run the queue worker: jobs in, annotated photos, summaries and Results reports out.
    Worker(WorkerArgs),
    /// Exit 0 if the URL answers 200 (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9090/healthz")]
        url: String,
    },
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// gRPC URL of the gateway's Results service.
    #[arg(
        long,
        env = "POLYBOT_RESULTS_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub results_url: String,
    /// Token for the Results service: only from the environment (POLYBOT_RESULTS_TOKEN).
    #[arg(skip = polybot_proto::auth::env_secret("POLYBOT_RESULTS_TOKEN"))]
    pub results_token: Option<secrecy::SecretString>,
    /// File holding the token presented to the Results service. The token itself is read from POLYBOT_RESULTS_TOKEN in the environment, this file, or --results-secret-id; never from a flag.
    #[arg(long, env = "POLYBOT_RESULTS_TOKEN_FILE")]
    pub results_token_file: Option<PathBuf>,
    /// Secrets Manager secret (name or ARN) whose JSON field `results_token` holds the Results token.
    #[arg(long, env = "POLYBOT_RESULTS_SECRET_ID")]
    pub results_secret_id: Option<String>,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "POLYBOT_HTTP_LISTEN", default_value = "0.0.0.0:9090")]
    pub http_listen: std::net::SocketAddr,
    /// Seconds in-flight jobs get to finish on SIGTERM before they are released to the queue.
    #[arg(long, env = "POLYBOT_SHUTDOWN_GRACE", default_value_t = crate::worker::DEFAULT_SHUTDOWN_GRACE.as_secs())]
    pub shutdown_grace: u64,
    /// Seconds each heartbeat keeps a running job invisible to other workers
    /// (it beats every third of this); default: the jobs queue's own
    /// visibility timeout. Must keep the beat within half of the queue's.
    #[arg(long, env = "POLYBOT_VISIBILITY")]
    pub visibility: Option<u64>,
    /// Seconds one job may take, from receipt to acknowledged report; past
    /// it the job ends as a failure the user is told about.
    #[arg(long, env = "POLYBOT_JOB_TIMEOUT", default_value_t = crate::worker::DEFAULT_JOB_TIMEOUT.as_secs())]
    pub job_timeout: u64,
    /// Seconds a clip's job (a video, a GIF, a round video) may take, from
    /// receipt to acknowledged report.
    #[arg(long, env = "POLYBOT_VIDEO_JOB_TIMEOUT", default_value_t = crate::worker::DEFAULT_VIDEO_JOB_TIMEOUT.as_secs())]
    pub video_job_timeout: u64,
    #[command(flatten)]
    pub backend: polybot_storage::config::BackendArgs,
    #[command(flatten)]
    pub telemetry: polybot_telemetry::TelemetryArgs,
}

/// Runs `detector worker` until SIGTERM.
pub async fn worker(args: WorkerArgs) -> anyhow::Result<bool> {
    use anyhow::Context;
    let mut telemetry = polybot_telemetry::init_from("detector", &args.telemetry)?;
    let results_token = args.results_token().await?;
    let backends = args
        .backend
        .connect()
        .await
        .context("connecting the storage backend")?;
    // Before the model loads: a heartbeat that cannot keep jobs is a
    // configuration error to report at once.
    let visibility = args
        .visibility
        .map(|v| std::time::Duration::from_secs(v.max(1)));
    crate::worker::check_heartbeat(backends.jobs.as_ref(), visibility).await?;
    let opts = args.model.pool_options();
    let detector = tokio::task::spawn_blocking(move || Detector::load(&opts)).await??;
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("POLYBOT_HTTP_LISTEN={}: cannot listen", args.http_listen))?;
    let config = crate::worker::WorkerConfig {
        results_url: args.results_url,
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
        visibility,
        job_timeout: std::time::Duration::from_secs(args.job_timeout.max(1)),
        video_job_timeout: std::time::Duration::from_secs(args.video_job_timeout.max(1)),
        results_token: Some(results_token),
        ..Default::default()
    };
    let handle = crate::worker::start(detector, backends, config, Some(http)).await?;
    polybot_telemetry::shutdown_signal().await;
    handle.shutdown().await;
    telemetry.shutdown();
    Ok(true)
}

impl WorkerArgs {
    /// The Results token: the environment, else the file, else Secrets Manager.
    pub async fn results_token(&self) -> anyhow::Result<secrecy::SecretString> {
        use polybot_proto::auth::{read_secret_file, validate_token};
        let token = if let Some(t) = &self.results_token {
            t.clone()
        } else if let Some(path) = &self.results_token_file {
            read_secret_file("POLYBOT_RESULTS_TOKEN_FILE", path)?
        } else if let Some(id) = &self.results_secret_id {
            let settings = polybot_storage::aws::AwsSettings {
                region: self.backend.region.clone(),
                endpoint_url: self.backend.endpoint_url.clone(),
                ..Default::default()
            };
            let sdk = polybot_storage::aws::load_sdk_config(&settings).await?;
            polybot_storage::aws::secrets::secret_field(
                &sdk,
                "POLYBOT_RESULTS_SECRET_ID",
                id,
                "results_token",
            )
            .await?
        } else {
            anyhow::bail!(
                "no token for the Results service: set POLYBOT_RESULTS_TOKEN, \
                 POLYBOT_RESULTS_TOKEN_FILE or POLYBOT_RESULTS_SECRET_ID (the gateway's token)"
            );
        };
        validate_token("the Results token", &token)?;
        Ok(token)
    }
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print one summary JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write annotated images to this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs `detector detect`. Returns whether every image succeeded.
pub async fn detect(args: DetectArgs) -> anyhow::Result<bool> {
    let detector = args.model.load()?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
    }
    // Submit everything at once: the pool bounds the parallelism (the
    // work runs on its lanes, so polling the requests together is enough).
    let jobs = args.images.iter().map(|path| {
        let detector = detector.clone();
        let path = path.clone();
        async move {
            let bytes = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
            detector.detect(bytes).await.map_err(|e| e.to_string())
        }
    });
    let results = futures::future::join_all(jobs).await;

    let mut all_ok = true;
    let stdout = std::io::stdout();
    for (path, result) in args.images.iter().zip(results) {
        match result {
            Ok(out) => {
                let predicted = match &args.out {
                    Some(dir) => {
                        let dest = annotated_path(dir, path);
                        std::fs::write(&dest, &out.annotated_jpeg)?;
                        dest.display().to_string()
                    }
                    None => String::new(),
                };
                let mut lock = stdout.lock();
                if args.json {
                    let summary = out.summary(
                        polybot_domain::PredictionId::new(),
                        path.display().to_string(),
                        predicted,
                    );
                    writeln!(lock, "{}", serde_json::to_string(&summary)?)?;
                } else {
                    print_table(&mut lock, path, &out, &predicted)?;
                }
            }
            Err(e) => {
                all_ok = false;
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    detector.join();
    Ok(all_ok)
}

fn annotated_path(dir: &Path, image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!("{stem}.annotated.jpg"))
}

fn print_table(
    w: &mut impl Write,
    path: &Path,
    out: &DetectOutput,
    predicted: &str,
) -> std::io::Result<()> {
    let ms = out.timings.total().as_secs_f64() * 1e3;
    writeln!(
        w,
        "{}  {}×{}  {} object(s)  {ms:.1} ms",
        path.display(),
        out.width,
        out.height,
        out.detections.len()
    )?;
    if !out.detections.is_empty() {
        writeln!(
            w,
            "  {:<16} {:>6} {:>7} {:>7} {:>7} {:>7}",
            "class", "conf", "x1", "y1", "x2", "y2"
        )?;
        for d in &out.detections {
            writeln!(
                w,
                "  {:<16} {:>6.2} {:>7.1} {:>7.1} {:>7.1} {:>7.1}",
                d.class_name, d.confidence, d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2
            )?;
        }
    }
    if !predicted.is_empty() {
        writeln!(w, "  annotated: {predicted}")?;
    }
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_results_token_is_never_a_flag() {
        let err = Cli::try_parse_from(["detector", "worker", "--results-token", "x"])
            .expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let cmd = Cli::command();
        let worker = cmd.find_subcommand("worker").expect("worker");
        for arg in worker.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            assert!(
                !long.contains("token") || long.ends_with("-file"),
                "--{long} could carry a secret"
            );
        }
    }

    #[tokio::test]
    async fn a_worker_without_a_results_token_refuses_to_start() {
        let Command::Worker(mut args) = Cli::try_parse_from(["detector", "worker"])
            .expect("parse")
            .command
        else {
            panic!("not the worker");
        };
        args.results_token = None;
        let err = args.results_token().await.expect_err("refused");
        assert!(err.to_string().contains("POLYBOT_RESULTS_TOKEN"), "{err}");
        args.results_token = Some(secrecy::SecretString::from("short".to_owned()));
        let err = args.results_token().await.expect_err("too short");
        assert!(err.to_string().contains("at least 32"), "{err}");
    }
}
