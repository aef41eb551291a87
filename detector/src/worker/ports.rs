//! What the job step needs from outside the worker, as traits: an
//! inference engine that lends lanes ([`JobEngine`], the ONNX `Detector` in
//! production) and a sink for reports ([`ResultsSink`], the gateway's
//! `Results` over gRPC). The object store, the table and the queue are
//! `polybot_storage`'s ports, in `Backends`. Tests drive every job kind
//! through fakes of these.

use async_trait::async_trait;
use polybot_domain::{BoxError, ChatId, ChatSettings, Direction, Filter, Label, PredictionId};
use polybot_inference::video::{VideoOutput, VideoProgress};
use polybot_inference::{AnnotatedSize, DetectError, DetectOutput, FilterOutput, Precision};
use polybot_proto::Report;

/// A pool of inference lanes. Reserving a lane before taking work is how
/// back-pressure reaches the queue.
#[async_trait]
pub trait JobEngine: Send + Sync + 'static {
    /// Waits for a free lane; fails once the engine has shut down.
    async fn reserve(&self) -> Result<Lane, DetectError>;
    /// A lane, only if one is free now.
    fn try_reserve(&self) -> Option<Lane>;
    /// How many lanes there are.
    fn lanes(&self) -> usize;
    /// The precision of the loaded model.
    fn precision(&self) -> Precision;
    /// The model's class names, in its order.
    fn classes(&self) -> Vec<String>;
    /// Stops lending lanes; running work finishes.
    fn close(&self);
}

/// A reserved lane: the right to run one piece of work without waiting.
/// Each call uses it up.
#[async_trait]
pub trait EngineLane: Send {
    /// Detection of one photo, annotated at `size`, keeping and drawing
    /// only what the chat's `settings` show.
    async fn detect_sized(
        self: Box<Self>,
        photo: Vec<u8>,
        size: AnnotatedSize,
        settings: ChatSettings,
    ) -> Detected;
    /// A caption's filter on one photo; `seed` makes noise repeatable.
    async fn filter(self: Box<Self>, photo: Vec<u8>, filter: Filter, seed: u64) -> Filtered;
    /// An album's photos joined into one picture.
    async fn concat(self: Box<Self>, photos: Vec<Vec<u8>>, direction: Direction) -> Filtered;
    /// Each of `boxes` (a detection's labels) cut out of its photo at the
    /// box's own size: one JPEG per box, in their order.
    async fn crops(self: Box<Self>, photo: Vec<u8>, boxes: Vec<Label>) -> Cropped;
    /// Frames sampled from a clip, each detected as the chat's `settings`
    /// ask: the key frames annotated, and each class's peak. `progress`
    /// is told after each frame (from the lane's thread: it must not
    /// block).
    async fn video(
        self: Box<Self>,
        clip: Vec<u8>,
        settings: ChatSettings,
        progress: ProgressFn,
    ) -> Videoed;
}

/// Told how far a clip's frames have got.
pub type ProgressFn = Box<dyn Fn(VideoProgress) + Send>;
/// What a lane's clip detection gives.
pub type Videoed = Result<VideoOutput, DetectError>;

/// What a lane's detection gives.
pub type Detected = Result<DetectOutput, DetectError>;
/// What a lane's filter or concat gives.
pub type Filtered = Result<FilterOutput, DetectError>;
/// What a lane's crops give: one JPEG per box.
pub type Cropped = Result<Vec<Vec<u8>>, DetectError>;

/// A reserved lane of some engine.
pub type Lane = Box<dyn EngineLane>;

/// Where finished jobs are reported: the gateway's `Results` service,
/// which answers the user.
#[async_trait]
pub trait ResultsSink: Send + Sync + 'static {
    /// Sends one report; `Ok(duplicate)` once it is acknowledged
    /// (`duplicate`: an earlier delivery's report was already answered).
    async fn report(&self, report: &Report) -> Result<bool, ReportError>;
    /// Tells how far a long job has got, for the user's notice. Best
    /// effort: a failure is only logged by the caller.
    async fn progress(&self, progress: &JobProgress) -> Result<(), ReportError>;
}

/// How far a long job (a clip) has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    pub prediction_id: PredictionId,
    pub chat_id: ChatId,
    pub done: u32,
    pub total: u32,
    /// The language of the user's notice (the job's).
    pub language: polybot_domain::Lang,
}

/// Why a report was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Results restarting or unreachable, a reply still being sent,
    /// Telegram failing for now: sending it again may succeed.
    #[error("Results did not acknowledge the report for now: {0}")]
    Unavailable(#[source] BoxError),
    /// Results refused the report: sending it again will not help.
    #[error("Results refused the report: {0}")]
    Refused(#[source] BoxError),
}

impl ReportError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
