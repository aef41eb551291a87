//! A job: one request, as the gateway puts it on the queue and a detector
//! takes it. The model is typed: who asked ([`Job`]'s envelope) and what to
//! work on and do ([`JobInput`]): one photo and its [`JobKind`], or an
//! album's photos and an [`AlbumAction`]. A detector matches on the input,
//! so each kind of job is carried out in one place.
//!
//! On the queue a job is JSON in the flat shape of schema version 3
//! (`original_key`, `kind`, `album`, `concat`, `settings`), readable in the
//! AWS console.
//! The typed model converts to and from that shape, so gateways and
//! detectors of this and the previous build read each other's jobs during a
//! rolling deploy, and version-1 jobs (no kind: a detection) still read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::album::AlbumSkip;
use crate::caption::{Action, Direction, Filter};
use crate::ids::{ChatId, ObjectKey, PredictionId, UpdateId};
use crate::settings::ChatSettings;
use crate::time::now_epoch;
use crate::video::ClipKind;
use polybot_i18n::Lang;

/// Version of the job's wire schema; bumped on incompatible changes.
/// Version 2 added the kind and albums; a version-1 job (no kind) is a
/// detection. An input that older detectors cannot run (a video) is to be
/// written with a new version, so that they leave it for a newer detector
/// instead of misreading it as a photo.
///
/// Version 3 added the chat's settings ([`ChatSettings`]); an older job
/// reads as the defaults. It is written as 3 even with default settings, so
/// a detector of the previous build leaves a job it would answer without
/// the chat's settings for a newer one.
///
/// Version 4 added clips ([`JobInput::Video`], the `clip` field). Only a
/// clip's job is written as 4: every other job is still written as 3,
/// which detectors of the previous build run as before.
pub const JOB_SCHEMA_VERSION: u32 = 4;
/// The version every job but a clip's is written with.
const PHOTO_JOB_SCHEMA_VERSION: u32 = 3;
/// The oldest job schema this build still reads.
pub const OLDEST_JOB_SCHEMA_VERSION: u32 = 1;

/// A request, as it travels on the queue. Trace context and the schema
/// version also travel as message attributes, so they can be read without
/// parsing the body.
///
/// Settings that change how a job runs (the chat's [`ChatSettings`], a
/// language) belong here beside `input`, as one more field that the wire
/// writes with `#[serde(default)]`, so that jobs without it still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "JobWire", into = "JobWire")]
pub struct Job {
    pub prediction_id: PredictionId,
    pub chat_id: ChatId,
    /// The user's message, so the reply can quote it (an album's first).
    pub message_id: i64,
    pub update_id: UpdateId,
    /// Seconds since the Unix epoch when the gateway accepted the request.
    pub submitted_at: f64,
    /// What to work on, and what to do with it.
    pub input: JobInput,
    /// The chat's settings when it asked: how detections are kept, drawn
    /// and answered.
    pub settings: ChatSettings,
    /// The language the answer is written in: the chat's choice, else its
    /// sender's (resolved when the request was taken).
    pub language: Lang,
}

/// What a job works on and does. A new kind of input (a video) is a new
/// variant here, carried out by a handler of its own in the detector.
#[derive(Debug, Clone, PartialEq)]
pub enum JobInput {
    /// One photo, stored at `original_key`.
    Photo {
        original_key: ObjectKey,
        kind: JobKind,
    },
    /// An album's photos, in order, and the items of the album that are
    /// not pictures (named in the answer).
    Album {
        photos: AlbumPhotos,
        action: AlbumAction,
        skipped: Vec<AlbumSkip>,
    },
    /// The objects an earlier detection (`of`) found in the photo stored at
    /// `original_key`, each cut out (the answer's `Crops` button).
    Crops {
        original_key: ObjectKey,
        of: PredictionId,
    },
    /// A clip stored at `original_key` (a video, a GIF, a round video):
    /// detection on frames sampled from it.
    Video {
        original_key: ObjectKey,
        clip: ClipKind,
    },
}

impl JobInput {
    /// The caption's action this input carries out.
    pub fn action(&self) -> Action {
        match self {
            Self::Photo { kind, .. } => kind.action(),
            Self::Album { action, .. } => action.action(),
            // Crops show what a detection found; a clip is detected.
            Self::Crops { .. } | Self::Video { .. } => Action::Detect,
        }
    }

