//! Domain types shared by every Polybot service.
//!
//! Newtypes carry meaning through the code ([`ids`]), a request has one
//! typed model from the gateway to the detector ([`Job`]), and the
//! prediction summary has one definition that the detector writes, the
//! table stores and the gateway reads. What a photo's caption asks for is in
//! [`caption`].

mod album;
pub mod buttons;
pub mod caption;
mod ids;
mod job;
pub mod settings;
mod time;
pub mod video;

/// An underlying error kept as the source of one of ours (the SDK's, the
/// HTTP client's, the file system's), for ports whose adapters differ.
/// A `String` or `&str` converts into one for errors that start with us.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use album::{
    AlbumMember, AlbumSkip, ONLY_CAPTIONED_USED, SkippedItem, UnfetchedPhoto, item_name,
    worked_positions,
};
pub use buttons::{AnswerButton, AnswerExtra, ForgetButton, Press};
pub use caption::{
    Action, BlurSize, CaptionError, Direction, Filter, Fraction, QuarterTurns, actions_help,
    nearest_action,
};
pub use ids::{
    AlbumId, BotId, CallbackQueryId, ChatId, ObjectKey, ParseIdError, PredictionId, UpdateId,
    UserId,
};
pub use job::{
    AlbumAction, AlbumPhoto, AlbumPhotos, JOB_SCHEMA_VERSION, Job, JobError, JobInput, JobKind,
    OLDEST_JOB_SCHEMA_VERSION,
};
pub use settings::{
    ChatSettings, ClassChoice, LabelStyle, MinConfidence, OutputMode, SettingError, SettingsButton,
    SettingsChange, parse_classes, parse_confidence,
};
pub use time::now_epoch;
pub use video::{ClassPeak, ClipKind, KeyFrame, SampledFrame, VideoSummary};

pub use polybot_i18n::{Lang, t};
use serde::{Deserialize, Serialize};

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

