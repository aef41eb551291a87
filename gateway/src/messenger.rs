//! The messenger port (what the gateway needs from Telegram) and its
//! Telegram adapter on teloxide. Telegram's rate limits and its 429
//! `retry_after` answers are handled by teloxide's `Throttle` adaptor, which
//! queues requests per chat and globally and retries after the wait.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::ChatId;
use secrecy::{ExposeSecret, SecretString};
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::Limits;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{FileId, InputFile, MessageId, ReplyParameters};
use teloxide::{ApiError, RequestError};

#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// Telegram could not be reached or failed for now: retry later.
    #[error("Telegram is unavailable: {0}")]
    Unavailable(String),
    /// Telegram refused for good (the user blocked the bot, the chat is gone…).
    #[error("Telegram refused: {0}")]
    Rejected(String),
    #[error("the file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
}

impl MessengerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Talking to users.
#[async_trait]
pub trait Messenger: Send + Sync + 'static {
    async fn send_text(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// Downloads a file the user sent, refusing files over `max_bytes`.
    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError>;
}

/// The Telegram adapter.
#[derive(Clone)]
pub struct TelegramMessenger {
    bot: Throttle<Bot>,
    raw: Bot,
}

impl TelegramMessenger {
    /// `api_url` is the Bot API base URL (`https://api.telegram.org` or an emulator).
    pub fn new(token: &SecretString, api_url: reqwest::Url) -> Self {
        let raw = Bot::new(token.expose_secret()).set_api_url(api_url);
        let bot = raw.clone().throttle(Limits::default());
        Self { bot, raw }
    }

    /// The unthrottled bot, for long polling and webhook registration.
    pub fn bot(&self) -> &Bot {
        &self.raw
    }

    pub fn shared(self) -> Arc<dyn Messenger> {
        Arc::new(self)
    }
}

fn reply_params(reply_to: Option<i64>) -> Option<ReplyParameters> {
    reply_to
        .and_then(|id| i32::try_from(id).ok())
        .map(|id| ReplyParameters {
            // The user may have deleted their photo meanwhile; answer anyway.
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(MessageId(id))
        })
}

pub fn classify(e: RequestError) -> MessengerError {
    match e {
        RequestError::Api(
            api @ (ApiError::BotBlocked
            | ApiError::ChatNotFound
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots
            | ApiError::FileIdInvalid
            | ApiError::WrongFileId),
        ) => MessengerError::Rejected(api.to_string()),
        RequestError::Api(ApiError::Unknown(text)) if text.contains("file is too big") => {
            MessengerError::TooLarge {
                size: 0,
                limit: crate::inbound::BOT_API_MAX_DOWNLOAD,
            }
        }
        other => MessengerError::Unavailable(other.to_string()),
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
        let req = self.bot.send_message(teloxide::types::ChatId(chat.0), text);
        match reply_params(reply_to) {
            Some(p) => req.reply_parameters(p).await,
            None => req.await,
        }
        .map(drop)
        .map_err(classify)
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let file = InputFile::memory(jpeg).file_name("detections.jpg");
        let req = self
            .bot
            .send_photo(teloxide::types::ChatId(chat.0), file)
            .caption(caption);
        match reply_params(reply_to) {
            Some(p) => req.reply_parameters(p).await,
            None => req.await,
        }
        .map(drop)
        .map_err(classify)
    }

    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError> {
        let file = self
            .raw
            .get_file(FileId(file_id.to_owned()))
            .await
            .map_err(classify)?;
        let size = u64::from(file.meta.size);
        if size > max_bytes {
            return Err(MessengerError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.raw
            .download_file(&file.path, &mut buf)
            .await
            .map_err(|e| MessengerError::Unavailable(format!("downloading the file: {e}")))?;
        if buf.len() as u64 > max_bytes {
            return Err(MessengerError::TooLarge {
                size: buf.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(Bytes::from(buf))
    }
}
