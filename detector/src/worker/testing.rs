//! Test doubles for the worker's ports and a fixture around them, for this
//! crate's unit tests and (with the `test-util` feature) its integration
//! tests: an engine without a model that answers from the bytes it is
//! given, a Results sink that records and answers as told, and the
//! embedded storage backend in a temporary folder.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{
    AlbumAction, AlbumPhoto, AlbumPhotos, ChatId, ChatSettings, Direction, Filter, Job, JobKind,
    JobResult, Label, ObjectKey, PredictionId, PredictionRecord, PredictionSummary, SampledFrame,
    UpdateId, VideoSummary, now_epoch,
};
use polybot_inference::video::{VideoError, VideoFrame, VideoOutput, VideoProgress};
use polybot_inference::{
    AnnotatedSize, BBox, DetectError, DetectOutput, Detection, FilterOutput, Precision, Timings,
};
use polybot_proto::Report;
use polybot_storage::{Attributes, Backends, PutMode, QueueStats, Tenant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::job::JobStep;
use super::ports::{
    Cropped, Detected, EngineLane, Filtered, JobEngine, JobProgress, Lane, ProgressFn, ReportError,
    ResultsSink, Videoed,
};

/// A frame of a [`fake_clip`] that takes the fake engine a second.
pub const SLOW_FRAME: &str = "slow";

/// A clip for the fake engine: a frame a second, each showing `classes`.
pub fn fake_clip(frames: &[&[&str]]) -> Vec<u8> {
    frames
        .iter()
        .map(|classes| classes.join(","))
        .collect::<Vec<_>>()
        .join(";")
        .into_bytes()
}

/// Lanes of a [`FakeEngine`].
pub const FAKE_LANES: usize = 2;
/// The fake engine's model: COCO's first classes.
pub const FAKE_CLASSES: [&str; 6] = ["person", "bicycle", "car", "motorcycle", "airplane", "bus"];
/// The fake engine's own least confidence (the deployment's, in the real
/// one): it finds a bus at 0.9 and a person at 0.2.
pub const FAKE_FLOOR: f32 = 0.25;
/// Bytes the fake engine refuses as not an image.
pub const NOT_A_PICTURE: &[u8] = b"not a picture";
/// Bytes on which the fake engine fails for now (ours, not the photo's).
pub const ENGINE_DOWN: &[u8] = b"engine down";
/// Bytes the fake engine never finishes with.
pub const SLOW: &[u8] = b"slow";
/// A photo past Telegram's limits: the fake engine makes a full copy.
pub const LARGE: &[u8] = b"large photo";

/// What the fake engine was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Detect(AnnotatedSize),
    Filter { filter: Filter, seed: u64 },
    Concat { photos: usize, direction: Direction },
    Crops { boxes: usize },
    Video { settings: ChatSettings },
}

/// An engine without a model: one bus on every photo, the filter's name
/// before the photo's bytes, the photos' bytes joined, `crop {i} of `
/// before the photo's bytes for each box `i`; a clip is read as its
/// frames, one a second, separated by `;`, each the comma-separated
/// classes it shows ([`fake_clip`]); refusals and failures on the special
/// inputs above.
pub struct FakeEngine {
    permits: Arc<Semaphore>,
    calls: Arc<Mutex<Vec<Call>>>,
    reserves: AtomicUsize,
    panic_on_reserve: AtomicBool,
}

impl FakeEngine {
    pub fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(FAKE_LANES)),
            calls: Arc::default(),
            reserves: AtomicUsize::new(0),
            panic_on_reserve: AtomicBool::new(false),
        }
    }

    /// What it was asked, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn free_lanes(&self) -> usize {
        self.permits.available_permits()
    }

    /// How many times a lane was waited for.
    pub fn reserves(&self) -> usize {
        self.reserves.load(Ordering::SeqCst)
    }

    /// The next wait for a lane panics, as a bug in the engine would.
    pub fn panic_on_next_reserve(&self) {
        self.panic_on_reserve.store(true, Ordering::SeqCst);
    }

    fn lane(&self, permit: OwnedSemaphorePermit) -> Lane {
        Box::new(FakeLane {
            calls: Arc::clone(&self.calls),
            _permit: permit,
        })
    }
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl JobEngine for FakeEngine {
    async fn reserve(&self) -> Result<Lane, DetectError> {
        self.reserves.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_reserve.swap(false, Ordering::SeqCst) {
            panic!("the fake engine's lane pool broke");
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| DetectError::PoolClosed)?;
        Ok(self.lane(permit))
    }

    fn try_reserve(&self) -> Option<Lane> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        Some(self.lane(permit))
    }

    fn lanes(&self) -> usize {
        FAKE_LANES
    }

    fn precision(&self) -> Precision {
        Precision::Fp32
    }

    fn classes(&self) -> Vec<String> {
        FAKE_CLASSES.map(String::from).to_vec()
    }

    fn close(&self) {
        self.permits.close();
    }
}

