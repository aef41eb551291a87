//! The services as separate processes: a gateway and a detector worker
//! sharing one embedded-backend data folder, talking to the
//! Telegram emulator (in this process).
//!
//! - Traces: both export OTLP/gRPC to a real receiver from PyPI (`oteltest`'s
//!   `GrpcSink`), and one photo's spans from both services share one trace id.
//! - SIGTERM: a detector stopped mid-job either finishes and reports the job,
//!   or releases it to the queue at once; either way the user ends up with
//!   exactly one reply once a worker runs again.
//! - SIGKILL: a detector killed mid-job leaves the job leased; it comes back
//!   after its visibility timeout and the user still gets exactly one reply.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos, the OTLP
//! receiver). The processes are `polybot gateway` and `polybot detector`,
//! the same library entry points as the `gateway` and `detector` binaries.

use std::path::Path;
use std::time::{Duration, Instant};

use polybot::stack::{StackOptions, start_mesh};
use polybot_testkit::process::{OtlpReceiver, Proc, free_port, otlp_env, spans_in};
use polybot_testkit::sample_photo as photo;
use serde_json::Value;
use tg_emulator::{Emulator, EmulatorClient, EmulatorHandle, SentKind, UserMessageOptions};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(90);

/// The all-in-one binary of this build, which runs the gateway or a
/// detector worker on its own exactly as their own binaries do (Cargo
/// builds it fresh for this test; it does not for other packages' binaries).
const POLYBOT: &str = env!("CARGO_BIN_EXE_polybot");

/// The token detectors present to Results (both processes are given it).
const RESULTS_TOKEN: &str = "lifecycle-results-token-0123456789abcdef";

