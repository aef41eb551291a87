//! The worker driven through fakes: an engine without a model (it answers
//! from the bytes it is given), a Results sink that records and answers as
//! told, and the embedded storage backend in a temporary folder. Every job
//! kind, the failures, the reports, shutdown and supervision; no ONNX
//! runtime or model is needed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{
    AlbumAction, AlbumPhoto, AlbumPhotos, BlurSize, ChatId, Direction, FailureKind, Filter,
    Fraction, Job, JobInput, JobKind, JobResult, ObjectKey, PredictionId, PredictionRecord,
    PredictionStatus, QuarterTurns, UpdateId,
};
use polybot_inference::{
    AnnotatedSize, BBox, DetectError, DetectOutput, Detection, FilterOutput, Precision, Timings,
};
use polybot_proto::{Outcome, Report};
use polybot_storage::{
    Attributes, Backends, Delivery, JobQueue, ObjectStore, PutMode, QueueSettings, QueueStats,
    Receipt, StorageError,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::{DEFAULT_VISIBILITY, WorkerConfig};
use super::job::{JobStep, RetryLater};
use super::ports::{EngineLane, JobEngine, Lane, ReportError, ResultsSink};
use super::step::{Ctx, chain, process};
use super::{RECEIVE_LOOP, start_with};

const LANES: usize = 2;
/// Bytes the fake engine refuses as not an image.
const NOT_A_PICTURE: &[u8] = b"not a picture";
/// Bytes on which the fake engine fails for now (ours, not the photo's).
const ENGINE_DOWN: &[u8] = b"engine down";
/// Bytes the fake engine never finishes with.
const SLOW: &[u8] = b"slow";
/// A photo past Telegram's limits: the fake engine makes a full copy.
const LARGE: &[u8] = b"large photo";

/// What the fake engine was asked to do.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Detect(AnnotatedSize),
    Filter { filter: Filter, seed: u64 },
    Concat { photos: usize, direction: Direction },
}

/// An engine without a model: it answers from the bytes it is given.
struct FakeEngine {
    permits: Arc<Semaphore>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl FakeEngine {
    fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(LANES)),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    fn lane(&self, permit: OwnedSemaphorePermit) -> Lane {
        Box::new(FakeLane {
            calls: Arc::clone(&self.calls),
            _permit: permit,
        })
    }
}

#[async_trait]
impl JobEngine for FakeEngine {
    async fn reserve(&self) -> Result<Lane, DetectError> {
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
        LANES
    }

    fn precision(&self) -> Precision {
        Precision::Fp32
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
    /// The bytes' own answer, when they are one of the special inputs.
    async fn refuse(&self, call: Call, bytes: &[u8]) -> Result<(), DetectError> {
        self.calls.lock().expect("calls").push(call);
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
        bytes: Vec<u8>,
        size: AnnotatedSize,
    ) -> Result<DetectOutput, DetectError> {
        self.refuse(Call::Detect(size), &bytes).await?;
        let full = (size == AnnotatedSize::ForTelegram && bytes == LARGE)
            .then(|| [b"full ".as_slice(), &bytes].concat());
        Ok(DetectOutput {
            width: 640,
            height: 480,
            detections: vec![Detection {
                class_id: 5,
                class_name: "bus".into(),
                confidence: 0.9,
                bbox: BBox {
                    x1: 0.0,
                    y1: 0.0,
                    x2: 320.0,
                    y2: 240.0,
                },
            }],
            annotated_jpeg: [b"annotated ".as_slice(), &bytes].concat(),
            full_jpeg: full,
            timings: Timings::default(),
        })
    }

    async fn filter(
        self: Box<Self>,
        bytes: Vec<u8>,
        filter: Filter,
        seed: u64,
    ) -> Result<FilterOutput, DetectError> {
        self.refuse(Call::Filter { filter, seed }, &bytes).await?;
        Ok(FilterOutput {
            bytes: [format!("{filter} of ").as_bytes(), &bytes].concat(),
            mime: "image/png",
            extension: "png",
            width: 6,
            height: 4,
        })
    }

    async fn concat(
        self: Box<Self>,
        photos: Vec<Vec<u8>>,
        direction: Direction,
    ) -> Result<FilterOutput, DetectError> {
        let call = Call::Concat {
            photos: photos.len(),
            direction,
        };
        self.refuse(call, &photos.concat()).await?;
        Ok(FilterOutput {
            bytes: photos.join(b" + ".as_slice()),
            mime: "image/jpeg",
            extension: "jpg",
            width: 6 * photos.len() as u32,
            height: 4,
        })
    }
}

/// How the fake Results sink answers one report.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ack,
    Unavailable,
    Refused,
    /// No answer until [`FakeResults::answer_now`], then an ack: the
    /// gateway slow or gone.
    Hang,
}

