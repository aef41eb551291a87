//! Polybot's Telegram side.
//!
//! - [`botapi`]: a small Bot API client on reqwest, and what its errors
//!   mean ([`ErrorClass`]: retryable, rate limited, permanent).
//! - The ports the gateway is written against: [`Messenger`] (talking to
//!   users) and [`TelegramControl`] (running the bot), with
//!   [`MessengerError`] for what a failure means to the gateway.
//! - Their Telegram adapter, [`TelegramMessenger`], which sends through
//!   the per-chat fair [`outbox`].
//! - [`limits`]: Telegram's length limits, and fitting a message to them.
//! - [`token`]: whether Telegram accepts the bot's token (a 401/404
//!   outage turns readiness off and drops nothing).
//! - `fake::FakeMessenger` (feature `test-util`), for other crates' tests.
//!
//! Dependencies go one way: `botapi` ← `error` ← `port` ← `outbox` ←
//! `telegram` (the adapter).

pub mod botapi;
mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod limits;
mod observe;
pub mod outbox;
mod port;
mod telegram;
pub mod token;

pub use botapi::{BotApiError, ErrorClass};
pub use error::{MessengerError, classify};
pub use outbox::{Outbox, OutboxConfig};
pub use outbox::{SavedPhoto, SentMessage};
pub use port::{
    Button, CallbackQueryId, Document, Keyboard, MediaItem, Messenger, TelegramControl,
};
pub use telegram::TelegramMessenger;
