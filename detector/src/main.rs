//! `detector` binary: a thin shell over the library.

use clap::Parser;
use polybot_detector::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let init_cli_logs = || {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .init()
    };
    let ok = match cli.command {
        Command::Worker(args) => polybot_detector::cli::worker(args).await?,
        Command::Healthcheck { url } => {
            polybot_telemetry::healthcheck(&url)
                .await
                .map_err(anyhow::Error::msg)?;
            true
        }
        command => {
            init_cli_logs();
            match command {
                Command::Detect(args) => polybot_detector::cli::detect(args).await?,
                Command::Bench(args) => polybot_detector::bench::run(args).await?,
                Command::Worker(_) | Command::Healthcheck { .. } => true,
            }
        }
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
