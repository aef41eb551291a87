//! Domain types shared by every Polybot service.
//!
//! Newtypes carry meaning through the code (a `ChatId` is never confused
//! with an `UpdateId`), and the prediction summary has one definition that
//! the detector writes, the table stores and the gateway reads. What a
//! photo's caption asks for is in [`caption`].

use std::fmt;
use std::str::FromStr;

pub mod caption;

/// An underlying error kept as the source of one of ours (the SDK's, the
/// HTTP client's, the file system's), for ports whose adapters differ.
/// A `String` or `&str` converts into one for errors that start with us.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
        Self::hashed(&format!("polybot-update:{bot}:{update}"))
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

    /// Where a filter's output is stored; `extension` is the format's
    /// (`png` or `jpg`).
    pub fn filtered(chat: ChatId, id: PredictionId, extension: &str) -> Self {
        Self(format!("{chat}/filtered/{id}.{extension}"))
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

/// One photo of an album, as its request is put together: the message
/// (the answer quotes the first), where the photo is stored, and its
/// caption as written (Telegram puts an album's caption on one photo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumPhoto {
    pub message_id: i64,
    pub original_key: ObjectKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
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
/// Version 2 added [`Job::kind`]; a version-1 job (no kind) is a detection.
pub const JOB_SCHEMA_VERSION: u32 = 2;
/// The oldest job schema this build still reads.
pub const OLDEST_JOB_SCHEMA_VERSION: u32 = 1;

/// A job, as it travels on the queue (JSON, readable in the AWS console).
/// Trace context and the schema version also travel as message
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
    /// What the caption asked for (schema version 2; absent in version 1,
    /// which only knew detection). For an album, done to each photo.
    #[serde(default)]
    pub kind: JobKind,
    /// An album's photos in order (schema version 2); empty for one photo.
    /// `original_key` and `message_id` are then the first photo's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub album: Vec<AlbumPhoto>,
    /// Join the album's photos into one picture, instead of `kind` on each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concat: Option<Direction>,
}

/// What a job does with its photo: detection, or one of the course's
/// filters. A job holds one photo, so Concat (an album's action) is not a
/// job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JobKind {
    #[default]
    Detect,
    Filter(Filter),
}

impl JobKind {
    /// The caption's action this kind carries out.
    pub fn action(self) -> Action {
        match self {
            Self::Detect => Action::Detect,
            Self::Filter(f) => Action::Filter(f),
        }
    }
}

impl TryFrom<Action> for JobKind {
    type Error = Direction;

    /// A single photo's job for an action; Concat (which needs an album)
    /// gives back its direction.
    fn try_from(action: Action) -> Result<Self, Direction> {
        match action {
            Action::Detect => Ok(Self::Detect),
            Action::Filter(f) => Ok(Self::Filter(f)),
            Action::Concat(d) => Err(d),
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.action().fmt(f)
    }
}

// On the wire a kind is an action object: `{"action":"detect"}` or
// `{"action":"filter","filter":"blur","size":16}`.
impl Serialize for JobKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.action().serialize(s)
    }
}

impl<'de> Deserialize<'de> for JobKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let action = Action::deserialize(d)?;
        Self::try_from(action).map_err(|_| {
            serde::de::Error::custom("concat is an album's action, not a single photo's job")
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the job is not valid JSON for schema version {JOB_SCHEMA_VERSION}")]
    Malformed(#[source] serde_json::Error),
    #[error(
        "the job has schema version {0}, this build understands versions {OLDEST_JOB_SCHEMA_VERSION} to {JOB_SCHEMA_VERSION}"
    )]
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
        let v: Version = serde_json::from_str(body).map_err(JobError::Malformed)?;
        if !(OLDEST_JOB_SCHEMA_VERSION..=JOB_SCHEMA_VERSION).contains(&v.schema_version) {
            return Err(JobError::UnsupportedVersion(v.schema_version));
        }
        serde_json::from_str(body).map_err(JobError::Malformed)
    }
}

/// What a filter job produced: the course's filtered picture, stored as
/// `output_img_path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterSummary {
    pub prediction_id: PredictionId,
    /// The filter and its parameters, as a caption would name them.
    pub filter: Filter,
    pub original_img_path: String,
    pub output_img_path: String,
    /// `image/png` where JPEG would change the result, else `image/jpeg`.
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    /// Seconds since the Unix epoch when the filter finished.
    pub time: f64,
}

/// An album's photos joined into one picture (`concat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinedSummary {
    pub prediction_id: PredictionId,
    pub direction: Direction,
    pub original_img_paths: Vec<String>,
    pub output_img_path: String,
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    pub time: f64,
}

