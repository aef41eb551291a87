//! The `gateway` binary's configuration: flags with environment fallbacks,
//! every one documented in `--help`. Secrets are held in `SecretString`
//! and never printed (clap's help hides their values too).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use polybot_storage::config::BackendArgs;
use polybot_telemetry::TelemetryArgs;
use secrecy::SecretString;

use crate::TelegramMode;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Polybot gateway: Telegram webhook, photo intake and the Results gRPC service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Exit 0 if the URL answers 200 (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

pub fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// Telegram settings shared by the gateway and the all-in-one runner.
#[derive(Args, Clone)]
pub struct TelegramArgs {
    /// Bot token from @BotFather (or use --telegram-secret-id).
    #[arg(long, env = "TELEGRAM_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub telegram_token: Option<SecretString>,
    /// Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every webhook delivery.
    #[arg(long, env = "TELEGRAM_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_secret: Option<SecretString>,
    /// Secrets Manager secret (name or ARN) whose JSON holds `telegram_token` and `webhook_secret`.
    #[arg(long, env = "POLYBOT_TELEGRAM_SECRET_ID")]
    pub telegram_secret_id: Option<String>,
    /// Bot API base URL.
    #[arg(
        long,
        env = "TELEGRAM_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api_url: reqwest::Url,
    /// How updates arrive: `webhook` (production) or `polling` (no public URL needed).
    #[arg(long, env = "POLYBOT_TELEGRAM_MODE", value_enum, default_value_t = TelegramMode::Webhook)]
    pub telegram_mode: TelegramMode,
    /// Public HTTPS base URL; if set, the webhook is registered with Telegram at start-up.
    #[arg(long, env = "POLYBOT_PUBLIC_URL")]
    pub public_url: Option<reqwest::Url>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address for the webhook, /healthz, /readyz and /metrics.
    #[arg(long, env = "POLYBOT_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// Address for the Results gRPC service, gRPC health and reflection (keep it internal).
    #[arg(long, env = "POLYBOT_GRPC_LISTEN", default_value = "0.0.0.0:50051")]
    pub grpc_listen: SocketAddr,
    /// PEM certificate chain to serve HTTPS directly (plain HTTP when unset, e.g. behind an ALB).
    #[arg(long, env = "POLYBOT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "POLYBOT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub telegram: TelegramArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// The token and webhook secret, from flags/environment or Secrets Manager.
pub struct TelegramSecrets {
    pub token: SecretString,
    pub webhook_secret: Option<SecretString>,
}

impl TelegramArgs {
    /// Resolves the secrets, failing with a message that names the setting.
    pub async fn secrets(&self, backend: &BackendArgs) -> anyhow::Result<TelegramSecrets> {
        if let Some(id) = &self.telegram_secret_id {
            let settings = polybot_storage::aws::AwsSettings {
                region: backend.region.clone(),
                endpoint_url: backend.endpoint_url.clone(),
                ..Default::default()
            };
            let sdk = polybot_storage::aws::load_sdk_config(&settings).await?;
            let fetched = polybot_storage::aws::secrets::telegram_secrets(&sdk, id).await?;
            return Ok(TelegramSecrets {
                token: self
                    .telegram_token
                    .clone()
                    .unwrap_or(fetched.telegram_token),
                webhook_secret: self.webhook_secret.clone().or(Some(fetched.webhook_secret)),
            });
        }
        let token = self.telegram_token.clone().ok_or_else(|| {
            anyhow::anyhow!("TELEGRAM_TOKEN is not set (or set POLYBOT_TELEGRAM_SECRET_ID to read it from Secrets Manager)")
        })?;
        Ok(TelegramSecrets {
            token,
            webhook_secret: self.webhook_secret.clone(),
        })
    }

    /// The gateway settings these flags and the resolved secrets describe
    /// (no TLS: that is the standalone gateway's choice).
    pub fn gateway_config(
        &self,
        secrets: TelegramSecrets,
        backend: &BackendArgs,
    ) -> crate::GatewayConfig {
        crate::GatewayConfig {
            mode: self.telegram_mode,
            webhook_secret: secrets.webhook_secret,
            public_url: self.public_url.clone(),
            messaging_system: backend.messaging_system(),
            ..crate::GatewayConfig::default()
        }
    }
}

/// Binds `addr`; the error names the `setting` it came from.
pub async fn listen(setting: &str, addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{setting}={addr}: cannot listen"))
}

/// Runs the gateway until SIGTERM or Ctrl-C: the `gateway` binary, and
/// `polybot gateway` in the all-in-one image.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    use anyhow::Context;

    use crate::messenger::TelegramMessenger;
    use crate::{Gateway, GatewayConfig, TlsFiles};

    let mut telemetry = polybot_telemetry::init("gateway", args.telemetry.log_format)?;
    let secrets = args.telegram.secrets(&args.backend).await?;
    let backends = args
        .backend
        .connect()
        .await
        .context("connecting the storage backend")?;
    let telegram = TelegramMessenger::new(&secrets.token, args.telegram.telegram_api_url.clone());
    let config = GatewayConfig {
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
        ..args.telegram.gateway_config(secrets, &args.backend)
    };
    let http = listen("POLYBOT_HTTP_LISTEN", args.http_listen).await?;
    let grpc = listen("POLYBOT_GRPC_LISTEN", args.grpc_listen).await?;
    let gateway = Gateway::start(config, backends, telegram, http, grpc).await?;

    polybot_telemetry::shutdown_signal().await;
    gateway.shutdown().await;
    telemetry.shutdown();
    Ok(())
}
