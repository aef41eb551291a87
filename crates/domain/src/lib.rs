//! Domain types shared by every Polybot service.
//!
//! Newtypes carry meaning through the code (a `ChatId` is never confused
//! with an `UpdateId`), and the prediction summary has one definition that
//! the detector writes, the table stores and the gateway reads. What a
//! photo's caption asks for is in [`caption`].

use std::fmt;
use std::str::FromStr;

pub mod caption;

pub use caption::{
    ACTIONS_HELP, Action, BlurSize, CaptionError, Direction, Filter, Fraction, QuarterTurns,
    actions_help,
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A Telegram chat, where replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Telegram update's id; unique per bot, used to deduplicate deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpdateId(pub i64);

impl fmt::Display for UpdateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
        let input = format!("polybot-update:{bot}:{update}");
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

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for PredictionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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

/// One detected object, in the course's summary format: the box centre and
/// size normalised to 0..1 of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub class: String,
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
    pub height: f32,
    pub confidence: f32,
}

/// The prediction summary, compatible with the course format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSummary {
    pub prediction_id: PredictionId,
    pub original_img_path: String,
    pub predicted_img_path: String,
    /// The annotated photo at full resolution, stored only when the
    /// original was past Telegram's photo limits (it goes back as a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_img_path: Option<String>,
    pub labels: Vec<Label>,
    /// Seconds since the Unix epoch when the prediction finished.
    pub time: f64,
}

impl PredictionSummary {
    /// Per-class counts, most frequent first, ties by name: what the user reads.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for label in &self.labels {
            match counts.iter_mut().find(|(c, _)| *c == label.class) {
                Some((_, n)) => *n += 1,
                None => counts.push((label.class.clone(), 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// A short human line such as "person ×2, car ×1", or "no objects found".
    pub fn counts_text(&self) -> String {
        let counts = self.counts();
        if counts.is_empty() {
            return "no objects found".to_owned();
        }
        counts
            .iter()
            .map(|(class, n)| format!("{class} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Version of the [`Job`] message schema; bumped on incompatible changes.
pub const JOB_SCHEMA_VERSION: u32 = 1;

/// A detection job, as it travels on the queue (JSON, readable in the AWS
/// console). Trace context and the schema version also travel as message
/// attributes, so they can be read without parsing the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub schema_version: u32,
    pub prediction_id: PredictionId,
    pub chat_id: ChatId,
    /// The user's message, so the reply can quote it.
    pub message_id: i64,
    pub update_id: UpdateId,
    /// Where the original photo is stored.
    pub original_key: ObjectKey,
    /// Seconds since the Unix epoch when the gateway accepted the photo.
    pub submitted_at: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the job is not valid JSON for schema version {JOB_SCHEMA_VERSION}: {0}")]
    Malformed(String),
    #[error("the job has schema version {0}, this build understands version {JOB_SCHEMA_VERSION}")]
    UnsupportedVersion(u32),
}

impl Job {
    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(body: &str) -> Result<Self, JobError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version =
            serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))?;
        if v.schema_version != JOB_SCHEMA_VERSION {
            return Err(JobError::UnsupportedVersion(v.schema_version));
        }
        serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))
    }
}

/// Why a photo could not be processed, in words the reply can be chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    NotAnImage,
    TooLarge,
    CorruptImage,
    /// Retries ran out (the job reached the dead-letter queue).
    GaveUp,
    Internal,
}

impl FailureKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotAnImage => "not_an_image",
            Self::TooLarge => "too_large",
            Self::CorruptImage => "corrupt_image",
            Self::GaveUp => "gave_up",
            Self::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_an_image" => Self::NotAnImage,
            "too_large" => Self::TooLarge,
            "corrupt_image" => Self::CorruptImage,
            "gave_up" => Self::GaveUp,
            "internal" => Self::Internal,
            _ => return None,
        })
    }

    /// What the user reads. Every message says to try again, because in
    /// every case another photo will work.
    pub fn user_message(&self) -> &'static str {
        match self {
            Self::NotAnImage => {
                "Sorry, I couldn't read that file as a picture. Please try again with a JPEG or PNG photo."
            }
            Self::TooLarge => {
                "Sorry, that picture is too large for me. Please try again with a smaller photo."
            }
            Self::CorruptImage => {
                "Sorry, that picture seems to be damaged or incomplete. Please try again with another photo."
            }
            Self::GaveUp | Self::Internal => {
                "Sorry, something went wrong on my side while looking at your photo. Please try again in a minute."
            }
        }
    }
}

