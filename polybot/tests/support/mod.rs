//! Shared by the process-level tests (`outages`, `soak`): the gateway and
//! detector as `polybot gateway` / `polybot detector` processes on the
//! embedded backend, sharing one data folder. [`in_process`] is the whole
//! mesh in the test's own process instead (`captions`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use polybot_storage::Backends;
use polybot_testkit::process::Proc;
use tg_emulator::EmulatorHandle;
use tokio::process::Command;

pub mod chat;
pub mod in_process;
pub mod pictures;

pub const POLYBOT: &str = env!("CARGO_BIN_EXE_polybot");
pub const WAIT: Duration = Duration::from_secs(90);

pub fn photo(name: &str) -> Vec<u8> {
    let path = polybot_detector::model::default_assets_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask setup`", path.display()))
}

/// The local backend's queue settings both processes must share.
pub struct Queue {
    pub visibility: u64,
    pub max_receives: u32,
}

pub fn common(cmd: &mut Command, data: &Path, queue: &Queue) {
    cmd.env("POLYBOT_BACKEND", "local")
        .env("POLYBOT_DATA_DIR", data)
        .env("POLYBOT_LOCAL_VISIBILITY", queue.visibility.to_string())
        .env("POLYBOT_MAX_RECEIVES", queue.max_receives.to_string())
        .env("POLYBOT_LOG_FORMAT", "json")
        // Gateway and detectors share the Results token, as in production.
        .env(
            "POLYBOT_RESULTS_TOKEN",
            "outage-results-token-0123456789abcdefgh",
        )
        .env("RUST_LOG", "info");
    polybot_testkit::process::otlp_env(cmd, None);
}

/// A gateway process on fixed ports, so it can be restarted in place.
pub struct GatewayPorts {
    pub http: u16,
    pub grpc: u16,
}

pub async fn start_gateway(
    emulator: &EmulatorHandle,
    ports: &GatewayPorts,
    data: &Path,
    queue: &Queue,
    dir: &Path,
) -> Proc {
    start_gateway_with(emulator, ports, data, queue, dir, &[]).await
}

/// [`start_gateway`] with more settings in its environment.
pub async fn start_gateway_with(
    emulator: &EmulatorHandle,
    ports: &GatewayPorts,
    data: &Path,
    queue: &Queue,
    dir: &Path,
    settings: &[(&str, &str)],
) -> Proc {
    let mut cmd = Command::new(POLYBOT);
    cmd.arg("gateway");
    common(&mut cmd, data, queue);
    cmd.env("TELEGRAM_TOKEN", emulator.token())
        .env(
            "TELEGRAM_WEBHOOK_SECRET",
            "outage-webhook-secret-0123456789abcdef",
        )
        .env("TELEGRAM_API_URL", emulator.base_url())
        .env("POLYBOT_TELEGRAM_MODE", "webhook")
        .env(
            "POLYBOT_PUBLIC_URL",
            format!("http://127.0.0.1:{}/", ports.http),
        )
        .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{}", ports.http))
        .env("POLYBOT_GRPC_LISTEN", format!("127.0.0.1:{}", ports.grpc))
        .envs(settings.iter().copied());
    let mut gateway = Proc::spawn("gateway", cmd, dir);
    gateway
        .wait_http_ok(&format!("http://127.0.0.1:{}/readyz", ports.http), WAIT)
        .await;
    gateway
}

pub fn detector_command(results: &str, http_port: u16, data: &Path, queue: &Queue) -> Command {
    let mut cmd = Command::new(POLYBOT);
    cmd.arg("detector");
    common(&mut cmd, data, queue);
    cmd.env("POLYBOT_RESULTS_URL", results)
        .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{http_port}"))
        .env(
            "POLYBOT_MODEL",
            polybot_detector::model::default_model_path(),
        )
        .env(
            "ORT_DYLIB_PATH",
            polybot_detector::model::default_ort_library(),
        )
        .env("POLYBOT_LANES", "1");
    cmd
}

/// What the process-level tests stand on: an emulator, and a data folder
/// for `polybot gateway` and `polybot detector` processes to share.
pub struct Ground {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub emulator: EmulatorHandle,
    pub client: tg_emulator::EmulatorClient,
    pub queue: Queue,
}

impl Ground {
    pub async fn new(queue: Queue) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let emulator = tg_emulator::Emulator::start("127.0.0.1:0")
            .await
            .expect("emulator");
        let client = emulator.client();
        Self {
            dir,
            data,
            emulator,
            client,
            queue,
        }
    }

    /// New ports for a gateway.
    pub fn ports() -> GatewayPorts {
        GatewayPorts {
            http: polybot_testkit::process::free_port(),
            grpc: polybot_testkit::process::free_port(),
        }
    }

    /// A gateway on `ports`, ready.
    pub async fn gateway(&self, ports: &GatewayPorts) -> Proc {
        let g = self;
        start_gateway(&g.emulator, ports, &g.data, &g.queue, g.dir.path()).await
    }

    /// A detector with the real model reporting to the gateway on `ports`,
    /// ready.
    pub async fn detector(&self, ports: &GatewayPorts) -> Proc {
        let port = polybot_testkit::process::free_port();
        let results = format!("http://127.0.0.1:{}", ports.grpc);
        let command = detector_command(&results, port, &self.data, &self.queue);
        let mut detector = Proc::spawn("detector", command, self.dir.path());
        detector
            .wait_http_ok(&format!("http://127.0.0.1:{port}/readyz"), WAIT)
            .await;
        detector
    }
}

/// The same data folder, opened from the test to read queues and records.
pub async fn open_backends(data: PathBuf, queue: &Queue) -> Backends {
    let options = polybot_storage::local::LocalOptions {
        visibility_timeout: Duration::from_secs(queue.visibility),
        max_receives: queue.max_receives,
        ..Default::default()
    };
    tokio::task::spawn_blocking(move || polybot_storage::local::open(&data, options))
        .await
        .expect("join")
        .expect("the data folder opens")
}
