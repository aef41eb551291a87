//! Test support: a moto server (an AWS-compatible server speaking S3, SQS,
//! DynamoDB, Auto Scaling, Secrets Manager and CloudWatch on one port) on a
//! free loopback port, and AWS SDK configuration pointed at it.
//!
//! `moto_server` comes from the tools virtualenv that `cargo xtask setup`
//! creates: `$POLYBOT_TOOLS_BIN` (set by `cargo xtask test`), else the
//! workspace's `.cache/venv/bin` (so plain `cargo test` works after setup).
//!
//! Tests share one server per test binary ([`MotoServer::shared`], started
//! once, about 1 s) and stay independent by giving every resource a unique
//! name ([`unique_name`]); nothing is reset between tests, so they can run
//! in parallel. A test that needs a server of its own uses
//! [`MotoServer::start`].
//!
//! The server dies with the test process even when that process is killed
//! or aborts: it runs under a small shell that waits for the end of its
//! standard input (a pipe from the test process, closed by the kernel when
//! the process ends) and then stops it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use polybot_storage::aws::{AwsSettings, ProvisionSpec, provision_for_tests};

pub mod fault_proxy;
pub mod process;

/// The region tests use; moto accepts any.
pub const REGION: &str = "us-east-1";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Installs rustls's aws-lc-rs crypto provider as the process default.
///
/// Both `ring` (via reqwest) and `aws-lc-rs` (via the AWS SDK) are linked
/// into some test binaries, and rustls then refuses to pick one: a TLS
/// client or server built without an explicit provider panics. Call this at
/// the start of every test; it is idempotent.
pub fn install_crypto_provider() {
    // `Err` means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A sample photo `cargo xtask setup` fetched (`bus.jpg`, `zidane.jpg`…),
/// from `POLYBOT_ASSETS_DIR`, else the workspace's `.cache/assets`.
pub fn sample_photo(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("POLYBOT_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/assets"));
    let path = dir.join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask setup`", path.display()))
}

/// A picture encoded as JPEG, as a user's camera would send it.
pub fn jpeg(img: image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encoding a JPEG in memory");
    out.into_inner()
}

/// The text of a message the bot sent ("" for a photo).
pub fn text(m: &tg_emulator::SentMessage) -> &str {
    m.text.as_deref().unwrap_or_default()
}

/// The caption of a photo or document the bot sent ("" if none).
pub fn caption(m: &tg_emulator::SentMessage) -> &str {
    m.caption.as_deref().unwrap_or_default()
}

/// A name no other test (in this run or an earlier one against the same
/// server) uses: `<prefix>-<12 hex digits>`, lowercase so it is a valid
/// bucket, queue and table name.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Where `moto_server` is, or why it is not.
pub fn moto_server_path() -> Result<PathBuf, String> {
    let from_env = std::env::var_os("POLYBOT_TOOLS_BIN").map(PathBuf::from);
    let workspace_venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv/bin");
    let candidates: Vec<PathBuf> = from_env.into_iter().chain([workspace_venv]).collect();
    candidates
        .iter()
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "moto_server was not found (looked in $POLYBOT_TOOLS_BIN and {}). \
                 Run `cargo xtask setup` to install the test tools (PyPI moto[server]), \
                 or run the tests with `cargo xtask test`.",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A running moto server. Dropping it stops the server.
pub struct MotoServer {
    endpoint: String,
    child: Child,
}

impl MotoServer {
    /// The server shared by all tests in this test binary, started on first
    /// use. Panics (failing the test) with setup instructions if moto is
    /// not installed.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| match Self::try_start() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        })
    }

    /// A server of the test's own. Panics with setup instructions if moto
    /// is not installed.
    pub fn start() -> MotoServer {
        match Self::try_start() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts moto on a free loopback port and waits until it answers.
    /// Blocks the calling thread for about a second.
    pub fn try_start() -> Result<MotoServer, String> {
        Self::try_start_with_env(&[])
    }

    /// [`MotoServer::try_start`] with extra environment for moto, e.g.
    /// `MOTO_RECORDER_FILEPATH` for its request recorder.
    pub fn try_start_with_env(env: &[(&str, &str)]) -> Result<MotoServer, String> {
        install_crypto_provider();
        let program = moto_server_path()?;
        // Another process can take the port between our probe and moto's
        // bind; then moto exits and we try another port.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mut child = Command::new("sh")
                .arg("-c")
                // moto in the background; the subshell stops it when stdin
                // (our pipe, kept as fd 3 because sh gives background jobs
                // /dev/null as stdin) closes; `wait` makes sh exit if moto
                // dies first.
                .arg(r#"exec 3<&0; "$0" -H 127.0.0.1 -p "$1" </dev/null & pid=$!; (cat <&3 >/dev/null; kill $pid 2>/dev/null) & wait $pid"#)
                .arg(&program)
                .arg(port.to_string())
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("could not start {}: {e}", program.display()))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if ready(port) {
                    // moto logs every request on stderr; drain it so the
                    // pipe never fills and blocks the server.
                    if let Some(mut stderr) = child.stderr.take() {
                        std::thread::spawn(move || {
                            let mut sink = [0u8; 8192];
                            while matches!(stderr.read(&mut sink), Ok(n) if n > 0) {}
                        });
                    }
                    return Ok(MotoServer { endpoint, child });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut stderr) = child.stderr.take() {
                        let _ = stderr.read_to_string(&mut err);
                    }
                    last_error = format!(
                        "moto_server exited ({status}) before it was ready: {}",
                        err.trim()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err(format!(
                        "moto_server did not answer GET {endpoint}/moto-api/ within {READY_TIMEOUT:?}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err(last_error)
    }

    /// The server's URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for this server: region [`REGION`], fixed dummy
    /// credentials (moto checks no signatures), the endpoint URL. Nothing
    /// is read from the environment that could point tests at real AWS.
    pub async fn sdk_config(&self) -> SdkConfig {
        install_crypto_provider();
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "polybot-testkit",
            ))
            .load()
            .await
    }

    /// Creates a fresh bucket, jobs queue with DLQ, and table with unique
    /// names, and returns settings pointing at them.
    pub async fn provision(&self, max_receives: u32, visibility: Duration) -> AwsSettings {
        let sdk = self.sdk_config().await;
        let spec = ProvisionSpec {
            prefix: unique_name("pb"),
            max_receives,
            visibility_timeout: visibility,
        };
        match provision_for_tests(&sdk, &spec).await {
            Ok(s) => s,
            Err(e) => panic!(
                "provisioning test resources on moto at {} failed: {e}",
                self.endpoint
            ),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper stop moto; then reap the wrapper.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// `GET /moto-api/` answers 200.
fn ready(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
