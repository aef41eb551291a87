//! Parsing at the edge: a raw Telegram `Update` becomes an [`Inbound`],
//! the only shape the rest of the gateway sees.
//!
//! Private chats: every photo is analysed, `/start` and `/help` answered,
//! anything else gets the help. Groups and supergroups: the bot acts only
//! when addressed, and ignores the rest silently. Under Telegram's privacy
//! mode (on by default) the bot only receives commands `@` it (and bare
//! ones when it posted last) and replies to its messages; with privacy mode
//! off it receives everything and picks:
//! - a photo whose caption starts with `/detect` (bare, or `@` this bot) or
//!   mentions `@` this bot;
//! - `/detect` sent as a reply to a photo: the replied-to photo is analysed
//!   and the answer quotes the command;
//! - `/start`, `/help` (bare or `@` this bot); a command `@` this bot that
//!   it does not know gets the help. A bare command it does not know is
//!   another bot's.
//!
//! Replies to the bot's own messages (private chats and groups alike; in a
//! group they count as addressed to it, as Telegram delivers them to a bot
//! in privacy mode): a text that asks for an action ("blur", "rotate
//! left", "/detect@bot") is [`Inbound::Rework`], the action applied to the
//! original photo of the answer replied to; anything else ("thanks", an
//! emoji, a sticker) is chatter, ignored in silence. Telegram does not say
//! what the answered message itself replied to, so intake looks the
//! original up by the answer's message id.
//!
//! Judging a group message needs the bot's username (from `getMe`); until
//! it is known such a message is [`Inbound::Deferred`] and delivered again.
//!
//! An album (`media_group_id`) is one request, in private chats and groups:
//! each item, picture or not, becomes an [`Inbound::AlbumItem`]. In a group
//! the album is addressed when any item's caption addresses the bot; the
//! items that do not are not fetched until then.
//!
//! A video, a GIF (Telegram's "animation") or a round video note becomes
//! an [`Inbound::Clip`] (a video sent as a file too), addressed like a
//! photo; a static sticker is a picture (WebP), an animated or video
//! sticker is answered with what the bot can look at. A picture sent as a
//! file in a format we cannot read (HEIC, AVIF) is refused with the fix.
//!
//! A photo's caption (or the text of a reply to a photo) is the request:
//! parsed here into a [`JobKind`] (detection or one of the course's
//! filters, see [`polybot_domain::caption`]); a caption that asks for an
//! action badly becomes [`Inbound::Refused`] with the reply to give. In a
//! group, a bare action command (`/blur`) counts as addressed to us, like
//! `/detect`.

use polybot_domain::{
    Action, AlbumId, CaptionError, ChatId, ClipKind, Direction, JobKind, Lang, Press, UpdateId,
    UserId, t,
};
use teloxide_core::types::{
    MediaKind, Message, MessageEntityKind, MessageKind, Update, UpdateKind,
};

use polybot_domain::CallbackQueryId;
use polybot_domain::settings::SettingsRequest;

/// Telegram's Bot API serves files up to 20 MB to bots.
pub const BOT_API_MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

/// What an album's item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlbumContent {
    /// A picture (a photo, or an image sent as a file).
    Photo(PhotoRef),
    /// Not a picture: what it is, for the answer ("a video").
    Other(&'static str),
}

/// A photo (or a clip) the user wants analysed: the file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRef {
    pub file_id: String,
    /// Size in bytes as Telegram reports it (0 when unknown).
    pub size: u64,
    pub content_type: String,
    pub extension: &'static str,
}

/// The bot's `@username` (from `getMe`), which groups use to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotUsername(String);

impl BotUsername {
    /// Telegram usernames: 5–32 of a-z, 0-9 and `_`, compared without case.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_prefix('@').unwrap_or(name);
        let valid = (5..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        valid.then(|| Self(name.to_ascii_lowercase()))
    }

    /// Whether `name` (without `@`) is this bot.
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name)
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BotUsername {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// A command the bot answers with text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `/start`: a greeting and what to do.
    Start,
    /// `/help` (or a command we do not know): every action with an example.
    Help,
    /// `/detect` with no photo in it or in the message it replies to.
    DetectWithoutPhoto,
    /// A command we do not know that is a typo of an action (`/blurr`).
    DidYouMean(&'static str),
    /// `/privacy`: what is kept, where, for how long, and how to erase it.
    Privacy,
    /// `/history`: the chat's latest results, re-sent.
    History,
    /// `/forget`: asks to confirm erasing everything of the chat.
    Forget,
}

impl Command {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Help => "help",
            Self::DetectWithoutPhoto => "detect_without_photo",
            Self::DidYouMean(_) => "did_you_mean",
            Self::Privacy => "privacy",
            Self::History => "history",
            Self::Forget => "forget",
        }
    }
}

/// Why a photo's caption cannot be carried out, with the reply to give
/// ([`Refusal::message`]; the Display text is that reply in English, for
/// logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A parameter out of range or of the wrong kind, or a command that
    /// names no action: the error's text is the reply.
    #[error(transparent)]
    Caption(#[from] CaptionError),
    /// `concat` on a single photo: it joins an album's photos.
    #[error("{}", self.message(Lang::En))]
    ConcatNeedsAlbum(Direction),
    /// `concat` on an album in a group of which only the captioned photo
    /// reached the bot (Telegram's privacy mode keeps the others from it),
    /// so there is nothing to join.
    #[error("{}", self.message(Lang::En))]
    ConcatInGroup(Direction),
    /// A filter asked for on a clip: clips are searched for objects only.
    #[error("{}", self.message(Lang::En))]
    FilterOnClip,
    /// An animated or video sticker: no still picture to look at.
    #[error("{}", self.message(Lang::En))]
    AnimatedSticker,
    /// A picture sent as a file in a format we cannot decode; the fix is
    /// to send it as a photo (Telegram converts it to JPEG).
    #[error("{}", self.message(Lang::En))]
    PictureFormat(&'static str),
}

impl Refusal {
    /// The reply to give, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            Self::Caption(e) => e.message(lang),
            Self::ConcatNeedsAlbum(_) => t!(lang, "refusal-concat-needs-album"),
            Self::ConcatInGroup(_) => t!(lang, "refusal-concat-in-group"),
            Self::FilterOnClip => t!(lang, "refusal-filter-on-clip"),
            Self::AnimatedSticker => t!(lang, "refusal-animated-sticker"),
            Self::PictureFormat(format) => t!(lang, "refusal-picture-format", format = *format),
        }
    }

    /// Bounded label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Caption(CaptionError::OutOfRange { .. }) => "out_of_range",
            Self::Caption(CaptionError::InvalidParameter { .. }) => "invalid_parameter",
            Self::Caption(CaptionError::UnknownCommand(_)) => "unknown_command",
            Self::ConcatNeedsAlbum(_) => "concat_needs_album",
            Self::ConcatInGroup(_) => "concat_in_group",
            Self::FilterOnClip => "filter_on_clip",
            Self::AnimatedSticker => "animated_sticker",
            Self::PictureFormat(_) => "picture_format",
        }
    }
}

