//! Wire types of the control API, shared by the server and [`crate::EmulatorClient`].
//!
//! They live in one place so the JSON the server writes and the JSON the client
//! reads cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of message the bot sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentKind {
    /// `sendMessage`.
    Text,
    /// `sendPhoto`, or a photo of `sendMediaGroup`.
    Photo,
    /// `sendDocument`, or a document of `sendMediaGroup`.
    Document,
    /// `sendVideo`, or a video of `sendMediaGroup`.
    Video,
}

/// A file the emulator stores (uploaded by the bot, sent by a simulated user or
/// registered through the control API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Bot API `file_id`, usable with `getFile`, `sendPhoto` and `sendDocument`.
    pub file_id: String,
    /// Bot API `file_unique_id`.
    pub file_unique_id: String,
    /// Path for `GET /file/bot<token>/<file_path>`.
    pub file_path: String,
    /// Size in bytes.
    pub file_size: u64,
    /// Width of a decodable image, or of a video, animation, video note or
    /// sticker as it was declared.
    pub width: Option<u32>,
    /// Height, as `width`.
    pub height: Option<u32>,
    /// Duration in seconds of a video, animation or video note, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// MIME type, when known or sniffed.
    pub mime_type: Option<String>,
    /// Original file name, when one was given.
    pub file_name: Option<String>,
    /// Path on the emulator (relative to its base URL) that returns the raw
    /// bytes without needing the bot token: `/control/files/<file_id>`.
    pub download_path: String,
}

/// One message the bot sent to a chat, as recorded by the emulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// `message_id` returned to the bot.
    pub message_id: i64,
    /// Chat the message went to.
    pub chat_id: i64,
    /// Text, photo, document or video.
    pub kind: SentKind,
    /// Canonical Bot API method name that created it (`sendMessage`, ...).
    pub method: String,
    /// Current text of a text message, exactly as the bot sent it (markup included).
    pub text: Option<String>,
    /// Current caption of a photo, document or video, exactly as the bot sent it.
    pub caption: Option<String>,
    /// `parse_mode` the bot used, if any.
    pub parse_mode: Option<String>,
    /// The message this one replies to, from `reply_to_message_id` or `reply_parameters`.
    pub reply_to_message_id: Option<i64>,
    /// `reply_markup` as the bot last sent it (with the message or an edit).
    pub reply_markup: Option<serde_json::Value>,
    /// The message's inline keyboard now, as Telegram shows it (buttons
    /// with an empty text dropped, each button reduced to its text and
    /// action); empty when it has none.
    #[serde(default)]
    pub inline_keyboard: Vec<Vec<InlineButton>>,
    /// The photo (largest size), document or video that was sent; its bytes
    /// are at `download_path` ([`crate::EmulatorClient::file_bytes`]).
    pub file: Option<FileInfo>,
    /// Unix time the message was sent.
    pub date: i64,
    /// Earlier texts/captions, oldest first, when the bot edited the message.
    pub previous_versions: Vec<String>,
    /// Whether the bot deleted the message afterwards.
    pub deleted: bool,
    /// Album the message belongs to (`sendMediaGroup` with 2 or more items);
    /// every message of one album has the same id.
    #[serde(default)]
    pub media_group_id: Option<String>,
    /// The full Bot API `Message` object that was returned to the bot (latest version).
    pub message: serde_json::Value,
}

impl SentMessage {
    /// Every button of the inline keyboard, row by row.
    pub fn buttons(&self) -> impl Iterator<Item = &InlineButton> {
        self.inline_keyboard.iter().flatten()
    }

    /// The first inline button whose text is `text`.
    pub fn button(&self, text: &str) -> Option<&InlineButton> {
        self.buttons().find(|b| b.text == text)
    }

    /// The `callback_data` of the first inline button whose text is `text`.
    pub fn callback_data(&self, text: &str) -> Option<&str> {
        self.button(text).and_then(|b| b.callback_data.as_deref())
    }
}

/// One button of an inline keyboard, serialized as the Bot API's
/// `InlineKeyboardButton` Telegram echoes: the text and the one field that
/// says what the button does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineButton {
    /// Label of the button.
    pub text: String,
    /// Data sent back in a `callback_query` when the button is pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    /// URL opened by the button (login buttons are echoed as URL buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Any other action (`switch_inline_query`, `web_app`, `copy_text`,
    /// `pay`, ...), as Telegram echoes it.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl InlineButton {
    /// A button that sends `callback_data` when pressed.
    pub fn callback(text: impl Into<String>, callback_data: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            callback_data: Some(callback_data.into()),
            url: None,
            other: BTreeMap::new(),
        }
    }

    /// The Bot API JSON of the button.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("text".to_owned(), self.text.clone().into());
        if let Some(data) = &self.callback_data {
            object.insert("callback_data".to_owned(), data.clone().into());
        }
        if let Some(url) = &self.url {
            object.insert("url".to_owned(), url.clone().into());
        }
        for (k, v) in &self.other {
            object.insert(k.clone(), v.clone());
        }
        serde_json::Value::Object(object)
    }
}

