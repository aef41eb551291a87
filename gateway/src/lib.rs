//! The gateway: takes Telegram updates (webhook or long polling), stores
//! photos and queues detection jobs, hosts the `polybot.v1.Results` gRPC
//! service that detectors report to, and replies to users.
//!
//! [`Gateway::start`] runs it in-process on given listeners, so tests and
//! the all-in-one runner use exactly what the `gateway` binary runs. Every
//! task it starts runs under one [`Supervisor`]: loops are restarted when
//! they die (and readiness shows it), servers are critical, and shutdown
//! stops them all.

mod albums;
mod answers;
mod certificate;
mod deferred;
mod detect;
pub use polybot_telegram::botapi;
pub mod cli;
mod config;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub(crate) mod grpc;
pub(crate) mod health;
pub(crate) mod http;
pub(crate) mod inbound;
pub(crate) mod intake;
mod listing;
pub(crate) mod loops;
/// The messenger port the gateway talks to users through, the control port
/// that runs the bot, and their Telegram adapter: crate `polybot-telegram`.
pub use polybot_telegram as messenger;
mod metrics;
pub mod progress;
pub(crate) mod replies;
pub mod secret;
mod servers;
pub mod settings;
pub(crate) mod startup;
mod submit;

pub use config::{GatewayConfig, GatewayError, TelegramMode, TlsFiles};
pub use intake::{Limit, Limits, RetryBudget, no_picture_in_album, only_captioned_used};
/// Pauses between start-up retries and loop restarts (the service kit's).
pub use polybot_telemetry::tasks::Backoff;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use polybot_domain::BotId;
use polybot_storage::Backends;
use polybot_telemetry::tasks::Supervisor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tracing::info;

use crate::albums::AlbumsToClose;
use crate::health::Health;
use crate::intake::Intake;
use crate::messenger::{Messenger, TelegramControl};
use crate::progress::Progress;
use crate::replies::Replier;

/// How long the gateway's tasks get to stop before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// How often readiness is checked when nothing changed.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// A running gateway.
pub struct Gateway {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    supervisor: Supervisor,
    health: Health,
    reporter: HealthReporter,
    progress: Progress,
}

/// The request paths the gateway's servers and loops share.
struct Services {
    backends: Backends,
    intake: Arc<Intake>,
    replier: Replier,
    progress: Progress,
    albums_to_close: AlbumsToClose,
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
        config.check()?;
        let http_addr = http_listener.local_addr()?;
        let grpc_addr = grpc_listener.local_addr()?;
        let health = Health::default();
        let supervisor = Supervisor::new(CancellationToken::new(), health.components().clone());
        // A revoked token turns the gateway not ready (nothing is dropped
        // meanwhile: Telegram's 401/404 are retried like an outage).
        control.report_token_to(health.components().clone());
        let starting = async {
            wait_for_webhook(&config, &health)?;
            let bot = bot_id(&config, &*control).await?;
            let services = build_services(&config, &backends, messenger, bot, &supervisor);
            let results = grpc::ResultsService::new(
                services.replier.clone(),
                supervisor.clone(),
                config.max_download,
            );
            let reporter =
                servers::serve_grpc(&supervisor, &config, results, grpc_listener).await?;
            let router = http_router(&config, &services, &health, &supervisor);
            servers::serve_http(&supervisor, &config, router, http_listener).await?;
            start_loops(
                &supervisor,
                &config,
                &services,
                &health,
                &reporter,
                &control,
            );
            register_with_telegram(&supervisor, &config, control, &services, &health)?;
            Ok((reporter, services.progress))
        };
        match starting.await {
            Ok((reporter, progress)) => {
                info!(%http_addr, %grpc_addr, mode = ?config.mode, "gateway started");
                Ok(Self {
                    http_addr,
                    grpc_addr,
                    supervisor,
                    health,
                    reporter,
                    progress,
                })
            }
            Err(e) => {
                // What started already stops with the failed start.
                supervisor.shutdown(STOP_GRACE).await;
                Err(e)
            }
        }
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
    /// let in-flight requests finish (tasks still running after a grace
    /// period are aborted).
    pub async fn shutdown(self) {
        self.health.stop(&self.reporter).await;
        self.progress.close();
        self.supervisor.shutdown(STOP_GRACE).await;
        info!("gateway stopped");
    }
}

/// With a webhook to register, the gateway is not ready until Telegram
/// knows where to deliver. Said before readiness is first published, so
/// it is never published ready in between.
fn wait_for_webhook(config: &GatewayConfig, health: &Health) -> Result<(), GatewayError> {
    if config.webhook_to_register()?.is_some() {
        health.components().set(startup::WEBHOOK_COMPONENT, false);
    }
    Ok(())
}

/// The bot's id: update ids are unique per bot, and the token names the
/// bot, or getMe does.
async fn bot_id(
    config: &GatewayConfig,
    control: &dyn TelegramControl,
) -> Result<BotId, GatewayError> {
    match control.bot_id() {
        Some(bot) => Ok(bot),
        None => startup::get_me(control, config.startup_backoff)
            .await
            .map_err(GatewayError::GetMe),
    }
}

