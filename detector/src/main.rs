//! `detector` binary: a thin shell over the library.

use clap::Parser;
use polybot_detector::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let ok = match cli.command {
        Command::Detect(args) => polybot_detector::cli::detect(args).await?,
        Command::Bench(args) => polybot_detector::bench::run(args).await?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