/// Body of `POST /control/chats/{chat_id}/messages/{message_id}/press`: a
/// user presses a callback button of a bot message, chosen by its
/// `callback_data` (`data`) or by its text (`text`), one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonPress {
    /// Who presses (default: the chat's usual sender, as for user messages:
    /// the chat's id in a private chat, else its first member, else 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_id: Option<i64>,
    /// The `callback_data` of the button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The text of the button (the first button with this text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Answer of a button press: the queued `callback_query` update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PressedQuery {
    /// `update_id` of the queued update.
    pub update_id: i64,
    /// `callback_query.id`, what the bot passes to `answerCallbackQuery`.
    pub callback_query_id: String,
    /// The Update JSON exactly as it will be delivered.
    #[serde(default)]
    pub update: serde_json::Value,
}

/// A button press and how the bot answered it (`GET /control/callback_answers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackAnswer {
    /// `callback_query.id` of the press.
    pub callback_query_id: String,
    /// The update that carried the press.
    pub update_id: i64,
    /// Chat of the message whose button was pressed.
    pub chat_id: i64,
    /// The bot message whose button was pressed.
    pub message_id: i64,
    /// The user who pressed.
    pub from_id: i64,
    /// The button's `callback_data`.
    pub data: String,
    /// Milliseconds since the emulator started, when the button was pressed.
    pub pressed_at_ms: u64,
    /// Whether the bot called `answerCallbackQuery` for it (successfully).
    pub answered: bool,
    /// `text` of the answer (the notification or alert shown), if any.
    pub text: Option<String>,
    /// `show_alert` of the answer.
    pub show_alert: bool,
    /// `url` of the answer, if any.
    pub url: Option<String>,
    /// `cache_time` of the answer, in seconds (0 when the bot gave none);
    /// `None` until answered.
    pub cache_time: Option<u32>,
    /// Milliseconds since the emulator started, when the bot answered.
    pub answered_at_ms: Option<u64>,
}

/// A `sendChatAction` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatActionRecord {
    /// Chat the action was sent to.
    pub chat_id: i64,
    /// `typing`, `upload_photo`, ...
    pub action: String,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// Answer of the control calls that queue an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedUpdate {
    /// `update_id` of the queued update.
    pub update_id: i64,
    /// `message_id` of the contained message, when it has one.
    pub message_id: Option<i64>,
    /// The Update JSON exactly as it will be delivered.
    pub update: serde_json::Value,
    /// Whether the update goes to the bot: `false` when privacy mode kept a
    /// group message from it (then `update_id` is 0 and nothing is queued).
    #[serde(default = "delivered_by_default")]
    pub delivered: bool,
}

fn delivered_by_default() -> bool {
    true
}

/// One attempt to deliver an update to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The update that was posted.
    pub update_id: i64,
    /// 1 for the first attempt of this queued update, 2 for its first retry, ...
    pub attempt: u32,
    /// Webhook URL that was called.
    pub url: String,
    /// HTTP status the webhook answered, if it answered at all.
    pub status: Option<u16>,
    /// Connection or timeout error, when there was no HTTP answer.
    pub error: Option<String>,
    /// Whether the attempt counted as delivered (2xx).
    pub delivered: bool,
    /// Whether the `X-Telegram-Bot-Api-Secret-Token` header was sent.
    pub secret_token_sent: bool,
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
}

/// Body of `POST /control/rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRule {
    /// Method to limit (case-insensitive); `None` limits every method.
    #[serde(default)]
    pub method: Option<String>,
    /// How many upcoming calls answer 429.
    pub count: u32,
    /// Seconds reported in `parameters.retry_after`.
    #[serde(default = "default_retry_after")]
    pub retry_after: u32,
}

fn default_retry_after() -> u32 {
    1
}

/// Body of `POST /control/faults`: the next `count` calls of `method` (any
/// method when `None`) fail as scripted, e.g. `{"method": "sendMessage",
/// "count": 2, "error_code": 500}` or `{"method": "getFile", "count": 1,
/// "delay_ms": 500}` (answered normally, half a second late).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFault {
    /// Method to affect (case-insensitive); `None` affects every method.
    #[serde(default)]
    pub method: Option<String>,
    /// How many upcoming calls are affected.
    pub count: u32,
    /// The error code to answer (400, 403, 429, 500, 502…); `None` answers
    /// normally (after `delay_ms`).
    #[serde(default)]
    pub error_code: Option<u16>,
    /// The error's description (default: the usual text for the code).
    #[serde(default)]
    pub description: Option<String>,
    /// `parameters.retry_after` (with a 429).
    #[serde(default)]
    pub retry_after: Option<u32>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// Body of `POST /control/webhook_faults`: the next `count` webhook
