//! The gRPC contracts (`polybot.v1`), the code generated from them, the
//! descriptor set for server reflection, and conversions between the wire
//! types and the domain types.

pub mod auth;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("polybot.v1");
}

/// `google.protobuf.Timestamp`, as the contracts' times are written.
pub use prost_types::Timestamp;

/// Encoded `FileDescriptorSet` of every contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("polybot_descriptor");

use polybot_domain as domain;

/// A wire message that does not make a valid domain value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidMessage {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl ToString) -> InvalidMessage {
    InvalidMessage {
        field,
        reason: reason.to_string(),
    }
}

impl From<domain::FailureKind> for v1::FailureKind {
    fn from(k: domain::FailureKind) -> Self {
        match k {
            domain::FailureKind::NotAnImage => Self::NotAnImage,
            domain::FailureKind::TooLarge => Self::TooLarge,
            domain::FailureKind::CorruptImage => Self::CorruptImage,
            domain::FailureKind::TooSmall => Self::TooSmall,
            domain::FailureKind::UnsupportedVideo => Self::UnsupportedVideo,
            domain::FailureKind::CorruptVideo => Self::CorruptVideo,
            domain::FailureKind::GaveUp => Self::GaveUp,
            domain::FailureKind::Internal => Self::Internal,
        }
    }
}

impl v1::FailureKind {
    /// Unknown or unspecified kinds become `Internal`: the user still gets
    /// a reply that asks them to try again.
    pub fn to_domain(self) -> domain::FailureKind {
        match self {
            Self::NotAnImage => domain::FailureKind::NotAnImage,
            Self::TooLarge => domain::FailureKind::TooLarge,
            Self::CorruptImage => domain::FailureKind::CorruptImage,
            Self::TooSmall => domain::FailureKind::TooSmall,
            Self::UnsupportedVideo => domain::FailureKind::UnsupportedVideo,
            Self::CorruptVideo => domain::FailureKind::CorruptVideo,
            Self::GaveUp => domain::FailureKind::GaveUp,
            Self::Unspecified | Self::Internal => domain::FailureKind::Internal,
        }
    }
}

impl From<&domain::PredictionSummary> for v1::PredictionSummary {
    fn from(s: &domain::PredictionSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            original_img_path: s.original_img_path.clone(),
            predicted_img_path: s.predicted_img_path.clone(),
            full_img_path: s.full_img_path.clone(),
            labels: s.labels.iter().map(Into::into).collect(),
            time: s.time,
            settings: Some((&s.settings).into()),
        }
    }
}

impl From<&domain::ChatSettings> for v1::Settings {
    fn from(s: &domain::ChatSettings) -> Self {
        Self {
            confidence: s.confidence.map(domain::MinConfidence::get),
            classes: match &s.classes {
                domain::ClassChoice::All => Vec::new(),
                domain::ClassChoice::Only(set) => set.iter().cloned().collect(),
            },
            output: match s.output {
                domain::OutputMode::Photo => v1::OutputMode::Photo,
                domain::OutputMode::Details => v1::OutputMode::Details,
                domain::OutputMode::Counts => v1::OutputMode::Counts,
            }
            .into(),
            labels: match s.labels {
                domain::LabelStyle::Score => v1::LabelStyle::Score,
                domain::LabelStyle::Name => v1::LabelStyle::Name,
            }
            .into(),
            language: s.language.map(|l| l.code().to_owned()).unwrap_or_default(),
        }
    }
}

impl TryFrom<v1::Settings> for domain::ChatSettings {
    type Error = InvalidMessage;

