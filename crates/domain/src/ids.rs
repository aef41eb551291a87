//! Identifiers and keys: newtypes that carry meaning through the code (a
//! `ChatId` is never confused with an `UpdateId`), validated once where
//! they come from outside (object keys, album ids).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Ids shown as the value they wrap.
macro_rules! display_as_inner {
    ($($id:ty),*) => {
        $(impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        })*
    };
}

display_as_inner!(ChatId, UserId, UpdateId, BotId, PredictionId);

/// A Telegram chat, where replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

impl ChatId {
    /// The chat an operator's own requests (the `Detect` RPC) are recorded
    /// and queued under. Telegram's chat ids have at most 52 significant
    /// bits, so -2^53 is never a Telegram chat: nothing is ever sent to it.
    pub const OPERATOR: Self = Self(-(1 << 53));

    /// Whether this is [`ChatId::OPERATOR`], whose results are read, not
    /// answered.
    pub fn is_operator(self) -> bool {
        self == Self::OPERATOR
    }
}

/// A Telegram user: who sent a message (in a private chat, the chat's id too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// A Telegram update's id; unique per bot, used to deduplicate deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpdateId(pub i64);

/// A Telegram bot's user id: the numeric part of its token before `:`
/// (also `getMe`'s `id`). Update ids are unique only per bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BotId(pub i64);

impl BotId {
    /// The bot id a token starts with (`123456:ABC…` → 123456), if any.
    pub fn from_token(token: &str) -> Option<Self> {
        let (id, rest) = token.split_once(':')?;
        if rest.is_empty() {
            return None;
        }
        id.parse().ok().map(Self)
    }
}

/// One photo's journey through the system: job, images, summary and reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PredictionId(Uuid);

impl PredictionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The prediction for one bot's update, the same on every delivery of
    /// it: a retried delivery finds the record, object and job a previous
    /// attempt made instead of starting a second prediction. A UUID version
    /// 8 (custom) holding two 64-bit FNV-1a hashes of both ids.
    pub fn for_update(bot: BotId, update: UpdateId) -> Self {
        Self::hashed(&format!("polybot-update:{bot}:{update}"))
    }

    /// The id of the request an answer's `what` (its crops) makes of the
    /// prediction `of`: the same however often the button is pressed, so
    /// a second press finds the first one's request.
    pub fn derived(of: PredictionId, what: &str) -> Self {
        Self::hashed(&format!("polybot-derived:{of}:{what}"))
    }

    fn hashed(input: &str) -> Self {
        let fnv = |basis: u64| {
            input.bytes().fold(basis, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&a.to_be_bytes());
        bytes[8..].copy_from_slice(&b.to_be_bytes());
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    /// The id of an album's request: the same for every photo of it, on
    /// every gateway, so the album is one request however its updates
    /// arrive.
    pub fn for_album(bot: BotId, chat: ChatId, album: &AlbumId) -> Self {
        Self::hashed(&format!("polybot-album:{bot}:{chat}:{album}"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for PredictionId {
    fn default() -> Self {
        Self::new()
    }
}

impl FromStr for PredictionId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ParseIdError(format!("{s:?} is not a prediction id (a UUID)")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseIdError(String);

/// A key in the object store: relative, `/`-separated, no `..` segments.
///
/// Validated once here so that the local file-backed store can map keys to
/// paths without any risk of escaping its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: impl Into<String>) -> Result<Self, ParseIdError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 1024
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && key.chars().all(|c| !c.is_control() && c != '\\');
        if ok {
            Ok(Self(key))
        } else {
            Err(ParseIdError(format!("{key:?} is not a valid object key")))
        }
    }

    /// Where a chat's original photo for a prediction is stored.
    pub fn original(chat: ChatId, id: PredictionId, extension: &str) -> Self {
        Self(format!("{chat}/original/{id}.{extension}"))
    }

    /// Where the annotated photo for a prediction is stored.
    pub fn predicted(chat: ChatId, id: PredictionId) -> Self {
        Self(format!("{chat}/predicted/{id}.jpg"))
    }

    /// Where the full-resolution annotated photo is stored, when there is one.
    pub fn predicted_full(chat: ChatId, id: PredictionId) -> Self {
        Self(format!("{chat}/predicted/{id}-full.jpg"))
    }

    /// Where a filter's output is stored; `extension` is the format's
    /// (`png` or `jpg`).
    pub fn filtered(chat: ChatId, id: PredictionId, extension: &str) -> Self {
        Self(format!("{chat}/filtered/{id}.{extension}"))
    }

    /// Where annotated key frame `index` (from 0) of a clip's detection
    /// is stored: beside the photos' annotated copies, which detectors
    /// may already write.
    pub fn key_frame(chat: ChatId, id: PredictionId, index: usize) -> Self {
        Self(format!("{chat}/predicted/{id}-frame{index}.jpg"))
    }

    /// Where object `index` (from 0) of a crops request `id` is stored.
    pub fn crop(chat: ChatId, id: PredictionId, index: usize) -> Self {
        Self(format!("{chat}/crops/{id}-{index}.jpg"))
    }

    /// Where the result for photo `index` (from 0) of an album is stored.
    pub fn album_item(chat: ChatId, id: PredictionId, index: usize, extension: &str) -> Self {
        Self(format!("{chat}/album/{id}-{index}.{extension}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = ParseIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> Self {
        k.0
    }
}

/// Telegram's `media_group_id`: the photos sent together as one album.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AlbumId(String);

impl AlbumId {
    /// 1–64 of ASCII letters, digits, `_` and `-` (Telegram's are digits).
    pub fn parse(id: impl Into<String>) -> Result<Self, ParseIdError> {
        let id = id.into();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(id))
        } else {
            Err(ParseIdError(format!("{id:?} is not an album id")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AlbumId {
    type Error = ParseIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<AlbumId> for String {
    fn from(a: AlbumId) -> Self {
        a.0
    }
}

impl fmt::Display for AlbumId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id Telegram gave a pressed button's query (`callback_query.id`),
/// to answer it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallbackQueryId(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_reject_path_escapes() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a/\nb"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(ObjectKey::parse("42/original/x.jpg").is_ok());
    }

    #[test]
    fn a_prediction_id_is_the_same_for_every_delivery_of_one_bots_update() {
        let a = PredictionId::for_update(BotId(123456), UpdateId(42));
        assert_eq!(a, PredictionId::for_update(BotId(123456), UpdateId(42)));
        assert_ne!(a, PredictionId::for_update(BotId(654321), UpdateId(42)));
        assert_ne!(a, PredictionId::for_update(BotId(123456), UpdateId(43)));
        assert_eq!(a.as_uuid().get_version_num(), 8);
    }

    #[test]
    fn a_bot_id_is_the_token_prefix() {
        assert_eq!(BotId::from_token("123456:TEST-TOKEN"), Some(BotId(123456)));
        assert_eq!(BotId::from_token("no-colon"), None);
        assert_eq!(BotId::from_token("abc:def"), None);
    }

    #[test]
    fn prediction_id_round_trips_through_text() {
        let id = PredictionId::new();
        assert_eq!(id.to_string().parse::<PredictionId>(), Ok(id));
        assert!("nope".parse::<PredictionId>().is_err());
    }
}