/// deliveries hang up `hang_up_after_ms` after sending the update, before
/// the bot answers (as Telegram or a load balancer dropping the
/// connection); each counts as a failed delivery and is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFault {
    pub count: u32,
    #[serde(default)]
    pub hang_up_after_ms: u64,
}

/// One Bot API call seen by the emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// 1-based order of arrival.
    pub seq: u64,
    /// Canonical method name (`sendMessage`), or the name as called when unknown.
    pub method: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Milliseconds since the emulator started (when the request arrived).
    pub at_ms: u64,
}

/// Answer of `GET /control/requests`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Calls per canonical method name, whatever their outcome.
    pub total: BTreeMap<String, u64>,
    /// Calls per method that were answered 429 by a rate-limit rule.
    pub rate_limited: BTreeMap<String, u64>,
    /// Every call in order (the oldest are dropped after 10 000).
    pub log: Vec<RequestLogEntry>,
}

impl RequestStats {
    /// Calls of `method` (case-insensitive), whatever their outcome.
    pub fn count(&self, method: &str) -> u64 {
        sum_ci(&self.total, method)
    }

    /// Calls of `method` (case-insensitive) that were answered 429.
    pub fn rate_limited_count(&self, method: &str) -> u64 {
        sum_ci(&self.rate_limited, method)
    }
}

fn sum_ci(map: &BTreeMap<String, u64>, method: &str) -> u64 {
    map.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(method))
        .map(|(_, v)| *v)
        .sum()
}

/// Answer of `GET /control/webhook`: what the bot configured, including the
/// secret, which `getWebhookInfo` does not reveal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookState {
    /// Webhook URL, `None` when the bot uses getUpdates.
    pub url: Option<String>,
    /// `secret_token` given to `setWebhook`.
    pub secret_token: Option<String>,
    /// `allowed_updates` given to `setWebhook` (stored, not applied).
    pub allowed_updates: Option<Vec<String>>,
    /// `max_connections` given to `setWebhook`: deliveries in parallel
    /// (default 40, as Telegram's); one at a time per chat.
    pub max_connections: Option<u32>,
    /// The certificate (PEM) uploaded with `setWebhook`, for a webhook
    /// served with a self-signed one.
    #[serde(default)]
    pub certificate: Option<String>,
    /// Updates queued and not yet confirmed or delivered.
    pub pending_update_count: usize,
    /// Last delivery error, as `getWebhookInfo` reports it.
    pub last_error_message: Option<String>,
    /// Unix time of the last delivery error.
    pub last_error_date: Option<i64>,
}

/// Options for a simulated user's message (`POST /control/chats/{chat_id}/...`).
///
/// All fields are optional; they are sent as the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessageOptions {
    /// Caption of a photo, document, video or animation (video notes and
    /// stickers have none: the control API refuses one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name of a document (default `image.<ext>` or `file.bin`), video
    /// (`video.mp4`) or animation (`animation.gif.mp4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// MIME type of a document (default: sniffed from the bytes), video or
    /// animation (default `video/mp4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Album id, to simulate several photos or videos sent together
    /// (Telegram has no albums of animations, video notes or stickers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_group_id: Option<String>,
    /// Sender's user id (default: the chat id for private chats, 1000 otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_id: Option<i64>,
    /// Sender's first name (default `Test`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Sender's username (default `test_user_<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Sender's language code (default `en`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// Message in the same chat this one replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to_message_id: Option<i64>,
}

/// What the emulator cannot read from video bytes, so a test states it: the
/// `width`, `height` and `duration` of a user's video or animation
/// (`POST /control/chats/{chat_id}/video` and `/animation`, in the query
/// string). Missing fields take the defaults: 640×360, 1 second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoMeta {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Duration in whole seconds.
    pub duration: u32,
}

impl Default for VideoMeta {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            duration: 1,
        }
    }
}

impl VideoMeta {
    /// A clip of `width`×`height` lasting `duration` seconds.
    pub fn new(width: u32, height: u32, duration: u32) -> Self {
        Self {
            width,
            height,
            duration,
        }
    }
}