/// What an update means to us.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A photo, or an image sent as a file, and what its caption asks for:
    /// becomes a job.
    Photo {
        update_id: UpdateId,
        chat: ChatId,
        /// Who sent it (absent for a message on behalf of a channel).
        from: Option<UserId>,
        message_id: i64,
        photo: PhotoRef,
        kind: JobKind,
    },
    /// A clip (a video, a GIF, a round video): becomes a job of detection
    /// on its frames.
    Clip {
        update_id: UpdateId,
        chat: ChatId,
        from: Option<UserId>,
        message_id: i64,
        clip: PhotoRef,
        kind: ClipKind,
        /// Its length as Telegram says; `None` for a video sent as a file.
        seconds: Option<u32>,
    },
    /// An item of an album (a picture, or something the answer names as
    /// skipped): the album, not the item, is the request, and its caption
    /// (on any one item) is parsed once the album is complete.
    AlbumItem {
        update_id: UpdateId,
        chat: ChatId,
        from: Option<UserId>,
        message_id: i64,
        item: AlbumContent,
        album: AlbumId,
        /// The request, without the `@bot` that addressed it; in a group
        /// only when this item addresses the bot.
        caption: Option<String>,
        /// Whether this item itself is meant for the bot (always in a
        /// private chat; in a group, when its caption addresses the bot).
        addressed: bool,
    },
    /// A reply to one of the bot's messages asking for an action: `kind`
    /// is applied to the original photo of the answer `answered` (when it
    /// is one), and the answer quotes the reply.
    Rework {
        update_id: UpdateId,
        chat: ChatId,
        from: Option<UserId>,
        message_id: i64,
        /// The bot's message replied to.
        answered: i64,
        kind: JobKind,
    },
    /// A photo whose caption asks for something we cannot do as asked:
    /// answered with the reason and the usage.
    Refused {
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        refusal: Refusal,
    },
    /// A command addressed to us, answered with text.
    Command {
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        command: Command,
    },
    /// A settings command (`/settings`, `/confidence 0.6`, `/only dog`…):
    /// the chat's settings shown or changed.
    Settings {
        update_id: UpdateId,
        chat: ChatId,
        from: Option<UserId>,
        message_id: i64,
        request: SettingsRequest,
    },
    /// A button of one of the bot's messages pressed (a callback query):
    /// answered exactly once, whatever it was.
    Button {
        update_id: UpdateId,
        chat: ChatId,
        from: UserId,
        /// The bot's message the button is under.
        message_id: i64,
        query: CallbackQueryId,
        /// What the button does; `None` for one we do not know (an old
        /// keyboard, or data that is not ours).
        pressed: Option<Press>,
    },
    /// A group message that can only be judged once the bot knows its own
    /// username (`getMe` has not answered yet): to be delivered again.
    Deferred { update_id: UpdateId, chat: ChatId },
    /// A message in a private chat we can answer but not analyse (text, a
    /// sticker, a PDF…): answered with help.
    Other {
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        what: &'static str,
    },
    /// An update with no chat to answer (edits, reactions, unknown kinds).
    Ignored {
        update_id: UpdateId,
        kind: &'static str,
    },
}

impl Inbound {
    pub fn update_id(&self) -> UpdateId {
        match self {
            Self::Photo { update_id, .. }
            | Self::Clip { update_id, .. }
            | Self::Rework { update_id, .. }
            | Self::AlbumItem { update_id, .. }
            | Self::Refused { update_id, .. }
            | Self::Command { update_id, .. }
            | Self::Settings { update_id, .. }
            | Self::Button { update_id, .. }
            | Self::Deferred { update_id, .. }
            | Self::Other { update_id, .. }
            | Self::Ignored { update_id, .. } => *update_id,
        }
    }

    pub fn chat(&self) -> Option<ChatId> {
        match self {
            Self::Photo { chat, .. }
            | Self::Clip { chat, .. }
            | Self::Rework { chat, .. }
            | Self::AlbumItem { chat, .. }
            | Self::Refused { chat, .. }
            | Self::Command { chat, .. }
            | Self::Settings { chat, .. }
            | Self::Button { chat, .. }
            | Self::Deferred { chat, .. }
            | Self::Other { chat, .. } => Some(*chat),
            Self::Ignored { .. } => None,
        }
    }
}

/// The update's id, even from JSON teloxide cannot fully parse.
pub fn update_id_of(raw: &serde_json::Value) -> Option<UpdateId> {
    raw.get("update_id").and_then(|v| v.as_i64()).map(UpdateId)
}

/// Why an update could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableUpdate {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("no update_id")]
    NoUpdateId,
}

/// Parses one update's JSON on its own: a panic in the Telegram types'
/// parser is caught here, so one malformed update cannot take the task that
/// reads it down. An update the parser refuses is still answered when its
/// chat can be found in the raw JSON.
pub fn parse_bytes(body: &[u8], me: Option<&BotUsername>) -> Result<Inbound, UnreadableUpdate> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| UnreadableUpdate::NotJson(e.to_string()))?;
    let update_id = update_id_of(&raw).ok_or(UnreadableUpdate::NoUpdateId)?;
    if let Some(query) = raw.get("callback_query") {
        return Ok(callback_query(update_id, query));
    }
    // From the bytes, not from `raw`: teloxide's deserializer needs borrowed
    // strings and silently yields an "unknown" update from a `Value`.
    let parsed = std::panic::catch_unwind(|| {
        serde_json::from_slice::<Update>(body)
            .ok()
            .map(|u| parse(&u, me))
    });
    match parsed {
        // A message the Telegram types could not read comes back as an
        // "unknown" update: its chat may still be in the raw JSON.
        Ok(Some(Inbound::Ignored {
            kind: "unknown", ..
        })) if raw.get("message").is_some() => {
            tracing::warn!(
                update_id = update_id.0,
                "a message the Telegram types cannot read"
            );
            Ok(fallback(update_id, &raw))
        }
        Ok(Some(inbound)) => Ok(inbound),
        Ok(None) => {
            tracing::warn!(
                update_id = update_id.0,
                "an update the Telegram types cannot read"
            );
            Ok(fallback(update_id, &raw))
        }
        Err(_) => {
            tracing::error!(
                update_id = update_id.0,
                "the Telegram types' parser panicked on an update"
            );
            Ok(fallback(update_id, &raw))
        }
    }
}

