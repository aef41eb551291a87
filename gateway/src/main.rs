//! `gateway` binary: parse configuration, then serve until SIGTERM.

use clap::Parser;
use polybot_gateway::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = cli.command {
        return polybot_telemetry::healthcheck(&url)
            .await
            .map_err(anyhow::Error::msg);
    }
    // reqwest (rustls-tls) brings ring and the AWS SDK aws-lc-rs: pick one before any TLS.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    polybot_gateway::cli::serve(cli.serve).await
}
