//! An HTTP server that behaves like the Telegram Bot API, for Polybot's
//! black-box tests and `cargo xtask demo`.
//!
//! It serves the Bot API methods our bot uses at `/bot<token>/<method>`
//! (method names case-insensitive; query string, JSON, form and multipart
//! parameters; GET or POST), files at `/file/bot<token>/<file_path>`, and a
//! control API under `/control/` through which tests play the user, inject
//! faults and inspect what the bot did. [`EmulatorClient`] wraps the control
//! API.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tg_emulator::{Emulator, UserMessageOptions};
//! let emulator = Emulator::start("127.0.0.1:0").await?;
//! // Point the bot at emulator.base_url() with emulator.token() ...
//! let client = emulator.client();
//! client.send_user_photo(42, std::fs::read("bus.jpg")?, &UserMessageOptions::default()).await?;
//! let sent = client.wait_for_messages(42, 1, std::time::Duration::from_secs(10)).await?;
//! # drop(sent);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod client;
mod commands;
mod control;
mod descriptions;
mod entities;
mod error;
mod keyboard;
mod markup;
mod media;
pub mod model;
mod params;
mod privacy;
mod state;
mod webhook;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit};
use tokio::{net::ToSocketAddrs, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use api::supported_methods;
pub use client::{ClientError, ClientResult, EmulatorClient};
pub use media::test_jpeg;
pub use model::{
    ApiFault, BotCommand, BotCommandScope, BotDescriptions, ButtonPress, CallbackAnswer,
    ChatActionRecord, ChatInfo, ChatSetup, ChatType, CommandList, DeliveryAttempt, FileInfo,
    InlineButton, Member, PressedQuery, QueuedUpdate, RateLimitRule, RequestLogEntry, RequestStats,
    SentKind, SentMessage, StickerKind, UserMessageOptions, VideoMeta, WebhookFault, WebhookState,
};
pub use webhook::SECRET_HEADER;

/// Token the emulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "123456:TEST-TOKEN";

/// How the emulator presents itself and paces webhook retries.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The only bot token accepted; the bot's user id is the part before `:`.
    pub token: String,
    /// `username` returned by getMe.
    pub bot_username: String,
    /// `first_name` returned by getMe.
    pub bot_first_name: String,
    /// Pause before the first webhook retry; doubles after each failure.
    pub webhook_initial_backoff: Duration,
    /// Longest pause between webhook retries.
    pub webhook_max_backoff: Duration,
    /// How long one webhook POST may take before it counts as failed.
    pub webhook_timeout: Duration,
    /// Telegram's privacy mode in groups (on by default, as Telegram's):
    /// the bot gets only the group messages meant for it (see `privacy.rs`).
    /// Each group can be switched with [`EmulatorClient::set_group_privacy`].
    pub group_privacy: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_TOKEN.to_owned(),
            bot_username: "polybot_test_bot".to_owned(),
            bot_first_name: "Polybot".to_owned(),
            webhook_initial_backoff: webhook::DEFAULT_INITIAL_BACKOFF,
            webhook_max_backoff: webhook::DEFAULT_MAX_BACKOFF,
            webhook_timeout: Duration::from_secs(10),
            group_privacy: true,
        }
    }
}

impl EmulatorConfig {
    /// Default configuration with another token.
    pub fn with_token(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            ..Self::default()
        }
    }
}

/// Entry point: starts emulator servers.
pub struct Emulator;

impl Emulator {
    /// Starts an emulator with [`EmulatorConfig::default`] on `addr`
    /// (use port 0 for a free port) and returns once it accepts connections.
    pub async fn start(addr: impl ToSocketAddrs) -> anyhow::Result<EmulatorHandle> {
        Self::start_with_config(addr, EmulatorConfig::default()).await
    }

    /// Starts an emulator with the given configuration.
    pub async fn start_with_config(
        addr: impl ToSocketAddrs,
        config: EmulatorConfig,
    ) -> anyhow::Result<EmulatorHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(state::Shared::new(config, cancel.clone())?);
        let app = router(shared.clone());

        let worker = tokio::spawn(webhook::run(shared.clone()));
        let server_cancel = cancel.clone();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(server_cancel.cancelled_owned())
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "tg-emulator server failed");
            }
        });
        tracing::info!(addr = %local_addr, "tg-emulator listening");
        Ok(EmulatorHandle {
            addr: local_addr,
            token: shared.config.token.clone(),
            cancel,
            tasks: vec![server, worker],
        })
    }
}

fn router(shared: Arc<state::Shared>) -> Router {
    control::router()
        .fallback(api::handle)
        // Uploads (sendDocument and sendVideo allow 50 MB; a test may hand a
        // user video over getFile's 20 MB to the control API) exceed axum's
        // 2 MB default.
        .layer(DefaultBodyLimit::max(params::MAX_BODY_BYTES))
        .with_state(shared)
}

/// A running emulator. Dropping it stops the server too; [`shutdown`]
/// additionally waits for it to finish.
///
/// [`shutdown`]: EmulatorHandle::shutdown
pub struct EmulatorHandle {
    addr: SocketAddr,
    token: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// Address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the Bot API base URL for `Bot::set_api_url` /
    /// `TELOXIDE_API_URL`, and the control API's base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bot token the emulator accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `http://<addr>/bot<token>/<method>`.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base_url(), self.token)
    }

    /// A control API client for this emulator.
    pub fn client(&self) -> EmulatorClient {
        EmulatorClient::new(self.base_url())
    }

    /// Stops accepting requests, ends pending long polls and the webhook
    /// worker, and waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