struct FakeLane {
    calls: Arc<Mutex<Vec<Call>>>,
    _permit: OwnedSemaphorePermit,
}

impl FakeLane {
    /// Records `call`; fails as the special inputs say.
    async fn take(&self, call: Call, bytes: &[u8]) -> Result<(), DetectError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
        match bytes {
            NOT_A_PICTURE => Err(DetectError::NotAnImage),
            ENGINE_DOWN => Err(DetectError::PoolClosed),
            SLOW => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl EngineLane for FakeLane {
    async fn detect_sized(
        self: Box<Self>,
        photo: Vec<u8>,
        size: AnnotatedSize,
        settings: ChatSettings,
    ) -> Detected {
        self.take(Call::Detect(size), &photo).await?;
        let full = (size == AnnotatedSize::ForTelegram && photo == LARGE)
            .then(|| [b"full ".as_slice(), &photo].concat());
        let bus = Detection {
            class_id: 5,
            class_name: "bus".into(),
            confidence: 0.9,
            bbox: BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 320.0,
                y2: 240.0,
            },
        };
        // A person below the standard confidence: shown only to a chat
        // that asked for less.
        let person = Detection {
            class_id: 0,
            class_name: "person".into(),
            confidence: 0.2,
            bbox: BBox {
                x1: 320.0,
                y1: 0.0,
                x2: 400.0,
                y2: 240.0,
            },
        };
        Ok(DetectOutput {
            width: 640,
            height: 480,
            detections: [bus, person]
                .into_iter()
                .filter(|d| settings.shows(&d.class_name, d.confidence, FAKE_FLOOR))
                .collect(),
            annotated_jpeg: [b"annotated ".as_slice(), &photo].concat(),
            full_jpeg: full,
            timings: Timings::default(),
        })
    }

    async fn filter(self: Box<Self>, photo: Vec<u8>, filter: Filter, seed: u64) -> Filtered {
        self.take(Call::Filter { filter, seed }, &photo).await?;
        Ok(FilterOutput {
            bytes: [format!("{filter} of ").as_bytes(), &photo].concat(),
            mime: "image/png",
            extension: "png",
            width: 6,
            height: 4,
        })
    }

    async fn concat(self: Box<Self>, photos: Vec<Vec<u8>>, direction: Direction) -> Filtered {
        let call = Call::Concat {
            photos: photos.len(),
            direction,
        };
        self.take(call, &photos.concat()).await?;
        Ok(FilterOutput {
            bytes: photos.join(b" + ".as_slice()),
            mime: "image/jpeg",
            extension: "jpg",
            width: 6 * photos.len() as u32,
            height: 4,
        })
    }

    async fn crops(self: Box<Self>, photo: Vec<u8>, boxes: Vec<Label>) -> Cropped {
        let call = Call::Crops { boxes: boxes.len() };
        self.take(call, &photo).await?;
        Ok((0..boxes.len())
            .map(|i| [format!("crop {i} of ").as_bytes(), &photo].concat())
            .collect())
    }

    async fn video(
        self: Box<Self>,
        clip: Vec<u8>,
        settings: ChatSettings,
        progress: ProgressFn,
    ) -> Videoed {
        let call = Call::Video {
            settings: settings.clone(),
        };
        if clip == NOT_A_PICTURE {
            self.take(call, b"").await?;
            return Err(DetectError::Video(VideoError::NoVideoTrack));
        }
        self.take(call, &clip).await?;
        let text = String::from_utf8_lossy(&clip);
        let frames: Vec<SampledFrame> = text
            .split(';')
            .enumerate()
            .map(|(i, classes)| SampledFrame {
                at: Duration::from_secs(i as u64),
                labels: classes
                    .split(',')
                    .filter(|c| {
                        !c.is_empty() && *c != SLOW_FRAME && settings.shows(c, 0.9, FAKE_FLOOR)
                    })
                    .map(|class| Label {
                        class: class.to_owned(),
                        cx: 0.5,
                        cy: 0.5,
                        width: 0.2,
                        height: 0.2,
                        confidence: 0.9,
                    })
                    .collect(),
            })
            .collect();
        for (i, frame) in text.split(';').enumerate() {
            if frame == SLOW_FRAME {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            progress(VideoProgress {
                done: i + 1,
                total: frames.len(),
            });
        }
        let chosen = polybot_domain::video::key_frames(&frames, VideoSummary::MAX_KEY_FRAMES);
        Ok(VideoOutput {
            duration: Duration::from_secs(frames.len() as u64),
            last_sample: Duration::from_secs(frames.len().saturating_sub(1) as u64),
            width: 640,
            height: 360,
            codec: "fake".into(),
            sampled: frames.len(),
            peaks: polybot_domain::video::peaks(&frames),
            key_frames: chosen
                .into_iter()
                .map(|i| VideoFrame {
                    at: frames[i].at,
                    labels: frames[i].labels.clone(),
                    annotated_jpeg: format!("frame {i} of {text}").into_bytes(),
                })
                .collect(),
            decode: Duration::ZERO,
            detect: Duration::ZERO,
        })
    }
}

/// How the fake Results sink answers one report.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Ack,
    Unavailable,
    Refused,
    /// No answer until [`FakeResults::answer_now`], then an ack: the
    /// gateway slow or gone.
    Hang,
}

/// A Results sink that records every report and answers from a script,
/// then always as `then`. Clones share it.
#[derive(Clone)]
pub struct FakeResults {
    reports: Arc<Mutex<Vec<Report>>>,
    progress: Arc<Mutex<Vec<JobProgress>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    then: Answer,
    released: Arc<AtomicBool>,
}

impl FakeResults {
    pub fn answering(script: &[Answer], then: Answer) -> Self {
        Self {
            reports: Arc::default(),
            progress: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then,
            released: Arc::default(),
        }
    }