    /// Where the photo the request is about is stored: the photo, or an
    /// album's first.
    pub fn original_key(&self) -> &ObjectKey {
        match self {
            Self::Photo { original_key, .. }
            | Self::Crops { original_key, .. }
            | Self::Video { original_key, .. } => original_key,
            Self::Album { photos, .. } => &photos.first().original_key,
        }
    }

    /// How many photos the request holds.
    pub fn photo_count(&self) -> usize {
        match self {
            Self::Photo { .. } | Self::Crops { .. } | Self::Video { .. } => 1,
            Self::Album { photos, .. } => photos.as_slice().len(),
        }
    }

    /// The wire's `kind` field: an album joined by concat carries
    /// `detect` there (its direction is the `concat` field), as it always has.
    pub(crate) fn wire_kind(&self) -> JobKind {
        match self {
            Self::Photo { kind, .. }
            | Self::Album {
                action: AlbumAction::Each(kind),
                ..
            } => *kind,
            Self::Album {
                action: AlbumAction::Concat(_),
                ..
            }
            | Self::Crops { .. }
            | Self::Video { .. } => JobKind::Detect,
        }
    }
}

/// What a job does with one photo: detection, or one of the course's
/// filters. A job kind works on one photo, so Concat (an album's action) is
/// not one.
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

/// What an album's request does with its photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlbumAction {
    /// The kind done to each photo; each is answered in the album's answer.
    Each(JobKind),
    /// The photos joined into one picture.
    Concat(Direction),
}

