//! Errors at the engine's boundary. Each keeps the error it stands for (the
//! image decoder's, libjpeg's, ONNX Runtime's, the encoder's) as its
//! source, and is classified by its variant ([`DetectError::kind`]):
//! permanent (the input is bad: report it, never retry) or transient (retry
//! later). This module imports no other module of the crate.

use std::path::PathBuf;
use std::time::Duration;

use polybot_domain::FailureKind;
use polybot_filters::FilterError;

use crate::postprocess::LayoutError;

/// The text of a caught panic (or libjpeg's unwound error), for the
/// [`DecoderError::Panicked`] that stands for it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic")
}

/// What kind of failure an error is: what the user is told, and whether
/// trying the same input again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotAnImage,
    TooLarge,
    CorruptImage,
    /// Smaller than the filter needs.
    TooSmall,
    /// The model's output is not what a detector gives.
    BadModelOutput,
    /// A clip that is not a video we can read: not a media file, no video
    /// track, or a codec we do not decode.
    UnsupportedVideo,
    /// A video track that cannot be decoded as its format says (truncated,
    /// damaged).
    CorruptVideo,
    /// Ours, but permanent: the work ran past its time limit, and would
    /// again (a retry would only burn the same time until the dead-letter
    /// queue).
    TimedOut,
    /// Ours, not the photo's: a retry may succeed.
    Internal,
}

impl ErrorKind {
    /// A stable, low-cardinality name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnImage => "not_an_image",
            Self::TooLarge => "too_large",
            Self::CorruptImage => "corrupt_image",
            Self::TooSmall => "too_small",
            Self::BadModelOutput => "bad_model_output",
            Self::UnsupportedVideo => "unsupported_video",
            Self::CorruptVideo => "corrupt_video",
            Self::TimedOut => "timed_out",
            Self::Internal => "internal",
        }
    }

    /// Whether retrying the same input can never succeed.
    pub fn is_permanent(self) -> bool {
        !matches!(self, Self::Internal)
    }

    /// What the user is told.
    pub fn failure_kind(self) -> FailureKind {
        match self {
            Self::NotAnImage => FailureKind::NotAnImage,
            Self::TooLarge => FailureKind::TooLarge,
            Self::CorruptImage => FailureKind::CorruptImage,
            Self::TooSmall => FailureKind::TooSmall,
            Self::UnsupportedVideo => FailureKind::UnsupportedVideo,
            Self::CorruptVideo => FailureKind::CorruptVideo,
            Self::BadModelOutput | Self::TimedOut | Self::Internal => FailureKind::Internal,
        }
    }
}

