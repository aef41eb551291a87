//! `polybot`: gateway, detector and reporter in one process.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use polybot::{Mesh, MeshOptions};
use polybot_detector::cli::ModelArgs;
use polybot_gateway::TelegramMode;
use polybot_gateway::cli::{TelegramArgs, listen};
use polybot_gateway::messenger::TelegramMessenger;
use polybot_storage::config::BackendArgs;
use polybot_telemetry::TelemetryArgs;

#[derive(Parser)]
#[command(
    name = "polybot",
    version,
    about = "Polybot all-in-one: gateway, detector and reporter in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a real bot (long polling by default, so no public URL is needed).
    Up(Box<UpArgs>),
    /// Run the whole mesh against a Telegram emulator with the sample photos.
    Demo(polybot::demo::DemoArgs),
    /// Run only the gateway, exactly as the `gateway` binary does (one image
    /// can then run every service).
    Gateway(Box<polybot_gateway::cli::ServeArgs>),
    /// Run only a detector queue worker, exactly as `detector worker` does.
    Detector(Box<polybot_detector::cli::WorkerArgs>),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Address for the webhook, /healthz, /readyz and /metrics.
    #[arg(long, env = "POLYBOT_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: std::net::SocketAddr,
    /// Address for the Results gRPC service.
    #[arg(long, env = "POLYBOT_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    grpc_listen: std::net::SocketAddr,
    /// Address for the detector's /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "POLYBOT_DETECTOR_HTTP_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    detector_http_listen: std::net::SocketAddr,
    /// Seconds in-flight jobs get to finish on SIGTERM.
    #[arg(long, env = "POLYBOT_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
    /// Seconds between BacklogPerInstance reports (logged on the local backend).
    #[arg(long, env = "POLYBOT_REPORT_INTERVAL", default_value_t = 30)]
    report_interval: u64,
    #[command(flatten)]
    telegram: TelegramArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Demo(args) => {
            // The conversation is the output; logs default to warnings.
            let _telemetry = polybot_telemetry::init_with_filter(
                "polybot",
                polybot_telemetry::LogFormat::Text,
                "warn",
            )?;
            polybot::demo::run(args).await
        }
        Command::Up(args) => up(*args).await,
        Command::Gateway(args) => polybot_gateway::cli::serve(*args).await,
        Command::Detector(args) => {
            if polybot_detector::cli::worker(*args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut telemetry = polybot_telemetry::init("polybot", args.telemetry.log_format)?;
    let secrets = args.telegram.secrets(&args.backend).await?;
    let backends = args
        .backend
        .connect()
        .await
        .context("connecting the storage backend")?;
    let telegram = TelegramMessenger::new(&secrets.token, args.telegram.telegram_api_url.clone());
    let mut gateway = args.telegram.gateway_config(secrets, &args.backend);
    if gateway.mode == TelegramMode::Webhook && gateway.public_url.is_none() {
        // Without a public URL Telegram cannot reach us: poll instead.
        gateway.mode = TelegramMode::Polling;
    }
    let mesh = Mesh::start(MeshOptions {
        backends,
        telegram,
        gateway,
        http_listener: listen("POLYBOT_HTTP_LISTEN", args.http_listen).await?,
        grpc_listener: listen("POLYBOT_GRPC_LISTEN", args.grpc_listen).await?,
        detector_http_listen: Some(args.detector_http_listen),
        detector: Some(args.model.pool_options()),
        worker: polybot_detector::worker::WorkerConfig {
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            messaging_system: args.backend.messaging_system(),
            // The heartbeat follows the queue's real visibility timeout.
            visibility: None,
            ..Default::default()
        },
        reporter_interval: Some(Duration::from_secs(args.report_interval.max(1))),
    })
    .await?;
    polybot_telemetry::shutdown_signal().await;
    mesh.shutdown().await;
    telemetry.shutdown();
    Ok(())
}
