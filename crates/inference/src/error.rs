//! Errors at the detector's boundary, each classified as permanent (the
//! input is bad: report it, never retry) or transient (retry later).

use std::path::PathBuf;

/// The text of a caught panic (or libjpeg's unwound error), for the
/// `Corrupt` error that stands for it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic")
}

/// Why one image could not be turned into detections.
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
    #[error("the image data is truncated")]
    Truncated,
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
    #[error("the model returned an unexpected output: {0}")]
    BadOutput(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("encoding the annotated image failed: {0}")]
    Encode(String),
    #[error("the inference pool has shut down")]
    PoolClosed,
    #[error("the filter could not be applied")]
    Filter(#[source] polybot_filters::FilterError),
}

impl DetectError {
    /// Whether retrying the same input can never succeed. Permanent errors
    /// are reported to the user at once instead of being redelivered.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Empty
            | Self::FileTooLarge { .. }
            | Self::NotAnImage
            | Self::TooManyPixels { .. }
            | Self::Truncated
            | Self::Corrupt(_)
            | Self::BadOutput(_) => true,
            Self::Inference(_) | Self::Encode(_) | Self::PoolClosed => false,
            Self::Filter(e) => crate::filtering::is_permanent(e),
        }
    }

    /// What the user is told about a permanent error.
    pub fn failure_kind(&self) -> polybot_domain::FailureKind {
        use polybot_domain::FailureKind;
        match self.kind() {
            "not_an_image" => FailureKind::NotAnImage,
            "too_large" => FailureKind::TooLarge,
            "corrupt_image" => FailureKind::CorruptImage,
            "too_small" => FailureKind::TooSmall,
            _ => FailureKind::Internal,
        }
    }

    /// A stable, low-cardinality name, for metrics labels and the Results contract.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty | Self::NotAnImage => "not_an_image",
            Self::FileTooLarge { .. } | Self::TooManyPixels { .. } => "too_large",
            Self::Truncated | Self::Corrupt(_) => "corrupt_image",
            Self::BadOutput(_) => "bad_model_output",
            Self::Inference(_) | Self::Encode(_) | Self::PoolClosed => "internal",
            Self::Filter(e) => crate::filtering::kind(e),
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
    #[error("could not load the ONNX Runtime library {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    #[error("could not load the model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("the model {path} is not a supported detector: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("could not start the inference threads: {0}")]
    Threads(String),
}