/// Per-class counts of `labels`, most frequent first, ties by name.
pub fn counts(labels: &[Label]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for label in labels {
        match counts.iter_mut().find(|(c, _)| *c == label.class) {
            Some((_, n)) => *n += 1,
            None => counts.push((label.class.clone(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// `labels` as a short human line such as "person ×2, car ×1" (class
/// names in `lang`), or "no objects found".
pub fn counts_text(labels: &[Label], lang: Lang) -> String {
    let counts = counts(labels);
    if counts.is_empty() {
        return t!(lang, "counts-none");
    }
    counts
        .iter()
        .map(|(class, n)| {
            t!(
                lang,
                "counts-item",
                class = lang.class_name(class),
                count = *n
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    /// The chat's settings the detection was made with (`labels` holds
    /// only what they show); they also say how it is answered.
    #[serde(default, skip_serializing_if = "ChatSettings::is_default")]
    pub settings: ChatSettings,
}

impl PredictionSummary {
    /// Per-class counts, most frequent first, ties by name: what the user reads.
    pub fn counts(&self) -> Vec<(String, usize)> {
        counts(&self.labels)
    }

    /// A short human line such as "person ×2, car ×1", or "no objects found".
    pub fn counts_text(&self, lang: Lang) -> String {
        counts_text(&self.labels, lang)
    }

    /// Each object with its score and where its box is (in percent of the
    /// picture, left to right and top to bottom), surest first, in at most
    /// `max_chars` characters: the objects that do not fit are counted.
    pub fn details_text(&self, max_chars: usize, lang: Lang) -> String {
        if self.labels.is_empty() {
            return t!(lang, "details-none");
        }
        let mut labels: Vec<&Label> = self.labels.iter().collect();
        labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let percent = |v: f32| (v.clamp(0.0, 1.0) * 100.0).round() as u32;
        let mut text = t!(lang, "details-head", count = labels.len());
        for (shown, label) in labels.iter().enumerate() {
            let line = format!(
                "\n{}",
                t!(
                    lang,
                    "details-line",
                    number = shown + 1,
                    class = lang.class_name(&label.class),
                    score = format!("{:.2}", label.confidence),
                    x1 = percent(label.cx - label.width / 2.0),
                    x2 = percent(label.cx + label.width / 2.0),
                    y1 = percent(label.cy - label.height / 2.0),
                    y2 = percent(label.cy + label.height / 2.0),
                )
            );
            let rest = labels.len() - shown;
            // Room for the line and for saying how many did not fit.
            if text.chars().count() + line.chars().count() + 24 > max_chars {
                text.push('\n');
                text.push_str(&t!(lang, "details-more", count = rest));
                break;
            }
            text.push_str(&line);
        }
        text
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
    /// Items of the album that were not pictures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<AlbumSkip>,
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
    /// Items of the album that were not pictures, by their place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<AlbumSkip>,
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
    /// A clip's key frames and peaks.
    Video(VideoSummary),
    /// Last: read only when no other shape fits.
    Cropped(CropsSummary),
}

/// The objects of a detection, each cut out of its original photo at the
/// box's own size (the answer's `Crops` button): the largest first, at
/// most [`CropsSummary::MAX`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CropsSummary {
    pub prediction_id: PredictionId,
    /// The detection they were cut for.
    pub of: PredictionId,
    pub crops: Vec<Crop>,
    /// How many objects the detection found (more than `crops` when past
    /// [`CropsSummary::MAX`]).
    pub objects: usize,
    pub time: f64,
}

impl CropsSummary {
    /// A Telegram album's most.
    pub const MAX: usize = 10;
}

/// One object cut out, stored as a JPEG at `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    pub path: String,
    pub class: String,
    pub confidence: f32,
}

impl JobResult {
    pub fn prediction_id(&self) -> PredictionId {
        match self {
            Self::Detected(s) => s.prediction_id,
            Self::Filtered(s) => s.prediction_id,
            Self::Joined(s) => s.prediction_id,
            Self::Album(s) => s.prediction_id,
            Self::Cropped(s) => s.prediction_id,
            Self::Video(s) => s.prediction_id,
        }
    }

    /// The kind of a single photo's result; `None` for an album's.
    pub fn kind(&self) -> Option<JobKind> {
        match self {
            Self::Detected(_) => Some(JobKind::Detect),
            Self::Filtered(s) => Some(JobKind::Filter(s.filter)),
            Self::Joined(_) | Self::Album(_) | Self::Cropped(_) | Self::Video(_) => None,
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
    /// A clip in a format we cannot decode (another codec, no video track).
    UnsupportedVideo,
    /// A clip that cannot be decoded as its format says (truncated, damaged).
    CorruptVideo,
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
            Self::UnsupportedVideo => "unsupported_video",
            Self::CorruptVideo => "corrupt_video",
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
            "unsupported_video" => Self::UnsupportedVideo,
            "corrupt_video" => Self::CorruptVideo,
            "gave_up" => Self::GaveUp,
            "internal" => Self::Internal,
            _ => return None,
        })
    }

    /// The catalogue key of this failure's words (`failure-…`,
    /// `failure-short-…`): one text for both ways of giving up.
    fn key(&self) -> &'static str {
        match self {
            Self::NotAnImage => "not-an-image",
            Self::TooLarge => "too-large",
            Self::CorruptImage => "corrupt-image",
            Self::TooSmall => "too-small",
            Self::UnsupportedVideo => "unsupported-video",
            Self::CorruptVideo => "corrupt-video",
            Self::GaveUp | Self::Internal => "internal",
        }
    }

    /// A few words for one photo's line in an album's answer.
    pub fn short_message(&self, lang: Lang) -> String {
        lang.text(&format!("failure-short-{}", self.key()))
    }

    /// What the user reads. Every message says to try again, because in
    /// every case another photo will work.
    pub fn user_message(&self, lang: Lang) -> String {
        lang.text(&format!("failure-{}", self.key()))
    }

    /// What the user reads about a job of `kind`: [`Self::user_message`],
    /// except that a picture too small for a filter gets the fix that fits
    /// the filter ([`Filter::too_small_message`]: a smaller blur, or a
    /// larger photo).
    pub fn user_message_for(&self, action: Action, lang: Lang) -> String {
        match (self, action) {
            (Self::TooSmall, Action::Filter(filter)) => filter.too_small_message(lang),
            _ => self.user_message(lang),
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
    /// What the caption asked for: a detection, a filter, or an album's
    /// concat. (Stored as the same `{"action": …}` object a job kind is.)
    #[serde(default)]
    pub kind: Action,
    /// How it succeeded, once it has.
    pub result: Option<JobResult>,
    pub failure: Option<FailureKind>,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    pub updated_at: f64,
    /// Telegram's `file_id` of the picture the bot answered with, once
    /// recorded: `/history` sends it again without uploading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_file_id: Option<String>,
}

impl PredictionRecord {
    /// The record a job starts as: pending, created when it was submitted.
    pub fn pending(job: &Job) -> Self {
        Self {
            prediction_id: job.prediction_id,
            chat_id: job.chat_id,
            status: PredictionStatus::Pending,
            original_key: job.original_key().clone(),
            kind: job.input.action(),
            result: None,
            failure: None,
            created_at: job.submitted_at,
            updated_at: job.submitted_at,
            answer_file_id: None,
        }
    }
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

    #[test]
    fn details_list_each_object_surest_first_within_the_limit() {
        let mut labels: Vec<Label> = (0..300)
            .map(|i| Label {
                confidence: 0.3 + (i % 7) as f32 / 10.0,
                ..label("person")
            })
            .collect();
        labels[0] = Label {
            class: "bus".into(),
            cx: 0.5,
            cy: 0.5,
            width: 0.9,
            height: 0.6,
            confidence: 0.97,
        };
        let text = summary(labels).details_text(4096, Lang::En);
        assert!(text.chars().count() <= 4096, "{}", text.chars().count());
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("300 objects, surest first:"));
        assert_eq!(
            lines.next(),
            Some("1. bus 0.97 \u{2014} x 5\u{2013}95%, y 20\u{2013}80%")
        );
        assert!(text.ends_with("more"), "{text}");
        let scores: Vec<f32> = text
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .filter_map(|l| l.split(' ').nth(2)?.parse().ok())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert_eq!(
            summary(Vec::new()).details_text(4096, Lang::En),
            "No objects found."
        );
    }

    fn summary(labels: Vec<Label>) -> PredictionSummary {
        PredictionSummary {
            prediction_id: PredictionId::new(),
            original_img_path: "1/original/x.jpg".into(),
            predicted_img_path: "1/predicted/x.jpg".into(),
            full_img_path: None,
            labels,
            time: 0.0,
            settings: ChatSettings::default(),
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
        assert_eq!(s.counts_text(Lang::En), "person ×2, bus ×1, car ×1");
    }

    #[test]
    fn counts_text_says_when_nothing_was_found() {
        assert_eq!(summary(vec![]).counts_text(Lang::En), "no objects found");
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
            skipped: vec![AlbumSkip {
                position: 3,
                what: "a video".into(),
            }],
        });
        let joined = JobResult::Joined(JoinedSummary {
            prediction_id: id,
            skipped: Vec::new(),
            direction: Direction::Vertical,
            original_img_paths: vec!["1/original/a.jpg".into(), "1/original/b.jpg".into()],
            output_img_path: "1/filtered/x.jpg".into(),
            mime_type: "image/jpeg".into(),
            width: 4,
            height: 6,
            time: 1.0,
        });
        let cropped = JobResult::Cropped(CropsSummary {
            prediction_id: id,
            of: PredictionId::new(),
            crops: vec![Crop {
                path: "1/crops/x-0.jpg".into(),
                class: "bus".into(),
                confidence: 0.9,
            }],
            objects: 1,
            time: 1.0,
        });
        for result in [album, joined, cropped] {
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
            assert!(
                kind.user_message(Lang::En).contains("try again"),
                "{kind:?}"
            );
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
            for job in [JobKind::Detect, JobKind::Filter(Filter::Contour)] {
                assert!(
                    kind.user_message_for(job.action(), Lang::En)
                        .contains("try again"),
                    "{kind:?} {job}"
                );
            }
        }
    }

    #[test]
    fn a_picture_too_small_for_its_filter_gets_the_fix_for_that_filter() {
        let contour =
            FailureKind::TooSmall.user_message_for(Action::Filter(Filter::Contour), Lang::En);
        assert!(!contour.contains("blur"), "{contour}");
        assert!(contour.contains("larger photo"), "{contour}");
        let blur = FailureKind::TooSmall.user_message_for(
            Action::Filter(Filter::Blur {
                size: BlurSize::DEFAULT,
            }),
            Lang::En,
        );
        assert!(blur.contains("\"blur 4\""), "{blur}");
        assert_eq!(
            FailureKind::CorruptImage.user_message_for(Action::Filter(Filter::Contour), Lang::En),
            FailureKind::CorruptImage.user_message(Lang::En)
        );
    }
}
