//! The ports the gateway is written against: [`Messenger`] (talking to
//! users) and [`TelegramControl`] (running the bot), and the values they
//! carry. The Telegram adapter is [`crate::TelegramMessenger`]; tests use
//! `FakeMessenger` (feature `test-util`).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
pub use polybot_domain::CallbackQueryId;
use polybot_domain::{BotId, ChatId};
use polybot_telemetry::tasks::Components;
use tokio_util::sync::CancellationToken;

use crate::botapi::{BotApiError, Upload};
use crate::error::MessengerError;
use crate::outbox::{SavedPhoto, SentMessage};

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
    /// Sends a photo and waits (bounded) until Telegram took it: the sent
    /// message (`None` if Telegram's answer named none), so that a reply to
    /// it can be traced back and the photo sent again by its `file_id`.
    async fn send_photo(
        &self,
        chat: ChatId,
        jpeg: Bytes,
        caption: &str,
        reply_to: Option<i64>,
        keyboard: Option<Keyboard>,
    ) -> Result<Option<SentMessage>, MessengerError>;
    /// Sends photos Telegram already holds again, by `file_id` (no
    /// upload), each with its caption: one as a photo, more as albums of
    /// up to ten.
    async fn send_saved_photos(
        &self,
        chat: ChatId,
        photos: Vec<SavedPhoto>,
        reply_to: Option<i64>,
    ) -> Result<(), MessengerError>;
    /// Sends a file as a document (no recompression) and waits (bounded):
    /// the sent message's id, as for [`Messenger::send_photo`].
    async fn send_document(
        &self,
        chat: ChatId,
        file: Document,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError>;
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
    /// Sends a text with buttons under it and waits (bounded) until
    /// Telegram took it: the sent message's id.
    async fn send_keyboard(
        &self,
        chat: ChatId,
        text: &str,
        keyboard: Keyboard,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError>;
    /// Replaces the text and the buttons of a message the bot sent (a
    /// pressed settings button showing the new value). An edit that
    /// changes nothing counts as done.
    async fn edit_keyboard(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
        keyboard: Keyboard,
    ) -> Result<(), MessengerError>;
    /// Answers a pressed button (`answerCallbackQuery`), with a short
    /// toast when `toast` is given; Telegram shows a spinner on the button
    /// until it is answered.
    async fn answer_button(
        &self,
        query: &CallbackQueryId,
        toast: Option<&str>,
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

/// Buttons under a message (an inline keyboard), in rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keyboard(pub Vec<Vec<Button>>);

/// One button: its label, and the `callback_data` the bot gets back when
/// it is pressed (1–64 bytes, a code of ours, never user data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub text: String,
    pub data: String,
}

impl Keyboard {
    /// The `reply_markup` parameter.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<Vec<serde_json::Value>> = self
            .0
            .iter()
            .map(|row| {
                row.iter()
                    .map(|b| serde_json::json!({"text": b.text, "callback_data": b.data}))
                    .collect()
            })
            .collect();
        serde_json::json!({ "inline_keyboard": rows })
    }
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
    /// Its own caption (a crop's class and score); without one, the
    /// album's caption goes on the first item.
    pub caption: Option<String>,
}

/// The Bot API calls that run the bot rather than talk to users: `getMe`,
/// `setWebhook`, `deleteWebhook`, `setMyCommands`, `setMyDescription`,
/// `setMyShortDescription` and `getUpdates`. Start-up and polling are
/// written against this port; their retry policy stays theirs, so each call
/// here is one attempt. The calls go through the one generic [`call`]
/// (named by their Bot API method) rather than a method each: they run once
/// at start-up or in one loop, and their parameters are built where they
/// are decided.
///
/// [`call`]: TelegramControl::call
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
    /// Reports whether Telegram accepts the bot's token to `components`
    /// (component [`crate::token::TOKEN_COMPONENT`]), so a revoked token
    /// turns the service not ready.
    fn report_token_to(&self, components: Components);
    /// One Bot API call that uploads a file (multipart): `setWebhook` with
    /// the certificate of a webhook served with a self-signed one.
    async fn call_with_file(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        file: Upload,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError>;
}
