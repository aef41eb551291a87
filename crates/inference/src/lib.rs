//! The inference engine: YOLO object detection with ONNX Runtime, and the
//! course's image filters, on a bounded pool of CPU lanes.
//!
//! [`Detector`] is a pool of inference lanes that turns an encoded photo
//! into [`DetectOutput`]: detections in original-image pixels, an annotated
//! JPEG and per-stage timings, or a caption's filtered picture, or a
//! detection's objects cut out of their photo ([`crops`]), or a clip's
//! sampled frames detected ([`video`], with ffmpeg). This crate
//! knows nothing of queues, object stores, gRPC or AWS (it builds without
//! them): the `detector` service's worker, CLI and benchmark are layers over
//! it.

pub mod agreement;
pub mod annotate;
pub mod crops;
pub mod decode;
pub mod engine;
pub mod error;
pub mod filtering;
pub mod geometry;
mod metrics;
pub mod model;
pub mod output;
pub mod pool;
pub mod postprocess;
pub mod video;

pub use engine::{AnnotatedSize, DetectConfig, Engine};
pub use error::{DecoderError, DetectError, ErrorKind, LoadError, ResizeError, VideoError};
pub use filtering::FilterOutput;
pub use geometry::{BBox, LetterboxMode};
pub use model::{ModelInfo, ModelSource, Precision, PrecisionChoice, PrecisionSetting};
pub use output::{DetectOutput, Detection, Timings};
pub use pool::{Detector, PoolOptions, Slot};
pub use postprocess::{DEFAULT_CONFIDENCE, DEFAULT_IOU, Thresholds};
pub use video::{VideoConfig, VideoFrame, VideoOutput, VideoProgress};