/// A pressed button: read from the JSON by fields of our own, so that it
/// does not depend on how the Telegram types model the message it is
/// under. A query from an inline message (no chat) is not ours to answer.
/// The language its sender's Telegram is set to (`from.language_code` of
/// a message, an edit or a pressed button), when we ship it; the answer is
/// in it unless the chat chose one (`/language`).
pub fn sender_language(body: &[u8]) -> Option<Lang> {
    #[derive(serde::Deserialize)]
    struct From {
        language_code: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Sent {
        from: Option<From>,
    }
    #[derive(serde::Deserialize)]
    struct Update {
        message: Option<Sent>,
        edited_message: Option<Sent>,
        callback_query: Option<Sent>,
    }
    let update: Update = serde_json::from_slice(body).ok()?;
    let sent = update
        .message
        .or(update.edited_message)
        .or(update.callback_query)?;
    Lang::from_code(&sent.from?.language_code?)
}

fn callback_query(update_id: UpdateId, query: &serde_json::Value) -> Inbound {
    use serde_json::Value;
    let id = query.get("id").and_then(Value::as_str);
    let from = query.pointer("/from/id").and_then(Value::as_i64);
    let message_id = query.pointer("/message/message_id").and_then(Value::as_i64);
    let chat = query.pointer("/message/chat/id").and_then(Value::as_i64);
    match (id, from, message_id, chat) {
        (Some(id), Some(from), Some(message_id), Some(chat)) => Inbound::Button {
            update_id,
            chat: ChatId(chat),
            from: UserId(from),
            message_id,
            query: CallbackQueryId(id.to_owned()),
            pressed: query
                .get("data")
                .and_then(Value::as_str)
                .and_then(Press::decode),
        },
        _ => Inbound::Ignored {
            update_id,
            kind: "callback_query",
        },
    }
}

/// An update only readable as plain JSON: answered with help when it is a
/// message in a chat, ignored otherwise.
fn fallback(update_id: UpdateId, raw: &serde_json::Value) -> Inbound {
    let message = raw.get("message");
    let chat = message
        .and_then(|m| m.pointer("/chat/id"))
        .and_then(serde_json::Value::as_i64);
    let message_id = message
        .and_then(|m| m.get("message_id"))
        .and_then(serde_json::Value::as_i64);
    // In groups, a message we cannot read cannot be addressed to us.
    let private = message
        .and_then(|m| m.pointer("/chat/type"))
        .and_then(serde_json::Value::as_str)
        == Some("private");
    match (chat, message_id) {
        (Some(chat), Some(message_id)) if private => Inbound::Other {
            update_id,
            chat: ChatId(chat),
            message_id,
            what: "a message we could not read",
        },
        _ => Inbound::Ignored {
            update_id,
            kind: "unreadable",
        },
    }
}

pub fn parse(update: &Update, me: Option<&BotUsername>) -> Inbound {
    let update_id = UpdateId(i64::from(update.id.0));
    match &update.kind {
        UpdateKind::Message(msg) => parse_message(update_id, msg, me),
        UpdateKind::EditedMessage(_) => Inbound::Ignored {
            update_id,
            kind: "edited_message",
        },
        UpdateKind::ChannelPost(_) => Inbound::Ignored {
            update_id,
            kind: "channel_post",
        },
        UpdateKind::CallbackQuery(_) => Inbound::Ignored {
            update_id,
            kind: "callback_query",
        },
        UpdateKind::Error(_) => Inbound::Ignored {
            update_id,
            kind: "unknown",
        },
        _ => Inbound::Ignored {
            update_id,
            kind: "other",
        },
    }
}

fn parse_message(update_id: UpdateId, msg: &Message, me: Option<&BotUsername>) -> Inbound {
    let chat = ChatId(msg.chat.id.0);
    let from = msg.from.as_ref().map(|user| {
        // Telegram's user ids fit in 52 bits.
        UserId(i64::try_from(user.id.0).unwrap_or(i64::MAX))
    });
    let message_id = i64::from(msg.id.0);
    let private = msg.chat.is_private();
    if !private && !msg.chat.is_group() && !msg.chat.is_supergroup() {
        return Inbound::Ignored {
            update_id,
            kind: "channel_message",
        };
    }
    if !matches!(msg.kind, MessageKind::Common(_)) {
        // Service messages (member joined, pinned…) are not addressed to us.
        return Inbound::Ignored {
            update_id,
            kind: "service_message",
        };
    }
    let command = msg
        .text()
        .or_else(|| msg.caption())
        .and_then(leading_command);
    // A reply to one of our own messages (an answer, a notice, the help).
    let replies_to_us = msg
        .reply_to_message()
        .is_some_and(|answered| is_ours(answered, private, me));
    if !private {
        // In groups the bot only acts when spoken to (see the module doc).
        let Some(me) = me else {
            return Inbound::Deferred { update_id, chat };
        };
        let addressed = match &command {
            Some(c) => c.addressed_to.as_deref().is_none_or(|to| me.is(to)),
            None => replies_to_us || mentions(msg, me),
        };
        if !addressed {
            // An album's item may belong to an album addressed on another
            // item (privacy mode off): it waits, unfetched, for that.
            return match (album_content(msg), album_of(msg)) {
                (Some(item), Some(album)) => Inbound::AlbumItem {
                    update_id,
                    chat,
                    from,
                    message_id,
                    item,
                    album,
                    caption: None,
                    addressed: false,
                },
                _ => Inbound::Ignored {
                    update_id,
                    kind: "group_chatter",
                },
            };
        }
    }
    let answer = |command| Inbound::Command {
        update_id,
        chat,
        message_id,
        command,
    };
    let ours = command.as_ref().is_some_and(|c| is_action(&c.name));
    let arguments = msg
        .text()
        .or_else(|| msg.caption())
        .and_then(|t| t.trim_start().split_once(char::is_whitespace))
        .map_or("", |(_, rest)| rest);
    match command.as_ref().map(|c| c.name.as_str()) {
        Some("start") => return answer(Command::Start),
        Some("help") => return answer(Command::Help),
        Some("privacy") => return answer(Command::Privacy),
        Some("history") => return answer(Command::History),
        Some("forget") => return answer(Command::Forget),
        Some(name)
            if let Some(request) = polybot_domain::settings::parse_command(name, arguments) =>
        {
            return Inbound::Settings {
                update_id,
                chat,
                from,
                message_id,
                request,
            };
        }
        None => {}
        Some(_) if ours => {}
        // A bare command we do not know, in a group, is another bot's.
        Some(_) if !private && command.as_ref().is_some_and(|c| c.addressed_to.is_none()) => {
            return Inbound::Ignored {
                update_id,
                kind: "group_chatter",
            };
        }
        // With a photo, the caption's own answer (the list of actions).
        Some(_) => {}
    }
    if replies_to_us
        && let Some(answered) = msg.reply_to_message()
        && (matches!(photo_of(msg), Media::None) || is_sticker(msg))
    {
        // Never the annotated copy in the answer: the original, or nothing.
        let request = msg.text().or_else(|| msg.caption()).unwrap_or_default();
        let request = without_leading_mention(request, me);
        if !asks_for_action(request) {
            return Inbound::Ignored {
                update_id,
                kind: "reply_chatter",
            };
        }
        let refused = |refusal| Inbound::Refused {
            update_id,
            chat,
            message_id,
            refusal,
        };
        return match Action::from_caption(Some(request)) {
            Ok(action) => match JobKind::try_from(action) {
                Ok(kind) => Inbound::Rework {
                    update_id,
                    chat,
                    from,
                    message_id,
                    answered: i64::from(answered.id.0),
                    kind,
                },
                Err(direction) => refused(Refusal::ConcatNeedsAlbum(direction)),
            },
            Err(e) => refused(Refusal::Caption(e)),
        };
    }
    // The photo is in the message, or in the message it replies to (a
    // command sent as a reply to a photo); the answer quotes the request.
    let photo = match photo_of(msg) {
        Media::None => msg.reply_to_message().map_or(Media::None, photo_of),
        media => media,
    };
    // An album's items, pictures or not, are one request.
    if let (Some(item), Some(album)) = (album_content(msg), album_of(msg)) {
        return Inbound::AlbumItem {
            update_id,
            chat,
            from,
            message_id,
            item,
            album,
            caption: msg
                .caption()
                .map(|c| without_leading_mention(c, me).to_owned()),
            addressed: true,
        };
    }
    // A picture's or a clip's caption is the request.
    let request = msg
        .caption()
        .or_else(|| msg.text())
        .map(|text| without_leading_mention(text, me));
    let refused = |refusal| Inbound::Refused {
        update_id,
        chat,
        message_id,
        refusal,
    };
    match photo {
        Media::Photo(photo) => match Action::from_caption(request) {
            Ok(action) => match JobKind::try_from(action) {
                Ok(kind) => Inbound::Photo {
                    update_id,
                    chat,
                    from,
                    message_id,
                    photo,
                    kind,
                },
                Err(direction) => refused(Refusal::ConcatNeedsAlbum(direction)),
            },
            Err(e) => refused(Refusal::Caption(e)),
        },
        Media::Clip(clip, kind, seconds) => match Action::from_caption(request) {
            Ok(Action::Detect) => Inbound::Clip {
                update_id,
                chat,
                from,
                message_id,
                clip,
                kind,
                seconds,
            },
            Ok(_) => refused(Refusal::FilterOnClip),
            Err(e) => refused(Refusal::Caption(e)),
        },
        Media::Refused(refusal) => refused(refusal),
        // An action we know, but no picture to apply it to.
        _ if ours || (command.is_none() && !private) => answer(Command::DetectWithoutPhoto),
        _ if command.is_some() => answer(
            command
                .as_ref()
                .and_then(|c| polybot_domain::nearest_action(&c.name))
                .map_or(Command::Help, Command::DidYouMean),
        ),
        Media::Other(what) => Inbound::Other {
            update_id,
            chat,
            message_id,
            what,
        },
        Media::None => Inbound::Other {
            update_id,
            chat,
            message_id,
            what: if msg.text().is_some() {
                "text"
            } else {
                "a message"
            },
        },
    }
}

/// Whether the message is a sticker (in a reply to us: chatter, not a
/// picture to work on).
fn is_sticker(msg: &Message) -> bool {
    matches!(&msg.kind, MessageKind::Common(c) if matches!(c.media_kind, MediaKind::Sticker(_)))
}

/// Whether a `/command`'s name is one of the caption's actions (`detect`,
/// `predict`, `blur`, `salt_and_pepper`, `concat`…).
fn is_action(name: &str) -> bool {
    !matches!(
        Action::from_caption(Some(&format!("/{name}"))),
        Err(CaptionError::UnknownCommand(_))
    )
}

/// Whether a text asks for an action: its first word, with or without a
/// slash, is a command ("blur 8", "rotate left", "salt and pepper",
/// "/detect@bot", also "/blurr", whose answer suggests "blur"). "Thanks",
/// "nice" or an emoji do not.
fn asks_for_action(text: &str) -> bool {
    let text = text.trim_start();
    // Read as a command, an action word is known and anything else is not.
    text.starts_with('/')
        || (!text.is_empty()
            && !matches!(
                Action::from_caption(Some(&format!("/{text}"))),
                Err(CaptionError::UnknownCommand(_))
            ))
}

/// Whether `message` is the bot's own. In a private chat the only bot is
/// us; in a group it must be us by name (from `getMe`).
fn is_ours(message: &Message, private: bool, me: Option<&BotUsername>) -> bool {
    message.from.as_ref().is_some_and(|from| {
        from.is_bot
            && (private
                || me.is_some_and(|me| from.username.as_deref().is_some_and(|name| me.is(name))))
    })
}

/// The request without the `@bot` that addressed it in a group
/// ("@polybot blur 8" asks for "blur 8").
fn without_leading_mention<'a>(text: &'a str, me: Option<&BotUsername>) -> &'a str {
    let trimmed = text.trim_start();
    let Some(me) = me else { return text };
    match trimmed.split_once(char::is_whitespace) {
        Some((first, rest)) if first.strip_prefix('@').is_some_and(|n| me.is(n)) => rest,
        None if trimmed.strip_prefix('@').is_some_and(|n| me.is(n)) => "",
        _ => text,
    }
}