/// Which of Telegram's three sticker formats a user's sticker is
/// (`POST /control/chats/{chat_id}/sticker?sticker=static|animated|video`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StickerKind {
    /// A `.webp` image (`is_animated` and `is_video` false).
    Static,
    /// A `.tgs` Lottie animation (`is_animated` true).
    Animated,
    /// A `.webm` video (`is_video` true).
    Video,
}

impl StickerKind {
    /// MIME type Telegram serves the sticker file with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Static => "image/webp",
            Self::Animated => "application/x-tgsticker",
            Self::Video => "video/webm",
        }
    }

    /// File extension of the sticker file.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Static => "webp",
            Self::Animated => "tgs",
            Self::Video => "webm",
        }
    }

    /// The format the bytes look like: WebM (EBML) is a video sticker,
    /// gzip (a `.tgs` is gzipped Lottie JSON) an animated one, anything
    /// else static.
    pub fn sniff(bytes: &[u8]) -> Self {
        if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            Self::Video
        } else if bytes.starts_with(&[0x1F, 0x8B]) {
            Self::Animated
        } else {
            Self::Static
        }
    }
}

/// Kind of a chat created with `POST /control/chats/{chat_id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    /// A one-to-one chat with a user (positive id).
    Private,
    /// A basic group (negative id).
    Group,
    /// A supergroup (negative id, usually `-100…`).
    Supergroup,
}

impl ChatType {
    /// The Bot API spelling (`private`, `group`, `supergroup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Group => "group",
            Self::Supergroup => "supergroup",
        }
    }
}

/// A user in a chat created through the control API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Telegram user id (positive).
    pub id: i64,
    /// First name (default `Test`).
    #[serde(default = "default_first_name")]
    pub first_name: String,
    /// Last name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Username without `@` (default `test_user_<id>` in messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// IETF language tag of the user's client (default `en` in messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

fn default_first_name() -> String {
    "Test".to_owned()
}

impl Member {
    /// A member with only an id and a first name.
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
            language_code: None,
        }
    }

    /// The same member with a username.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
}

/// Body of `POST /control/chats/{chat_id}`: creates or replaces a chat, e.g.
/// `{"type": "group", "title": "Bus spotters", "members": [{"id": 1001,
/// "first_name": "Ann", "username": "ann"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSetup {
    /// The chat's id; may be left out of the JSON body (the path names it),
    /// but must match the path when given.
    #[serde(default)]
    pub chat_id: i64,
    /// `private` (positive id), `group` or `supergroup` (negative id).
    #[serde(rename = "type")]
    pub kind: ChatType,
    /// Title, required for groups and supergroups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Members, in order; the first one sends user messages that name no
    /// `from_id`. In a group, `from_id` must name one of them.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// Answer of `GET`/`POST /control/chats/{chat_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatInfo {
    /// The Bot API `Chat` object messages in this chat carry.
    pub chat: serde_json::Value,
    /// Members given when the chat was created (empty otherwise).
    pub members: Vec<Member>,
    /// Whether the chat was created through the control API (rather than
    /// made up from its id when a message first used it).
    pub created: bool,
}

/// A Bot API `BotCommand`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotCommand {
    /// Command name without the leading `/`.
    pub command: String,
    /// Text shown in the command menu.
    pub description: String,
}

/// A Bot API `BotCommandScope`, e.g. `{"type": "chat", "chat_id": -100}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotCommandScope {
    /// Used when no other scope applies (and when no scope is given).
    Default,
    /// Every private chat.
    AllPrivateChats,
    /// Every group and supergroup.
    AllGroupChats,
    /// Administrators of every group and supergroup.
    AllChatAdministrators,
    /// One chat.
    Chat {
        /// The chat's id.
        chat_id: i64,
    },
    /// Administrators of one group or supergroup.
    ChatAdministrators {
        /// The chat's id.
        chat_id: i64,
    },
    /// One member of one group or supergroup.
    ChatMember {
        /// The chat's id.
        chat_id: i64,
        /// The member's user id.
        user_id: i64,
    },
}

/// One language's description and short description, as
/// `GET /control/descriptions` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotDescriptions {
    /// `language_code` given to `setMyDescription` / `setMyShortDescription`
    /// (empty for every language without a text of its own).
    pub language_code: String,
    /// The `setMyDescription` text, if one is set for this language.
    pub description: Option<String>,
    /// The `setMyShortDescription` text, if one is set for this language.
    pub short_description: Option<String>,
}

/// One stored command list, as `GET /control/commands` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandList {
    /// The scope given to `setMyCommands`.
    pub scope: BotCommandScope,
    /// `language_code` given to `setMyCommands` (empty for all languages).
    pub language_code: String,
    /// The commands, in the order the bot gave them.
    pub commands: Vec<BotCommand>,
}