impl AlbumAction {
    /// The caption's action this carries out.
    pub fn action(self) -> Action {
        match self {
            Self::Each(kind) => kind.action(),
            Self::Concat(direction) => Action::Concat(direction),
        }
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

/// An album's photos in order: never empty, so it always has a first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumPhotos(Vec<AlbumPhoto>);

impl AlbumPhotos {
    /// The photos, unless there are none.
    pub fn new(photos: Vec<AlbumPhoto>) -> Option<Self> {
        (!photos.is_empty()).then_some(Self(photos))
    }

    /// The album's first photo: the one its answer quotes.
    pub fn first(&self) -> &AlbumPhoto {
        // Never empty (`new`).
        &self.0[0]
    }

    pub fn as_slice(&self) -> &[AlbumPhoto] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<AlbumPhoto> {
        self.0
    }
}

impl<'a> IntoIterator for &'a AlbumPhotos {
    type Item = &'a AlbumPhoto;
    type IntoIter = std::slice::Iter<'a, AlbumPhoto>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
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
    /// A request for one photo, submitted now.
    pub fn photo(
        prediction_id: PredictionId,
        chat_id: ChatId,
        message_id: i64,
        update_id: UpdateId,
        original_key: ObjectKey,
        kind: JobKind,
    ) -> Self {
        Self {
            prediction_id,
            chat_id,
            message_id,
            update_id,
            submitted_at: now_epoch(),
            input: JobInput::Photo { original_key, kind },
            settings: ChatSettings::default(),
            language: Lang::default(),
        }
    }

    /// A request for an album, submitted now; the answer quotes its first
    /// photo's message.
    pub fn album(
        prediction_id: PredictionId,
        chat_id: ChatId,
        update_id: UpdateId,
        photos: AlbumPhotos,
        action: AlbumAction,
    ) -> Self {
        Self {
            prediction_id,
            chat_id,
            message_id: photos.first().message_id,
            update_id,
            submitted_at: now_epoch(),
            input: JobInput::Album {
                photos,
                action,
                skipped: Vec::new(),
            },
            settings: ChatSettings::default(),
            language: Lang::default(),
        }
    }

    /// A request for the crops of the detection `of` of the photo at
    /// `original_key`, quoting `message_id` (the detection's answer).
    pub fn crops(
        prediction_id: PredictionId,
        chat_id: ChatId,
        message_id: i64,
        original_key: ObjectKey,
        of: PredictionId,
    ) -> Self {
        Self {
            prediction_id,
            chat_id,
            message_id,
            update_id: UpdateId(0),
            submitted_at: now_epoch(),
            input: JobInput::Crops { original_key, of },
            settings: ChatSettings::default(),
            language: Lang::default(),
        }
    }

    /// A request for a clip stored at `original_key`, submitted now.
    pub fn video(
        prediction_id: PredictionId,
        chat_id: ChatId,
        message_id: i64,
        update_id: UpdateId,
        original_key: ObjectKey,
        clip: ClipKind,
    ) -> Self {
        Self {
            prediction_id,
            chat_id,
            message_id,
            update_id,
            submitted_at: now_epoch(),
            input: JobInput::Video { original_key, clip },
            settings: ChatSettings::default(),
            language: Lang::default(),
        }
    }

    /// The same request, carried out with the chat's `settings`.
    pub fn with_settings(mut self, settings: ChatSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The same request, answered in `language`.
    pub fn in_language(mut self, language: Lang) -> Self {
        self.language = language;
        self
    }

    /// The same album request, naming the album's items that are not
    /// pictures in its answer (nothing for a single photo's request).
    pub fn skipping(mut self, items: Vec<AlbumSkip>) -> Self {
        if let JobInput::Album { skipped, .. } = &mut self.input {
            *skipped = items;
        }
        self
    }

    /// A request for one JPEG stored at its usual key
    /// ([`ObjectKey::original`]) under a new prediction id: what tests and
    /// tools start from (the gateway names its own ids).
    pub fn stored_photo(chat_id: ChatId, message_id: i64, kind: JobKind) -> Self {
        let id = PredictionId::new();
        let key = ObjectKey::original(chat_id, id, "jpg");
        Self::photo(id, chat_id, message_id, UpdateId(0), key, kind)
    }

    /// The schema version the job is written with: the newest for a clip,
    /// the one before for everything else (see [`JOB_SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> u32 {
        match self.input {
            JobInput::Video { .. } => JOB_SCHEMA_VERSION,
            _ => PHOTO_JOB_SCHEMA_VERSION,
        }
    }

    /// Where the photo the request is about is stored (an album's first).
    pub fn original_key(&self) -> &ObjectKey {
        self.input.original_key()
    }

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

/// A job in the flat shape of schema version 2, as it is written and read.
/// An album's `original_key` and `message_id` are its first photo's; its
/// `kind` is done to each photo unless `concat` joins them.
#[derive(Serialize, Deserialize)]
struct JobWire {
    schema_version: u32,
    prediction_id: PredictionId,
    chat_id: ChatId,
    message_id: i64,
    update_id: UpdateId,
    original_key: ObjectKey,
    submitted_at: f64,
    /// Absent in version 1, which only knew detection.
    #[serde(default)]
    kind: JobKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    album: Vec<AlbumPhoto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    concat: Option<Direction>,
    /// An album's items that are not pictures (a detector of an earlier
    /// build ignores them: its answer just does not name them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<AlbumSkip>,
    /// Absent before version 3, and when the chat chose nothing.
    #[serde(default, skip_serializing_if = "ChatSettings::is_default")]
    settings: ChatSettings,
    /// A crops request: the detection whose objects are cut out of the
    /// photo at `original_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crops_of: Option<PredictionId>,
    /// A clip's request (version 4): the kind of message it came in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clip: Option<ClipKind>,
    /// The answer's language; absent: English (older jobs, and a detector
    /// of an earlier build ignores it, since it does not write answers).
    #[serde(default, skip_serializing_if = "is_english")]
    language: Lang,
}

fn is_english(lang: &Lang) -> bool {
    *lang == Lang::En
}

impl From<JobWire> for Job {
    fn from(wire: JobWire) -> Self {
        let input = match AlbumPhotos::new(wire.album) {
            None if let Some(clip) = wire.clip => JobInput::Video {
                original_key: wire.original_key,
                clip,
            },
            None if let Some(of) = wire.crops_of => JobInput::Crops {
                original_key: wire.original_key,
                of,
            },
            // `concat` means nothing without an album.
            None => JobInput::Photo {
                original_key: wire.original_key,
                kind: wire.kind,
            },
            Some(photos) => JobInput::Album {
                photos,
                action: match wire.concat {
                    Some(direction) => AlbumAction::Concat(direction),
                    None => AlbumAction::Each(wire.kind),
                },
                skipped: wire.skipped,
            },
        };
        Self {
            prediction_id: wire.prediction_id,
            chat_id: wire.chat_id,
            message_id: wire.message_id,
            update_id: wire.update_id,
            submitted_at: wire.submitted_at,
            input,
            settings: wire.settings,
            language: wire.language,
        }
    }
}

impl From<Job> for JobWire {
    fn from(job: Job) -> Self {
        let schema_version = job.schema_version();
        let kind = job.input.wire_kind();
        let original_key = job.input.original_key().clone();
        let settings = job.settings;
        let language = job.language;
        let crops_of = match &job.input {
            JobInput::Crops { of, .. } => Some(*of),
            _ => None,
        };
        let clip = match &job.input {
            JobInput::Video { clip, .. } => Some(*clip),
            _ => None,
        };
        let (album, concat, skipped) = match job.input {
            JobInput::Photo { .. } | JobInput::Crops { .. } | JobInput::Video { .. } => {
                (Vec::new(), None, Vec::new())
            }
            JobInput::Album {
                photos,
                action,
                skipped,
            } => (
                photos.into_vec(),
                match action {
                    AlbumAction::Concat(direction) => Some(direction),
                    AlbumAction::Each(_) => None,
                },
                skipped,
            ),
        };
        Self {
            schema_version,
            prediction_id: job.prediction_id,
            chat_id: job.chat_id,
            message_id: job.message_id,
            update_id: job.update_id,
            original_key,
            submitted_at: job.submitted_at,
            kind,
            album,
            concat,
            skipped,
            settings,
            crops_of,
            clip,
            language,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::BlurSize;

    fn job(kind: JobKind) -> Job {
        Job {
            submitted_at: 1.5,
            ..Job::photo(
                PredictionId::new(),
                ChatId(1243002838),
                7,
                UpdateId(99),
                ObjectKey::parse("1243002838/original/x.jpg").expect("key"),
                kind,
            )
        }
    }

    #[test]
    fn job_round_trips_and_rejects_other_schema_versions() {
        let job = job(JobKind::Detect);
        assert_eq!(Job::parse(&job.to_json()).expect("parse"), job);
        let v5 = job
            .to_json()
            .replace("\"schema_version\":3", "\"schema_version\":5");
        assert!(matches!(
            Job::parse(&v5),
            Err(JobError::UnsupportedVersion(5))
        ));
        assert!(matches!(Job::parse("{}"), Err(JobError::Malformed(_))));
        let bad_key = job
            .to_json()
            .replace("1243002838/original/x.jpg", "../etc/passwd");
        assert!(matches!(Job::parse(&bad_key), Err(JobError::Malformed(_))));
    }

    #[test]
    fn a_clip_job_is_written_as_version_4_and_every_other_job_as_3() {
        let key = ObjectKey::parse("1243002838/original/x.mp4").expect("key");
        let clip = Job::video(
            PredictionId::new(),
            ChatId(1243002838),
            7,
            UpdateId(99),
            key,
            ClipKind::Animation,
        );
        let json = clip.to_json();
        assert!(json.contains("\"schema_version\":4"), "{json}");
        assert!(json.contains("\"clip\":\"animation\""), "{json}");
        assert_eq!(Job::parse(&json).expect("parse"), clip);
        // A detector of the previous build leaves it for a newer one.
        assert!(
            job(JobKind::Detect)
                .to_json()
                .contains("\"schema_version\":3")
        );
    }

    #[test]
    fn a_version_1_job_already_in_a_queue_is_a_detection() {
        let id = PredictionId::new();
        let v1 = format!(
            r#"{{"schema_version":1,"prediction_id":"{id}","chat_id":5,"message_id":7,"update_id":9,"original_key":"5/original/x.jpg","submitted_at":1.5}}"#
        );
        let job = Job::parse(&v1).expect("a version-1 job still reads");
        assert!(
            matches!(
                job.input,
                JobInput::Photo {
                    kind: JobKind::Detect,
                    ..
                }
            ),
            "{job:?}"
        );
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

    fn photos(n: i64) -> AlbumPhotos {
        let photos = (0..n)
            .map(|i| AlbumPhoto {
                message_id: 10 + i,
                original_key: ObjectKey::parse(format!("5/original/{i}.jpg")).expect("key"),
                caption: (i == 1).then(|| "blur 9".to_owned()),
            })
            .collect();
        AlbumPhotos::new(photos).expect("photos")
    }

    #[test]
    fn an_album_is_written_in_the_flat_version_2_shape_and_reads_back() {
        let size = BlurSize::new(9).expect("in range");
        let each = Job::album(
            PredictionId::new(),
            ChatId(5),
            UpdateId(0),
            photos(3),
            AlbumAction::Each(JobKind::Filter(Filter::Blur { size })),
        );
        let v: serde_json::Value = serde_json::from_str(&each.to_json()).expect("json");
        // What a detector of the previous build reads: the first photo's
        // key and message, the kind, and the album.
        assert_eq!(v["schema_version"], 3);
        assert_eq!(v["original_key"], "5/original/0.jpg");
        assert_eq!(v["message_id"], 10);
        assert_eq!(v["kind"]["filter"], "blur");
        assert_eq!(v["album"].as_array().map(Vec::len), Some(3));
        assert!(v.get("concat").is_none(), "{v}");
        assert_eq!(Job::parse(&each.to_json()).expect("parse"), each);

        let joined = Job::album(
            PredictionId::new(),
            ChatId(5),
            UpdateId(0),
            photos(2),
            AlbumAction::Concat(Direction::Vertical),
        );
        let v: serde_json::Value = serde_json::from_str(&joined.to_json()).expect("json");
        assert_eq!(v["concat"], "vertical");
        assert_eq!(v["kind"], serde_json::json!({"action": "detect"}));
        let back = Job::parse(&joined.to_json()).expect("parse");
        assert_eq!(back, joined);
        assert_eq!(back.input.photo_count(), 2);
        assert_eq!(back.input.action(), Action::Concat(Direction::Vertical));

        let skipped = vec![AlbumSkip {
            position: 2,
            what: "a video".into(),
        }];
        let mixed = joined.skipping(skipped.clone());
        let v: serde_json::Value = serde_json::from_str(&mixed.to_json()).expect("json");
        assert_eq!(v["skipped"][0]["what"], "a video");
        let back = Job::parse(&mixed.to_json()).expect("parse");
        assert!(matches!(&back.input, JobInput::Album { skipped: s, .. } if *s == skipped));
    }

    #[test]
    fn a_previous_builds_album_job_reads_as_an_album() {
        let id = PredictionId::new();
        let body = format!(
            r#"{{"schema_version":2,"prediction_id":"{id}","chat_id":5,"message_id":10,"update_id":0,"original_key":"5/original/a.jpg","submitted_at":1.5,"kind":{{"action":"detect"}},"album":[{{"message_id":10,"original_key":"5/original/a.jpg"}},{{"message_id":11,"original_key":"5/original/b.jpg"}}],"concat":"horizontal"}}"#
        );
        let job = Job::parse(&body).expect("reads");
        let JobInput::Album {
            photos,
            action,
            skipped,
        } = &job.input
        else {
            panic!("{job:?}");
        };
        assert_eq!(*action, AlbumAction::Concat(Direction::Horizontal));
        assert!(skipped.is_empty());
        assert_eq!(photos.as_slice().len(), 2);
        assert_eq!(photos.first().message_id, 10);
        assert_eq!(job.original_key().as_str(), "5/original/a.jpg");
    }

    #[test]
    fn a_job_carries_the_chats_settings_and_an_older_job_reads_as_the_defaults() {
        use crate::settings::{MinConfidence, OutputMode, SettingsChange};
        let settings = ChatSettings::default()
            .with(SettingsChange::Confidence(MinConfidence::new(0.7)))
            .with(SettingsChange::Output(OutputMode::Counts));
        let job = job(JobKind::Detect).with_settings(settings.clone());
        let v: serde_json::Value = serde_json::from_str(&job.to_json()).expect("json");
        assert_eq!(v["schema_version"], 3);
        assert_eq!(v["settings"]["output"], "counts");
        assert_eq!(
            Job::parse(&job.to_json()).expect("parse").settings,
            settings
        );
        let v2 = job
            .to_json()
            .replace("\"schema_version\":3", "\"schema_version\":2")
            .replace(r#","settings":{"confidence":0.7,"output":"counts"}"#, "");
        assert!(!v2.contains("settings"), "{v2}");
        assert_eq!(
            Job::parse(&v2).expect("a version-2 job reads").settings,
            ChatSettings::default()
        );
    }

    #[test]
    fn a_crops_job_names_its_detection_and_reads_back() {
        let of = PredictionId::new();
        let key = ObjectKey::parse("5/original/x.jpg").expect("key");
        let job = Job::crops(PredictionId::new(), ChatId(5), 70, key.clone(), of);
        let v: serde_json::Value = serde_json::from_str(&job.to_json()).expect("json");
        assert_eq!(v["crops_of"], of.to_string());
        assert_eq!(v["original_key"], "5/original/x.jpg");
        let back = Job::parse(&job.to_json()).expect("parse");
        assert_eq!(back, job);
        assert_eq!(
            back.input,
            JobInput::Crops {
                original_key: key,
                of
            }
        );
    }

    #[test]
    fn an_album_has_at_least_one_photo() {
        assert_eq!(AlbumPhotos::new(Vec::new()), None);
    }
}