/// The album a message belongs to, if any.
fn album_of(msg: &Message) -> Option<AlbumId> {
    msg.media_group_id()
        .and_then(|id| AlbumId::parse(id.to_string()).ok())
}

/// What a message of an album carries (the message's own media, not what
/// it replies to); `None` for a text.
fn album_content(msg: &Message) -> Option<AlbumContent> {
    match photo_of(msg) {
        Media::Photo(photo) => Some(AlbumContent::Photo(photo)),
        Media::Clip(_, kind, _) => Some(AlbumContent::Other(match kind {
            ClipKind::Video => "a video",
            ClipKind::Animation => "a GIF",
            ClipKind::VideoNote => "a video message",
        })),
        Media::Refused(Refusal::PictureFormat(format)) => {
            Some(AlbumContent::Other(if format == HEIC {
                "a HEIC picture"
            } else {
                "an AVIF picture"
            }))
        }
        Media::Refused(_) => Some(AlbumContent::Other("a sticker")),
        Media::Other(what) => Some(AlbumContent::Other(what)),
        Media::None => None,
    }
}

/// What a message carries, for detection.
enum Media {
    Photo(PhotoRef),
    /// A video, a GIF or a round video, and its length in seconds when
    /// Telegram gives it.
    Clip(PhotoRef, ClipKind, Option<u32>),
    /// Something we can name the fix for (an animated sticker, a HEIC file).
    Refused(Refusal),
    /// Something we cannot analyse (a PDF…).
    Other(&'static str),
    /// No media: text only.
    None,
}

fn photo_of(msg: &Message) -> Media {
    let MessageKind::Common(common) = &msg.kind else {
        return Media::None;
    };
    match &common.media_kind {
        MediaKind::Photo(p) => {
            // Telegram sends several sizes of one photo; the largest has the
            // most detail for the detector.
            let Some(best) = p
                .photo
                .iter()
                .max_by_key(|s| u64::from(s.width) * u64::from(s.height))
            else {
                return Media::Other("an empty photo");
            };
            Media::Photo(PhotoRef {
                file_id: best.file.id.0.clone(),
                size: u64::from(best.file.size),
                content_type: "image/jpeg".into(),
                extension: "jpg",
            })
        }
        MediaKind::Document(d) => {
            let mime = d
                .document
                .mime_type
                .as_ref()
                .map(|m| m.essence_str().to_owned());
            let name = d
                .document
                .file_name
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let file = |content_type: &str, extension| PhotoRef {
                file_id: d.document.file.id.0.clone(),
                size: u64::from(d.document.file.size),
                content_type: content_type.to_owned(),
                extension,
            };
            if let Some(format) = unreadable_picture(mime.as_deref(), &name) {
                return Media::Refused(Refusal::PictureFormat(format));
            }
            if let Some(mime) = mime.as_deref()
                && let Some(extension) = clip_extension(mime)
            {
                return Media::Clip(file(mime, extension), ClipKind::Video, None);
            }
            match image_type(mime.as_deref(), &name) {
                Some((content_type, extension)) => Media::Photo(file(content_type, extension)),
                None => Media::Other("a file that is not a picture"),
            }
        }
        MediaKind::Text(_) => Media::None,
        MediaKind::Sticker(s) if s.sticker.is_static() => Media::Photo(PhotoRef {
            file_id: s.sticker.file.id.0.clone(),
            size: u64::from(s.sticker.file.size),
            content_type: "image/webp".into(),
            extension: "webp",
        }),
        MediaKind::Sticker(_) => Media::Refused(Refusal::AnimatedSticker),
        MediaKind::Video(v) => {
            let mime = v
                .video
                .mime_type
                .as_ref()
                .map(|m| m.essence_str().to_owned());
            let seconds = v.video.duration.seconds();
            clip(&v.video.file, mime.as_deref(), ClipKind::Video, seconds)
        }
        MediaKind::Animation(a) => {
            let mime = a
                .animation
                .mime_type
                .as_ref()
                .map(|m| m.essence_str().to_owned());
            let seconds = a.animation.duration.seconds();
            clip(
                &a.animation.file,
                mime.as_deref(),
                ClipKind::Animation,
                seconds,
            )
        }
        MediaKind::VideoNote(v) => {
            let seconds = v.video_note.duration.seconds();
            clip(&v.video_note.file, None, ClipKind::VideoNote, seconds)
        }
        _ => Media::Other("a message"),
    }
}

/// A clip's file; Telegram's own clips are MP4 unless it says otherwise.
fn clip(
    file: &teloxide_core::types::FileMeta,
    mime: Option<&str>,
    kind: ClipKind,
    seconds: u32,
) -> Media {
    let mime = mime
        .filter(|m| clip_extension(m).is_some())
        .unwrap_or("video/mp4");
    Media::Clip(
        PhotoRef {
            file_id: file.id.0.clone(),
            size: u64::from(file.size),
            content_type: mime.to_owned(),
            extension: clip_extension(mime).unwrap_or("mp4"),
        },
        kind,
        Some(seconds),
    )
}

/// The file extension a clip of MIME type `mime` is stored with; `None`
/// when it is not a video.
fn clip_extension(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        "video/3gpp" => "3gp",
        "image/gif" => return None,
        other if other.starts_with("video/") => "video",
        _ => return None,
    })
}