/// What became of one photo of an album.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlbumItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
}

/// An album's results, one per photo, in the album's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlbumSummary {
    pub prediction_id: PredictionId,
    pub items: Vec<AlbumItem>,
}

/// How a job succeeded, by kind. Stored untagged, so a detection's summary
/// keeps the course's format (and summaries stored before filters existed
/// still read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobResult {
    Detected(PredictionSummary),
    Filtered(FilterSummary),
    Joined(JoinedSummary),
    Album(AlbumSummary),
}

impl JobResult {
    pub fn prediction_id(&self) -> PredictionId {
        match self {
            Self::Detected(s) => s.prediction_id,
            Self::Filtered(s) => s.prediction_id,
            Self::Joined(s) => s.prediction_id,
            Self::Album(s) => s.prediction_id,
        }
    }

    /// The kind of a single photo's result; `None` for an album's.
    pub fn kind(&self) -> Option<JobKind> {
        match self {
            Self::Detected(_) => Some(JobKind::Detect),
            Self::Filtered(s) => Some(JobKind::Filter(s.filter)),
            Self::Joined(_) | Self::Album(_) => None,
        }
    }
}

/// Why a photo could not be processed, in words the reply can be chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    NotAnImage,
    TooLarge,
    CorruptImage,
    /// Smaller than the filter needs (a blur window larger than the
    /// picture, a contour of a one-pixel-wide picture).
    TooSmall,
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
            Self::TooSmall => "too_small",
            Self::GaveUp => "gave_up",
            Self::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_an_image" => Self::NotAnImage,
            "too_large" => Self::TooLarge,
            "corrupt_image" => Self::CorruptImage,
            "too_small" => Self::TooSmall,
            "gave_up" => Self::GaveUp,
            "internal" => Self::Internal,
            _ => return None,
        })
    }

    /// A few words for one photo's line in an album's answer.
    pub fn short_message(&self) -> &'static str {
        match self {
            Self::NotAnImage => "not a picture I can read",
            Self::TooLarge => "too large",
            Self::CorruptImage => "damaged or incomplete",
            Self::TooSmall => "too small for this filter",
            Self::GaveUp | Self::Internal => "something went wrong on my side",
        }
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
            Self::TooSmall => {
                "Sorry, that picture is too small for this filter. Please try again with a larger photo."
            }
            Self::GaveUp | Self::Internal => {
                "Sorry, something went wrong on my side while looking at your photo. Please try again in a minute."
            }
        }
    }

    /// What the user reads about a job of `kind`: [`Self::user_message`],
    /// except that a picture too small for a filter gets the fix that fits
    /// the filter ([`Filter::too_small_message`]: a smaller blur, or a
    /// larger photo).
    pub fn user_message_for(&self, kind: JobKind) -> std::borrow::Cow<'static, str> {
        match (self, kind) {
            (Self::TooSmall, JobKind::Filter(filter)) => filter.too_small_message().into(),
            _ => self.user_message().into(),
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
    /// What the caption asked for.
    #[serde(default)]
    pub kind: JobKind,
    /// How it succeeded, once it has.
    pub result: Option<JobResult>,
    pub failure: Option<FailureKind>,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    pub updated_at: f64,
}

impl PredictionRecord {
    /// The record a job starts as: pending, created when it was submitted.
    pub fn pending(job: &Job) -> Self {
        Self {
            prediction_id: job.prediction_id,
            chat_id: job.chat_id,
            status: PredictionStatus::Pending,
            original_key: job.original_key.clone(),
            kind: job.kind,
            result: None,
            failure: None,
            created_at: job.submitted_at,
            updated_at: job.submitted_at,
        }
    }
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

    fn job(kind: JobKind) -> Job {
        Job {
            schema_version: JOB_SCHEMA_VERSION,
            prediction_id: PredictionId::new(),
            chat_id: ChatId(1243002838),
            message_id: 7,
            update_id: UpdateId(99),
            original_key: ObjectKey::parse("1243002838/original/x.jpg").expect("key"),
            submitted_at: 1.5,
            kind,
            album: vec![],
            concat: None,
        }
    }

    #[test]
    fn job_round_trips_and_rejects_other_schema_versions() {
        let job = job(JobKind::Detect);
        assert_eq!(Job::parse(&job.to_json()).expect("parse"), job);
        let v3 = job
            .to_json()
            .replace("\"schema_version\":2", "\"schema_version\":3");
        assert!(matches!(
            Job::parse(&v3),
            Err(JobError::UnsupportedVersion(3))
        ));
        assert!(matches!(Job::parse("{}"), Err(JobError::Malformed(_))));
        let bad_key = job
            .to_json()
            .replace("1243002838/original/x.jpg", "../etc/passwd");
        assert!(matches!(Job::parse(&bad_key), Err(JobError::Malformed(_))));
    }