    pub fn acking() -> Self {
        Self::answering(&[], Answer::Ack)
    }

    /// Every report received, each attempt counted.
    pub fn reports(&self) -> Vec<Report> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every progress report received.
    pub fn progress(&self) -> Vec<JobProgress> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hanging reports are answered from now on.
    pub fn answer_now(&self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl ResultsSink for FakeResults {
    async fn report(&self, report: &Report) -> Result<bool, ReportError> {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(report.clone());
        let next = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        match next.unwrap_or(self.then) {
            Answer::Ack => Ok(false),
            Answer::Unavailable => Err(ReportError::Unavailable("the gateway restarts".into())),
            Answer::Refused => Err(ReportError::Refused("not this chat's prediction".into())),
            Answer::Hang => {
                while !self.released.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(false)
            }
        }
    }

    async fn progress(&self, progress: &JobProgress) -> Result<(), ReportError> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(*progress);
        Ok(())
    }
}

/// An engine and the embedded backend in a temporary folder, with the
/// requests stored as the gateway stores them.
pub struct Fixture<E = FakeEngine> {
    pub backends: Backends,
    pub engine: Arc<E>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// On the [`FakeEngine`].
    pub fn new() -> Self {
        Self::with_engine(FakeEngine::new())
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: JobEngine> Fixture<E> {
    /// On `engine`. A test's setup: it panics if the backend cannot open.
    pub fn with_engine(engine: E) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let backends =
            polybot_storage::local::open(dir.path(), Default::default()).expect("local backends");
        Self {
            backends,
            engine: Arc::new(engine),
            _dir: dir,
        }
    }

    /// The job step on this engine and backend.
    pub fn step(&self) -> JobStep {
        JobStep::new(self.engine.clone(), self.backends.clone(), None)
    }
}

/// A test's setup: every failure panics.
impl<E> Fixture<E> {
    /// Stores `photo` at `key`, as the gateway stores an original.
    pub async fn put(&self, key: &ObjectKey, photo: &[u8]) {
        let bytes = Bytes::copy_from_slice(photo);
        let stored = self
            .backends
            .objects
            .put(key, bytes, "image/jpeg", PutMode::CreateOnly);
        stored.await.expect("put");
    }

