//! The gateway's settings ([`GatewayConfig`]) and what can stop it from
//! starting ([`GatewayError`]).

use std::path::PathBuf;
use std::time::Duration;

use polybot_telemetry::tasks::Backoff;

use crate::botapi::BotApiError;
use crate::inbound::BOT_API_MAX_DOWNLOAD;
use crate::intake::{DEFAULT_ALBUM_QUIET, Limits, RetryBudget};
use crate::progress::ProgressConfig;
use crate::secret::WebhookSecret;

/// How the gateway hears from Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TelegramMode {
    /// Telegram posts updates to `/telegram/webhook` (production).
    Webhook,
    /// The gateway long-polls `getUpdates` (laptops without a public URL).
    Polling,
}

/// PEM certificate chain and private key for serving HTTPS directly.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone)]
pub struct GatewayConfig {
    pub mode: TelegramMode,
    /// Required in webhook mode: Telegram sends it in every delivery.
    pub webhook_secret: Option<WebhookSecret>,
    /// If set, the webhook is registered with Telegram at start-up.
    pub public_url: Option<reqwest::Url>,
    pub tls: Option<TlsFiles>,
    /// Largest photo accepted, at most the Bot API's 20 MB.
    pub max_download: u64,
    /// How long a dead-letter poll waits for messages.
    pub dead_letter_wait: Duration,
    /// Tokens `polybot.v1.Results` accepts (random ones by default, for
    /// in-process runs that hand them to their detector).
    pub results_credentials: polybot_proto::auth::ResultsCredentials,
    /// How many deliveries of one update are tried, and for how long,
    /// before the user gets an apology (or a poison update is skipped).
    pub update_retries: RetryBudget,
    /// Pauses between start-up calls to Telegram that failed for now.
    pub startup_backoff: Backoff,
    /// How long a new connection may take to send its first request; one
    /// that is slower (or sends nothing) is closed.
    pub header_read_timeout: Duration,
    /// How long one HTTP request (body included) may take before it is
    /// answered 408.
    pub request_timeout: Duration,
    /// When the user sees that a job is being worked on.
    pub progress: ProgressConfig,
    /// How long an album waits for more photos after its latest one
    /// before it is answered as one request.
    pub album_quiet: Duration,
    /// How much one user or chat may ask of the bot.
    pub limits: Limits,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            mode: TelegramMode::Webhook,
            webhook_secret: None,
            public_url: None,
            tls: None,
            max_download: BOT_API_MAX_DOWNLOAD,
            dead_letter_wait: Duration::from_secs(20),
            results_credentials: polybot_proto::auth::ResultsCredentials::generate(),
            update_retries: RetryBudget::default(),
            startup_backoff: Backoff::default(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            progress: ProgressConfig::default(),
            album_quiet: DEFAULT_ALBUM_QUIET,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "webhook mode needs a secret: set TELEGRAM_WEBHOOK_SECRET or POLYBOT_TELEGRAM_SECRET_ID"
    )]
    MissingWebhookSecret,
    #[error("could not load the TLS certificate or key ({cert}, {key}): {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the webhook URL under POLYBOT_PUBLIC_URL is not valid: {0}")]
    WebhookUrl(#[source] url::ParseError),
    #[error("Results credentials: {0}")]
    Credentials(#[from] polybot_proto::auth::CredentialError),
    #[error("could not learn the bot's id from Telegram (getMe): {0}")]
    GetMe(#[source] BotApiError),
    #[error("gRPC reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error(transparent)]
    Certificate(#[from] crate::certificate::CertificateError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl GatewayConfig {
    /// Whether the settings hang together, before anything starts.
    pub(crate) fn check(&self) -> Result<(), GatewayError> {
        if self.mode == TelegramMode::Webhook && self.webhook_secret.is_none() {
            return Err(GatewayError::MissingWebhookSecret);
        }
        self.results_credentials.validate()?;
        Ok(())
    }

    /// The secret the webhook checks: only in webhook mode.
    pub(crate) fn webhook_secret(&self) -> Option<WebhookSecret> {
        match self.mode {
            TelegramMode::Webhook => self.webhook_secret.clone(),
            TelegramMode::Polling => None,
        }
    }

    /// The webhook to register with Telegram at start-up, and its secret,
    /// when there is a public URL to register.
    pub(crate) fn webhook_to_register(
        &self,
    ) -> Result<Option<(reqwest::Url, WebhookSecret)>, GatewayError> {
        let (Some(url), Some(secret)) = (&self.public_url, self.webhook_secret()) else {
            return Ok(None);
        };
        let hook = url
            .join(crate::http::WEBHOOK_PATH.trim_start_matches('/'))
            .map_err(GatewayError::WebhookUrl)?;
        Ok(Some((hook, secret)))
    }
}
