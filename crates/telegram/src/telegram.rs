//! The Telegram adapter of the ports: [`TelegramMessenger`]. Sends go
//! through the [`Outbox`] (fair per chat, a 429 delays only its chat,
//! bounded waits); downloads, chat actions and the control calls go to the
//! Bot API directly.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{BotId, ChatId};
use polybot_telemetry::tasks::{Components, Supervisor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::botapi::{BotApi, BotApiError, CALL_TIMEOUT, Upload};
use crate::error::{MessengerError, classify};
use crate::observe::{self, bot_api_span, record_error};
use crate::outbox::{OutMessage, Outbox, OutboxConfig, SavedPhoto, Sent, SentMessage};
use crate::port::{CallbackQueryId, Document, Keyboard, MediaItem, Messenger, TelegramControl};

/// How long a chat action may take: it is only worth sending promptly.
const CHAT_ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a file download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The Telegram adapter.
#[derive(Clone)]
pub struct TelegramMessenger {
    api: BotApi,
    outbox: Outbox,
    bot_id: Option<BotId>,
}

impl TelegramMessenger {
    /// `api_url` is the Bot API base URL (`https://api.telegram.org` or an
    /// emulator). The outbox's senders run under a supervisor of their
    /// own, and stop when the last clone of the messenger is dropped.
    pub fn new(token: &SecretString, api_url: reqwest::Url) -> Self {
        Self::with_outbox(token, api_url, OutboxConfig::default())
    }

    /// [`TelegramMessenger::new`] with outbox settings.
    pub fn with_outbox(token: &SecretString, api_url: reqwest::Url, config: OutboxConfig) -> Self {
        let own = Supervisor::new(CancellationToken::new(), Components::default());
        Self::with_supervisor(token, api_url, config, &own)
    }

    /// The outbox's senders run under a service's supervisor `tasks`: they
    /// are restarted if one panics, count in its readiness (component
    /// `telegram_outbox`), and on its shutdown send what is queued, then
    /// stop. Shut `tasks` down after whatever sends through this messenger.
    pub fn with_supervisor(
        token: &SecretString,
        api_url: reqwest::Url,
        config: OutboxConfig,
        tasks: &Supervisor,
    ) -> Self {
        let api = BotApi::new(token, &api_url);
        Self {
            outbox: Outbox::new(Arc::new(api.clone()), config, tasks.clone()),
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

    /// The two ports the gateway takes: talking to users, and running the
    /// bot.
    pub fn ports(self) -> (Arc<dyn Messenger>, Arc<dyn TelegramControl>) {
        let control: Arc<dyn TelegramControl> = Arc::new(self.clone());
        (self.shared(), control)
    }

    /// Queues `message` for `chat` and waits until it was sent: the sent
    /// message's id, when Telegram's answer names one. One too long for
    /// Telegram goes as the parts that fit ([`crate::limits`]), in order;
    /// the id is the first part's (the picture, with its caption).
    async fn deliver(&self, chat: ChatId, message: OutMessage) -> Result<Sent, MessengerError> {
        let mut first = None;
        for (index, part) in crate::limits::fit(message).into_iter().enumerate() {
            let sent = self.outbox.send(chat, part).await?;
            if index == 0 {
                first = sent;
            }
        }
        Ok(first)
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
            .call("getFile", &json!({ "file_id": file_id }), CALL_TIMEOUT)
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
            .download(&path, max_bytes, DOWNLOAD_TIMEOUT)
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

    fn report_token_to(&self, components: Components) {
        self.api.token_watch().report_to(components);
    }

    async fn call_with_file(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        file: Upload,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError> {
        self.api
            .call_multipart(method, params, vec![file], timeout)
            .await
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
        let text = text.to_owned();
        let message = OutMessage::Text {
            text,
            reply_to,
            keyboard: None,
        };
        self.deliver(chat, message).await.map(drop)
    }

    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
        keyboard: Option<Keyboard>,
    ) -> Result<Option<SentMessage>, MessengerError> {
        let caption = caption.to_owned();
        let message = OutMessage::Photo {
            jpeg,
            caption,
            reply_to,
            keyboard,
        };
        self.deliver(chat, message).await
    }

    async fn send_document(
        &self,
        chat: ChatId,
        file: Document,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError> {
        let message = OutMessage::Document {
            bytes: file.bytes,
            file_name: file.file_name,
            mime: file.mime,
            caption: file.caption,
            reply_to,
        };
        self.deliver(chat, message)
            .await
            .map(|sent| sent.map(|m| m.id))
    }

    async fn send_media_group(
        &self,
        chat: ChatId,
        items: Vec<MediaItem>,
        caption: &str,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let caption = caption.to_owned();
        let message = OutMessage::MediaGroup {
            items,
            caption,
            reply_to,
        };
        self.deliver(chat, message).await.map(drop)
    }

    async fn send_saved_photos(
        &self,
        chat: ChatId,
        photos: Vec<SavedPhoto>,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        for chunk in photos.chunks(10) {
            let message = OutMessage::Saved {
                photos: chunk.to_vec(),
                reply_to,
            };
            self.deliver(chat, message).await?;
        }
        Ok(())
    }

    async fn send_notice(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<i64>,
        cancel: CancellationToken,
    ) -> Option<i64> {
        let text = text.to_owned();
        let message = OutMessage::Text {
            text,
            reply_to,
            keyboard: None,
        };
        self.outbox.notice(chat, message, cancel).await
    }

    async fn edit_text(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
    ) -> Result<(), MessengerError> {
        let text = text.to_owned();
        let message = OutMessage::Edit {
            message_id,
            text,
            keyboard: None,
        };
        self.deliver(chat, message).await.map(drop)
    }

    async fn send_keyboard(
        &self,
        chat: ChatId,
        text: &str,
        keyboard: Keyboard,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError> {
        let message = OutMessage::Text {
            text: text.to_owned(),
            reply_to,
            keyboard: Some(keyboard),
        };
        self.deliver(chat, message)
            .await
            .map(|sent| sent.map(|m| m.id))
    }

    async fn edit_keyboard(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
        keyboard: Keyboard,
    ) -> Result<(), MessengerError> {
        let message = OutMessage::Edit {
            message_id,
            text: text.to_owned(),
            keyboard: Some(keyboard),
        };
        match self.deliver(chat, message).await {
            // Two presses of the same value: the message already shows it.
            Err(MessengerError::Rejected(reason))
                if reason.to_string().contains("message is not modified") =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    async fn answer_button(
        &self,
        query: &CallbackQueryId,
        toast: Option<&str>,
    ) -> Result<(), MessengerError> {
        // Not a message in the chat: beside the outbox, like a chat action,
        // but it must arrive (the button spins until it does).
        let span = bot_api_span(&tracing::Span::current(), "answerCallbackQuery", None);
        let mut params = json!({"callback_query_id": query.0});
        if let Some(text) = toast {
            params["text"] = json!(text);
        }
        let result = self
            .api
            .call::<serde_json::Value>("answerCallbackQuery", &params, CALL_TIMEOUT)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            record_error(&span, e.kind());
        }
        result.map(drop).map_err(classify)
    }

    async fn delete(&self, chat: ChatId, message_id: i64) -> Result<(), MessengerError> {
        self.deliver(chat, OutMessage::Delete { message_id })
            .await
            .map(drop)
    }

    async fn show_progress(&self, chat: ChatId) {
        // Beside the outbox's queues, not through them: an action is not a
        // message, and must never take a turn ahead of the chat's answer.
        // It takes from the same global budget, only a spare token.
        if !self.outbox.spare_for_action() {
            observe::dropped("chat_action", "budget");
            return;
        }
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
