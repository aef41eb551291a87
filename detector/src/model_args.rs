//! The model and pipeline settings every `detector` subcommand takes (and
//! the all-in-one `polybot` binary), as command-line arguments.

use std::path::{Path, PathBuf};

use clap::Args;
use polybot_inference::LoadError;
use polybot_inference::decode::DecodeLimits;
use polybot_inference::engine::{DEFAULT_ANNOTATED_MAX_SIDE, DetectConfig};
use polybot_inference::geometry::LetterboxMode;
use polybot_inference::model::{
    ModelSource, Precision, PrecisionChoice, PrecisionSetting, default_int8_model_path,
    default_model_path, default_ort_library,
};
use polybot_inference::pool::{Detector, PoolOptions};
use polybot_inference::postprocess::Thresholds;
use polybot_inference::video::{VideoConfig, default_ffmpeg_path};

/// Model and pipeline settings shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// ONNX model file (YOLOv5 or YOLOv8/11 detection export), used with `--precision fp32`.
    #[arg(long, env = "POLYBOT_MODEL", default_value_os_t = default_model_path())]
    pub model: PathBuf,
    /// INT8 model file (built by `cargo xtask setup`), used with `--precision int8`.
    #[arg(long, env = "POLYBOT_MODEL_INT8", default_value_os_t = default_int8_model_path())]
    pub int8_model: PathBuf,
    /// Model precision: `auto` picks `int8` (the static-quantized model) on
    /// CPUs with AVX-512 VNNI or AMX, where it is about 1.6× as fast, and
    /// `fp32` (the exported model) elsewhere, and says which at start-up and
    /// on /metrics (`polybot_detector_precision_choice`); `fp32` or `int8`
    /// force one (see BENCHMARKS.md).
    #[arg(long, env = "POLYBOT_PRECISION", value_enum, default_value_t = PrecisionSetting::default())]
    pub precision: PrecisionSetting,
    /// ONNX Runtime shared library (libonnxruntime.so).
    #[arg(long, env = "ORT_DYLIB_PATH", default_value_os_t = default_ort_library())]
    pub ort_library: PathBuf,
    /// Inference lanes, each with its own session; defaults to the number of CPUs.
    #[arg(long, env = "POLYBOT_LANES")]
    pub lanes: Option<usize>,
    /// ONNX Runtime intra-op threads per lane.
    #[arg(long, env = "POLYBOT_INTRA_THREADS", default_value_t = 1)]
    pub intra_threads: usize,
    /// Minimum confidence for a detection.
    #[arg(long, env = "POLYBOT_CONFIDENCE", default_value_t = polybot_inference::DEFAULT_CONFIDENCE)]
    pub confidence: f32,
    /// IoU above which NMS suppresses a box of the same class.
    #[arg(long, env = "POLYBOT_IOU", default_value_t = polybot_inference::DEFAULT_IOU)]
    pub iou: f32,
    /// Letterbox shape: `rect` (smallest stride-32 rectangle) or `square`.
    #[arg(long, env = "POLYBOT_LETTERBOX", value_enum, default_value_t = LetterboxMode::Rect)]
    pub letterbox: LetterboxMode,
    /// Largest accepted width × height, checked before decoding.
    #[arg(long, env = "POLYBOT_MAX_PIXELS", default_value_t = DecodeLimits::default().max_pixels)]
    pub max_pixels: u64,
    /// Longest side of the annotated image (Telegram's largest photo is 2560).
    /// A JPEG larger than this is decoded at the smallest DCT scale (1/2,
    /// 1/4, 1/8) that still covers the model's input and drawn at that size;
    /// 0 decodes and draws every photo at full resolution. Detections are in
    /// original pixels either way.
    #[arg(long, env = "POLYBOT_ANNOTATED_MAX_SIDE", default_value_t = DEFAULT_ANNOTATED_MAX_SIDE)]
    pub annotated_max_side: u32,
    /// ffmpeg binary that decodes videos, GIFs and round videos (`cargo
    /// xtask setup` fetches a static one; the container images use
    /// Debian's `/usr/bin/ffmpeg`). Checked at start-up.
    #[arg(long, env = "POLYBOT_FFMPEG", default_value_os_t = default_ffmpeg_path())]
    pub ffmpeg: PathBuf,
    /// Most frames sampled from one clip: one a second from the first,
    /// spread evenly over a clip longer than this many seconds.
    #[arg(long, env = "POLYBOT_VIDEO_MAX_FRAMES", default_value_t = VideoConfig::default().max_frames)]
    pub video_max_frames: usize,
    /// Seconds one clip may take to decode and detect; past it the user is
    /// told something went wrong (and the clip is not retried).
    #[arg(long, env = "POLYBOT_VIDEO_DECODE_TIMEOUT", default_value_t = VideoConfig::default().timeout.as_secs())]
    pub video_decode_timeout: u64,
}

impl ModelArgs {
    /// What `--precision` comes to on this CPU, and why.
    pub fn precision_choice(&self) -> PrecisionChoice {
        self.precision.resolve()
    }

    /// The model file for the chosen precision.
    pub fn model_path(&self) -> &Path {
        match self.precision_choice().precision {
            Precision::Fp32 => &self.model,
            Precision::Int8 => &self.int8_model,
        }
    }

    pub fn pool_options(&self) -> PoolOptions {
        let choice = self.precision_choice();
        tracing::info!(
            setting = %self.precision,
            precision = %choice.precision,
            reason = choice.reason,
            "model precision chosen"
        );
        choice.record(self.precision);
        PoolOptions {
            source: ModelSource {
                model: self.model_path().to_path_buf(),
                ort_library: self.ort_library.clone(),
                intra_threads: self.intra_threads,
                precision: choice.precision,
            },
            lanes: self.lanes.unwrap_or_else(num_cpus::get).max(1),
            config: DetectConfig {
                thresholds: Thresholds {
                    confidence: self.confidence,
                    iou: self.iou,
                    ..Thresholds::default()
                },
                letterbox: self.letterbox,
                annotated_max_side: self.annotated_max_side,
                limits: DecodeLimits {
                    max_pixels: self.max_pixels,
                    ..DecodeLimits::default()
                },
                ..DetectConfig::default()
            },
            video: VideoConfig {
                ffmpeg: self.ffmpeg.clone(),
                max_frames: self.video_max_frames.max(1),
                timeout: std::time::Duration::from_secs(self.video_decode_timeout.max(1)),
                ..VideoConfig::default()
            },
        }
    }

    pub fn load(&self) -> Result<Detector, LoadError> {
        Detector::load(&self.pool_options())
    }
}
