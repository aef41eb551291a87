//! The `gateway` binary's configuration: flags with environment fallbacks,
//! every one documented in `--help`. Secrets are held in `SecretString`
//! and never printed. No secret is ever a flag (the process list would show
//! it): each comes from its environment variable, a file named by a
//! `--…-file` flag, or Secrets Manager, and `--telegram-token` and the like
//! are refused as unknown arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use polybot_storage::config::BackendArgs;
use polybot_telemetry::TelemetryArgs;
use secrecy::SecretString;

use crate::TelegramMode;
use crate::secret::WebhookSecret;

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

use polybot_proto::auth::{ResultsCredentials, env_secret, read_secret_file};

/// Telegram settings shared by the gateway and the all-in-one runner.
#[derive(Args, Clone)]
pub struct TelegramArgs {
    /// Bot token from @BotFather: only from the environment (TELEGRAM_TOKEN).
    #[arg(skip = env_secret("TELEGRAM_TOKEN"))]
    pub telegram_token: Option<SecretString>,
    /// File holding the bot token. The token itself is read from TELEGRAM_TOKEN in the environment, this file, or --telegram-secret-id; never from a flag.
    #[arg(long, env = "TELEGRAM_TOKEN_FILE")]
    pub telegram_token_file: Option<PathBuf>,
    /// Webhook secret: only from the environment (TELEGRAM_WEBHOOK_SECRET).
    #[arg(skip = env_secret("TELEGRAM_WEBHOOK_SECRET"))]
    pub webhook_secret: Option<SecretString>,
    /// File holding the secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every webhook delivery (or set TELEGRAM_WEBHOOK_SECRET in the environment).
    #[arg(long, env = "TELEGRAM_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Detectors' token for the Results gRPC service: only from the environment (POLYBOT_RESULTS_TOKEN).
    #[arg(skip = env_secret("POLYBOT_RESULTS_TOKEN"))]
    pub results_token: Option<SecretString>,
    /// File holding the token detectors present to the Results gRPC service (or set POLYBOT_RESULTS_TOKEN in the environment, or `results_token` in the --telegram-secret-id secret). At least 32 characters.
    #[arg(long, env = "POLYBOT_RESULTS_TOKEN_FILE")]
    pub results_token_file: Option<PathBuf>,
    /// The results token being rotated out, still accepted from detectors: only from the environment (POLYBOT_RESULTS_TOKEN_PREVIOUS).
    #[arg(skip = env_secret("POLYBOT_RESULTS_TOKEN_PREVIOUS"))]
    pub results_token_previous: Option<SecretString>,
    /// File holding the previous results token, accepted beside the current one while detectors move to the new one (or set POLYBOT_RESULTS_TOKEN_PREVIOUS, or `results_token_previous` in the --telegram-secret-id secret). Unset once the rotation is done.
    #[arg(long, env = "POLYBOT_RESULTS_TOKEN_PREVIOUS_FILE")]
    pub results_token_previous_file: Option<PathBuf>,
    /// Operators' token for GetPrediction/ListPredictions: only from the environment (POLYBOT_OPERATOR_TOKEN).
    #[arg(skip = env_secret("POLYBOT_OPERATOR_TOKEN"))]
    pub operator_token: Option<SecretString>,
    /// File holding the operators' token for the read RPCs GetPrediction and ListPredictions (or set POLYBOT_OPERATOR_TOKEN, or `operator_token` in the --telegram-secret-id secret). Without one, the read RPCs are closed.
    #[arg(long, env = "POLYBOT_OPERATOR_TOKEN_FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// Secrets Manager secret (name or ARN) whose JSON holds `telegram_token`, `webhook_secret` and optionally `results_token`, `operator_token` and `results_token_previous`.
    #[arg(long, env = "POLYBOT_TELEGRAM_SECRET_ID")]
    pub telegram_secret_id: Option<String>,
    /// Secrets Manager secret (name or ARN) that holds only the Results tokens: JSON `results_token` and, while rotating, `results_token_previous`. When set, these two come from it and not from the --telegram-secret-id secret (the deployment gives detectors this secret alone, never the bot token).
    #[arg(long, env = "POLYBOT_RESULTS_SECRET_ID")]
    pub results_secret_id: Option<String>,
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
    /// Milliseconds a photo's answer may take before the chat gets a written "still working" notice (the "sending photo" status shows at once); the notice is removed when the answer arrives. 0: always send one.
    #[arg(long, env = "POLYBOT_NOTICE_AFTER_MS", default_value_t = DEFAULT_NOTICE_AFTER.as_millis() as u64)]
    pub notice_after_ms: u64,
    /// Milliseconds an album (photos sent together) waits for more photos after its latest before it is answered as one request; Telegram delivers an album's photos within moments.
    #[arg(long, env = "POLYBOT_ALBUM_QUIET_MS", default_value_t = crate::intake::DEFAULT_ALBUM_QUIET.as_millis() as u64)]
    pub album_quiet_ms: u64,
    /// Photos one Telegram user may send a minute (an album's photos each count); past it the photo is skipped and the chat told to wait, once a minute. Counted in the shared table, across gateways. 0: no limit.
    #[arg(long, env = "POLYBOT_USER_PHOTOS_PER_MINUTE", default_value_t = crate::intake::Limits::default().user_photos_per_minute)]
    pub user_photos_per_minute: u32,
    /// Requests (photos, replies asking for an action; an album is one) a chat may have waiting for their answers; past it the photo is skipped and the chat told to wait, once a minute. 0: no limit.
    #[arg(long, env = "POLYBOT_CHAT_PENDING_LIMIT", default_value_t = crate::intake::Limits::default().chat_pending)]
    pub chat_pending_limit: u32,
}