    fn try_from(s: v1::Settings) -> Result<Self, Self::Error> {
        let confidence = match s.confidence {
            None => None,
            Some(c) => Some(
                domain::MinConfidence::new(c)
                    .ok_or_else(|| invalid("settings.confidence", "out of range"))?,
            ),
        };
        Ok(Self {
            confidence,
            classes: domain::ClassChoice::from(Some(s.classes.into_iter().collect())),
            // An unknown or unset value is the default: a newer peer's
            // choice we cannot show is shown as the standard one.
            output: match v1::OutputMode::try_from(s.output) {
                Ok(v1::OutputMode::Details) => domain::OutputMode::Details,
                Ok(v1::OutputMode::Counts) => domain::OutputMode::Counts,
                _ => domain::OutputMode::Photo,
            },
            labels: match v1::LabelStyle::try_from(s.labels) {
                Ok(v1::LabelStyle::Name) => domain::LabelStyle::Name,
                _ => domain::LabelStyle::Score,
            },
            language: domain::Lang::from_code(&s.language),
        })
    }
}

impl From<&domain::Label> for v1::Label {
    fn from(l: &domain::Label) -> Self {
        Self {
            class: l.class.clone(),
            cx: l.cx,
            cy: l.cy,
            width: l.width,
            height: l.height,
            confidence: l.confidence,
        }
    }
}

impl From<v1::Label> for domain::Label {
    fn from(l: v1::Label) -> Self {
        Self {
            class: l.class,
            cx: l.cx,
            cy: l.cy,
            width: l.width,
            height: l.height,
            confidence: l.confidence,
        }
    }
}

/// A result's settings; unset: the defaults.
fn settings_from_wire(
    settings: Option<v1::Settings>,
) -> Result<domain::ChatSettings, InvalidMessage> {
    Ok(settings
        .map(domain::ChatSettings::try_from)
        .transpose()?
        .unwrap_or_default())
}

impl TryFrom<v1::PredictionSummary> for domain::PredictionSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::PredictionSummary) -> Result<Self, Self::Error> {
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("summary.prediction_id", e))?,
            original_img_path: s.original_img_path,
            predicted_img_path: s.predicted_img_path,
            full_img_path: s.full_img_path,
            labels: s.labels.into_iter().map(Into::into).collect(),
            time: s.time,
            settings: settings_from_wire(s.settings)?,
        })
    }
}

impl From<domain::JobKind> for v1::Action {
    fn from(kind: domain::JobKind) -> Self {
        kind.action().into()
    }
}

impl From<domain::Action> for v1::Action {
    fn from(kind: domain::Action) -> Self {
        use domain::Filter;
        use v1::action::{self, Action as A};
        let action = match kind {
            domain::Action::Detect => A::Detect(action::Detect {}),
            domain::Action::Concat(direction) => A::Concat(action::Concat {
                direction: v1::Direction::from(direction) as i32,
            }),
            domain::Action::Filter(Filter::Blur { size }) => A::Blur(action::Blur {
                size: u32::from(size.get()),
            }),
            domain::Action::Filter(Filter::Contour) => A::Contour(action::Contour {}),
            domain::Action::Filter(Filter::Rotate { quarter_turns }) => A::Rotate(action::Rotate {
                quarter_turns: u32::from(quarter_turns.get()),
            }),
            domain::Action::Filter(Filter::Segment { threshold }) => A::Segment(action::Segment {
                threshold: u32::from(threshold),
            }),
            domain::Action::Filter(Filter::SaltAndPepper { fraction }) => {
                A::SaltAndPepper(action::SaltAndPepper {
                    fraction: fraction.get(),
                })
            }
        };
        Self {
            action: Some(action),
        }
    }
}

impl TryFrom<v1::Action> for domain::JobKind {
    type Error = InvalidMessage;