/// Settings shared by both services: the data folder, JSON logs, OTLP, the
/// Results token.
fn common(cmd: &mut Command, data: &Path, otlp: Option<&str>) {
    cmd.env("POLYBOT_BACKEND", "local")
        .env("POLYBOT_RESULTS_TOKEN", RESULTS_TOKEN)
        .env("POLYBOT_DATA_DIR", data)
        .env("POLYBOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    otlp_env(cmd, otlp);
}

struct DetectorSettings {
    results: String,
    http_port: u16,
    shutdown_grace: u64,
}

fn detector_command(data: &Path, otlp: Option<&str>, s: &DetectorSettings) -> Command {
    let mut cmd = Command::new(POLYBOT);
    cmd.arg("detector");
    common(&mut cmd, data, otlp);
    cmd.env("POLYBOT_RESULTS_URL", &s.results)
        .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{}", s.http_port))
        .env(
            "POLYBOT_MODEL",
            polybot_detector::model::default_model_path(),
        )
        .env(
            "ORT_DYLIB_PATH",
            polybot_detector::model::default_ort_library(),
        )
        .env("POLYBOT_LANES", "1")
        .env("POLYBOT_SHUTDOWN_GRACE", s.shutdown_grace.to_string())
        // Short, so a job whose report was refused comes back quickly.
        .env("POLYBOT_VISIBILITY", "3")
        .env("POLYBOT_LOCAL_VISIBILITY", "3")
        .env("POLYBOT_MAX_RECEIVES", "10");
    cmd
}

// ---------------------------------------------------------------------------

struct Services {
    emulator: EmulatorHandle,
    client: EmulatorClient,
    gateway: Proc,
    gateway_http: String,
    detector: Proc,
    detector_http: String,
}

async fn start_services(dir: &Path, otlp: &str) -> Services {
    let data = dir.join("data");
    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    let (http, grpc, det) = (free_port(), free_port(), free_port());

    let mut cmd = Command::new(POLYBOT);
    cmd.arg("gateway");
    common(&mut cmd, &data, Some(otlp));
    cmd.env("TELEGRAM_TOKEN", emulator.token())
        .env(
            "TELEGRAM_WEBHOOK_SECRET",
            "lifecycle-webhook-secret-0123456789abcdef",
        )
        .env("TELEGRAM_API_URL", emulator.base_url())
        .env("POLYBOT_TELEGRAM_MODE", "webhook")
        .env("POLYBOT_PUBLIC_URL", format!("http://127.0.0.1:{http}/"))
        .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{http}"))
        .env("POLYBOT_GRPC_LISTEN", format!("127.0.0.1:{grpc}"));
    let mut gateway = Proc::spawn("gateway", cmd, dir);
    let gateway_http = format!("http://127.0.0.1:{http}");
    gateway
        .wait_http_ok(&format!("{gateway_http}/readyz"), Duration::from_secs(60))
        .await;

    let settings = DetectorSettings {
        results: format!("http://127.0.0.1:{grpc}"),
        http_port: det,
        shutdown_grace: 30,
    };
    let mut detector = Proc::spawn(
        "detector",
        detector_command(&data, Some(otlp), &settings),
        dir,
    );
    let detector_http = format!("http://127.0.0.1:{det}");
    detector
        .wait_http_ok(&format!("{detector_http}/readyz"), Duration::from_secs(60))
        .await;
    let client = emulator.client();
    Services {
        emulator,
        client,
        gateway,
        gateway_http,
        detector,
        detector_http,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_and_detector_processes_export_one_trace_per_photo_over_otlp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = OtlpReceiver::start().await;
    let mut s = start_services(dir.path(), &receiver.endpoint()).await;

    let chat = 6101;
    let queued = s
        .client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    // The shipped settings: a notice only if the answer took a while.
    let deadline = Instant::now() + WAIT;
    while !s
        .client
        .messages(chat)
        .await
        .expect("messages")
        .iter()
        .any(|m| m.kind == SentKind::Photo)
    {
        assert!(Instant::now() < deadline, "the bot did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Each process serves its own metrics.
    let scrape = |url: String| async move {
        reqwest::get(url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    let gateway_metrics = scrape(format!("{}/metrics", s.gateway_http)).await;
    assert!(
        gateway_metrics.contains("polybot_webhook_requests_total{status=\"200\"} 1"),
        "{gateway_metrics}"
    );
    assert!(!gateway_metrics.contains("polybot_jobs_received_total"));
    // The job counts as succeeded once its report is acknowledged, just
    // after the user has the reply.
    let deadline = Instant::now() + Duration::from_secs(10);
    let detector_metrics = loop {
        let text = scrape(format!("{}/metrics", s.detector_http)).await;
        if text.contains("polybot_jobs_succeeded_total 1") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(detector_metrics.contains("polybot_inference_seconds_count 1"));

    // SIGTERM flushes the telemetry of both before they exit 0.
    s.detector.terminate(Duration::from_secs(30)).await;
    s.gateway.terminate(Duration::from_secs(30)).await;

    let update_id = queued.update_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (records, trace_id) = loop {
        let records = receiver.records();
        let webhook = spans_in(&records, "gateway").into_iter().find(|r| {
            r["name"] == "POST /telegram/webhook"
                && r["attributes"]["update_id"].as_str() == Some(update_id.as_str())
        });
        if let Some(w) = webhook {
            let trace = w["trace_id"].as_str().expect("trace id").to_owned();
            let detector_has = spans_in(&records, "detector")
                .iter()
                .any(|r| r["name"] == "jobs process" && r["trace_id"] == trace.as_str());
            if detector_has {
                break (records, trace);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the receiver did not get spans of both services in one trace; it got: {:#?}",
            records
                .iter()
                .map(|r| (
                    r["service"].clone(),
                    r["name"].clone(),
                    r["trace_id"].clone()
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(trace_id.len(), 32);

    // Both services, one trace, and the cross-process links are right.
    let in_trace = |service: &str| -> Vec<&Value> {
        spans_in(&records, service)
            .into_iter()
            .filter(|r| r["trace_id"] == trace_id.as_str())
            .collect()
    };
    let gateway_spans = in_trace("gateway");
    let detector_spans = in_trace("detector");
    let find = |spans: &[&Value], name: &str, kind: i64| -> Value {
        spans
            .iter()
            .find(|r| r["name"] == name && r["kind"] == kind)
            .map(|r| (*r).clone())
            .unwrap_or_else(|| {
                let all: Vec<_> = records
                    .iter()
                    .filter(|r| r["signal"] == "span")
                    .map(|r| {
                        format!(
                            "{} {} {} {} <- {}",
                            r["service"],
                            r["name"],
                            r["trace_id"],
                            r["span_id"],
                            r["parent_span_id"]
                        )
                    })
                    .collect();
                panic!(
                    "no {name:?} (kind {kind}) among the {} spans of this trace; \
                     all the receiver has (service name trace span <- parent): {all:#?}",
                    spans.len()
                )
            })
    };
    // OTLP span kinds: 2 server, 3 client, 4 producer, 5 consumer.
    let publish = find(&gateway_spans, "jobs publish", 4);
    let job = find(&detector_spans, "jobs process", 5);
    assert_eq!(job["parent_span_id"], publish["span_id"], "job ← publish");
    let rpc = "polybot.v1.Results/ReportResult";
    let client = find(&detector_spans, rpc, 3);
    let server = find(&gateway_spans, rpc, 2);
    assert_eq!(
        server["parent_span_id"], client["span_id"],
        "server ← client"
    );
    find(&detector_spans, "inference", 1);
    find(&gateway_spans, "telegram sendPhoto", 3);

    // OTel metrics came over OTLP from both (flushed on SIGTERM at the latest).
    let metric = |service: &str, name: &str| {
        records
            .iter()
            .any(|r| r["signal"] == "metric" && r["service"] == service && r["name"] == name)
    };
    assert!(
        metric("gateway", "polybot.webhook.requests"),
        "gateway metrics over OTLP"
    );
    assert!(metric("gateway", "polybot.replies"));
    assert!(
        metric("detector", "polybot.jobs.received"),
        "detector metrics over OTLP"
    );
    assert!(metric("detector", "polybot.inference.duration"));

    // JSON log lines of both processes carry the same trace id.
    for proc in [&s.gateway, &s.detector] {
        let correlated = proc
            .json_logs()
            .iter()
            .filter(|l| l["trace_id"] == trace_id.as_str() && l["span_id"].is_string())
            .count();
        assert!(
            correlated > 0,
            "no {} log line carries trace id {trace_id}:\n{}",
            proc.name,
            proc.logs()
        );
    }
    s.emulator.shutdown().await;
}

// ---------------------------------------------------------------------------
// SIGTERM mid-job.

/// A gateway in this process (so the test can read the queue), the
/// emulator, and a detector process to stop.
struct Scenario {
    emulator: EmulatorHandle,
    client: EmulatorClient,
    mesh: Option<polybot::Mesh>,
    dir: tempfile::TempDir,
}

impl Scenario {
    async fn start() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = StackOptions::local(dir.path().join("data"));
        opts.detector = false;
        opts.results_credentials.results = secrecy::SecretString::from(RESULTS_TOKEN.to_owned());
        opts.poll_wait = Duration::from_millis(500);
        opts.reporter_interval = None;
        // The reply is held past the notice's two seconds on purpose here;
        // without a notice the count of messages is exact.
        opts.notice_after = Duration::from_secs(600);
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
            .await
            .expect("gateway starts");
        let client = emulator.client();
        Self {
            emulator,
            client,
            mesh: Some(mesh),
            dir,
        }
    }

    fn mesh(&self) -> &polybot::Mesh {
        self.mesh.as_ref().expect("running")
    }

    async fn detector(&self, shutdown_grace: u64) -> Proc {
        let port = free_port();
        let settings = DetectorSettings {
            results: format!("http://{}", self.mesh().gateway.grpc_addr()),
            http_port: port,
            shutdown_grace,
        };
        let cmd = detector_command(&self.dir.path().join("data"), None, &settings);
        let mut p = Proc::spawn("detector", cmd, self.dir.path());
        p.wait_http_ok(
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(60),
        )
        .await;
        p
    }

    async fn queue(&self) -> polybot_storage::QueueStats {
        self.mesh().backends.jobs.stats().await.expect("stats")
    }

    /// Sends a photo whose reply is held up by a 429 (`retry_after` s), and
    /// returns once the detector is reporting it: the job is in flight and
    /// not finished.
    async fn photo_held_mid_report(&self, chat: i64, retry_after: u32) {
        self.client
            .rate_limit(Some("sendPhoto"), 1, retry_after)
            .await
            .expect("rate limit");
        self.client
            .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
            .await
            .expect("send");
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.client.requests().await.expect("requests");
            if stats.rate_limited_count("sendPhoto") >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the reply never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let q = self.queue().await;
        assert_eq!((q.visible, q.in_flight), (0, 1), "the job is in flight");
    }

    /// Waits until the queue is empty and the chat has `n` messages, then
    /// checks it stays so for a moment.
    async fn settles_at(&self, chat: i64, n: usize) -> Vec<tg_emulator::SentMessage> {
        let deadline = Instant::now() + WAIT;
        loop {
            let q = self.queue().await;
            let messages = self.client.messages(chat).await.expect("messages");
            if q.visible == 0 && q.in_flight == 0 && messages.len() >= n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "did not settle: queue {q:?}, messages {messages:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let messages = self.client.messages(chat).await.expect("messages");
        assert_eq!(messages.len(), n, "exactly {n} messages: {messages:#?}");
        let q = self.queue().await;
        assert_eq!(
            (q.visible, q.in_flight),
            (0, 0),
            "nothing left in the queue"
        );
        messages
    }

    async fn stop(mut self) {
        if let Some(m) = self.mesh.take() {
            m.shutdown().await;
        }
        self.emulator.shutdown().await;
    }
}

/// Exactly one annotated photo, captioned with zidane.jpg's detections.
fn assert_one_zidane_reply(messages: &[tg_emulator::SentMessage]) {
    assert_eq!(photo_replies(messages), 1, "{messages:#?}");
    assert_eq!(
        messages[0].caption.as_deref(),
        Some("person ×2, tie ×1"),
        "{messages:#?}"
    );
}

fn photo_replies(messages: &[tg_emulator::SentMessage]) -> usize {
    messages
        .iter()
        .filter(|m| m.kind == SentKind::Photo)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_job_with_a_grace_period_finishes_and_reports_the_job_once() {
    let s = Scenario::start().await;
    let mut first = s.detector(30).await;
    let chat = 6201;
    s.photo_held_mid_report(chat, 2).await;

    // The job finishes within the grace period; the worker then exits 0.
    first.terminate(Duration::from_secs(40)).await;
    let q = s.queue().await;
    assert_eq!(
        (q.visible, q.in_flight),
        (0, 0),
        "reported and deleted before exiting"
    );
    let logs = first.logs();
    assert!(logs.contains("finishing in-flight jobs"), "{logs}");
    assert!(!logs.contains("released an unfinished job"), "{logs}");

    // A restarted worker has nothing to redo.
    let mut second = s.detector(30).await;
    let messages = s.settles_at(chat, 1).await;
    assert_eq!(photo_replies(&messages), 1, "{messages:#?}");
    second.terminate(Duration::from_secs(30)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_job_past_the_grace_period_releases_the_job_and_the_next_worker_replies_once() {
    let s = Scenario::start().await;
    let mut first = s.detector(0).await;
    let chat = 6301;
    s.photo_held_mid_report(chat, 3).await;

    // No grace: the job is released, visible again at once.
    first.terminate(Duration::from_secs(30)).await;
    let q = s.queue().await;
    assert_eq!(
        (q.visible, q.in_flight),
        (1, 0),
        "released to the queue right away:\n{}",
        first.logs()
    );
    assert!(first.logs().contains("released an unfinished job"));

    // The gateway still finishes the reply the first worker asked for; the
    // next worker's report of the same prediction is a duplicate.
    let mut second = s.detector(30).await;
    let messages = s.settles_at(chat, 1).await;
    assert_one_zidane_reply(&messages);
    second.terminate(Duration::from_secs(30)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_loses_nothing_the_job_returns_after_its_visibility_and_is_answered_once()
 {
    let s = Scenario::start().await;
    let mut first = s.detector(30).await;
    let chat = 6401;
    s.photo_held_mid_report(chat, 2).await;

    // SIGKILL: no grace, no release, no telemetry flush.
    first.child.start_kill().expect("kill -9");
    let status = tokio::time::timeout(Duration::from_secs(10), first.child.wait())
        .await
        .expect("the killed worker is gone")
        .expect("wait");
    assert!(!status.success(), "killed, not exited: {status}");
    let q = s.queue().await;
    assert_eq!(
        (q.visible, q.in_flight),
        (0, 1),
        "the job stays leased to the dead worker until its visibility runs out"
    );

    // The job comes back after its visibility timeout (3 s here); the next
    // worker redoes it, and its report is a duplicate of the reply the
    // gateway finished for the killed worker.
    let mut second = s.detector(30).await;
    let messages = s.settles_at(chat, 1).await;
    assert_one_zidane_reply(&messages);
    let redone = second
        .json_logs()
        .iter()
        .any(|l| l["message"] == "job done and reported" && l["duplicate"] == true);
    assert!(
        redone,
        "the second worker redid the job:\n{}",
        second.logs()
    );
    second.terminate(Duration::from_secs(30)).await;
    s.stop().await;
}