/// The decoder's own account of an image it could not read.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error("over the decoder's limits: {0}")]
    Limits(#[source] image::error::LimitError),
    #[error("libjpeg: {0}")]
    Libjpeg(#[source] std::io::Error),
    #[error("reading the image: {0}")]
    Read(#[source] std::io::Error),
    /// A codec panicked, or libjpeg unwound out of its error callback: its
    /// message is all there is.
    #[error("{0}")]
    Panicked(String),
    /// Data that breaks the format in a way we check ourselves.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A resize that failed (ours, never the photo's).
#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    #[error(transparent)]
    Buffer(#[from] fast_image_resize::ImageBufferError),
    #[error(transparent)]
    Resize(#[from] fast_image_resize::ResizeError),
    #[error("the resized image has the wrong size")]
    WrongSize,
}

/// Why one image could not be turned into detections or a filtered picture.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes, over the {limit}-byte limit")]
    FileTooLarge { size: usize, limit: usize },
    #[error("this is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP or TIFF)")]
    NotAnImage,
    #[error("the image is {width}×{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// Cut off: the decoder's error when it said so, else our own check.
    #[error("the image data is truncated")]
    Truncated(#[source] Option<DecoderError>),
    #[error("the image data is corrupt: {0}")]
    Corrupt(#[source] DecoderError),
    #[error("the model returned an unexpected output: {0}")]
    OutputTensor(#[source] ort::Error),
    #[error("the model returned an unexpected output: {0}")]
    OutputLayout(#[source] LayoutError),
    #[error("inference failed: {0}")]
    Inference(#[source] ort::Error),
    #[error("resizing the image failed: {0}")]
    Resize(#[source] ResizeError),
    #[error("encoding the annotated image failed: {0}")]
    Encode(#[source] jpeg_encoder::EncodingError),
    #[error("encoding the annotated image failed: {width}×{height} is over JPEG's 65535 per side")]
    TooLargeToEncode { width: u32, height: u32 },
    #[error("the inference pool has shut down")]
    PoolClosed,
    #[error("the filter could not be applied")]
    Filter(#[source] FilterError),
    /// A clip that could not be sampled (see [`VideoError`] for its kind).
    #[error(transparent)]
    Video(#[from] VideoError),
}

impl DetectError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty | Self::NotAnImage => ErrorKind::NotAnImage,
            Self::FileTooLarge { .. } | Self::TooManyPixels { .. } => ErrorKind::TooLarge,
            Self::Truncated(_) | Self::Corrupt(_) => ErrorKind::CorruptImage,
            Self::OutputTensor(_) | Self::OutputLayout(_) => ErrorKind::BadModelOutput,
            Self::Inference(_)
            | Self::Resize(_)
            | Self::Encode(_)
            | Self::TooLargeToEncode { .. }
            | Self::PoolClosed => ErrorKind::Internal,
            Self::Filter(e) => filter_kind(e),
            Self::Video(e) => e.kind(),
        }
    }

    /// Whether retrying the same input can never succeed. Permanent errors
    /// are reported to the user at once instead of being redelivered.
    pub fn is_permanent(&self) -> bool {
        self.kind().is_permanent()
    }

    /// What the user is told about a permanent error.
    pub fn failure_kind(&self) -> FailureKind {
        self.kind().failure_kind()
    }

    /// A truncated image, by our own check (no decoder error to keep).
    pub(crate) fn truncated() -> Self {
        Self::Truncated(None)
    }

    /// Data that breaks the format in a way we check ourselves.
    pub(crate) fn invalid(what: &'static str) -> Self {
        Self::Corrupt(DecoderError::Invalid(what))
    }
}

/// A filter's error: the photo's (too small, too large, empty) unless
/// encoding failed.
fn filter_kind(e: &FilterError) -> ErrorKind {
    match e {
        FilterError::TooSmallForBlur { .. } | FilterError::TooNarrowForContour { .. } => {
            ErrorKind::TooSmall
        }
        FilterError::TooLarge { .. } => ErrorKind::TooLarge,
        FilterError::EmptyImage { .. } | FilterError::NotEnoughImages(_) => ErrorKind::CorruptImage,
        FilterError::Encode { .. } => ErrorKind::Internal,
    }
}

/// Why a clip could not be sampled with ffmpeg.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("the clip is empty")]
    Empty,
    /// ffmpeg found no container it reads (or one we do not allow).
    #[error("this is not a video in a supported format: {detail}")]
    NotAVideo { detail: String },
    #[error("the clip has no video track")]
    NoVideoTrack,
    #[error("the clip's video is {codec}, which is not decoded")]
    UnsupportedCodec { codec: String },
    /// A video track that ffmpeg could not decode, or that gave no frames
    /// (or far fewer than its length promises, with errors).
    #[error("the video could not be decoded: {detail}")]
    Corrupt { detail: String },
    #[error("the video lasts {duration:?}, over the limit of {limit:?}")]
    TooLong { duration: Duration, limit: Duration },
    #[error("the video is {width}×{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// ffmpeg could not be started (missing, not executable).
    #[error(
        "could not run ffmpeg at {path}: {source}; run `cargo xtask setup` or set POLYBOT_FFMPEG"
    )]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `ffmpeg -version` failed, or ffmpeg wrote what it was not asked for.
    #[error("ffmpeg at {path} misbehaved: {detail}")]
    Ffmpeg { path: PathBuf, detail: String },
    #[error("ffmpeg ran past its {limit:?} limit on this clip and was stopped")]
    TimedOut { limit: Duration },
    #[error("could not keep the clip in a temporary file: {0}")]
    TempFile(#[source] std::io::Error),
}

impl VideoError {
    /// What kind of failure this is: the clip's (permanent) or ours.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty
            | Self::NotAVideo { .. }
            | Self::NoVideoTrack
            | Self::UnsupportedCodec { .. } => ErrorKind::UnsupportedVideo,
            Self::Corrupt { .. } => ErrorKind::CorruptVideo,
            Self::TooLong { .. } | Self::TooManyPixels { .. } => ErrorKind::TooLarge,
            Self::TimedOut { .. } => ErrorKind::TimedOut,
            Self::Spawn { .. } | Self::Ffmpeg { .. } | Self::TempFile(_) => ErrorKind::Internal,
        }
    }
}

/// Why the model could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{what} not found at {path}; run `cargo xtask setup` to fetch it, or set {env} to another file"
    )]
    Missing {
        what: &'static str,
        path: PathBuf,
        env: &'static str,
    },
    #[error("could not load the ONNX Runtime library {path}: {source}")]
    RuntimeLibrary {
        path: PathBuf,
        #[source]
        source: ort::LoadDynamicError,
    },
    #[error("could not load the ONNX Runtime library {path}: {source}")]
    Runtime {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error("could not load the model {path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error("could not load the model {path}: warm-up inference failed: {source}")]
    WarmUp {
        path: PathBuf,
        #[source]
        source: DetectError,
    },
    /// Our own finding about the model's inputs and outputs.
    #[error("the model {path} is not a supported detector: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("could not start the inference threads: {0}")]
    Threads(#[source] std::io::Error),
    /// ffmpeg, which decodes clips, cannot run.
    #[error(
        "ffmpeg (for videos) cannot run at {path}: {source}; run `cargo xtask setup` to fetch it, or set POLYBOT_FFMPEG"
    )]
    Ffmpeg {
        path: PathBuf,
        #[source]
        source: VideoError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internal_errors_are_retried_and_each_kind_tells_the_user_its_own_story() {
        let cases = [
            (DetectError::Empty, FailureKind::NotAnImage, true),
            (
                DetectError::TooManyPixels {
                    width: 1,
                    height: 1,
                    limit: 0,
                },
                FailureKind::TooLarge,
                true,
            ),
            (DetectError::truncated(), FailureKind::CorruptImage, true),
            (
                DetectError::Filter(FilterError::TooNarrowForContour { width: 1 }),
                FailureKind::TooSmall,
                true,
            ),
            (
                DetectError::OutputLayout(LayoutError {
                    shape: vec![2],
                    hint: String::new(),
                }),
                FailureKind::Internal,
                true,
            ),
            (DetectError::PoolClosed, FailureKind::Internal, false),
            (
                VideoError::NoVideoTrack.into(),
                FailureKind::UnsupportedVideo,
                true,
            ),
            (
                VideoError::NotAVideo {
                    detail: "Invalid data found when processing input".into(),
                }
                .into(),
                FailureKind::UnsupportedVideo,
                true,
            ),
            (
                VideoError::Corrupt {
                    detail: "no frames".into(),
                }
                .into(),
                FailureKind::CorruptVideo,
                true,
            ),
            (
                VideoError::TooLong {
                    duration: Duration::from_secs(7200),
                    limit: Duration::from_secs(3600),
                }
                .into(),
                FailureKind::TooLarge,
                true,
            ),
            (
                VideoError::Spawn {
                    path: "/nonexistent/ffmpeg".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                }
                .into(),
                FailureKind::Internal,
                false,
            ),
            // Ours, but retrying would only burn the same time again.
            (
                VideoError::TimedOut {
                    limit: Duration::from_secs(120),
                }
                .into(),
                FailureKind::Internal,
                true,
            ),
            (
                DetectError::Filter(FilterError::Encode {
                    format: "png",
                    message: "disk full".into(),
                }),
                FailureKind::Internal,
                false,
            ),
        ];
        for (error, failure, permanent) in cases {
            assert_eq!(error.failure_kind(), failure, "{error:?}");
            assert_eq!(error.is_permanent(), permanent, "{error:?}");
        }
    }

    #[test]
    fn a_decoder_error_is_kept_as_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, "bogus marker");
        let err = DetectError::Corrupt(DecoderError::Libjpeg(io));
        let source = std::error::Error::source(&err).expect("the decoder's error");
        let io = std::error::Error::source(source)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("libjpeg's own error");
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(err.kind(), ErrorKind::CorruptImage);
    }
}