    /// Every parameter is checked again: a wire value out of range is
    /// refused rather than clamped.
    fn try_from(a: v1::Action) -> Result<Self, Self::Error> {
        use domain::{BlurSize, Filter, Fraction, QuarterTurns};
        use v1::action::Action as A;
        let small = |field: &'static str, v: u32| {
            u8::try_from(v).map_err(|_| invalid(field, format!("{v} is out of range")))
        };
        Ok(match a.action {
            None | Some(A::Detect(_)) => Self::Detect,
            Some(A::Blur(b)) => Self::Filter(Filter::Blur {
                size: BlurSize::new(small("action.blur.size", b.size)?)
                    .ok_or_else(|| invalid("action.blur.size", "must be 1..64"))?,
            }),
            Some(A::Contour(_)) => Self::Filter(Filter::Contour),
            Some(A::Rotate(r)) => Self::Filter(Filter::Rotate {
                quarter_turns: QuarterTurns::new(small(
                    "action.rotate.quarter_turns",
                    r.quarter_turns,
                )?)
                .ok_or_else(|| invalid("action.rotate.quarter_turns", "must be 0..3"))?,
            }),
            Some(A::Segment(s)) => Self::Filter(Filter::Segment {
                threshold: small("action.segment.threshold", s.threshold)?,
            }),
            Some(A::SaltAndPepper(p)) => Self::Filter(Filter::SaltAndPepper {
                fraction: Fraction::new(p.fraction)
                    .ok_or_else(|| invalid("action.salt_and_pepper.fraction", "must be 0..0.5"))?,
            }),
            Some(A::Concat(_)) => {
                return Err(invalid(
                    "action",
                    "concat is an album's action, not a single photo's",
                ));
            }
        })
    }
}

impl From<&domain::FilterSummary> for v1::FilterResult {
    fn from(s: &domain::FilterSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            filter: Some(domain::JobKind::Filter(s.filter).into()),
            original_img_path: s.original_img_path.clone(),
            output_img_path: s.output_img_path.clone(),
            mime_type: s.mime_type.clone(),
            width: s.width,
            height: s.height,
            time: s.time,
        }
    }
}

impl TryFrom<v1::FilterResult> for domain::FilterSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::FilterResult) -> Result<Self, Self::Error> {
        let kind: domain::JobKind = s
            .filter
            .ok_or_else(|| invalid("filtered.filter", "must be set"))?
            .try_into()?;
        let domain::JobKind::Filter(filter) = kind else {
            return Err(invalid("filtered.filter", "must be a filter, not detect"));
        };
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("filtered.prediction_id", e))?,
            filter,
            original_img_path: s.original_img_path,
            output_img_path: s.output_img_path,
            mime_type: s.mime_type,
            width: s.width,
            height: s.height,
            time: s.time,
        })
    }
}

impl From<domain::Direction> for v1::Direction {
    fn from(d: domain::Direction) -> Self {
        match d {
            domain::Direction::Horizontal => Self::Horizontal,
            domain::Direction::Vertical => Self::Vertical,
        }
    }
}

impl From<&domain::JoinedSummary> for v1::ConcatResult {
    fn from(s: &domain::JoinedSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            direction: v1::Direction::from(s.direction) as i32,
            original_img_paths: s.original_img_paths.clone(),
            output_img_path: s.output_img_path.clone(),
            mime_type: s.mime_type.clone(),
            width: s.width,
            height: s.height,
            time: s.time,
            skipped: skips_to_wire(&s.skipped),
        }
    }
}

fn skips_to_wire(skipped: &[domain::AlbumSkip]) -> Vec<v1::AlbumSkip> {
    skipped
        .iter()
        .map(|s| v1::AlbumSkip {
            position: s.position,
            what: s.what.clone(),
        })
        .collect()
}

fn skips_from_wire(skipped: Vec<v1::AlbumSkip>) -> Vec<domain::AlbumSkip> {
    skipped
        .into_iter()
        .map(|s| domain::AlbumSkip {
            position: s.position,
            what: s.what,
        })
        .collect()
}

impl TryFrom<v1::ConcatResult> for domain::JoinedSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::ConcatResult) -> Result<Self, Self::Error> {
        let direction = match v1::Direction::try_from(s.direction) {
            Ok(v1::Direction::Horizontal) => domain::Direction::Horizontal,
            Ok(v1::Direction::Vertical) => domain::Direction::Vertical,
            _ => {
                return Err(invalid(
                    "joined.direction",
                    "must be horizontal or vertical",
                ));
            }
        };
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("joined.prediction_id", e))?,
            direction,
            original_img_paths: s.original_img_paths,
            output_img_path: s.output_img_path,
            mime_type: s.mime_type,
            width: s.width,
            height: s.height,
            time: s.time,
            skipped: skips_from_wire(s.skipped),
        })
    }
}

