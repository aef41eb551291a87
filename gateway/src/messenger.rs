//! The messenger port (what the gateway needs from Telegram) and its
//! Telegram adapter. Sends go through the outbox, `Outbox` (fair per chat, a 429
//! delays only its chat, bounded waits); downloads call the Bot API
//! directly. Error classes follow the real API (see [`crate::botapi`]):
//! network errors, 5xx and 429 are [`MessengerError::Unavailable`], any
//! other 4xx is [`MessengerError::Rejected`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{BotId, BoxError, ChatId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::botapi::{BotApi, BotApiError, ErrorClass};
use crate::outbox::{OutMessage, Outbox, OutboxConfig, bot_api_span, record_error};

#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// Telegram could not be reached or failed for now: retry later.
    #[error("Telegram is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Telegram refused for good (the user blocked the bot, the chat is gone,
    /// a bad file id…).
    #[error("Telegram refused: {0}")]
    Rejected(#[source] BoxError),
    #[error("the file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    /// Telegram refused a photo we sent for what it is (its dimensions,
    /// size or format), not for where it went: another form (a document,
    /// text) can still get through. Permanent: sending it again cannot help.
    #[error("Telegram refused the file: {0}")]
    MediaRejected(#[source] BoxError),
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
            Self::MediaRejected(_) => "media_rejected",
        }
    }
}

/// Telegram's answers that refuse an upload for what it is. The texts are
/// the Bot API's own (`Bad Request: PHOTO_INVALID_DIMENSIONS`, …); a 413 is
/// an upload over the size limit.
const MEDIA_REFUSALS: [&str; 5] = [
    "PHOTO_INVALID_DIMENSIONS",
    "IMAGE_PROCESS_FAILED",
    "PHOTO_SAVE_FILE_INVALID",
    "PHOTO_EXT_INVALID",
    "Request Entity Too Large",
];

