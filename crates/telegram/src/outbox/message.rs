//! What the outbox sends ([`OutMessage`]) and how it is tuned
//! ([`OutboxConfig`]).

use std::time::Duration;

use bytes::Bytes;

use crate::port::{Keyboard, MediaItem};

/// Outbox settings.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Concurrent sends (to different chats).
    pub senders: usize,
    /// Messages per second over all chats (Telegram allows about 30).
    pub global_rate: f64,
    /// How long a caller waits for an answer to be sent.
    pub answer_wait: Duration,
    /// How long a notice may wait before it is dropped.
    pub notice_max_age: Duration,
    /// A notice is not queued when its chat already has this many messages waiting.
    pub notice_chat_backlog: usize,
    /// A notice is not queued when the outbox holds this many messages.
    pub notice_total_backlog: usize,
    /// Sends that failed with a network error or 5xx are tried this many times in all.
    pub max_attempts: u32,
    /// 429s one message waits out before it fails as unavailable.
    pub max_rate_limited: u32,
    /// Deadline of one send call.
    pub call_timeout: Duration,
    /// The least time between two new messages in one group (Telegram
    /// allows about 20 a minute there, and answers more with a 429). Edits
    /// and deletions are not paced.
    pub group_interval: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            senders: 8,
            global_rate: 30.0,
            answer_wait: Duration::from_secs(45),
            group_interval: Duration::from_secs(3),
            notice_max_age: Duration::from_secs(10),
            notice_chat_backlog: 3,
            notice_total_backlog: 200,
            max_attempts: 3,
            max_rate_limited: 5,
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub enum OutMessage {
    Text {
        text: String,
        reply_to: Option<i64>,
        /// Buttons under it (settings).
        keyboard: Option<Keyboard>,
    },
    Photo {
        jpeg: Bytes,
        caption: String,
        reply_to: Option<i64>,
        /// Buttons under it (the answer's extras).
        keyboard: Option<Keyboard>,
    },
    /// A file as a document (no recompression, up to 50 MB).
    Document {
        bytes: Bytes,
        file_name: &'static str,
        mime: &'static str,
        caption: String,
        reply_to: Option<i64>,
    },
    /// Photos (or documents) sent together as one album, the caption on
    /// the first. 2–10 items.
    MediaGroup {
        items: Vec<MediaItem>,
        caption: String,
        reply_to: Option<i64>,
    },
    /// New text for a message the bot sent (the notice becoming an error,
    /// the settings showing a new value), with new buttons if given.
    Edit {
        message_id: i64,
        text: String,
        keyboard: Option<Keyboard>,
    },
    /// Removes a message the bot sent (the notice, once answered). Queued
    /// like a message so it never overtakes the answer before it.
    Delete { message_id: i64 },
    /// Photos Telegram already holds, sent again by `file_id` (no upload):
    /// one as a photo, 2–10 as an album, each with its own caption.
    Saved {
        photos: Vec<SavedPhoto>,
        reply_to: Option<i64>,
    },
}

impl OutMessage {
    /// Whether it makes a new message in the chat (what Telegram's
    /// per-group limit counts), rather than changing one.
    pub(crate) fn is_new_message(&self) -> bool {
        !matches!(self, Self::Edit { .. } | Self::Delete { .. })
    }

    /// The caption of a picture, document or album, and the message it
    /// quotes; `None` for what has no caption.
    pub(crate) fn caption_mut(&mut self) -> Option<(&mut String, Option<i64>)> {
        match self {
            Self::Photo {
                caption, reply_to, ..
            }
            | Self::Document {
                caption, reply_to, ..
            }
            | Self::MediaGroup {
                caption, reply_to, ..
            } => Some((caption, *reply_to)),
            Self::Text { .. } | Self::Edit { .. } | Self::Delete { .. } | Self::Saved { .. } => {
                None
            }
        }
    }

    /// The Bot API method that sends it.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Text { .. } => "sendMessage",
            Self::Photo { .. } => "sendPhoto",
            Self::Document { .. } => "sendDocument",
            Self::MediaGroup { .. } => "sendMediaGroup",
            Self::Edit { .. } => "editMessageText",
            Self::Delete { .. } => "deleteMessage",
            Self::Saved { photos, .. } if photos.len() == 1 => "sendPhoto",
            Self::Saved { .. } => "sendMediaGroup",
        }
    }
}

/// What a sent message is known by, when the call returns a message.
pub type Sent = Option<SentMessage>;

/// A message the bot sent: its `message_id`, and for a photo the
/// `file_id` of its largest size, by which it can be sent again without
/// uploading it (`/history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: i64,
    pub photo: Option<String>,
}

/// A photo Telegram already holds, to be sent again by its `file_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPhoto {
    pub file_id: String,
    pub caption: String,
}