const DEFAULT_NOTICE_AFTER: std::time::Duration =
    crate::progress::ProgressConfig::DEFAULT_NOTICE_AFTER;

#[derive(Args)]
pub struct ServeArgs {
    /// Address for the webhook, /healthz, /readyz and /metrics.
    #[arg(long, env = "POLYBOT_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// Address for the Results gRPC service, gRPC health and reflection. Loopback by default: a deployment that runs detectors on other hosts sets an address they can reach (and keeps it internal).
    #[arg(long, env = "POLYBOT_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
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

/// The token and webhook secret, from the environment, files or Secrets
/// Manager, and the Results tokens when configured.
pub struct TelegramSecrets {
    pub token: SecretString,
    pub webhook_secret: Option<SecretString>,
    pub results_token: Option<SecretString>,
    pub operator_token: Option<SecretString>,
    /// The results token being rotated out, still accepted.
    pub results_token_previous: Option<SecretString>,
}

/// The environment's value, else the file's; the error names the setting.
fn env_or_file(
    from_env: &Option<SecretString>,
    file_setting: &'static str,
    file: &Option<PathBuf>,
) -> anyhow::Result<Option<SecretString>> {
    if let Some(v) = from_env {
        return Ok(Some(v.clone()));
    }
    match file {
        Some(path) => Ok(Some(read_secret_file(file_setting, path)?)),
        None => Ok(None),
    }
}

impl TelegramArgs {
    /// Resolves the secrets, failing with a message that names the setting.
    /// The environment wins over a file, which wins over Secrets Manager.
    pub async fn secrets(&self, backend: &BackendArgs) -> anyhow::Result<TelegramSecrets> {
        let mut secrets = TelegramSecrets {
            token: SecretString::from(String::new()),
            webhook_secret: env_or_file(
                &self.webhook_secret,
                "TELEGRAM_WEBHOOK_SECRET_FILE",
                &self.webhook_secret_file,
            )?,
            results_token: env_or_file(
                &self.results_token,
                "POLYBOT_RESULTS_TOKEN_FILE",
                &self.results_token_file,
            )?,
            operator_token: env_or_file(
                &self.operator_token,
                "POLYBOT_OPERATOR_TOKEN_FILE",
                &self.operator_token_file,
            )?,
            results_token_previous: env_or_file(
                &self.results_token_previous,
                "POLYBOT_RESULTS_TOKEN_PREVIOUS_FILE",
                &self.results_token_previous_file,
            )?,
        };
        let token = env_or_file(
            &self.telegram_token,
            "TELEGRAM_TOKEN_FILE",
            &self.telegram_token_file,
        )?;
        let sdk = if self.telegram_secret_id.is_some() || self.results_secret_id.is_some() {
            let settings = polybot_storage::aws::AwsSettings {
                region: backend.region.clone(),
                endpoint_url: backend.endpoint_url.clone(),
                ..Default::default()
            };
            Some(polybot_storage::aws::load_sdk_config(&settings).await?)
        } else {
            None
        };
        // The Results tokens stored in Secrets Manager: from their own
        // secret when one is named (the main secret's copies are then
        // ignored, so a stale token left there is not accepted), else from
        // the main secret. The environment and files still come first.
        let mut stored_results = (None, None);
        let mut stored_token = None;
        if let (Some(id), Some(sdk)) = (&self.telegram_secret_id, &sdk) {
            let fetched = polybot_storage::aws::secrets::telegram_secrets(sdk, id).await?;
            stored_token = Some(fetched.telegram_token);
            secrets.webhook_secret = secrets.webhook_secret.or(Some(fetched.webhook_secret));
            secrets.operator_token = secrets.operator_token.or(fetched.operator_token);
            stored_results = (fetched.results_token, fetched.results_token_previous);
        }
        if let (Some(id), Some(sdk)) = (&self.results_secret_id, &sdk) {
            let fetched = polybot_storage::aws::secrets::results_secrets(sdk, id).await?;
            stored_results = (Some(fetched.results_token), fetched.results_token_previous);
        }
        secrets.results_token = secrets.results_token.or(stored_results.0);
        secrets.results_token_previous = secrets.results_token_previous.or(stored_results.1);
        secrets.token = token.or(stored_token).ok_or_else(|| {
            anyhow::anyhow!("TELEGRAM_TOKEN is not set (or set TELEGRAM_TOKEN_FILE, or POLYBOT_TELEGRAM_SECRET_ID to read it from Secrets Manager)")
        })?;
        Ok(secrets)
    }

