//! A bounded pool of inference lanes. Each lane is an OS thread that owns
//! one ORT session, so CPU-heavy work never runs on the async runtime.
//! Callers reserve a lane before taking work (e.g. receiving a queue
//! message), which is how back-pressure reaches the job queue.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use polybot_domain::{ChatSettings, Direction, Filter, Label};

use crate::engine::{AnnotatedSize, DetectConfig, Engine};
use crate::error::{DecoderError, DetectError, LoadError, panic_message};
use crate::filtering::FilterOutput;
use crate::model::{ModelInfo, ModelSource};
use crate::output::{DetectOutput, Timings};
use crate::video::{VideoConfig, VideoOutput, VideoProgress};

struct Task {
    bytes: Vec<u8>,
    work: Work,
    span: tracing::Span,
    // Released when the lane has finished with the task, not when the
    // caller stops waiting, so the permit count is the true number of free lanes.
    permit: OwnedSemaphorePermit,
}

/// What a lane does with a task's photo, and where the answer goes.
enum Work {
    Detect {
        size: AnnotatedSize,
        settings: ChatSettings,
        reply: oneshot::Sender<Result<DetectOutput, DetectError>>,
    },
    Filter {
        filter: Filter,
        seed: u64,
        reply: oneshot::Sender<Result<FilterOutput, DetectError>>,
    },
    Concat {
        photos: Vec<Vec<u8>>,
        direction: Direction,
        reply: oneshot::Sender<Result<FilterOutput, DetectError>>,
    },
    Crops {
        boxes: Vec<Label>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, DetectError>>,
    },
    Video {
        settings: ChatSettings,
        progress: Box<dyn Fn(VideoProgress) + Send>,
        reply: oneshot::Sender<Result<VideoOutput, DetectError>>,
    },
}

struct Inner {
    tx: crossbeam_channel::Sender<Task>,
    permits: Arc<Semaphore>,
    lanes: usize,
    info: Arc<ModelInfo>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// Options for [`Detector::load`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub source: ModelSource,
    pub lanes: usize,
    pub config: DetectConfig,
    /// How clips are sampled (ffmpeg, limits); see [`VideoConfig::check`].
    pub video: VideoConfig,
}

/// The detector: a handle to the lane pool. Cheap to clone.
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

/// A reserved lane: the right to run one detection without waiting.
pub struct Slot {
    inner: Arc<Inner>,
    permit: OwnedSemaphorePermit,
}