    /// Records `job` as the gateway does.
    pub async fn create(&self, job: Job) -> Job {
        let record = PredictionRecord::pending(&job);
        self.backends.table.create(&record).await.expect("create");
        job
    }

    /// A request for the clip `clip` (see [`fake_clip`]), stored as the
    /// gateway stores it.
    pub async fn clip(&self, clip: &[u8], settings: ChatSettings) -> Job {
        let id = PredictionId::new();
        let chat = ChatId(42);
        let key = ObjectKey::original(chat, id, "mp4");
        self.put(&key, clip).await;
        let job = Job::video(
            id,
            chat,
            7,
            UpdateId(0),
            key,
            polybot_domain::ClipKind::Video,
        )
        .with_settings(settings);
        self.create(job).await
    }

    /// A request for `photo` with `kind`, stored as the gateway stores it.
    pub async fn request(&self, photo: &[u8], kind: JobKind) -> Job {
        self.request_in(ChatId(42), photo, kind).await
    }

    /// A request of `chat` for `photo` with `kind`.
    pub async fn request_in(&self, chat: ChatId, photo: &[u8], kind: JobKind) -> Job {
        let job = Job::stored_photo(chat, 7, kind);
        self.put(job.original_key(), photo).await;
        self.create(job).await
    }

    /// An album of `photos` (`None`: a photo never stored, as if gone).
    pub async fn album(&self, photos: &[Option<&[u8]>], action: AlbumAction) -> Job {
        let chat = ChatId(42);
        let mut members = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let key = ObjectKey::original(chat, PredictionId::new(), "jpg");
            if let Some(photo) = photo {
                self.put(&key, photo).await;
            }
            members.push(AlbumPhoto {
                message_id: 7 + i as i64,
                original_key: key,
                caption: None,
            });
        }
        let photos = AlbumPhotos::new(members).expect("photos");
        let id = PredictionId::new();
        self.create(Job::album(id, chat, UpdateId(0), photos, action))
            .await
    }

    /// A detection of `photo` that found `labels`, stored as the gateway
    /// and a worker store one (without its annotated picture).
    pub async fn detected(&self, photo: &[u8], labels: Vec<Label>) -> Job {
        let job = self.request(photo, JobKind::Detect).await;
        let summary = PredictionSummary {
            prediction_id: job.prediction_id,
            original_img_path: job.original_key().to_string(),
            predicted_img_path: ObjectKey::predicted(job.chat_id, job.prediction_id).to_string(),
            full_img_path: None,
            labels,
            time: now_epoch(),
            settings: ChatSettings::default(),
        };
        let result = JobResult::Detected(summary);
        let saved = self.backends.table.save_result(&result).await;
        assert!(
            saved.expect("save the detection").is_stored(),
            "a new detection"
        );
        job
    }

    /// A request for the crops of `detection` (by its answer, message 8),
    /// stored as the gateway stores it.
    pub async fn crops_of(&self, detection: &Job) -> Job {
        let job = Job::crops(
            PredictionId::new(),
            detection.chat_id,
            8,
            detection.original_key().clone(),
            detection.prediction_id,
        );
        self.create(job).await
    }

    pub async fn record(&self, id: PredictionId) -> PredictionRecord {
        let record = self.backends.table.get(id).await.expect("get");
        record.expect("the record")
    }

    /// The stored object at `path`.
    pub async fn stored(&self, path: &str) -> Bytes {
        let key = ObjectKey::parse(path.to_owned()).expect("key");
        self.backends.objects.get(&key).await.expect("stored")
    }

    /// Puts `job` on the queue, as the gateway does: its chat's tenant.
    pub async fn send(&self, job: &Job) {
        let jobs = &self.backends.jobs;
        let attributes = Attributes::new();
        let tenant = Tenant::chat(job.chat_id);
        let body = job.to_json();
        let sent = jobs.send_for(Some(&tenant), &body, &attributes);
        sent.await.expect("send");
    }

    pub async fn queue(&self) -> QueueStats {
        self.backends.jobs.stats().await.expect("stats")
    }
}