impl From<&domain::AlbumSummary> for v1::AlbumResult {
    fn from(s: &domain::AlbumSummary) -> Self {
        use v1::album_item::Outcome;
        let items = s
            .items
            .iter()
            .map(|item| v1::AlbumItem {
                outcome: match (&item.result, item.failure) {
                    (Some(domain::JobResult::Detected(d)), _) => Some(Outcome::Summary(d.into())),
                    (Some(domain::JobResult::Filtered(f)), _) => Some(Outcome::Filtered(f.into())),
                    (_, Some(kind)) => Some(Outcome::Failure(v1::FailureKind::from(kind) as i32)),
                    _ => Some(Outcome::Failure(v1::FailureKind::Internal as i32)),
                },
            })
            .collect();
        Self {
            prediction_id: s.prediction_id.to_string(),
            items,
            skipped: skips_to_wire(&s.skipped),
        }
    }
}

impl TryFrom<v1::AlbumResult> for domain::AlbumSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::AlbumResult) -> Result<Self, Self::Error> {
        use v1::album_item::Outcome;
        let items = s
            .items
            .into_iter()
            .map(|item| {
                Ok(match item.outcome {
                    Some(Outcome::Summary(d)) => domain::AlbumItem {
                        result: Some(domain::JobResult::Detected(d.try_into()?)),
                        failure: None,
                    },
                    Some(Outcome::Filtered(f)) => domain::AlbumItem {
                        result: Some(domain::JobResult::Filtered(f.try_into()?)),
                        failure: None,
                    },
                    Some(Outcome::Failure(kind)) => domain::AlbumItem {
                        result: None,
                        failure: Some(
                            v1::FailureKind::try_from(kind)
                                .unwrap_or(v1::FailureKind::Unspecified)
                                .to_domain(),
                        ),
                    },
                    None => return Err(invalid("album.items", "each item needs an outcome")),
                })
            })
            .collect::<Result<Vec<_>, InvalidMessage>>()?;
        if items.is_empty() {
            return Err(invalid("album.items", "must not be empty"));
        }
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("album.prediction_id", e))?,
            items,
            skipped: skips_from_wire(s.skipped),
        })
    }
}

impl From<&domain::CropsSummary> for v1::CropsResult {
    fn from(s: &domain::CropsSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            of: s.of.to_string(),
            crops: s
                .crops
                .iter()
                .map(|c| v1::CropItem {
                    path: c.path.clone(),
                    class: c.class.clone(),
                    confidence: c.confidence,
                })
                .collect(),
            objects: u32::try_from(s.objects).unwrap_or(u32::MAX),
            time: s.time,
        }
    }
}

impl TryFrom<v1::CropsResult> for domain::CropsSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::CropsResult) -> Result<Self, Self::Error> {
        if s.crops.len() > domain::CropsSummary::MAX {
            return Err(invalid("crops.crops", "at most 10"));
        }
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("crops.prediction_id", e))?,
            of: s.of.parse().map_err(|e| invalid("crops.of", e))?,
            crops: s
                .crops
                .into_iter()
                .map(|c| domain::Crop {
                    path: c.path,
                    class: c.class,
                    confidence: c.confidence,
                })
                .collect(),
            objects: s.objects as usize,
            time: s.time,
        })
    }
}

impl From<domain::ClipKind> for v1::ClipKind {
    fn from(k: domain::ClipKind) -> Self {
        match k {
            domain::ClipKind::Video => Self::Video,
            domain::ClipKind::Animation => Self::Animation,
            domain::ClipKind::VideoNote => Self::VideoNote,
        }
    }
}