impl Detector {
    /// Opens one session per lane and warms each up with one inference, so
    /// that the first real photo is not the slow one.
    /// ffmpeg, which decodes clips, is checked first: a detector that
    /// could not answer a video does not start.
    pub fn load(opts: &PoolOptions) -> Result<Self, LoadError> {
        let ffmpeg = opts.video.check().map_err(|source| LoadError::Ffmpeg {
            path: opts.video.ffmpeg.clone(),
            source,
        })?;
        tracing::debug!(%ffmpeg, "ffmpeg found");
        let lanes = opts.lanes.max(1);
        let mut engines = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            let mut engine = Engine::open(&opts.source, opts.config)?;
            let grey = image::RgbImage::from_pixel(64, 48, image::Rgb([114, 114, 114]));
            engine
                .detect_image(&grey, &mut Timings::default())
                .map_err(|source| LoadError::WarmUp {
                    path: opts.source.model.clone(),
                    source,
                })?;
            engines.push(engine);
        }
        let info = Arc::clone(engines[0].info());
        crate::metrics::model_loaded(opts.source.precision, lanes);
        tracing::info!(
            precision = %opts.source.precision,
            model = %opts.source.model.display(),
            lanes,
            intra_threads = opts.source.intra_threads,
            annotated_max_side = opts.config.annotated_max_side,
            "model loaded"
        );
        let (tx, rx) = crossbeam_channel::unbounded::<Task>();
        let video = Arc::new(opts.video.clone());
        let mut threads = Vec::with_capacity(lanes);
        for (i, engine) in engines.into_iter().enumerate() {
            let rx = rx.clone();
            let video = Arc::clone(&video);
            let handle = std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || lane(engine, &video, rx))
                .map_err(LoadError::Threads)?;
            threads.push(handle);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                permits: Arc::new(Semaphore::new(lanes)),
                lanes,
                info,
                threads: std::sync::Mutex::new(threads),
            }),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    pub fn lanes(&self) -> usize {
        self.inner.lanes
    }

    /// The precision of the loaded model.
    pub fn precision(&self) -> crate::model::Precision {
        self.inner.info.precision
    }

    /// Lanes not running or reserved for a detection right now.
    pub fn free_lanes(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// Waits for a free lane.
    pub async fn reserve(&self) -> Result<Slot, DetectError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| DetectError::PoolClosed)?;
        Ok(Slot {
            inner: Arc::clone(&self.inner),
            permit,
        })
    }

    /// Reserves a lane only if one is free now.
    pub fn try_reserve(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.inner.permits).try_acquire_owned().ok()?;
        Some(Slot {
            inner: Arc::clone(&self.inner),
            permit,
        })
    }

    /// Reserve a lane, then detect.
    pub async fn detect(&self, bytes: Vec<u8>) -> Result<DetectOutput, DetectError> {
        self.reserve().await?.detect(bytes).await
    }

    /// Stops accepting work; lanes finish what they hold and exit.
    pub fn close(&self) {
        self.inner.permits.close();
    }

    /// Closes the pool and waits for the lane threads (blocking).
    pub fn join(self) {
        self.close();
        let handles = match Arc::try_unwrap(self.inner) {
            Ok(inner) => {
                drop(inner.tx);
                inner
                    .threads
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
            }
            // Other handles still exist; their drop will end the lanes.
            Err(_) => return,
        };
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Slot {
    /// Runs the pipeline on the reserved lane, annotated at the bounded size.
    pub async fn detect(self, bytes: Vec<u8>) -> Result<DetectOutput, DetectError> {
        self.detect_sized(bytes, AnnotatedSize::Bounded).await
    }

    /// Runs the pipeline on the reserved lane, annotated at `size`.
    pub async fn detect_sized(
        self,
        bytes: Vec<u8>,
        size: AnnotatedSize,
    ) -> Result<DetectOutput, DetectError> {
        self.detect_for(bytes, size, ChatSettings::default()).await
    }

    /// Runs the pipeline on the reserved lane, annotated at `size`, as a
    /// chat's `settings` ask (see [`crate::Engine::detect_for`]).
    pub async fn detect_for(
        self,
        bytes: Vec<u8>,
        size: AnnotatedSize,
        settings: ChatSettings,
    ) -> Result<DetectOutput, DetectError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            bytes,
            Work::Detect {
                size,
                settings,
                reply,
            },
        )?;
        rx.await.map_err(|_| DetectError::PoolClosed)?
    }

    /// Applies a caption's filter on the reserved lane. `seed` makes salt
    /// and pepper repeatable (derive it from the request).
    pub async fn filter(
        self,
        bytes: Vec<u8>,
        filter: Filter,
        seed: u64,
    ) -> Result<FilterOutput, DetectError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            bytes,
            Work::Filter {
                filter,
                seed,
                reply,
            },
        )?;
        rx.await.map_err(|_| DetectError::PoolClosed)?
    }

    /// Joins an album's photos on the reserved lane.
    pub async fn concat(
        self,
        photos: Vec<Vec<u8>>,
        direction: Direction,
    ) -> Result<FilterOutput, DetectError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Vec::new(),
            Work::Concat {
                photos,
                direction,
                reply,
            },
        )?;
        rx.await.map_err(|_| DetectError::PoolClosed)?
    }

    /// Cuts each of `boxes` (a detection's labels, normalised to the
    /// upright original) out of the photo at full resolution, on the
    /// reserved lane: one JPEG per box, in their order.
    pub async fn crops(
        self,
        bytes: Vec<u8>,
        boxes: Vec<Label>,
    ) -> Result<Vec<Vec<u8>>, DetectError> {
        let (reply, rx) = oneshot::channel();
        self.send(bytes, Work::Crops { boxes, reply })?;
        rx.await.map_err(|_| DetectError::PoolClosed)?
    }

    /// Samples a clip's frames with ffmpeg on the reserved lane and detects
    /// each as a chat's `settings` ask, calling `progress` after each
    /// frame (on the lane's thread: keep it quick); see
    /// [`crate::video::detect_clip`].
    pub async fn video(
        self,
        clip: Vec<u8>,
        settings: ChatSettings,
        progress: Box<dyn Fn(VideoProgress) + Send>,
    ) -> Result<VideoOutput, DetectError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            clip,
            Work::Video {
                settings,
                progress,
                reply,
            },
        )?;
        rx.await.map_err(|_| DetectError::PoolClosed)?
    }

    fn send(self, bytes: Vec<u8>, work: Work) -> Result<(), DetectError> {
        let task = Task {
            bytes,
            work,
            span: tracing::Span::current(),
            permit: self.permit,
        };
        self.inner
            .tx
            .send(task)
            .map_err(|_| DetectError::PoolClosed)
    }
}