    #[test]
    fn a_version_1_job_already_in_a_queue_is_a_detection() {
        let id = PredictionId::new();
        let v1 = format!(
            r#"{{"schema_version":1,"prediction_id":"{id}","chat_id":5,"message_id":7,"update_id":9,"original_key":"5/original/x.jpg","submitted_at":1.5}}"#
        );
        let job = Job::parse(&v1).expect("a version-1 job still reads");
        assert_eq!(job.kind, JobKind::Detect);
        assert_eq!(job.prediction_id, id);
    }

    #[test]
    fn a_filter_job_carries_its_parameters_as_an_action_object() {
        let size = BlurSize::new(9).expect("in range");
        let job = job(JobKind::Filter(Filter::Blur { size }));
        let v: serde_json::Value = serde_json::from_str(&job.to_json()).expect("json");
        assert_eq!(
            v["kind"],
            serde_json::json!({"action": "filter", "filter": "blur", "size": 9})
        );
        assert_eq!(Job::parse(&job.to_json()).expect("parse"), job);
        // An album's action is not a job, and an out-of-range size is refused.
        let concat = job.to_json().replace(
            r#"{"action":"filter","filter":"blur","size":9}"#,
            r#"{"action":"concat","direction":"vertical"}"#,
        );
        assert!(matches!(Job::parse(&concat), Err(JobError::Malformed(_))));
        let huge = job.to_json().replace(r#""size":9"#, r#""size":65"#);
        assert!(matches!(Job::parse(&huge), Err(JobError::Malformed(_))));
    }

    #[test]
    fn stored_results_read_back_as_their_kind() {
        let detected = JobResult::Detected(summary(vec![label("dog")]));
        let filtered = JobResult::Filtered(FilterSummary {
            prediction_id: PredictionId::new(),
            filter: Filter::Segment { threshold: 100 },
            original_img_path: "1/original/x.jpg".into(),
            output_img_path: "1/filtered/x.png".into(),
            mime_type: "image/png".into(),
            width: 4,
            height: 3,
            time: 2.0,
        });
        for result in [detected, filtered] {
            let json = serde_json::to_string(&result).expect("serialise");
            let back: JobResult = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, result);
            assert_eq!(back.kind(), result.kind());
        }
        let id = PredictionId::new();
        let album = JobResult::Album(AlbumSummary {
            prediction_id: id,
            items: vec![
                AlbumItem {
                    result: Some(JobResult::Detected(summary(vec![label("cat")]))),
                    failure: None,
                },
                AlbumItem {
                    result: None,
                    failure: Some(FailureKind::CorruptImage),
                },
            ],
        });
        let joined = JobResult::Joined(JoinedSummary {
            prediction_id: id,
            direction: Direction::Vertical,
            original_img_paths: vec!["1/original/a.jpg".into(), "1/original/b.jpg".into()],
            output_img_path: "1/filtered/x.jpg".into(),
            mime_type: "image/jpeg".into(),
            width: 4,
            height: 6,
            time: 1.0,
        });
        for result in [album, joined] {
            let json = serde_json::to_string(&result).expect("serialise");
            let back: JobResult = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, result);
        }
    }

    #[test]
    fn every_failure_message_asks_the_user_to_try_again() {
        for kind in [
            FailureKind::NotAnImage,
            FailureKind::TooLarge,
            FailureKind::CorruptImage,
            FailureKind::TooSmall,
            FailureKind::GaveUp,
            FailureKind::Internal,
        ] {
            assert!(kind.user_message().contains("try again"), "{kind:?}");
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
            for job in [JobKind::Detect, JobKind::Filter(Filter::Contour)] {
                assert!(
                    kind.user_message_for(job).contains("try again"),
                    "{kind:?} {job}"
                );
            }
        }
    }

    #[test]
    fn a_picture_too_small_for_its_filter_gets_the_fix_for_that_filter() {
        let contour = FailureKind::TooSmall.user_message_for(JobKind::Filter(Filter::Contour));
        assert!(!contour.contains("blur"), "{contour}");
        assert!(contour.contains("larger photo"), "{contour}");
        let blur = FailureKind::TooSmall.user_message_for(JobKind::Filter(Filter::Blur {
            size: BlurSize::DEFAULT,
        }));
        assert!(blur.contains("\"blur 4\""), "{blur}");
        assert_eq!(
            FailureKind::CorruptImage.user_message_for(JobKind::Filter(Filter::Contour)),
            FailureKind::CorruptImage.user_message()
        );
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