/// Where a prediction stands, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionStatus {
    Pending,
    Succeeded,
    Failed,
}

/// Everything stored about one prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub prediction_id: PredictionId,
    pub chat_id: ChatId,
    pub status: PredictionStatus,
    pub original_key: ObjectKey,
    pub summary: Option<PredictionSummary>,
    pub failure: Option<FailureKind>,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    pub updated_at: f64,
}

/// Seconds since the Unix epoch, as the summaries store time.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(class: &str) -> Label {
        Label {
            class: class.into(),
            cx: 0.5,
            cy: 0.5,
            width: 0.1,
            height: 0.1,
            confidence: 0.9,
        }
    }

    fn summary(labels: Vec<Label>) -> PredictionSummary {
        PredictionSummary {
            prediction_id: PredictionId::new(),
            original_img_path: "1/original/x.jpg".into(),
            predicted_img_path: "1/predicted/x.jpg".into(),
            full_img_path: None,
            labels,
            time: 0.0,
        }
    }

    #[test]
    fn counts_text_orders_by_count_then_name() {
        let s = summary(vec![
            label("car"),
            label("person"),
            label("person"),
            label("bus"),
        ]);
        assert_eq!(s.counts_text(), "person ×2, bus ×1, car ×1");
    }

    #[test]
    fn counts_text_says_when_nothing_was_found() {
        assert_eq!(summary(vec![]).counts_text(), "no objects found");
    }

    #[test]
    fn object_keys_reject_path_escapes() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a/\nb"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(ObjectKey::parse("42/original/x.jpg").is_ok());
    }

    #[test]
    fn summary_serialises_in_the_course_format() {
        let s = summary(vec![label("dog")]);
        let v: serde_json::Value = serde_json::to_value(&s).expect("serialise");
        for key in [
            "prediction_id",
            "original_img_path",
            "predicted_img_path",
            "labels",
            "time",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let l = &v["labels"][0];
        for key in ["class", "cx", "cy", "width", "height", "confidence"] {
            assert!(l.get(key).is_some(), "label missing {key}");
        }
    }

    #[test]
    fn job_round_trips_and_rejects_other_schema_versions() {
        let job = Job {
            schema_version: JOB_SCHEMA_VERSION,
            prediction_id: PredictionId::new(),
            chat_id: ChatId(1243002838),
            message_id: 7,
            update_id: UpdateId(99),
            original_key: ObjectKey::parse("1243002838/original/x.jpg").expect("key"),
            submitted_at: 1.5,
        };
        assert_eq!(Job::parse(&job.to_json()).expect("parse"), job);
        let v2 = job
            .to_json()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert!(matches!(
            Job::parse(&v2),
            Err(JobError::UnsupportedVersion(2))
        ));
        assert!(matches!(Job::parse("{}"), Err(JobError::Malformed(_))));
        let bad_key = job
            .to_json()
            .replace("1243002838/original/x.jpg", "../etc/passwd");
        assert!(matches!(Job::parse(&bad_key), Err(JobError::Malformed(_))));
    }

    #[test]
    fn every_failure_message_asks_the_user_to_try_again() {
        for kind in [
            FailureKind::NotAnImage,
            FailureKind::TooLarge,
            FailureKind::CorruptImage,
            FailureKind::GaveUp,
            FailureKind::Internal,
        ] {
            assert!(kind.user_message().contains("try again"), "{kind:?}");
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
        }
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