const HEIC: &str = "HEIC";
const AVIF: &str = "AVIF";

/// The name of a picture format phones send as files that we cannot
/// decode (no well-kept decoder without system libraries), by MIME type
/// or file name.
fn unreadable_picture(mime: Option<&str>, name: &str) -> Option<&'static str> {
    match mime {
        Some("image/heic" | "image/heif" | "image/heic-sequence" | "image/heif-sequence") => {
            Some(HEIC)
        }
        Some("image/avif") => Some(AVIF),
        _ if name.ends_with(".heic") || name.ends_with(".heif") => Some(HEIC),
        _ if name.ends_with(".avif") => Some(AVIF),
        _ => None,
    }
}

/// A `/command` or `/command@bot` at the start of a text or caption.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeadingCommand {
    /// Lowercase, without the slash.
    name: String,
    /// The bot it names, when it names one.
    addressed_to: Option<String>,
}

fn leading_command(text: &str) -> Option<LeadingCommand> {
    let token = text.split_whitespace().next()?;
    let body = token.strip_prefix('/')?;
    let (name, to) = match body.split_once('@') {
        Some((name, to)) => (name, Some(to.to_owned())),
        None => (body, None),
    };
    // Telegram's commands: 1–32 of a-z, 0-9 and _ (any case when typed).
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| LeadingCommand {
        name: name.to_ascii_lowercase(),
        addressed_to: to,
    })
}

/// Whether the text or caption mentions the bot (`@name` entities).
fn mentions(msg: &Message, me: &BotUsername) -> bool {
    let entities = msg
        .parse_entities()
        .or_else(|| msg.parse_caption_entities())
        .unwrap_or_default();
    entities.iter().any(|e| {
        matches!(e.kind(), MessageEntityKind::Mention)
            && e.text().strip_prefix('@').is_some_and(|name| me.is(name))
    })
}

/// The extension of a picture as [`image_type`] names it (a stored
/// album item's, read back), or `img` for one it does not know.
pub fn known_extension(extension: &str) -> &'static str {
    ["jpg", "png", "webp", "gif", "bmp", "tiff"]
        .into_iter()
        .find(|known| *known == extension)
        .unwrap_or("img")
}