impl From<&domain::VideoSummary> for v1::VideoResult {
    fn from(s: &domain::VideoSummary) -> Self {
        Self {
            prediction_id: s.prediction_id.to_string(),
            original_img_path: s.original_img_path.clone(),
            clip: v1::ClipKind::from(s.clip) as i32,
            key_frames: s
                .key_frames
                .iter()
                .map(|f| v1::KeyFrame {
                    path: f.path.clone(),
                    at_ms: f.at_ms,
                    labels: f.labels.iter().map(Into::into).collect(),
                })
                .collect(),
            peaks: s
                .peaks
                .iter()
                .map(|p| v1::ClassPeak {
                    class: p.class.clone(),
                    count: p.count,
                    from_ms: p.from_ms,
                    to_ms: p.to_ms,
                })
                .collect(),
            duration_ms: s.duration_ms,
            sampled: s.sampled,
            last_sample_ms: s.last_sample_ms,
            time: s.time,
            settings: Some((&s.settings).into()),
        }
    }
}

impl TryFrom<v1::VideoResult> for domain::VideoSummary {
    type Error = InvalidMessage;

    fn try_from(s: v1::VideoResult) -> Result<Self, Self::Error> {
        let count = s.key_frames.len();
        if count == 0 || count > domain::VideoSummary::MAX_KEY_FRAMES {
            return Err(invalid("video.key_frames", "1 to 4 frames"));
        }
        let clip = match v1::ClipKind::try_from(s.clip) {
            Ok(v1::ClipKind::Video) => domain::ClipKind::Video,
            Ok(v1::ClipKind::Animation) => domain::ClipKind::Animation,
            Ok(v1::ClipKind::VideoNote) => domain::ClipKind::VideoNote,
            _ => return Err(invalid("video.clip", "must be set")),
        };
        Ok(Self {
            prediction_id: s
                .prediction_id
                .parse()
                .map_err(|e| invalid("video.prediction_id", e))?,
            original_img_path: s.original_img_path,
            clip,
            key_frames: s
                .key_frames
                .into_iter()
                .map(|f| domain::KeyFrame {
                    path: f.path,
                    at_ms: f.at_ms,
                    labels: f.labels.into_iter().map(Into::into).collect(),
                })
                .collect(),
            peaks: s
                .peaks
                .into_iter()
                .map(|p| domain::ClassPeak {
                    class: p.class,
                    count: p.count,
                    from_ms: p.from_ms,
                    to_ms: p.to_ms,
                })
                .collect(),
            duration_ms: s.duration_ms,
            sampled: s.sampled,
            last_sample_ms: s.last_sample_ms,
            time: s.time,
            settings: settings_from_wire(s.settings)?,
        })
    }
}

impl From<&domain::JobResult> for v1::Success {
    fn from(r: &domain::JobResult) -> Self {
        let result = match r {
            domain::JobResult::Detected(s) => v1::success::Result::Summary(s.into()),
            domain::JobResult::Filtered(s) => v1::success::Result::Filtered(s.into()),
            domain::JobResult::Joined(s) => v1::success::Result::Joined(s.into()),
            domain::JobResult::Album(s) => v1::success::Result::Album(s.into()),
            domain::JobResult::Cropped(s) => v1::success::Result::Crops(s.into()),
            domain::JobResult::Video(s) => v1::success::Result::Video(s.into()),
        };
        Self {
            result: Some(result),
        }
    }
}

impl TryFrom<v1::Success> for domain::JobResult {
    type Error = InvalidMessage;

    fn try_from(s: v1::Success) -> Result<Self, Self::Error> {
        match s.result {
            Some(v1::success::Result::Summary(s)) => Ok(Self::Detected(s.try_into()?)),
            Some(v1::success::Result::Filtered(s)) => Ok(Self::Filtered(s.try_into()?)),
            Some(v1::success::Result::Joined(s)) => Ok(Self::Joined(s.try_into()?)),
            Some(v1::success::Result::Album(s)) => Ok(Self::Album(s.try_into()?)),
            Some(v1::success::Result::Crops(s)) => Ok(Self::Cropped(s.try_into()?)),
            Some(v1::success::Result::Video(s)) => Ok(Self::Video(s.try_into()?)),
            None => Err(invalid("success.result", "must be summary or filtered")),
        }
    }
}