/// The intake (updates in), the replier (answers out) and the progress
/// they show, wired to the backends and the messenger.
fn build_services(
    config: &GatewayConfig,
    backends: &Backends,
    messenger: Arc<dyn Messenger>,
    bot: BotId,
    supervisor: &Supervisor,
) -> Services {
    let progress = Progress::new(
        Arc::clone(&messenger),
        Arc::clone(&backends.table),
        config.progress,
        supervisor.clone(),
    );
    let (album_closer, albums_to_close) = tokio::sync::mpsc::channel(1024);
    let intake = Intake::new(
        backends.clone(),
        Arc::clone(&messenger),
        bot,
        config.max_download,
    )
    .with_retry_budget(config.update_retries)
    .with_limits(config.limits)
    .with_progress(progress.clone())
    .with_albums(album_closer, config.album_quiet);
    let replier = Replier::new(backends.clone(), messenger).with_progress(progress.clone());
    Services {
        backends: backends.clone(),
        intake: Arc::new(intake),
        replier,
        progress,
        albums_to_close: Arc::new(tokio::sync::Mutex::new(albums_to_close)),
    }
}

/// The HTTP routes: the webhook (in webhook mode), health and metrics.
fn http_router(
    config: &GatewayConfig,
    services: &Services,
    health: &Health,
    supervisor: &Supervisor,
) -> axum::Router {
    let state = http::AppState {
        intake: Arc::clone(&services.intake),
        webhook_secret: config.webhook_secret(),
        health: health.clone(),
        supervisor: supervisor.clone(),
    };
    http::router(state, config.request_timeout)
}

/// The background loops, each restarted with backoff when it ends or
/// panics (readiness shows it meanwhile): the readiness checker, the
/// dead-letter answerer, the album closer, the sweep for deferred updates
/// and, without a webhook, polling.
fn start_loops(
    supervisor: &Supervisor,
    config: &GatewayConfig,
    services: &Services,
    health: &Health,
    reporter: &HealthReporter,
    control: &Arc<dyn TelegramControl>,
) {
    let backends = &services.backends;
    let cancel = supervisor.cancel_token();
    supervisor.supervise("health", Backoff::default(), {
        let (health, reporter, backends) = (health.clone(), reporter.clone(), backends.clone());
        let cancel = cancel.clone();
        move || {
            health::watch(
                health.clone(),
                reporter.clone(),
                backends.clone(),
                HEALTH_EVERY,
                cancel.clone(),
            )
        }
    });
    supervisor.supervise("dead_letters", Backoff::default(), {
        let (dlq, replier) = (Arc::clone(&backends.dead_letters), services.replier.clone());
        let (wait, cancel) = (config.dead_letter_wait, cancel.clone());
        move || loops::dead_letters(Arc::clone(&dlq), replier.clone(), wait, cancel.clone())
    });
    supervisor.supervise("album_closer", Backoff::default(), {
        let (intake, albums) = (
            Arc::clone(&services.intake),
            Arc::clone(&services.albums_to_close),
        );
        let supervisor = supervisor.clone();
        move || albums::close_albums(Arc::clone(&intake), Arc::clone(&albums), supervisor.clone())
    });
    supervisor.supervise("deferred_sweep", Backoff::default(), {
        let intake = Arc::clone(&services.intake);
        let supervisor = supervisor.clone();
        move || deferred::sweep_deferred(Arc::clone(&intake), supervisor.clone())
    });
    supervisor.supervise("retention_sweep", Backoff::default(), {
        let (backends, cancel) = (backends.clone(), cancel.clone());
        move || loops::sweep_expired(backends.clone(), cancel.clone())
    });
    if config.mode == TelegramMode::Polling {
        let (control, intake) = (Arc::clone(control), Arc::clone(&services.intake));
        supervisor.supervise("polling", Backoff::default(), move || {
            loops::long_poll(Arc::clone(&control), Arc::clone(&intake), cancel.clone())
        });
    }
}

/// The start-up calls to Telegram, each a one-off task retried with
/// backoff: learning the bot's username and setting its command menu, and
/// registering the webhook when there is a public URL.
fn register_with_telegram(
    supervisor: &Supervisor,
    config: &GatewayConfig,
    control: Arc<dyn TelegramControl>,
    services: &Services,
    health: &Health,
) -> Result<(), GatewayError> {
    let cancel = supervisor.cancel_token();
    let intake = Arc::clone(&services.intake);
    supervisor.spawn(
        "introduce",
        startup::introduce(
            Arc::clone(&control),
            config.startup_backoff,
            move |me| intake.introduce(me),
            cancel.clone(),
        ),
    );
    if let Some((hook, secret)) = config.webhook_to_register()? {
        // Read now, so a certificate that cannot be read stops the start.
        let certificate = match &config.tls {
            Some(tls) => certificate::to_upload(&tls.cert)?,
            None => None,
        };
        supervisor.spawn(
            "register_webhook",
            startup::register_webhook(
                control,
                hook,
                secret.expose().clone(),
                certificate,
                config.startup_backoff,
                health.components().clone(),
                cancel,
            ),
        );
    }
    Ok(())
}