/// Content type and file extension of an image document, from its MIME
/// type or, failing that, its file name.
fn image_type(mime: Option<&str>, name: &str) -> Option<(&'static str, &'static str)> {
    const TYPES: [(&str, &str, &[&str]); 6] = [
        ("image/jpeg", "jpg", &[".jpg", ".jpeg"]),
        ("image/png", "png", &[".png"]),
        ("image/webp", "webp", &[".webp"]),
        ("image/gif", "gif", &[".gif"]),
        ("image/bmp", "bmp", &[".bmp"]),
        ("image/tiff", "tiff", &[".tif", ".tiff"]),
    ];
    if let Some(mime) = mime {
        if let Some((ct, ext, _)) = TYPES.iter().find(|(ct, _, _)| *ct == mime) {
            return Some((ct, ext));
        }
        if mime.starts_with("image/") {
            // Some other image type: let the detector decide whether it can read it.
            return Some(("application/octet-stream", "img"));
        }
    }
    TYPES
        .iter()
        .find(|(_, _, suffixes)| suffixes.iter().any(|s| name.ends_with(s)))
        .map(|(ct, ext, _)| (*ct, *ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(message: serde_json::Value) -> Update {
        let mut msg = json!({
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": 1243002838_i64, "type": "private", "first_name": "A"},
            "from": {"id": 1243002838_i64, "is_bot": false, "first_name": "A"},
        });
        for (k, v) in message.as_object().into_iter().flatten() {
            msg[k] = v.clone();
        }
        // teloxide's Update deserializer needs borrowed strings: parse text, as the webhook does.
        serde_json::from_str(&json!({"update_id": 42, "message": msg}).to_string())
            .expect("valid update")
    }

    fn size(id: &str, w: u32, bytes: u32) -> serde_json::Value {
        json!({"file_id": id, "file_unique_id": format!("u{id}"), "width": w, "height": w, "file_size": bytes})
    }

    #[test]
    fn a_photo_message_uses_the_largest_size() {
        let u = update(
            json!({"photo": [size("s", 90, 1000), size("l", 660, 90000), size("m", 320, 9000)]}),
        );
        match parse(&u, None) {
            Inbound::Photo {
                chat,
                from,
                message_id,
                photo,
                update_id,
                kind,
            } => {
                assert_eq!(kind, JobKind::Detect, "no caption: detection");
                assert_eq!(chat, ChatId(1243002838));
                assert_eq!(from, Some(UserId(1243002838)), "the sender, for its limits");
                assert_eq!(message_id, 7);
                assert_eq!(update_id, UpdateId(42));
                assert_eq!(photo.file_id, "l");
                assert_eq!(photo.size, 90000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_image_sent_as_a_file_is_a_photo() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "ud", "file_name": "cat.PNG",
                                      "mime_type": "image/png", "file_size": 5}});
        match parse(&update(doc), None) {
            Inbound::Photo { photo, .. } => {
                assert_eq!(
                    (photo.content_type.as_str(), photo.extension),
                    ("image/png", "png")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pdf_sent_as_a_file_is_answered_but_not_analysed() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "ud", "file_name": "a.pdf",
                                      "mime_type": "application/pdf", "file_size": 5}});
        assert!(matches!(
            parse(&update(doc), None),
            Inbound::Other {
                what: "a file that is not a picture",
                ..
            }
        ));
    }

    #[test]
    fn text_is_answered_with_help() {
        assert!(matches!(
            parse(&update(json!({"text": "hi"})), None),
            Inbound::Other { what: "text", .. }
        ));
    }

    #[test]
    fn unknown_update_kinds_are_ignored_not_rejected() {
        let u: Update = serde_json::from_str(r#"{"update_id": 5, "brand_new_kind": {"x": 1}}"#)
            .expect("teloxide keeps unknown kinds");
        assert_eq!(
            parse(&u, None),
            Inbound::Ignored {
                update_id: UpdateId(5),
                kind: "unknown"
            }
        );
    }

    #[test]
    fn a_message_the_telegram_types_refuse_is_still_answered_in_its_chat() {
        // `date` must be a number: teloxide refuses this message (a malformed
        // `photo` is not enough: it reads that as a service message).
        let body = br#"{"update_id": 9, "message": {"message_id": 3, "date": "yesterday",
            "chat": {"id": 77, "type": "private"}, "text": "hi"}}"#;
        assert_eq!(
            parse_bytes(body, None),
            Ok(Inbound::Other {
                update_id: UpdateId(9),
                chat: ChatId(77),
                message_id: 3,
                what: "a message we could not read"
            })
        );
        assert_eq!(
            parse_bytes(br#"{"update_id": 10, "message": 5}"#, None),
            Ok(Inbound::Ignored {
                update_id: UpdateId(10),
                kind: "unreadable"
            })
        );
        assert!(parse_bytes(b"[1,2]", None).is_err());
    }

    fn me() -> BotUsername {
        BotUsername::parse("@Polybot_Test_Bot").expect("a username")
    }

    /// A message in a group, as teloxide reads it.
    fn in_group(message: serde_json::Value) -> Update {
        let mut msg = json!({
            "message_id": 30,
            "date": 1_700_000_000,
            "chat": {"id": -4001, "type": "group", "title": "Friends"},
            "from": {"id": 5, "is_bot": false, "first_name": "B"},
        });
        for (k, v) in message.as_object().into_iter().flatten() {
            msg[k] = v.clone();
        }
        serde_json::from_str(&json!({"update_id": 43, "message": msg}).to_string())
            .expect("valid update")
    }

    fn photo_json() -> serde_json::Value {
        json!([size("p", 640, 5000)])
    }

    #[test]
    fn in_a_group_chatter_and_unaddressed_photos_are_ignored() {
        for message in [
            json!({"text": "nice weather"}),
            json!({"photo": photo_json()}),
            json!({"photo": photo_json(), "caption": "look at this"}),
            json!({"photo": photo_json(), "caption": "/detect@other_bot"}),
            json!({"text": "/weather"}),
        ] {
            let parsed = parse(&in_group(message.clone()), Some(&me()));
            assert!(
                matches!(
                    parsed,
                    Inbound::Ignored {
                        kind: "group_chatter",
                        ..
                    }
                ),
                "{message}: {parsed:?}"
            );
        }
    }

    #[test]
    fn in_a_group_a_photo_addressed_by_command_or_mention_is_analysed() {
        let mention = json!({"photo": photo_json(), "caption": "hey @polybot_test_bot what is this",
            "caption_entities": [{"type": "mention", "offset": 4, "length": 17}]});
        for message in [
            json!({"photo": photo_json(), "caption": "/detect@polybot_test_bot"}),
            json!({"photo": photo_json(), "caption": "/DETECT@Polybot_Test_Bot please"}),
            json!({"photo": photo_json(), "caption": "/detect"}),
            mention,
        ] {
            let parsed = parse(&in_group(message.clone()), Some(&me()));
            assert!(
                matches!(&parsed, Inbound::Photo { message_id: 30, photo, .. } if photo.file_id == "p"),
                "{message}: {parsed:?}"
            );
        }
    }

    #[test]
    fn a_command_replying_to_a_photo_acts_on_that_photo_and_quotes_the_command() {
        let original = json!({"message_id": 12, "date": 1_700_000_000,
            "chat": {"id": -4001, "type": "group", "title": "Friends"}, "photo": photo_json()});
        let parsed = parse(
            &in_group(json!({"text": "/detect@polybot_test_bot", "reply_to_message": original})),
            Some(&me()),
        );
        assert!(
            matches!(&parsed, Inbound::Photo { message_id: 30, photo, .. } if photo.file_id == "p"),
            "{parsed:?}"
        );
    }

    /// The bot's answer (message 12) as Telegram quotes it in a reply.
    fn our_answer(chat: serde_json::Value) -> serde_json::Value {
        json!({"message_id": 12, "date": 1_700_000_000, "chat": chat, "photo": photo_json(),
            "caption": "bus ×1",
            "from": {"id": 99, "is_bot": true, "first_name": "P", "username": "polybot_test_bot"}})
    }

    fn private_chat() -> serde_json::Value {
        json!({"id": 1243002838_i64, "type": "private", "first_name": "A"})
    }

    fn group_chat() -> serde_json::Value {
        json!({"id": -4001, "type": "group", "title": "Friends"})
    }

    #[test]
    fn an_action_replying_to_our_answer_reworks_it_in_private_chats_and_groups() {
        let blur = JobKind::try_from(Action::from_caption(Some("blur 8")).expect("blur"))
            .expect("one photo");
        let left = JobKind::try_from(Action::from_caption(Some("rotate left")).expect("rotate"))
            .expect("one photo");
        let cases = [
            (
                update(json!({"text": "blur 8", "reply_to_message": our_answer(private_chat())})),
                blur,
            ),
            (
                update(
                    json!({"text": "/blur@polybot_test_bot 8", "reply_to_message": our_answer(private_chat())}),
                ),
                blur,
            ),
            (
                update(
                    json!({"text": "Rotate left", "reply_to_message": our_answer(private_chat())}),
                ),
                left,
            ),
            (
                update(json!({"text": "detect", "reply_to_message": our_answer(private_chat())})),
                JobKind::Detect,
            ),
            // In a group no mention is needed: a reply to us is addressed to us.
            (
                in_group(
                    json!({"text": "rotate left", "reply_to_message": our_answer(group_chat())}),
                ),
                left,
            ),
            (
                in_group(json!({"text": "/blur 8", "reply_to_message": our_answer(group_chat())})),
                blur,
            ),
        ];
        for (u, want) in cases {
            match parse(&u, Some(&me())) {
                Inbound::Rework {
                    answered: 12, kind, ..
                } => assert_eq!(kind, want),
                other => panic!("{u:?}: {other:?}"),
            }
        }
        // In a private chat the only bot is us, known name or not.
        let u = update(json!({"text": "blur 8", "reply_to_message": our_answer(private_chat())}));
        assert!(matches!(
            parse(&u, None),
            Inbound::Rework { answered: 12, .. }
        ));
    }

    #[test]
    fn chatter_replying_to_our_message_is_ignored_without_help() {
        for (text, chat) in [
            ("thanks", private_chat()),
            ("nice, thanks", private_chat()),
            ("👍", private_chat()),
            ("Lunch", private_chat()),
            ("thank you!", group_chat()),
        ] {
            let message = json!({"text": text, "reply_to_message": our_answer(chat.clone())});
            let u = if chat["type"] == "group" {
                in_group(message)
            } else {
                update(message)
            };
            let parsed = parse(&u, Some(&me()));
            assert!(
                matches!(
                    parsed,
                    Inbound::Ignored {
                        kind: "reply_chatter",
                        ..
                    }
                ),
                "{text:?}: {parsed:?}"
            );
        }
        let sticker = json!({"file_id": "s", "file_unique_id": "us", "type": "regular",
            "width": 512, "height": 512, "is_animated": false, "is_video": false});
        let parsed = parse(
            &update(json!({"sticker": sticker, "reply_to_message": our_answer(private_chat())})),
            Some(&me()),
        );
        assert!(
            matches!(
                parsed,
                Inbound::Ignored {
                    kind: "reply_chatter",
                    ..
                }
            ),
            "a sticker: {parsed:?}"
        );
    }

    #[test]
    fn a_bad_action_replying_to_our_answer_is_refused_and_a_new_photo_is_a_photo() {
        let refused = parse(
            &update(json!({"text": "blur 99", "reply_to_message": our_answer(private_chat())})),
            Some(&me()),
        );
        assert!(
            matches!(&refused, Inbound::Refused { refusal, .. } if refusal.as_str() == "out_of_range"),
            "{refused:?}"
        );
        let typo = parse(
            &update(json!({"text": "/blurr", "reply_to_message": our_answer(private_chat())})),
            Some(&me()),
        );
        assert!(
            matches!(&typo, Inbound::Refused { refusal, .. } if refusal.as_str() == "unknown_command"),
            "{typo:?}"
        );
        let photo = parse(
            &update(json!({"photo": [size("new", 640, 5000)], "caption": "blur",
                "reply_to_message": our_answer(private_chat())})),
            Some(&me()),
        );
        assert!(
            matches!(&photo, Inbound::Photo { photo, .. } if photo.file_id == "new"),
            "a photo of its own is the request: {photo:?}"
        );
    }

    #[test]
    fn a_reply_to_another_bot_in_a_group_is_not_ours() {
        let mut other = our_answer(group_chat());
        other["from"]["username"] = json!("other_bot");
        let parsed = parse(
            &in_group(json!({"text": "blur", "reply_to_message": other})),
            Some(&me()),
        );
        assert!(
            matches!(
                parsed,
                Inbound::Ignored {
                    kind: "group_chatter",
                    ..
                }
            ),
            "{parsed:?}"
        );
        // A user's photo replied to with an action is still that photo's request.
        let mut users = our_answer(private_chat());
        users["from"] = json!({"id": 5, "is_bot": false, "first_name": "B"});
        let parsed = parse(
            &update(json!({"text": "blur", "reply_to_message": users})),
            Some(&me()),
        );
        assert!(matches!(parsed, Inbound::Photo { .. }), "{parsed:?}");
    }

    #[test]
    fn commands_are_answered_in_groups_and_private_chats() {
        let cases = [
            (in_group(json!({"text": "/start"})), Command::Start),
            (
                in_group(json!({"text": "/help@polybot_test_bot"})),
                Command::Help,
            ),
            (
                in_group(json!({"text": "/detect"})),
                Command::DetectWithoutPhoto,
            ),
            (
                in_group(json!({"text": "/sharpen@polybot_test_bot"})),
                Command::Help,
            ),
            (update(json!({"text": "/start"})), Command::Start),
            (update(json!({"text": "/help"})), Command::Help),
            (
                update(json!({"text": "/detect"})),
                Command::DetectWithoutPhoto,
            ),
            (update(json!({"text": "/sharpen"})), Command::Help),
            // A typo of an action, without a photo: the action it meant.
            (
                update(json!({"text": "/blurr"})),
                Command::DidYouMean("blur"),
            ),
            (
                in_group(json!({"text": "/rotat@polybot_test_bot"})),
                Command::DidYouMean("rotate"),
            ),
        ];
        for (u, want) in cases {
            let parsed = parse(&u, Some(&me()));
            assert!(
                matches!(parsed, Inbound::Command { command, .. } if command == want),
                "{want:?}: {parsed:?}"
            );
        }
    }

    fn kind_of(u: &Update) -> Result<JobKind, Box<Inbound>> {
        match parse(u, Some(&me())) {
            Inbound::Photo { kind, .. } => Ok(kind),
            other => Err(Box::new(other)),
        }
    }

    #[test]
    fn a_private_albums_photos_are_collected_with_their_captions() {
        let u =
            update(json!({"photo": photo_json(), "caption": "Concat", "media_group_id": "1344"}));
        match parse(&u, Some(&me())) {
            Inbound::AlbumItem {
                album,
                caption,
                message_id,
                item: AlbumContent::Photo(_),
                addressed: true,
                ..
            } => {
                assert_eq!(album.as_str(), "1344");
                assert_eq!(caption.as_deref(), Some("Concat"));
                assert_eq!(message_id, 7);
            }
            other => panic!("{other:?}"),
        }
    }

    fn clip_json(mime: &str) -> serde_json::Value {
        json!({"file_id": "v", "file_unique_id": "uv", "width": 640, "height": 360,
            "duration": 12, "mime_type": mime, "file_size": 900_000})
    }

    #[test]
    fn videos_gifs_and_round_videos_are_clips_to_detect() {
        let note = json!({"file_id": "v", "file_unique_id": "uv", "length": 384,
            "duration": 5, "file_size": 900_000});
        let gif = clip_json("video/mp4");
        let cases = [
            (
                json!({"video": clip_json("video/quicktime")}),
                ClipKind::Video,
                "mov",
            ),
            // Telegram sets `document` beside `animation` for a GIF.
            (
                json!({"animation": gif, "document": gif}),
                ClipKind::Animation,
                "mp4",
            ),
            (json!({"video_note": note}), ClipKind::VideoNote, "mp4"),
            (
                json!({"document": {"file_id": "v", "file_unique_id": "uv", "file_name": "clip.webm",
                    "mime_type": "video/webm", "file_size": 900_000}}),
                ClipKind::Video,
                "webm",
            ),
        ];
        for (message, want, extension) in cases {
            match parse(&update(message.clone()), Some(&me())) {
                Inbound::Clip { clip, kind, .. } => {
                    assert_eq!(kind, want, "{message}");
                    assert_eq!(clip.extension, extension, "{message}");
                    assert_eq!(clip.size, 900_000);
                }
                other => panic!("{message}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_filter_asked_on_a_clip_is_refused_with_what_works() {
        let u = update(json!({"video": clip_json("video/mp4"), "caption": "blur"}));
        assert!(matches!(
            parse(&u, Some(&me())),
            Inbound::Refused {
                refusal: Refusal::FilterOnClip,
                ..
            }
        ));
        let detect = update(json!({"video": clip_json("video/mp4"), "caption": "/detect"}));
        assert!(matches!(parse(&detect, Some(&me())), Inbound::Clip { .. }));
    }

    #[test]
    fn in_a_group_a_clip_is_taken_only_when_addressed() {
        let plain = in_group(json!({"video": clip_json("video/mp4")}));
        assert!(matches!(
            parse(&plain, Some(&me())),
            Inbound::Ignored { .. }
        ));
        let asked = in_group(
            json!({"video": clip_json("video/mp4"), "caption": "/detect@polybot_test_bot"}),
        );
        assert!(matches!(parse(&asked, Some(&me())), Inbound::Clip { .. }));
    }

    #[test]
    fn a_still_sticker_is_a_picture_and_a_moving_one_is_refused() {
        let sticker = |animated: bool, video: bool| {
            json!({"sticker": {"file_id": "s", "file_unique_id": "us", "type": "regular",
                "width": 512, "height": 512, "is_animated": animated, "is_video": video,
                "emoji": "\u{1f68c}", "file_size": 20_000}})
        };
        match parse(&update(sticker(false, false)), Some(&me())) {
            Inbound::Photo { photo, kind, .. } => {
                assert_eq!(photo.extension, "webp");
                assert_eq!(kind, JobKind::Detect);
            }
            other => panic!("{other:?}"),
        }
        for (animated, video) in [(true, false), (false, true)] {
            assert!(matches!(
                parse(&update(sticker(animated, video)), Some(&me())),
                Inbound::Refused {
                    refusal: Refusal::AnimatedSticker,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_heic_or_avif_file_is_refused_with_its_format_and_the_fix() {
        for (mime, name, format) in [
            ("image/heic", "IMG_0001.HEIC", "HEIC"),
            ("application/octet-stream", "photo.heif", "HEIC"),
            ("image/avif", "a.avif", "AVIF"),
        ] {
            let doc = json!({"document": {"file_id": "d", "file_unique_id": "ud", "file_name": name,
                "mime_type": mime, "file_size": 5}});
            match parse(&update(doc), Some(&me())) {
                Inbound::Refused { refusal, .. } => {
                    assert_eq!(refusal, Refusal::PictureFormat(format));
                    let text = refusal.to_string();
                    assert!(
                        text.contains(format) && text.contains("as a photo"),
                        "{text}"
                    );
                }
                other => panic!("{mime}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_albums_other_items_join_it_to_be_named_not_answered_with_help() {
        let video = json!({"file_id": "v", "file_unique_id": "uv", "width": 64, "height": 64,
            "duration": 3, "mime_type": "video/mp4", "file_size": 900});
        let pdf = json!({"file_id": "d", "file_unique_id": "ud", "file_name": "a.pdf",
            "mime_type": "application/pdf", "file_size": 900});
        for (message, what) in [
            (json!({"video": video, "media_group_id": "77"}), "a video"),
            (
                json!({"document": pdf, "media_group_id": "77"}),
                "a file that is not a picture",
            ),
        ] {
            let parsed = parse(&update(message.clone()), Some(&me()));
            assert!(
                matches!(&parsed, Inbound::AlbumItem { item: AlbumContent::Other(w), .. } if *w == what),
                "{message}: {parsed:?}"
            );
        }
    }

    #[test]
    fn in_a_group_an_albums_unaddressed_items_wait_for_the_album_unfetched() {
        let plain = parse(
            &in_group(json!({"photo": photo_json(), "media_group_id": "g2"})),
            Some(&me()),
        );
        assert!(
            matches!(
                &plain,
                Inbound::AlbumItem {
                    caption: None,
                    addressed: false,
                    item: AlbumContent::Photo(_),
                    ..
                }
            ),
            "{plain:?}"
        );
        let mentioned = parse(
            &in_group(json!({"photo": photo_json(), "media_group_id": "g2",
                "caption": "@polybot_test_bot blur",
                "caption_entities": [{"type": "mention", "offset": 0, "length": 17}]})),
            Some(&me()),
        );
        assert!(
            matches!(
                &mentioned,
                Inbound::AlbumItem { caption: Some(c), addressed: true, .. } if c == "blur"
            ),
            "{mentioned:?}"
        );
    }

    #[test]
    fn a_photos_caption_is_the_request_in_private_chats_and_groups() {
        use polybot_domain::{BlurSize, Filter, QuarterTurns};
        let blur = |n| {
            JobKind::Filter(Filter::Blur {
                size: BlurSize::new(n).expect("in range"),
            })
        };
        let rotate = |n| {
            JobKind::Filter(Filter::Rotate {
                quarter_turns: QuarterTurns::new(n).expect("in range"),
            })
        };
        let original = json!({"message_id": 29, "date": 1_700_000_000,
            "chat": {"id": -4001, "type": "group", "title": "Friends"}, "photo": photo_json()});
        let cases = [
            (update(json!({"photo": photo_json()})), JobKind::Detect),
            (
                update(json!({"photo": photo_json(), "caption": "  Rotate "})),
                rotate(1),
            ),
            (
                update(json!({"photo": photo_json(), "caption": "blur 8"})),
                blur(8),
            ),
            (
                update(json!({"photo": photo_json(), "caption": "/blur 8"})),
                blur(8),
            ),
            (
                update(json!({"photo": photo_json(), "caption": "what is in this picture?"})),
                JobKind::Detect,
            ),
            (
                update(json!({"photo": photo_json(), "caption": "predict"})),
                JobKind::Detect,
            ),
            (
                in_group(json!({"photo": photo_json(), "caption": "/blur@polybot_test_bot 4"})),
                blur(4),
            ),
            (
                in_group(json!({"photo": photo_json(), "caption": "/rotate 180"})),
                rotate(2),
            ),
            (
                in_group(
                    json!({"photo": photo_json(), "caption": "@polybot_test_bot segment 50",
                    "caption_entities": [{"type": "mention", "offset": 0, "length": 17}]}),
                ),
                JobKind::Filter(Filter::Segment { threshold: 50 }),
            ),
            (
                in_group(
                    json!({"text": "/rotate@polybot_test_bot 90 left", "reply_to_message": original}),
                ),
                rotate(3),
            ),
        ];
        for (u, want) in cases {
            assert_eq!(kind_of(&u), Ok(want), "{u:?}");
        }
    }

    #[test]
    fn a_caption_that_asks_badly_is_refused_with_the_reason() {
        let refusal = |u: &Update| match parse(u, Some(&me())) {
            Inbound::Refused {
                refusal,
                message_id,
                ..
            } => {
                assert_eq!(message_id, 7, "the answer quotes the request");
                refusal
            }
            other => panic!("{other:?}"),
        };
        let out_of_range = refusal(&update(
            json!({"photo": photo_json(), "caption": "blur 65"}),
        ));
        assert_eq!(out_of_range.as_str(), "out_of_range");
        assert!(
            out_of_range.to_string().contains("1 to 64"),
            "{out_of_range}"
        );
        let unknown = refusal(&update(
            json!({"photo": photo_json(), "caption": "/sharpen"}),
        ));
        assert_eq!(unknown.as_str(), "unknown_command");
        assert!(unknown.to_string().contains("salt and pepper"), "{unknown}");
        let concat = refusal(&update(json!({"photo": photo_json(), "caption": "concat"})));
        assert_eq!(concat, Refusal::ConcatNeedsAlbum(Direction::Horizontal));
        assert!(concat.to_string().contains("album"), "{concat}");
        // In a group an album is one request too: concat is judged once
        // the album is complete.
        let in_group_album = parse(
            &in_group(
                json!({"photo": photo_json(), "caption": "/concat@polybot_test_bot",
                "media_group_id": "g1"}),
            ),
            Some(&me()),
        );
        assert!(
            matches!(
                &in_group_album,
                Inbound::AlbumItem {
                    caption: Some(c),
                    addressed: true,
                    ..
                } if c == "/concat@polybot_test_bot"
            ),
            "{in_group_album:?}"
        );
    }

    #[test]
    fn in_a_group_a_bare_unknown_command_on_a_photo_is_another_bots() {
        let u = in_group(json!({"photo": photo_json(), "caption": "/sharpen 3"}));
        assert!(
            matches!(
                parse(&u, Some(&me())),
                Inbound::Ignored {
                    kind: "group_chatter",
                    ..
                }
            ),
            "{u:?}"
        );
    }

    #[test]
    fn an_action_without_a_photo_gets_the_hint() {
        for u in [
            update(json!({"text": "/blur 8"})),
            in_group(json!({"text": "/rotate@polybot_test_bot"})),
        ] {
            assert!(
                matches!(
                    parse(&u, Some(&me())),
                    Inbound::Command {
                        command: Command::DetectWithoutPhoto,
                        ..
                    }
                ),
                "{u:?}"
            );
        }
    }

    #[test]
    fn a_group_message_waits_until_the_bot_knows_its_name_but_a_private_one_does_not() {
        let group = parse(&in_group(json!({"text": "/start"})), None);
        assert!(matches!(group, Inbound::Deferred { .. }), "{group:?}");
        let private = parse(&update(json!({"photo": photo_json()})), None);
        assert!(matches!(private, Inbound::Photo { .. }), "{private:?}");
    }

    #[test]
    fn a_group_message_the_telegram_types_refuse_is_not_answered() {
        let body = br#"{"update_id": 9, "message": {"message_id": 3, "date": "yesterday",
            "chat": {"id": -77, "type": "group", "title": "G"}, "text": "hi"}}"#;
        assert!(matches!(
            parse_bytes(body, Some(&me())),
            Ok(Inbound::Ignored {
                kind: "unreadable",
                ..
            })
        ));
    }

    #[test]
    fn usernames_and_commands_parse_as_telegram_writes_them() {
        assert_eq!(me().as_str(), "polybot_test_bot");
        assert!(me().is("POLYBOT_test_bot"));
        assert_eq!(BotUsername::parse("abc"), None, "too short");
        assert_eq!(BotUsername::parse("has space"), None);
        assert_eq!(
            leading_command("  /Detect@SomeBot now"),
            Some(LeadingCommand {
                name: "detect".into(),
                addressed_to: Some("SomeBot".into())
            })
        );
        assert_eq!(leading_command("no command"), None);
        assert_eq!(leading_command("/"), None);
        assert_eq!(leading_command("/not-a-command"), None);
    }

    #[test]
    fn image_type_falls_back_to_the_file_name() {
        assert_eq!(image_type(None, "x.jpeg"), Some(("image/jpeg", "jpg")));
        assert_eq!(
            image_type(Some("application/octet-stream"), "x.webp"),
            Some(("image/webp", "webp"))
        );
        assert_eq!(image_type(Some("text/plain"), "x.txt"), None);
        assert_eq!(
            image_type(Some("image/heic"), "x.heic"),
            Some(("application/octet-stream", "img"))
        );
    }
}