impl From<&domain::PredictionRecord> for v1::Prediction {
    fn from(r: &domain::PredictionRecord) -> Self {
        let status = match r.status {
            domain::PredictionStatus::Pending => v1::PredictionStatus::Pending,
            domain::PredictionStatus::Succeeded => v1::PredictionStatus::Succeeded,
            domain::PredictionStatus::Failed => v1::PredictionStatus::Failed,
        };
        Self {
            prediction_id: r.prediction_id.to_string(),
            chat_id: r.chat_id.0,
            status: status as i32,
            original_key: r.original_key.to_string(),
            summary: match &r.result {
                Some(domain::JobResult::Detected(s)) => Some(s.into()),
                _ => None,
            },
            filtered: match &r.result {
                Some(domain::JobResult::Filtered(s)) => Some(s.into()),
                _ => None,
            },
            album: match &r.result {
                Some(domain::JobResult::Album(s)) => Some(s.into()),
                _ => None,
            },
            joined: match &r.result {
                Some(domain::JobResult::Joined(s)) => Some(s.into()),
                _ => None,
            },
            crops: match &r.result {
                Some(domain::JobResult::Cropped(s)) => Some(s.into()),
                _ => None,
            },
            video: match &r.result {
                Some(domain::JobResult::Video(s)) => Some(s.into()),
                _ => None,
            },
            action: Some(r.kind.into()),
            failure: r
                .failure
                .map(|f| v1::FailureKind::from(f) as i32)
                .unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A parsed `ReportResult` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub prediction_id: domain::PredictionId,
    pub chat_id: domain::ChatId,
    pub reply_to_message_id: Option<i64>,
    pub outcome: Outcome,
    /// The language the user is answered in (the job's).
    pub language: domain::Lang,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(domain::JobResult),
    Failure {
        kind: domain::FailureKind,
        detail: String,
    },
}

impl TryFrom<v1::ReportResultRequest> for Report {
    type Error = InvalidMessage;

    fn try_from(r: v1::ReportResultRequest) -> Result<Self, Self::Error> {
        let prediction_id = r
            .prediction_id
            .parse()
            .map_err(|e| invalid("prediction_id", e))?;
        if r.chat_id == 0 {
            return Err(invalid("chat_id", "must be set"));
        }
        let outcome = match r.outcome {
            Some(v1::report_result_request::Outcome::Success(s)) => {
                let result: domain::JobResult = s.try_into()?;
                if result.prediction_id() != prediction_id {
                    return Err(invalid(
                        "success.prediction_id",
                        "differs from prediction_id",
                    ));
                }
                Outcome::Success(result)
            }
            Some(v1::report_result_request::Outcome::Failure(f)) => Outcome::Failure {
                kind: v1::FailureKind::try_from(f.kind)
                    .unwrap_or(v1::FailureKind::Unspecified)
                    .to_domain(),
                detail: f.detail,
            },
            None => return Err(invalid("outcome", "must be success or failure")),
        };
        Ok(Self {
            prediction_id,
            chat_id: domain::ChatId(r.chat_id),
            reply_to_message_id: (r.reply_to_message_id != 0).then_some(r.reply_to_message_id),
            outcome,
            language: domain::Lang::from_code_or_default(Some(&r.language)),
        })
    }
}

impl From<&Report> for v1::ReportResultRequest {
    fn from(r: &Report) -> Self {
        let outcome = match &r.outcome {
            Outcome::Success(r) => v1::report_result_request::Outcome::Success(r.into()),
            Outcome::Failure { kind, detail } => {
                v1::report_result_request::Outcome::Failure(v1::Failure {
                    kind: v1::FailureKind::from(*kind) as i32,
                    detail: detail.clone(),
                })
            }
        };
        Self {
            prediction_id: r.prediction_id.to_string(),
            chat_id: r.chat_id.0,
            reply_to_message_id: r.reply_to_message_id.unwrap_or_default(),
            outcome: Some(outcome),
            language: r.language.code().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: domain::PredictionId) -> domain::PredictionSummary {
        domain::PredictionSummary {
            prediction_id: id,
            original_img_path: "1/original/a.jpg".into(),
            predicted_img_path: "1/predicted/a.jpg".into(),
            full_img_path: None,
            labels: vec![domain::Label {
                class: "tie".into(),
                cx: 0.1,
                cy: 0.2,
                width: 0.3,
                height: 0.4,
                confidence: 0.5,
            }],
            time: 12.5,
            settings: domain::ChatSettings::default(),
        }
    }

    #[test]
    fn settings_round_trip_and_an_unset_message_reads_as_the_defaults() {
        use domain::{ClassChoice, LabelStyle, MinConfidence, OutputMode, SettingsChange};
        let chosen = domain::ChatSettings::default()
            .with(SettingsChange::Confidence(MinConfidence::new(0.7)))
            .with(SettingsChange::Classes(ClassChoice::Only(
                ["bus".to_owned(), "person".to_owned()].into(),
            )))
            .with(SettingsChange::Output(OutputMode::Counts))
            .with(SettingsChange::Labels(LabelStyle::Name));
        let mut s = summary(domain::PredictionId::new());
        s.settings = chosen.clone();
        let wire = v1::PredictionSummary::from(&s);
        let back = domain::PredictionSummary::try_from(wire.clone()).expect("valid");
        assert_eq!(back.settings, chosen);
        let unset = v1::PredictionSummary {
            settings: None,
            ..wire.clone()
        };
        assert_eq!(
            domain::PredictionSummary::try_from(unset)
                .expect("valid")
                .settings,
            domain::ChatSettings::default()
        );
        let mut bad = wire;
        if let Some(settings) = bad.settings.as_mut() {
            settings.confidence = Some(3.0);
        }
        assert!(domain::PredictionSummary::try_from(bad).is_err());
    }

    #[test]
    fn reports_round_trip_through_the_wire_format() {
        let id = domain::PredictionId::new();
        let filtered = |filter| {
            Outcome::Success(domain::JobResult::Filtered(domain::FilterSummary {
                prediction_id: id,
                filter,
                original_img_path: "1/original/a.jpg".into(),
                output_img_path: "1/filtered/a.png".into(),
                mime_type: "image/png".into(),
                width: 3,
                height: 2,
                time: 1.25,
            }))
        };
        for outcome in [
            Outcome::Success(domain::JobResult::Detected(summary(id))),
            filtered(domain::Filter::Contour),
            Outcome::Success(domain::JobResult::Album(domain::AlbumSummary {
                prediction_id: id,
                items: vec![
                    domain::AlbumItem {
                        result: Some(domain::JobResult::Detected(summary(id))),
                        failure: None,
                    },
                    domain::AlbumItem {
                        result: None,
                        failure: Some(domain::FailureKind::NotAnImage),
                    },
                ],
                skipped: vec![domain::AlbumSkip {
                    position: 3,
                    what: "a video".into(),
                }],
            })),
            Outcome::Success(domain::JobResult::Joined(domain::JoinedSummary {
                prediction_id: id,
                direction: domain::Direction::Vertical,
                original_img_paths: vec!["1/original/a.jpg".into(), "1/original/b.jpg".into()],
                output_img_path: "1/filtered/a.jpg".into(),
                mime_type: "image/jpeg".into(),
                width: 3,
                height: 8,
                time: 2.5,
                skipped: Vec::new(),
            })),
            Outcome::Success(domain::JobResult::Cropped(domain::CropsSummary {
                prediction_id: id,
                of: domain::PredictionId::new(),
                crops: vec![domain::Crop {
                    path: "1/crops/a-0.jpg".into(),
                    class: "bus".into(),
                    confidence: 0.94,
                }],
                objects: 12,
                time: 3.5,
            })),
            filtered(domain::Filter::Segment { threshold: 7 }),
            filtered(domain::Filter::Blur {
                size: domain::BlurSize::new(64).expect("in range"),
            }),
            filtered(domain::Filter::Rotate {
                quarter_turns: domain::QuarterTurns::new(3).expect("in range"),
            }),
            filtered(domain::Filter::SaltAndPepper {
                fraction: domain::Fraction::new(0.05).expect("in range"),
            }),
            Outcome::Failure {
                kind: domain::FailureKind::CorruptImage,
                detail: "eof".into(),
            },
        ] {
            let report = Report {
                prediction_id: id,
                chat_id: domain::ChatId(1243002838),
                reply_to_message_id: Some(3),
                outcome,
                language: domain::Lang::Ru,
            };
            let wire = v1::ReportResultRequest::from(&report);
            assert_eq!(Report::try_from(wire).expect("parse"), report);
        }
    }

    #[test]
    fn reports_without_an_outcome_or_with_a_bad_id_are_rejected() {
        let mut wire = v1::ReportResultRequest {
            prediction_id: "x".into(),
            chat_id: 1,
            reply_to_message_id: 0,
            outcome: None,
            language: String::new(),
        };
        assert_eq!(
            Report::try_from(wire.clone()).err().map(|e| e.field),
            Some("prediction_id")
        );
        wire.prediction_id = domain::PredictionId::new().to_string();
        assert_eq!(
            Report::try_from(wire).err().map(|e| e.field),
            Some("outcome")
        );
    }

    #[test]
    fn a_summary_for_another_prediction_is_rejected() {
        let report = Report {
            prediction_id: domain::PredictionId::new(),
            chat_id: domain::ChatId(5),
            reply_to_message_id: None,
            language: domain::Lang::En,
            outcome: Outcome::Success(domain::JobResult::Detected(summary(
                domain::PredictionId::new(),
            ))),
        };
        let err = Report::try_from(v1::ReportResultRequest::from(&report)).err();
        assert_eq!(err.map(|e| e.field), Some("success.prediction_id"));
    }

    #[test]
    fn a_filter_parameter_out_of_range_on_the_wire_is_refused() {
        for action in [
            v1::action::Action::Blur(v1::action::Blur { size: 65 }),
            v1::action::Action::Blur(v1::action::Blur { size: 0 }),
            v1::action::Action::Rotate(v1::action::Rotate { quarter_turns: 4 }),
            v1::action::Action::Segment(v1::action::Segment { threshold: 256 }),
            v1::action::Action::SaltAndPepper(v1::action::SaltAndPepper { fraction: 0.6 }),
            v1::action::Action::SaltAndPepper(v1::action::SaltAndPepper { fraction: f64::NAN }),
        ] {
            let wire = v1::Action {
                action: Some(action),
            };
            assert!(domain::JobKind::try_from(wire).is_err(), "{action:?}");
        }
    }

    #[test]
    fn a_v1_success_with_only_a_summary_still_reads_as_a_detection() {
        // Bytes a worker built before the oneof existed: field 1 of Success.
        use prost::Message;
        let id = domain::PredictionId::new();
        let old = v1::PredictionSummary::from(&summary(id));
        let mut bytes = Vec::new();
        prost::encoding::message::encode(1, &old, &mut bytes);
        let success = v1::Success::decode(bytes.as_slice()).expect("decode");
        let result = domain::JobResult::try_from(success).expect("a detection");
        assert_eq!(result, domain::JobResult::Detected(summary(id)));
    }

    #[test]
    fn the_descriptor_set_names_the_results_service() {
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        assert!(text.contains("polybot.v1") && text.contains("Results"));
    }

    #[test]
    fn the_descriptor_set_carries_the_imports_reflection_needs() {
        // grpcurl resolves `google.protobuf.Timestamp` through reflection:
        // the set must hold the file that defines it, not just name it.
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("a set");
        let names: Vec<_> = set.file.iter().filter_map(|f| f.name.as_deref()).collect();
        assert!(
            names.contains(&"google/protobuf/timestamp.proto"),
            "{names:?}"
        );
    }
}