/// A Results sink that records every report and answers from a script
/// (then with `then`).
#[derive(Clone)]
struct FakeResults {
    reports: Arc<Mutex<Vec<Report>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    then: Answer,
    released: Arc<AtomicBool>,
}

impl FakeResults {
    fn answering(script: &[Answer], then: Answer) -> Self {
        Self {
            reports: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then,
            released: Arc::default(),
        }
    }

    fn acking() -> Self {
        Self::answering(&[], Answer::Ack)
    }

    fn reports(&self) -> Vec<Report> {
        self.reports.lock().expect("reports").clone()
    }

    fn answer_now(&self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl ResultsSink for FakeResults {
    async fn report(&self, report: &Report) -> Result<bool, ReportError> {
        self.reports.lock().expect("reports").push(report.clone());
        let answer = self
            .script
            .lock()
            .expect("script")
            .pop_front()
            .unwrap_or(self.then);
        match answer {
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
}

struct Fixture {
    backends: Backends,
    engine: Arc<FakeEngine>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends =
            polybot_storage::local::open(dir.path(), Default::default()).expect("local backends");
        Self {
            backends,
            engine: Arc::new(FakeEngine::new()),
            _dir: dir,
        }
    }

    fn step(&self) -> JobStep {
        JobStep::new(self.engine.clone(), self.backends.clone(), None)
    }

    fn ctx(&self, results: &FakeResults, job_timeout: Duration) -> Ctx {
        Ctx {
            step: self.step(),
            results: Arc::new(results.clone()),
            config: WorkerConfig {
                job_timeout,
                ..WorkerConfig::default()
            },
            visibility: DEFAULT_VISIBILITY,
        }
    }

    async fn put(&self, key: &ObjectKey, photo: &[u8]) {
        self.backends
            .objects
            .put(
                key,
                Bytes::copy_from_slice(photo),
                "image/jpeg",
                PutMode::CreateOnly,
            )
            .await
            .expect("put");
    }

    /// Records `job` as the gateway does.
    async fn create(&self, job: Job) -> Job {
        self.backends
            .table
            .create(&PredictionRecord::pending(&job))
            .await
            .expect("create");
        job
    }

    /// A request for `photo` with `kind`, stored as the gateway stores it.
    async fn request(&self, photo: &[u8], kind: JobKind) -> Job {
        let job = Job::stored_photo(ChatId(42), 7, kind);
        self.put(job.original_key(), photo).await;
        self.create(job).await
    }

    /// An album of `photos` (`None`: a photo never stored, as if gone).
    async fn album(&self, photos: &[Option<&[u8]>], action: AlbumAction) -> Job {
        let (chat, id) = (ChatId(42), PredictionId::new());
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
        self.create(Job::album(id, chat, UpdateId(0), photos, action))
            .await
    }

    async fn record(&self, id: PredictionId) -> PredictionRecord {
        self.backends
            .table
            .get(id)
            .await
            .expect("get")
            .expect("the record")
    }

    async fn stored(&self, path: &str) -> Bytes {
        let key = ObjectKey::parse(path.to_owned()).expect("key");
        self.backends.objects.get(&key).await.expect("stored")
    }

    /// `job` sent to the queue and received, as the worker receives it.
    async fn deliver(&self, job: &Job) -> Delivery {
        let jobs = &self.backends.jobs;
        jobs.send(&job.to_json(), &Attributes::new())
            .await
            .expect("send");
        let mut got = jobs
            .receive(1, Duration::from_secs(1))
            .await
            .expect("receive");
        got.pop().expect("the job")
    }

    async fn queue(&self) -> QueueStats {
        self.backends.jobs.stats().await.expect("stats")
    }

    /// Delivers `job` and runs its step to the end, answered by `results`.
    async fn process(&self, job: &Job, results: &FakeResults, job_timeout: Duration) {
        let ctx = self.ctx(results, job_timeout);
        let delivery = self.deliver(job).await;
        let lane = self.engine.reserve().await.expect("a lane");
        process(&ctx, delivery, lane).await;
    }
}

fn success(report: &Report) -> &JobResult {
    match &report.outcome {
        Outcome::Success(result) => result,
        other => panic!("not a success: {other:?}"),
    }
}

fn failure_kind(report: &Report) -> FailureKind {
    match &report.outcome {
        Outcome::Failure { kind, .. } => *kind,
        other => panic!("not a failure: {other:?}"),
    }
}

/// The seed a request's noise is made from: its id's.
fn seed_of(id: PredictionId) -> u64 {
    id.as_uuid().as_u64_pair().0
}

const DONE: QueueStats = QueueStats {
    visible: 0,
    in_flight: 0,
};
const LEFT_FOR_REDELIVERY: QueueStats = QueueStats {
    visible: 0,
    in_flight: 1,
};

#[tokio::test]
async fn a_detection_is_stored_and_reported_with_its_labels() {
    let f = Fixture::new();
    let job = f.request(b"a bus", JobKind::Detect).await;
    let report = f.step().run(&job).await.expect("done");
    let JobResult::Detected(summary) = success(&report) else {
        panic!("{report:?}");
    };
    assert!(summary.counts_text().contains("bus ×1"), "{summary:?}");
    assert_eq!(report.reply_to_message_id, Some(7));
    assert_eq!(summary.original_img_path, job.original_key().to_string());
    assert_eq!(
        summary.predicted_img_path,
        ObjectKey::predicted(job.chat_id, job.prediction_id).to_string()
    );
    assert_eq!(
        f.stored(&summary.predicted_img_path).await,
        b"annotated a bus".as_slice()
    );
    assert_eq!(summary.full_img_path, None);
    assert_eq!(
        f.engine.calls(),
        vec![Call::Detect(AnnotatedSize::ForTelegram)]
    );
    let record = f.record(job.prediction_id).await;
    assert_eq!(record.result, Some(JobResult::Detected(summary.clone())));
}

#[tokio::test]
async fn a_photo_past_telegrams_limits_also_goes_back_at_full_resolution() {
    let f = Fixture::new();
    let job = f.request(LARGE, JobKind::Detect).await;
    let report = f.step().run(&job).await.expect("done");
    let JobResult::Detected(summary) = success(&report) else {
        panic!("{report:?}");
    };
    let full = summary.full_img_path.clone().expect("a full copy");
    assert_eq!(
        full,
        ObjectKey::predicted_full(job.chat_id, job.prediction_id).to_string()
    );
    assert_eq!(f.stored(&full).await, b"full large photo".as_slice());
}

#[tokio::test]
async fn every_filter_stores_and_reports_its_picture_made_with_the_requests_seed() {
    let f = Fixture::new();
    let filters = [
        Filter::Blur {
            size: BlurSize::new(9).expect("in range"),
        },
        Filter::Contour,
        Filter::Rotate {
            quarter_turns: QuarterTurns::DEFAULT,
        },
        Filter::Segment { threshold: 100 },
        Filter::SaltAndPepper {
            fraction: Fraction::DEFAULT,
        },
    ];
    for filter in filters {
        let job = f.request(b"a photo", JobKind::Filter(filter)).await;
        let report = f.step().run(&job).await.expect("done");
        let JobResult::Filtered(out) = success(&report) else {
            panic!("{report:?}");
        };
        assert_eq!((out.filter, out.width, out.height), (filter, 6, 4));
        assert_eq!(out.mime_type, "image/png");
        assert_eq!(
            out.output_img_path,
            ObjectKey::filtered(job.chat_id, job.prediction_id, "png").to_string()
        );
        assert_eq!(out.original_img_path, job.original_key().to_string());
        let expected = format!("{filter} of a photo");
        assert_eq!(f.stored(&out.output_img_path).await, expected.as_bytes());
        let seed = seed_of(job.prediction_id);
        assert_eq!(
            f.engine.calls().last(),
            Some(&Call::Filter { filter, seed })
        );
        let record = f.record(job.prediction_id).await;
        assert_eq!(record.result.as_ref(), Some(success(&report)));
    }
}

#[tokio::test]
async fn an_album_runs_its_kind_on_each_photo_and_names_the_ones_that_cannot_be_used() {
    let f = Fixture::new();
    let photos: [Option<&[u8]>; 4] = [Some(b"first"), Some(NOT_A_PICTURE), None, Some(b"last")];
    let job = f
        .album(&photos, AlbumAction::Each(JobKind::Filter(Filter::Contour)))
        .await;
    let report = f.step().run(&job).await.expect("done");
    assert_eq!(
        report.reply_to_message_id,
        Some(7),
        "quotes the first photo"
    );
    let JobResult::Album(album) = success(&report) else {
        panic!("{report:?}");
    };
    let failures: Vec<_> = album.items.iter().map(|i| i.failure).collect();
    assert_eq!(
        failures,
        [
            None,
            Some(FailureKind::NotAnImage),
            Some(FailureKind::Internal),
            None
        ]
    );
    for (index, photo) in [(0, "first"), (3, "last")] {
        let Some(JobResult::Filtered(out)) = &album.items[index].result else {
            panic!("{:?}", album.items[index]);
        };
        let key = ObjectKey::album_item(job.chat_id, job.prediction_id, index, "png");
        assert_eq!(out.output_img_path, key.to_string());
        let expected = format!("{} of {photo}", Filter::Contour);
        assert_eq!(f.stored(key.as_str()).await, expected.as_bytes());
    }
    // Each photo its own noise, the same on every delivery.
    let seed = seed_of(job.prediction_id);
    let seeds: Vec<_> = f
        .engine
        .calls()
        .into_iter()
        .map(|call| match call {
            Call::Filter { seed, .. } => seed,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seeds, [seed, seed ^ 1, seed ^ 3]);
    assert_eq!(f.engine.permits.available_permits(), LANES, "lanes freed");
    let record = f.record(job.prediction_id).await;
    assert_eq!(record.result.as_ref(), Some(success(&report)));
}

#[tokio::test]
async fn an_albums_detections_are_drawn_at_the_bounded_size_under_the_albums_keys() {
    let f = Fixture::new();
    let photos: [Option<&[u8]>; 2] = [Some(b"one"), Some(LARGE)];
    let job = f.album(&photos, AlbumAction::Each(JobKind::Detect)).await;
    let report = f.step().run(&job).await.expect("done");
    let JobResult::Album(album) = success(&report) else {
        panic!("{report:?}");
    };
    for (index, item) in album.items.iter().enumerate() {
        let Some(JobResult::Detected(summary)) = &item.result else {
            panic!("{item:?}");
        };
        let key = ObjectKey::album_item(job.chat_id, job.prediction_id, index, "jpg");
        assert_eq!(summary.predicted_img_path, key.to_string());
        assert_eq!(summary.full_img_path, None);
        assert!(summary.counts_text().contains("bus ×1"), "{summary:?}");
    }
    assert_eq!(
        f.engine.calls(),
        vec![Call::Detect(AnnotatedSize::Bounded); 2]
    );
}

#[tokio::test]
async fn an_album_joined_by_concat_is_one_picture_of_its_photos_in_order() {
    let f = Fixture::new();
    let photos: [Option<&[u8]>; 2] = [Some(b"left"), Some(b"right")];
    let direction = Direction::Horizontal;
    let job = f.album(&photos, AlbumAction::Concat(direction)).await;
    let report = f.step().run(&job).await.expect("done");
    let JobResult::Joined(joined) = success(&report) else {
        panic!("{report:?}");
    };
    let JobInput::Album { photos, .. } = &job.input else {
        panic!("{job:?}");
    };
    let originals: Vec<String> = photos
        .into_iter()
        .map(|p| p.original_key.to_string())
        .collect();
    assert_eq!(joined.original_img_paths, originals);
    assert_eq!((joined.direction, joined.width), (direction, 12));
    assert_eq!(
        joined.output_img_path,
        ObjectKey::filtered(job.chat_id, job.prediction_id, "jpg").to_string()
    );
    assert_eq!(
        f.stored(&joined.output_img_path).await,
        b"left + right".as_slice()
    );
    assert_eq!(
        f.engine.calls(),
        vec![Call::Concat {
            photos: 2,
            direction
        }]
    );
}

#[tokio::test]
async fn an_album_with_a_photo_gone_cannot_be_joined_and_says_so() {
    let f = Fixture::new();
    let photos: [Option<&[u8]>; 2] = [Some(b"left"), None];
    let job = f
        .album(&photos, AlbumAction::Concat(Direction::Vertical))
        .await;
    let report = f.step().run(&job).await.expect("answered");
    assert_eq!(failure_kind(&report), FailureKind::Internal);
    assert!(f.engine.calls().is_empty(), "nothing to join");
}

#[tokio::test]
async fn a_photo_the_model_cannot_use_is_reported_as_such_and_the_job_deleted() {
    let f = Fixture::new();
    let results = FakeResults::acking();
    let job = f.request(NOT_A_PICTURE, JobKind::Detect).await;
    f.process(&job, &results, Duration::from_secs(30)).await;
    let reports = results.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(failure_kind(&reports[0]), FailureKind::NotAnImage);
    assert_eq!(f.queue().await, DONE, "a permanent failure is not retried");
    assert_eq!(
        f.record(job.prediction_id).await.result,
        None,
        "nothing stored"
    );
}

#[tokio::test]
async fn a_transient_engine_failure_leaves_the_job_for_redelivery_unreported() {
    let f = Fixture::new();
    let results = FakeResults::acking();
    let job = f.request(ENGINE_DOWN, JobKind::Detect).await;
    f.process(&job, &results, Duration::from_secs(30)).await;
    assert!(results.reports().is_empty(), "{:?}", results.reports());
    assert_eq!(f.queue().await, LEFT_FOR_REDELIVERY);
    let record = f.record(job.prediction_id).await;
    assert_eq!(record.status, PredictionStatus::Pending);
}

/// An object store that is down.
struct Down;

#[async_trait]
impl ObjectStore for Down {
    async fn put(
        &self,
        _: &ObjectKey,
        _: Bytes,
        _: &str,
        _: PutMode,
    ) -> polybot_storage::Result<()> {
        Err(down())
    }
    async fn get(&self, _: &ObjectKey) -> polybot_storage::Result<Bytes> {
        Err(down())
    }
    async fn check(&self) -> polybot_storage::Result<()> {
        Err(down())
    }
}

fn down() -> StorageError {
    StorageError::unavailable(
        "test store",
        "reading",
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    )
}

#[tokio::test]
async fn an_object_store_outage_leaves_the_job_for_redelivery_with_its_cause() {
    let mut f = Fixture::new();
    let job = f.request(b"a bus", JobKind::Detect).await;
    f.backends.objects = Arc::new(Down);
    let err = f.step().run(&job).await.expect_err("retry later");
    assert!(
        matches!(err, RetryLater::Fetch(ref e) if e.is_retryable()),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("connection refused"),
        "{}",
        chain(&err)
    );
    let record = f.record(job.prediction_id).await;
    assert_eq!(record.status, PredictionStatus::Pending);
}

#[tokio::test]
async fn a_report_that_fails_for_now_is_retried_and_the_job_then_deleted() {
    let f = Fixture::new();
    let results = FakeResults::answering(&[Answer::Unavailable], Answer::Ack);
    let job = f.request(b"a bus", JobKind::Detect).await;
    f.process(&job, &results, Duration::from_secs(30)).await;
    let reports = results.reports();
    assert_eq!(reports.len(), 2, "retried once");
    assert_eq!(reports[0], reports[1], "the same report, not redone work");
    assert_eq!(f.queue().await, DONE);
    assert_eq!(f.engine.calls().len(), 1);
}

#[tokio::test]
async fn a_report_not_acknowledged_within_the_jobs_limit_leaves_it_for_redelivery() {
    let f = Fixture::new();
    let results = FakeResults::answering(&[], Answer::Unavailable);
    let job = f.request(b"a bus", JobKind::Detect).await;
    let started = Instant::now();
    f.process(&job, &results, Duration::from_secs(1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the limit"
    );
    assert!(!results.reports().is_empty());
    assert_eq!(f.queue().await, LEFT_FOR_REDELIVERY);
}

#[tokio::test]
async fn a_refused_report_is_not_retried_and_the_job_is_left_for_redelivery() {
    let f = Fixture::new();
    let results = FakeResults::answering(&[], Answer::Refused);
    let job = f.request(b"a bus", JobKind::Detect).await;
    f.process(&job, &results, Duration::from_secs(30)).await;
    assert_eq!(results.reports().len(), 1);
    assert_eq!(f.queue().await, LEFT_FOR_REDELIVERY);
}

#[tokio::test]
async fn a_job_past_its_limit_ends_as_a_failure_the_user_is_told_about() {
    let f = Fixture::new();
    let results = FakeResults::acking();
    let job = f.request(SLOW, JobKind::Detect).await;
    f.process(&job, &results, Duration::from_millis(300)).await;
    let reports = results.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(failure_kind(&reports[0]), FailureKind::GaveUp);
    assert_eq!(f.queue().await, DONE);
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn quick_config() -> WorkerConfig {
    WorkerConfig {
        receive_wait: Duration::from_millis(100),
        shutdown_grace: Duration::from_millis(300),
        ..WorkerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_cut_off_by_shutdown_mid_report_is_released_and_done_by_the_next_worker() {
    let f = Fixture::new();
    let job = f.request(b"a bus", JobKind::Detect).await;
    f.backends
        .jobs
        .send(&job.to_json(), &Attributes::new())
        .await
        .expect("send");
    let results = FakeResults::answering(&[], Answer::Hang);
    // Each worker its own engine: shutdown closes it.
    let start = || {
        start_with(
            Arc::new(FakeEngine::new()),
            f.backends.clone(),
            Arc::new(results.clone()),
            quick_config(),
            None,
        )
    };
    let worker = start().await.expect("the worker starts");
    assert!(worker.is_ready());
    // Mid-job: detected, stored, and now waiting for its report.
    until("the report", async || !results.reports().is_empty()).await;
    worker.shutdown().await;
    assert_eq!(
        f.queue().await,
        QueueStats {
            visible: 1,
            in_flight: 0
        },
        "the unfinished job goes back to the queue at once, not deleted"
    );

    // The next worker does it again, and this time it is answered.
    results.answer_now();
    let worker = start().await.expect("the worker starts");
    until("the queue to empty", async || f.queue().await == DONE).await;
    worker.shutdown().await;
    assert!(results.reports().len() >= 2, "reported again");
    let record = f.record(job.prediction_id).await;
    assert_eq!(record.status, PredictionStatus::Succeeded);
}

/// A queue whose first receive panics (a bug in a client library), then
/// works.
struct PanicsOnce {
    inner: Arc<dyn JobQueue>,
    panicked: AtomicBool,
    receives: AtomicUsize,
}

#[async_trait]
impl JobQueue for PanicsOnce {
    async fn send(&self, body: &str, attributes: &Attributes) -> polybot_storage::Result<()> {
        self.inner.send(body, attributes).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> polybot_storage::Result<Vec<Delivery>> {
        self.receives.fetch_add(1, Ordering::SeqCst);
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("the queue client broke");
        }
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &Receipt) -> polybot_storage::Result<()> {
        self.inner.delete(receipt).await
    }
    async fn set_visibility(
        &self,
        receipt: &Receipt,
        timeout: Duration,
    ) -> polybot_storage::Result<()> {
        self.inner.set_visibility(receipt, timeout).await
    }
    async fn stats(&self) -> polybot_storage::Result<QueueStats> {
        self.inner.stats().await
    }
    async fn check(&self) -> polybot_storage::Result<()> {
        self.inner.check().await
    }
    async fn settings(&self) -> polybot_storage::Result<QueueSettings> {
        self.inner.settings().await
    }
    fn messaging_system(&self) -> &'static str {
        self.inner.messaging_system()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receive_loop_that_dies_is_restarted_and_readiness_follows_it() {
    let mut f = Fixture::new();
    let queue = Arc::new(PanicsOnce {
        inner: Arc::clone(&f.backends.jobs),
        panicked: AtomicBool::new(false),
        receives: AtomicUsize::new(0),
    });
    f.backends.jobs = queue.clone();
    let job = f.request(b"a bus", JobKind::Detect).await;
    f.backends
        .jobs
        .send(&job.to_json(), &Attributes::new())
        .await
        .expect("send");
    let results = FakeResults::acking();
    let worker = start_with(
        f.engine.clone(),
        f.backends.clone(),
        Arc::new(results.clone()),
        quick_config(),
        None,
    )
    .await
    .expect("the worker starts");
    let components = worker.components().clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while components.ok(RECEIVE_LOOP) {
            components.changed().await;
        }
    })
    .await
    .expect("the receive loop dies and is marked not ready");
    assert!(!worker.is_ready());
    assert_eq!(components.failing(), vec![RECEIVE_LOOP]);
    until("the restart", async || worker.is_ready()).await;
    until("the job", async || f.queue().await == DONE).await;
    assert!(queue.receives.load(Ordering::SeqCst) >= 2);
    let reports = results.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].prediction_id, job.prediction_id);
    worker.shutdown().await;
}
