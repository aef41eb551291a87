//! The messenger port (what the gateway needs from Telegram) and its
//! Telegram adapter. Sends go through the [`Outbox`] (fair per chat, a 429
//! delays only its chat, bounded waits); downloads call the Bot API
//! directly. Error classes follow the real API (see [`crate::botapi`]):
//! network errors, 5xx and 429 are [`MessengerError::Unavailable`], any
//! other 4xx is [`MessengerError::Rejected`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{BotId, ChatId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::botapi::{BotApi, BotApiError, ErrorClass};
use crate::outbox::{OutMessage, Outbox, OutboxConfig, bot_api_span, record_error};

#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// Telegram could not be reached or failed for now: retry later.
    #[error("Telegram is unavailable: {0}")]
    Unavailable(String),
    /// Telegram refused for good (the user blocked the bot, the chat is gone,
    /// a bad file id…).
    #[error("Telegram refused: {0}")]
    Rejected(String),
    #[error("the file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
}

impl MessengerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Rejected(_) => "rejected",
            Self::TooLarge { .. } => "too_large",
        }
    }
}

/// Telegram's error classes as the messenger's.
pub fn classify(e: BotApiError) -> MessengerError {
    match e.class() {
        ErrorClass::Permanent
            if e.description()
                .is_some_and(|d| d.contains("file is too big")) =>
        {
            MessengerError::TooLarge {
                size: 0,
                limit: crate::inbound::BOT_API_MAX_DOWNLOAD,
            }
        }
        ErrorClass::Permanent => MessengerError::Rejected(e.to_string()),
        ErrorClass::Retryable | ErrorClass::RateLimited(_) => {
            MessengerError::Unavailable(e.to_string())
        }
    }
}

/// Talking to users.
#[async_trait]
pub trait Messenger: Send + Sync + 'static {
    /// Sends a text and waits (bounded) until Telegram took it.
    async fn send_text(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// Sends a photo and waits (bounded) until Telegram took it.
    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// A courtesy message (the "processing" notice): queued without
    /// waiting, and dropped rather than delaying answers.
    async fn send_notice(&self, chat: ChatId, text: &str, reply_to: Option<i64>) {
        if let Err(e) = self.send_text(chat, text, reply_to).await {
            tracing::warn!(error = %e, "could not send a notice");
        }
    }
    /// Downloads a file the user sent, refusing files over `max_bytes`.
    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError>;
}

/// The Telegram adapter.
#[derive(Clone)]
pub struct TelegramMessenger {
    api: BotApi,
    outbox: Outbox,
    bot_id: Option<BotId>,
}

impl TelegramMessenger {
    /// `api_url` is the Bot API base URL (`https://api.telegram.org` or an emulator).
    pub fn new(token: &SecretString, api_url: reqwest::Url) -> Self {
        Self::with_outbox(token, api_url, OutboxConfig::default())
    }

    pub fn with_outbox(token: &SecretString, api_url: reqwest::Url, config: OutboxConfig) -> Self {
        let api = BotApi::new(token, &api_url);
        Self {
            outbox: Outbox::new(api.clone(), config),
            bot_id: BotId::from_token(token.expose_secret()),
            api,
        }
    }

    /// The Bot API client, for polling and start-up calls.
    pub fn api(&self) -> &BotApi {
        &self.api
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The bot's id from its token, when the token has the usual shape.
    pub fn bot_id(&self) -> Option<BotId> {
        self.bot_id
    }

    pub fn shared(self) -> Arc<dyn Messenger> {
        Arc::new(self)
    }

    async fn fetch_file(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            file_size: Option<u64>,
            file_path: Option<String>,
        }
        let file: File = self
            .api
            .call(
                "getFile",
                &json!({ "file_id": file_id }),
                crate::botapi::CALL_TIMEOUT,
            )
            .await
            .map_err(classify)?;
        let size = file.file_size.unwrap_or(0);
        if size > max_bytes {
            return Err(MessengerError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        let path = file
            .file_path
            .ok_or_else(|| MessengerError::Rejected("getFile gave no file_path".into()))?;
        match self
            .api
            .download(&path, max_bytes, Duration::from_secs(60))
            .await
            .map_err(classify)?
        {
            Ok(bytes) => Ok(bytes),
            Err(size) => Err(MessengerError::TooLarge {
                size,
                limit: max_bytes,
            }),
        }
    }
}

#[async_trait]
impl Messenger for TelegramMessenger {
    async fn send_text(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::Text {
            text: text.to_owned(),
            reply_to,
        };
        self.outbox.send(chat, message).await
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::Photo {
            jpeg,
            caption: caption.to_owned(),
            reply_to,
        };
        self.outbox.send(chat, message).await
    }

    async fn send_notice(&self, chat: ChatId, text: &str, reply_to: Option<i64>) {
        let message = OutMessage::Text {
            text: text.to_owned(),
            reply_to,
        };
        self.outbox.notice(chat, message);
    }

    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError> {
        let span = bot_api_span(&tracing::Span::current(), "getFile", None);
        let result = self
            .fetch_file(file_id, max_bytes)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            record_error(&span, e.kind());
        }
        result
    }
}
