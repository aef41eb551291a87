//! The gateway: takes Telegram updates (webhook or long polling), stores
//! photos and queues detection jobs, hosts the `polybot.v1.Results` gRPC
//! service that detectors report to, and replies to users.
//!
//! [`Gateway::start`] runs it in-process on given listeners, so tests and
//! the all-in-one runner use exactly what the `gateway` binary runs.

mod albums;
pub use polybot_telegram::botapi;
pub mod cli;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub(crate) mod grpc;
pub(crate) mod health;
pub(crate) mod http;
pub(crate) mod inbound;
pub(crate) mod intake;
pub(crate) mod loops;
/// The messenger port the gateway talks to users through, the control port
/// that runs the bot, and their Telegram adapter: crate `polybot-telegram`.
pub use polybot_telegram as messenger;
mod metrics;
pub mod progress;
pub(crate) mod replies;
pub mod secret;
pub(crate) mod startup;
pub mod supervise;

pub use intake::RetryBudget;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use polybot_proto::v1::results_server::ResultsServer;
use polybot_storage::Backends;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::Health;
use crate::intake::Intake;
use crate::messenger::{Messenger, TelegramControl};
use crate::replies::Replier;

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
    pub webhook_secret: Option<secret::WebhookSecret>,
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
    pub update_retries: intake::RetryBudget,
    /// Pauses between start-up calls to Telegram that failed for now.
    pub startup_backoff: supervise::Backoff,
    /// How long a new connection may take to send its first request; one
    /// that is slower (or sends nothing) is closed.
    pub header_read_timeout: Duration,
    /// How long one HTTP request (body included) may take before it is
    /// answered 408.
    pub request_timeout: Duration,
    /// When the user sees that a job is being worked on.
    pub progress: progress::ProgressConfig,
    /// How long an album waits for more photos after its latest one
    /// before it is answered as one request.
    pub album_quiet: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            mode: TelegramMode::Webhook,
            webhook_secret: None,
            public_url: None,
            tls: None,
            max_download: inbound::BOT_API_MAX_DOWNLOAD,
            dead_letter_wait: Duration::from_secs(20),
            results_credentials: polybot_proto::auth::ResultsCredentials::generate(),
            update_retries: intake::RetryBudget::default(),
            startup_backoff: supervise::Backoff::default(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            progress: progress::ProgressConfig::default(),
            album_quiet: intake::DEFAULT_ALBUM_QUIET,
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
    GetMe(#[source] botapi::BotApiError),
    #[error("gRPC reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How long a kept-alive connection may sit between requests: above the
/// ALB's default idle timeout (60 s), as AWS advises for targets.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(75);

/// A running gateway.
pub struct Gateway {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    health: Health,
    reporter: tonic_health::server::HealthReporter,
    progress: progress::Progress,
}

impl Gateway {
    /// Starts serving on the given listeners (bind port 0 in tests).
    /// `messenger` talks to users; `control` runs the bot (getMe, the
    /// webhook, polling, the command menu). [`messenger::TelegramMessenger::ports`]
    /// gives both for a real bot.
    pub async fn start(
        config: GatewayConfig,
        backends: Backends,
        messenger: Arc<dyn Messenger>,
        control: Arc<dyn TelegramControl>,
        http_listener: TcpListener,
        grpc_listener: TcpListener,
    ) -> Result<Self, GatewayError> {
        if config.mode == TelegramMode::Webhook && config.webhook_secret.is_none() {
            return Err(GatewayError::MissingWebhookSecret);
        }
        config.results_credentials.validate()?;
        let http_addr = http_listener.local_addr()?;
        let grpc_addr = grpc_listener.local_addr()?;
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let health = Health::default();
        let registers_webhook = config.mode == TelegramMode::Webhook
            && config.public_url.is_some()
            && config.webhook_secret.is_some();
        if registers_webhook {
            // Not ready until Telegram knows where to deliver. Said before
            // the health watcher starts, so readiness is never published
            // in between.
            health.set_component("webhook", false);
        }
        // Update ids are unique per bot: the token names the bot, or getMe does.
        let bot = match control.bot_id() {
            Some(bot) => bot,
            None => startup::get_me(&*control, config.startup_backoff)
                .await
                .map_err(GatewayError::GetMe)?,
        };

        let progress = progress::Progress::new(
            Arc::clone(&messenger),
            Arc::clone(&backends.table),
            config.progress,
        );
        let (album_closer, albums_to_close) = tokio::sync::mpsc::channel(1024);
        let intake = Arc::new(
            Intake::new(
                backends.clone(),
                Arc::clone(&messenger),
                bot,
                config.max_download,
            )
            .with_retry_budget(config.update_retries)
            .with_progress(progress.clone())
            .with_albums(album_closer, config.album_quiet),
        );
        tasks.spawn(albums::close_albums(
            Arc::clone(&intake),
            albums_to_close,
            cancel.clone(),
        ));
        let replier =
            Replier::new(backends.clone(), Arc::clone(&messenger)).with_progress(progress.clone());

        // gRPC: Results, health and reflection (v1 and v1alpha: grpcurl 1.8 speaks only v1alpha).
        let (reporter, health_service) = tonic_health::server::health_reporter();
        // tonic-health starts "" as SERVING; like /readyz, start not-serving
        // until the first backend check passes, so the two always agree.
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(polybot_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(GatewayError::Reflection)?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(polybot_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(GatewayError::Reflection)?;
        // Every Results call is authenticated; health and reflection stay
        // open (they reveal nothing that is not in the public contract).
        let results = ResultsServer::with_interceptor(
            grpc::ResultsService::new(replier.clone()),
            config.results_credentials.authenticator(),
        );
        let grpc_cancel = cancel.clone();
        tasks.spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(results)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                    grpc_cancel.cancelled_owned(),
                )
                .await;
            if let Err(e) = served {
                warn!(error = %e, "gRPC server stopped with an error");
            }
        });

        // HTTP: webhook, health.
        let webhook_secret = if config.mode == TelegramMode::Webhook {
            config.webhook_secret.clone()
        } else {
            None
        };
        let router = http::router(
            http::AppState {
                intake: Arc::clone(&intake),
                webhook_secret,
                health: health.clone(),
            },
            config.request_timeout,
        );
        // Both plain HTTP (behind the ALB) and HTTPS run on hyper through
        // axum-server, which lets us bound how long a client may take to
        // send its headers: otherwise half-open connections pile up. The
        // first request is bounded from the accept; later ones on a
        // kept-alive connection by hyper's header timeout, which also
        // bounds the idle time between requests and so must outlast the
        // ALB's idle timeout (60 s): a target that closes first makes the
        // ALB answer 502. HTTP/1.1 only: that is what Telegram and the ALB
        // speak, and it skips protocol sniffing.
        let std_listener = http_listener.into_std()?;
        let handle = axum_server::Handle::new();
        let http_cancel = cancel.clone();
        let shutdown = handle.clone();
        tasks.spawn(async move {
            http_cancel.cancelled().await;
            shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let header_read_timeout = config.header_read_timeout;
        let service = router.into_make_service();
        match &config.tls {
            None => {
                let mut server = axum_server::from_tcp(std_listener)?
                    .handle(handle)
                    .http1_only()
                    .first_request_timeout(header_read_timeout);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(KEEP_ALIVE_IDLE.max(header_read_timeout));
                tasks.spawn(async move {
                    if let Err(e) = server.serve(service).await {
                        warn!(error = %e, "HTTP server stopped with an error");
                    }
                });
            }
            Some(tls) => {
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .map_err(|e| GatewayError::Tls {
                            cert: tls.cert.clone(),
                            key: tls.key.clone(),
                            source: e,
                        })?;
                let mut server = axum_server::from_tcp_rustls(std_listener, rustls)?.handle(handle);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(KEEP_ALIVE_IDLE.max(header_read_timeout));
                tasks.spawn(async move {
                    if let Err(e) = server.serve(service).await {
                        warn!(error = %e, "HTTPS server stopped with an error");
                    }
                });
            }
        }

        tasks.spawn(health::watch(
            health.clone(),
            reporter.clone(),
            backends.clone(),
            Duration::from_secs(5),
            cancel.clone(),
        ));
        {
            // Restarted with backoff if it ends or panics; readiness shows it.
            let dlq = Arc::clone(&backends.dead_letters);
            let wait = config.dead_letter_wait;
            let loop_cancel = cancel.clone();
            tasks.spawn(supervise::supervise(
                "dead_letters",
                supervise::Backoff::default(),
                Some(health.clone()),
                cancel.clone(),
                move || {
                    loops::dead_letters(
                        Arc::clone(&dlq),
                        replier.clone(),
                        wait,
                        loop_cancel.clone(),
                    )
                },
            ));
        }

        {
            let intake = Arc::clone(&intake);
            tasks.spawn(startup::introduce(
                Arc::clone(&control),
                config.startup_backoff,
                move |me| intake.introduce(me),
                cancel.clone(),
            ));
        }
        match config.mode {
            TelegramMode::Polling => {
                let api = Arc::clone(&control);
                let poll_cancel = cancel.clone();
                tasks.spawn(supervise::supervise(
                    "polling",
                    supervise::Backoff::default(),
                    Some(health.clone()),
                    cancel.clone(),
                    move || loops::long_poll(api.clone(), Arc::clone(&intake), poll_cancel.clone()),
                ));
            }
            TelegramMode::Webhook => {
                if let (Some(url), Some(secret)) = (&config.public_url, &config.webhook_secret) {
                    let hook = url
                        .join(http::WEBHOOK_PATH.trim_start_matches('/'))
                        .map_err(GatewayError::WebhookUrl)?;
                    tasks.spawn(startup::register_webhook(
                        Arc::clone(&control),
                        hook,
                        secret.expose().clone(),
                        config.startup_backoff,
                        health.clone(),
                        cancel.clone(),
                    ));
                }
            }
        }
        info!(%http_addr, %grpc_addr, mode = ?config.mode, "gateway started");
        Ok(Self {
            http_addr,
            grpc_addr,
            cancel,
            tasks,
            health,
            reporter,
            progress,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// Graceful shutdown: report not-serving first, then stop taking work and
    /// let in-flight requests finish.
    pub async fn shutdown(mut self) {
        self.health.stop(&self.reporter).await;
        self.cancel.cancel();
        self.progress.close();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(15), drain)
            .await
            .is_err()
        {
            warn!("gateway tasks did not stop within 15 s; aborting them");
            self.tasks.abort_all();
        }
        info!("gateway stopped");
    }
}