/// Runs `f`, turning a panic (a bug in a codec) into an error for this
/// photo, so it costs one photo and not the lane.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, DetectError>) -> Result<T, DetectError> {
    guarded_as(what, f, |msg| {
        DetectError::Corrupt(DecoderError::Panicked(format!(
            "the decoder failed on this file ({msg})"
        )))
    })
}

/// [`guarded`], with the error a panic stands for.
fn guarded_as<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, DetectError>,
    error: impl FnOnce(&str) -> DetectError,
) -> Result<T, DetectError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic_message(&*panic);
        tracing::error!(%msg, "{what} panicked");
        Err(error(msg))
    })
}

fn lane(mut engine: Engine, video: &VideoConfig, rx: crossbeam_channel::Receiver<Task>) {
    while let Ok(Task {
        bytes,
        work,
        span,
        permit,
    }) = rx.recv()
    {
        let _entered = span.enter();
        match work {
            Work::Detect {
                size,
                settings,
                reply,
            } => {
                let span = tracing::info_span!("detect", image_bytes = bytes.len());
                let _s = span.enter();
                let result = guarded("detection", || engine.detect_for(&bytes, size, &settings));
                if let Ok(out) = &result {
                    let t = &out.timings;
                    tracing::debug!(
                        decode_ms = t.decode.as_secs_f64() * 1e3,
                        preprocess_ms = t.preprocess.as_secs_f64() * 1e3,
                        inference_ms = t.inference.as_secs_f64() * 1e3,
                        postprocess_ms = t.postprocess.as_secs_f64() * 1e3,
                        annotate_ms = t.annotate.as_secs_f64() * 1e3,
                        encode_ms = t.encode.as_secs_f64() * 1e3,
                        objects = out.detections.len(),
                        "detected"
                    );
                }
                // Free the lane before answering, so a caller that reserves
                // again right after its answer finds it free.
                drop(permit);
                // The caller may have given up waiting; not the lane's problem.
                let _ = reply.send(result);
            }
            Work::Filter {
                filter,
                seed,
                reply,
            } => {
                let limits = engine.config().limits;
                let result = guarded("the filter", || {
                    crate::filtering::run(&bytes, limits, filter, seed)
                });
                drop(permit);
                let _ = reply.send(result);
            }
            Work::Concat {
                photos,
                direction,
                reply,
            } => {
                let limits = engine.config().limits;
                let result = guarded("concat", || {
                    crate::filtering::run_concat(&photos, limits, direction)
                });
                drop(permit);
                let _ = reply.send(result);
            }
            Work::Crops { boxes, reply } => {
                let span =
                    tracing::info_span!("crops", image_bytes = bytes.len(), boxes = boxes.len());
                let _s = span.enter();
                let config = engine.config();
                let (limits, quality) = (config.limits, config.jpeg_quality);
                let result = guarded("cropping", || {
                    crate::crops::run(&bytes, limits, &boxes, quality)
                });
                drop(permit);
                let _ = reply.send(result);
            }
            Work::Video {
                settings,
                progress,
                reply,
            } => {
                let span = tracing::info_span!("video", clip_bytes = bytes.len());
                let _s = span.enter();
                // ffmpeg runs apart, so a panic here is ours, on this clip:
                // permanent, and named as the clip's failure.
                let result = guarded_as(
                    "video detection",
                    || crate::video::detect_clip(&mut engine, video, &bytes, &settings, &*progress),
                    |msg| {
                        crate::error::VideoError::Corrupt {
                            detail: format!("the detector failed on this clip ({msg})"),
                        }
                        .into()
                    },
                );
                if let Ok(out) = &result {
                    tracing::debug!(
                        codec = %out.codec,
                        sampled = out.sampled,
                        decode_ms = out.decode.as_secs_f64() * 1e3,
                        detect_ms = out.detect.as_secs_f64() * 1e3,
                        "clip detected"
                    );
                }
                drop(permit);
                let _ = reply.send(result);
            }
        }
    }
}
