//! `gateway` binary: parse configuration, connect the backends, serve until SIGTERM.

use anyhow::Context;
use clap::Parser;
use polybot_gateway::cli::{Cli, Command};
use polybot_gateway::messenger::TelegramMessenger;
use polybot_gateway::{Gateway, GatewayConfig, TlsFiles};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = cli.command {
        return polybot_telemetry::healthcheck(&url)
            .await
            .map_err(anyhow::Error::msg);
    }
    // teloxide brings ring and the AWS SDK aws-lc-rs: pick one before any TLS.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = cli.serve;
    let mut telemetry = polybot_telemetry::init("gateway", args.telemetry.log_format)?;

    let secrets = args.telegram.secrets(&args.backend).await?;
    let backends = args
        .backend
        .connect()
        .await
        .context("connecting the storage backend")?;
    let telegram = TelegramMessenger::new(&secrets.token, args.telegram.telegram_api_url.clone());
    let config = GatewayConfig {
        mode: args.telegram.telegram_mode,
        webhook_secret: secrets.webhook_secret,
        public_url: args.telegram.public_url.clone(),
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
        ..GatewayConfig::default()
    };
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("POLYBOT_HTTP_LISTEN={}: cannot listen", args.http_listen))?;
    let grpc = tokio::net::TcpListener::bind(args.grpc_listen)
        .await
        .with_context(|| format!("POLYBOT_GRPC_LISTEN={}: cannot listen", args.grpc_listen))?;
    let gateway = Gateway::start(config, backends, telegram, http, grpc).await?;

    polybot_telemetry::shutdown_signal().await;
    gateway.shutdown().await;
    telemetry.shutdown();
    Ok(())
}
