//! A whole local stack on loopback: the mesh on the embedded backend,
//! talking to a Telegram Bot API emulator that delivers updates to the
//! gateway's webhook. Used by `polybot demo` and the black-box tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use polybot_detector::cli::ModelArgs;
use polybot_detector::worker::WorkerConfig;
use polybot_gateway::messenger::TelegramMessenger;
use polybot_gateway::secret::WebhookSecret;
use polybot_gateway::{GatewayConfig, TelegramMode};
use polybot_proto::auth::ResultsCredentials;
use polybot_storage::config::BackendArgs;
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::{Mesh, MeshOptions};

/// Settings for [`start_mesh`].
#[derive(Clone)]
pub struct StackOptions {
    pub backend: BackendArgs,
    /// Run the detector worker (false: jobs stay queued).
    pub detector: bool,
    pub lanes: usize,
    /// Model precision of the detector (tests pin FP32, so that what they
    /// expect to be found does not depend on the CPU; the demo and `polybot
    /// up` take `--precision`, `auto` by default).
    pub precision: polybot_detector::model::PrecisionSetting,
    /// How long the dead-letter and job polls wait (short in tests so
    /// shutdown is quick).
    pub poll_wait: Duration,
    pub visibility: Duration,
    pub shutdown_grace: Duration,
    pub webhook_secret: String,
    pub reporter_interval: Option<Duration>,
    /// The Results tokens (generated): the detector gets the results token
    /// in-process; tests and the demo use the operator token.
    pub results_credentials: ResultsCredentials,
    /// How long one job may take before it ends as a failure.
    pub job_timeout: Duration,
    /// When a chat gets the written "still working" notice.
    pub notice_after: Duration,
}

impl StackOptions {
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            backend: BackendArgs::local(data_dir),
            detector: true,
            lanes: 2,
            precision: polybot_detector::model::PrecisionSetting::Fp32,
            poll_wait: Duration::from_secs(2),
            visibility: Duration::from_secs(30),
            shutdown_grace: polybot_detector::worker::DEFAULT_SHUTDOWN_GRACE,
            webhook_secret: format!("demo-{}", uuid::Uuid::new_v4().simple()),
            reporter_interval: Some(Duration::from_secs(30)),
            results_credentials: ResultsCredentials::generate(),
            job_timeout: polybot_detector::worker::DEFAULT_JOB_TIMEOUT,
            notice_after: polybot_gateway::progress::ProgressConfig::DEFAULT_NOTICE_AFTER,
        }
    }
}

/// Starts the mesh against the Bot API at `api_url` with `token`, and
/// registers its webhook there.
pub async fn start_mesh(api_url: &str, token: &str, opts: &StackOptions) -> anyhow::Result<Mesh> {
    let backends = opts
        .backend
        .connect()
        .await
        .context("opening the storage backend")?;
    let http_listener = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_listener = TcpListener::bind("127.0.0.1:0").await?;
    let public_url: reqwest::Url = format!("http://{}/", http_listener.local_addr()?).parse()?;
    let telegram = TelegramMessenger::new(&SecretString::from(token.to_owned()), api_url.parse()?);
    let model = ModelArgs {
        model: polybot_detector::model::default_model_path(),
        int8_model: polybot_detector::model::default_int8_model_path(),
        precision: opts.precision,
        ort_library: polybot_detector::model::default_ort_library(),
        lanes: Some(opts.lanes),
        intra_threads: 1,
        confidence: polybot_detector::DEFAULT_CONFIDENCE,
        iou: polybot_detector::DEFAULT_IOU,
        letterbox: polybot_detector::LetterboxMode::Rect,
        max_pixels: polybot_detector::decode::DecodeLimits::default().max_pixels,
        annotated_max_side: polybot_detector::engine::DEFAULT_ANNOTATED_MAX_SIDE,
        ffmpeg: polybot_detector::video::default_ffmpeg_path(),
        video_max_frames: polybot_detector::video::VideoConfig::default().max_frames,
        video_decode_timeout: polybot_detector::video::VideoConfig::default()
            .timeout
            .as_secs(),
    };
    Mesh::start(MeshOptions {
        backends,
        telegram,
        gateway: GatewayConfig {
            mode: TelegramMode::Webhook,
            webhook_secret: Some(
                WebhookSecret::parse(SecretString::from(opts.webhook_secret.clone()))
                    .context("the stack's webhook secret")?,
            ),
            public_url: Some(public_url),
            dead_letter_wait: opts.poll_wait,
            results_credentials: opts.results_credentials.clone(),
            progress: polybot_gateway::progress::ProgressConfig {
                notice_after: opts.notice_after,
                ..Default::default()
            },
            ..GatewayConfig::default()
        },
        http_listener,
        grpc_listener,
        detector_http_listen: Some("127.0.0.1:0".parse()?),
        detector: opts.detector.then(|| model.pool_options()),
        worker: WorkerConfig {
            receive_wait: opts.poll_wait,
            visibility: Some(opts.visibility),
            shutdown_grace: opts.shutdown_grace,
            job_timeout: opts.job_timeout,
            ..WorkerConfig::default()
        },
        reporter_interval: opts.reporter_interval,
    })
    .await
}
