//! The messenger port (what the gateway needs from Telegram) and its
//! Telegram adapter on teloxide. Telegram's rate limits are kept by
//! teloxide's `Throttle` adaptor, which queues requests per chat and
//! globally. A 429 `retry_after` answer freezes that chat in `Throttle`; the
//! adapter counts it (`polybot_telegram_rate_limited_total`), waits and
//! sends again, a bounded number of times.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::ChatId;
use secrecy::{ExposeSecret, SecretString};
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::Settings;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::requests::HasPayload;
use teloxide::types::{FileId, InputFile, MessageId, ReplyParameters};
use teloxide::{ApiError, RequestError};
use tracing::Instrument;

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
        // Retries are ours (see `send_with_retry`) so that 429s are counted.
        let bot = Throttle::spawn_with_settings(raw.clone(), Settings::default().no_retry());
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

/// A client span for one Bot API call. The URL is left out on purpose: it
/// contains the bot token.
fn bot_api_span(method: &'static str, chat: Option<ChatId>) -> tracing::Span {
    tracing::info_span!(
        "telegram.request",
        otel.name = format!("telegram {method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        telegram.method = method,
        chat_id = chat.map(|c| c.0),
        error.type = tracing::field::Empty,
    )
}

fn record_outcome<T>(result: &Result<T, MessengerError>) {
    if let Err(e) = result {
        let span = tracing::Span::current();
        span.record("otel.status_code", "ERROR");
        span.record(
            "error.type",
            match e {
                MessengerError::Unavailable(_) => "unavailable",
                MessengerError::Rejected(_) => "rejected",
                MessengerError::TooLarge { .. } => "too_large",
            },
        );
    }
}

/// One Bot API send to `chat` in its client span, 429s waited out.
async fn traced_send<F, Fut>(
    method: &'static str,
    chat: ChatId,
    send: F,
) -> Result<(), MessengerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), RequestError>>,
{
    async {
        let result = send_with_retry(method, send).await;
        record_outcome(&result);
        result
    }
    .instrument(bot_api_span(method, Some(chat)))
    .await
}

/// How many 429s in a row one send waits out before giving up as
/// unavailable (the caller's retry policy then takes over).
const MAX_RATE_LIMITED_RETRIES: u32 = 5;

/// Sends a request built by `send`; on a 429 counts it, waits the
/// `retry_after` Telegram asked for and sends a fresh copy.
async fn send_with_retry<F, Fut>(method: &'static str, mut send: F) -> Result<(), MessengerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), RequestError>>,
{
    let mut waited = 0;
    loop {
        match send().await {
            Err(RequestError::RetryAfter(after)) if waited < MAX_RATE_LIMITED_RETRIES => {
                waited += 1;
                crate::metrics::telegram_rate_limited(method);
                tracing::warn!(
                    telegram.method = method,
                    retry_after_secs = after.seconds(),
                    "Telegram rate limit (429): waiting before sending again"
                );
                tokio::time::sleep(after.duration()).await;
            }
            other => return other.map_err(classify),
        }
    }
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
        traced_send("sendMessage", chat, || {
            let mut req = self.bot.send_message(teloxide::types::ChatId(chat.0), text);
            req.payload_mut().reply_parameters = reply_params(reply_to);
            async move { req.await.map(drop) }
        })
        .await
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        traced_send("sendPhoto", chat, || {
            let file = InputFile::memory(jpeg.clone()).file_name("detections.jpg");
            let mut req = self
                .bot
                .send_photo(teloxide::types::ChatId(chat.0), file)
                .caption(caption);
            req.payload_mut().reply_parameters = reply_params(reply_to);
            async move { req.await.map(drop) }
        })
        .await
    }

    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError> {
        async {
            let result = self.fetch_file(file_id, max_bytes).await;
            record_outcome(&result);
            result
        }
        .instrument(bot_api_span("getFile", None))
        .await
    }
}

impl TelegramMessenger {
    async fn fetch_file(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError> {
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