/// Telegram's error classes as the messenger's.
pub fn classify(e: BotApiError) -> MessengerError {
    let media_refused = matches!(e, BotApiError::Api { code: 413, .. })
        || e.description()
            .is_some_and(|d| MEDIA_REFUSALS.iter().any(|r| d.contains(r)));
    match e.class() {
        ErrorClass::Permanent if media_refused => MessengerError::MediaRejected(e.into()),
        ErrorClass::Permanent
            if e.description()
                .is_some_and(|d| d.contains("file is too big")) =>
        {
            MessengerError::TooLarge {
                size: 0,
                limit: crate::inbound::BOT_API_MAX_DOWNLOAD,
            }
        }
        ErrorClass::Permanent => MessengerError::Rejected(e.into()),
        ErrorClass::Retryable | ErrorClass::RateLimited(_) => MessengerError::Unavailable(e.into()),
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
    /// Sends a file as a document (no recompression) and waits (bounded).
    async fn send_document(
        &self,
        chat: ChatId,
        file: Document,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// Sends 2–10 pictures as one album (`sendMediaGroup`), `caption` on
    /// the first, and waits (bounded) until Telegram took it.
    async fn send_media_group(
        &self,
        chat: ChatId,
        items: Vec<MediaItem>,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// A courtesy message (the "still working" notice): dropped rather
    /// than delaying answers. Its message id when it was sent.
    /// Not sent at all when `cancel` fires before its turn comes.
    async fn send_notice(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
        cancel: CancellationToken,
    ) -> Option<i64>;
    /// Replaces the text of a message the bot sent.
    async fn edit_text(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
    ) -> Result<(), MessengerError>;
    /// Removes a message the bot sent.
    async fn delete(&self, chat: ChatId, message_id: i64) -> Result<(), MessengerError>;
    /// Shows "sending photo…" in the chat for about five seconds (or until
    /// the bot's next message). Best effort: a failure is only logged.
    async fn show_progress(&self, chat: ChatId);
    /// Downloads a file the user sent, refusing files over `max_bytes`.
    async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Bytes, MessengerError>;
}

/// A file to send as a document.
#[derive(Debug, Clone)]
pub struct Document {
    pub bytes: Bytes,
    pub file_name: &'static str,
    pub mime: &'static str,
    pub caption: String,
}

/// One picture of an album sent back.
#[derive(Debug, Clone)]
pub struct MediaItem {
    pub bytes: Bytes,
    pub file_name: &'static str,
    pub mime: &'static str,
    /// As a document (exact bytes) rather than a photo. Telegram wants an
    /// album to be all photos or all documents.
    pub document: bool,
}

/// How long a chat action may take: it is only worth sending promptly.
const CHAT_ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The Bot API calls that run the bot rather than talk to users: `getMe`,
/// `setWebhook`, `deleteWebhook`, `setMyCommands` and `getUpdates`. Start-up
/// and polling are written against this port; their retry policy stays
/// theirs, so each call here is one attempt.
#[async_trait]
pub trait TelegramControl: Send + Sync + 'static {
    /// The bot's id when its token names it (no call needed).
    fn bot_id(&self) -> Option<BotId>;
    /// One Bot API call, its JSON parameters in, its `result` out.
    async fn call(
        &self,
        method: &'static str,
        params: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError>;
}

#[async_trait]
impl TelegramControl for TelegramMessenger {
    fn bot_id(&self) -> Option<BotId> {
        self.bot_id
    }

    async fn call(
        &self,
        method: &'static str,
        params: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError> {
        self.api.call(method, params, timeout).await
    }
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

    /// The two ports [`crate::Gateway::start`] takes: talking to users, and
    /// running the bot.
    pub fn ports(self) -> (Arc<dyn Messenger>, Arc<dyn TelegramControl>) {
        let control: Arc<dyn TelegramControl> = Arc::new(self.clone());
        (self.shared(), control)
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
        self.outbox.send(chat, message).await.map(drop)
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
        self.outbox.send(chat, message).await.map(drop)
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file: Document,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::Document {
            bytes: file.bytes,
            file_name: file.file_name,
            mime: file.mime,
            caption: file.caption,
            reply_to,
        };
        self.outbox.send(chat, message).await.map(drop)
    }

    async fn send_media_group(
        &self,
        chat: ChatId,
        items: Vec<MediaItem>,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::MediaGroup {
            items,
            caption: caption.to_owned(),
            reply_to,
        };
        self.outbox.send(chat, message).await.map(drop)
    }

    async fn send_notice(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
        cancel: CancellationToken,
    ) -> Option<i64> {
        let message = OutMessage::Text {
            text: text.to_owned(),
            reply_to,
        };
        self.outbox.notice(chat, message, cancel).await
    }

    async fn edit_text(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::Edit {
            message_id,
            text: text.to_owned(),
        };
        self.outbox.send(chat, message).await.map(drop)
    }

    async fn delete(&self, chat: ChatId, message_id: i64) -> Result<(), MessengerError> {
        self.outbox
            .send(chat, OutMessage::Delete { message_id })
            .await
            .map(drop)
    }

    async fn show_progress(&self, chat: ChatId) {
        // Beside the outbox, not through it: an action is not a message,
        // and must never take a turn ahead of the chat's answer.
        let span = bot_api_span(&tracing::Span::current(), "sendChatAction", Some(chat));
        let params = json!({"chat_id": chat.0, "action": "upload_photo"});
        let result = self
            .api
            .call::<serde_json::Value>("sendChatAction", &params, CHAT_ACTION_TIMEOUT)
            .instrument(span.clone())
            .await;
        if let Err(e) = result {
            record_error(&span, e.kind());
            tracing::debug!(error = %e, chat_id = chat.0, "could not show the chat action");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, description: &str, retry_after: Option<u64>) -> BotApiError {
        BotApiError::Api {
            method: "sendPhoto",
            code,
            description: description.to_owned(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    /// Telegram's own answers, and what each must mean to the gateway:
    /// a refused photo can go another way, other 4xx are final, and rate
    /// limits, 5xx and network failures are retried.
    #[test]
    fn telegram_errors_are_classified_from_the_real_api_texts() {
        let network = BotApiError::Network {
            method: "sendPhoto",
            message: "connection reset".into(),
        };
        let cases = [
            (
                api(400, "Bad Request: PHOTO_INVALID_DIMENSIONS", None),
                "media_rejected",
            ),
            (
                api(400, "Bad Request: IMAGE_PROCESS_FAILED", None),
                "media_rejected",
            ),
            (api(413, "Request Entity Too Large", None), "media_rejected"),
            (
                api(400, "Bad Request: message is too long", None),
                "rejected",
            ),
            (api(400, "Bad Request: chat not found", None), "rejected"),
            (
                api(403, "Forbidden: bot was blocked by the user", None),
                "rejected",
            ),
            (
                api(400, "Bad Request: message to delete not found", None),
                "rejected",
            ),
            (
                api(429, "Too Many Requests: retry after 5", Some(5)),
                "unavailable",
            ),
            (api(500, "Internal Server Error", None), "unavailable"),
            (api(502, "Bad Gateway", None), "unavailable"),
            (network, "unavailable"),
        ];
        for (error, kind) in cases {
            let shown = error.to_string();
            let classified = classify(error);
            assert_eq!(classified.kind(), kind, "{shown}");
            assert_eq!(classified.is_retryable(), kind == "unavailable", "{shown}");
        }
    }

    #[test]
    fn a_download_over_the_bot_api_limit_is_too_large() {
        let classified = classify(api(400, "Bad Request: file is too big", None));
        assert!(
            matches!(classified, MessengerError::TooLarge { .. }),
            "{classified:?}"
        );
    }
}