    /// The gateway settings these flags and the resolved secrets describe
    /// (no TLS: that is the standalone gateway's choice).
    ///
    /// Without a configured results token the detectors could never report,
    /// so the standalone gateway refuses to start; the all-in-one runner
    /// instead keeps the default, generated credentials (see
    /// [`GatewayConfig::default`](crate::GatewayConfig)) and hands them to
    /// its detector in-process.
    ///
    /// A webhook secret that breaks the rules of [`WebhookSecret`] is an
    /// error that names where it came from.
    pub fn gateway_config(&self, secrets: TelegramSecrets) -> anyhow::Result<crate::GatewayConfig> {
        let webhook_secret = secrets
            .webhook_secret
            .map(WebhookSecret::parse)
            .transpose()
            .map_err(|e| {
                anyhow::anyhow!(
                    "the webhook secret (TELEGRAM_WEBHOOK_SECRET, TELEGRAM_WEBHOOK_SECRET_FILE or \
                     `webhook_secret` in the POLYBOT_TELEGRAM_SECRET_ID secret) is refused: {e}"
                )
            })?;
        let mut config = crate::GatewayConfig {
            mode: self.telegram_mode,
            webhook_secret,
            public_url: self.public_url.clone(),
            progress: crate::progress::ProgressConfig {
                notice_after: std::time::Duration::from_millis(self.notice_after_ms),
                ..crate::progress::ProgressConfig::default()
            },
            album_quiet: std::time::Duration::from_millis(self.album_quiet_ms),
            limits: crate::intake::Limits {
                user_photos_per_minute: self.user_photos_per_minute,
                chat_pending: self.chat_pending_limit,
            },
            ..crate::GatewayConfig::default()
        };
        if let Some(results) = secrets.results_token {
            config.results_credentials = ResultsCredentials {
                results,
                operator: secrets.operator_token,
                previous_results: secrets.results_token_previous,
            };
        } else if let Some(operator) = secrets.operator_token {
            config.results_credentials.operator = Some(operator);
        }
        Ok(config)
    }

    /// The storage backend and the bot that these flags and the resolved
    /// secrets name.
    pub async fn connect(
        &self,
        backend: &BackendArgs,
        secrets: &TelegramSecrets,
    ) -> anyhow::Result<(
        polybot_storage::Backends,
        crate::messenger::TelegramMessenger,
    )> {
        use anyhow::Context;
        let backends = backend
            .connect()
            .await
            .context("connecting the storage backend")?;
        let telegram =
            crate::messenger::TelegramMessenger::new(&secrets.token, self.telegram_api_url.clone());
        Ok((backends, telegram))
    }

    /// Whether a results token was configured (the environment, a file or
    /// the Secrets Manager secret), as the standalone gateway requires.
    pub fn require_results_token(secrets: &TelegramSecrets) -> anyhow::Result<()> {
        if secrets.results_token.is_none() {
            anyhow::bail!(
                "no token for the Results gRPC service: set POLYBOT_RESULTS_TOKEN or \
                 POLYBOT_RESULTS_TOKEN_FILE, or add `results_token` to the \
                 POLYBOT_TELEGRAM_SECRET_ID secret (detectors present the same token)"
            );
        }
        Ok(())
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
    use crate::{Gateway, GatewayConfig, TlsFiles};

    let telemetry = polybot_telemetry::init_from("gateway", &args.telemetry)?;
    let secrets = args.telegram.secrets(&args.backend).await?;
    TelegramArgs::require_results_token(&secrets)?;
    if secrets.operator_token.is_none() {
        tracing::info!(
            "no operator token (POLYBOT_OPERATOR_TOKEN): GetPrediction, ListPredictions and Detect are closed"
        );
    }
    let (backends, telegram) = args.telegram.connect(&args.backend, &secrets).await?;
    let config = GatewayConfig {
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        },
        ..args.telegram.gateway_config(secrets)?
    };
    let http = listen("POLYBOT_HTTP_LISTEN", args.http_listen).await?;
    let grpc = listen("POLYBOT_GRPC_LISTEN", args.grpc_listen).await?;
    let (messenger, control) = telegram.ports();
    let gateway = Gateway::start(config, backends, messenger, control, http, grpc).await?;
    until_signal(telemetry, gateway.shutdown()).await;
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C, then stops the service (`stop`, its
/// graceful shutdown) and flushes telemetry: how every long-running
/// command that serves a gateway ends.
pub async fn until_signal(
    mut telemetry: polybot_telemetry::TelemetryGuard,
    stop: impl std::future::Future<Output = ()>,
) {
    polybot_telemetry::shutdown_signal().await;
    stop.await;
    telemetry.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use secrecy::ExposeSecret;

    /// Every flag whose name speaks of a token or secret, in the whole
    /// command tree, must name a file or a Secrets Manager id instead.
    fn assert_no_secret_flags(cmd: &clap::Command) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                let secretive = ["token", "secret", "password"]
                    .iter()
                    .any(|w| long.contains(w));
                assert!(
                    !secretive || long.ends_with("-file") || long.ends_with("-secret-id"),
                    "{} has a flag --{long} that could carry a secret",
                    cmd.get_name()
                );
            }
        }
        for sub in cmd.get_subcommands() {
            assert_no_secret_flags(sub);
        }
    }

    #[test]
    fn no_flag_can_carry_a_secret() {
        assert_no_secret_flags(&Cli::command());
    }

    #[test]
    fn secrets_given_as_flags_are_refused() {
        for flag in [
            "--telegram-token",
            "--webhook-secret",
            "--results-token",
            "--operator-token",
        ] {
            let err = Cli::try_parse_from(["gateway", flag, "123:abc"])
                .err()
                .unwrap_or_else(|| panic!("{flag} was accepted"));
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{flag}"
            );
        }
    }

    #[tokio::test]
    async fn secrets_are_read_from_files_and_the_environment_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, value: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, value).expect("write");
            p.display().to_string()
        };
        let token = file("token", "123:from-file\n");
        let results = file("results", &"r".repeat(40));
        let cli = Cli::try_parse_from([
            "gateway",
            "--telegram-token-file",
            &token,
            "--results-token-file",
            &results,
        ])
        .expect("parse");
        let mut telegram = cli.serve.telegram.clone();
        let secrets = telegram.secrets(&cli.serve.backend).await.expect("secrets");
        assert_eq!(secrets.token.expose_secret(), "123:from-file");
        assert_eq!(
            secrets
                .results_token
                .as_ref()
                .map(|s| s.expose_secret().len()),
            Some(40)
        );
        assert!(TelegramArgs::require_results_token(&secrets).is_ok());
        // What the environment gave (the parser reads it) wins over the file.
        telegram.telegram_token = Some(SecretString::from("123:from-env".to_owned()));
        let secrets = telegram.secrets(&cli.serve.backend).await.expect("secrets");
        assert_eq!(secrets.token.expose_secret(), "123:from-env");
        // No results token anywhere: the standalone gateway refuses to start.
        telegram.results_token_file = None;
        telegram.results_token = None;
        let secrets = telegram.secrets(&cli.serve.backend).await.expect("secrets");
        let err = TelegramArgs::require_results_token(&secrets).expect_err("refused");
        assert!(err.to_string().contains("POLYBOT_RESULTS_TOKEN"), "{err}");
    }

    #[test]
    fn the_grpc_listener_defaults_to_loopback() {
        let cli = Cli::try_parse_from(["gateway"]).expect("parse");
        assert!(cli.serve.grpc_listen.ip().is_loopback());
    }
}
