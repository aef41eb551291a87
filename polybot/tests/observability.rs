//! Observability of the all-in-one runner, in-process: one photo is one
//! OpenTelemetry trace (recorded with the SDK's in-memory exporter) with
//! every hop parented correctly, `/metrics` moves, and HTTP `/readyz` and
//! gRPC health agree. Needs `cargo xtask setup` (model, ONNX Runtime, photos).
//!
//! The global `tracing` subscriber can be installed once per process, so
//! this file is its own test binary and installs it once, for all its tests.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use polybot::stack::{StackOptions, start_mesh};
use polybot_telemetry::opentelemetry::trace::{SpanId, SpanKind, Status};
use polybot_telemetry::{LogFormat, TelemetryGuard};
use polybot_testkit::sample_photo as photo;
use tg_emulator::{Emulator, SentKind, UserMessageOptions};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const WAIT: Duration = Duration::from_secs(90);

struct Telemetry {
    guard: TelemetryGuard,
    spans: InMemorySpanExporter,
}

fn telemetry() -> &'static Telemetry {
    static T: OnceLock<Telemetry> = OnceLock::new();
    T.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        // JSON, as in production: the log lines go through the same layer.
        let guard =
            polybot_telemetry::init_with_exporter("polybot", LogFormat::Json, spans.clone())
                .expect("the only subscriber of this test binary");
        Telemetry { guard, spans }
    })
}

fn options(dir: &std::path::Path) -> StackOptions {
    let mut opts = StackOptions::local(dir);
    opts.poll_wait = Duration::from_millis(500);
    opts.reporter_interval = None;
    opts.lanes = 1;
    // The notice at once, so its span is in every photo's trace.
    opts.notice_after = Duration::ZERO;
    opts
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The spans of one trace, by id, with helpers to find and walk them.
struct Trace<'a> {
    by_id: HashMap<SpanId, &'a SpanData>,
}

impl<'a> Trace<'a> {
    fn new(spans: &'a [SpanData], trace: &SpanData) -> Self {
        let id = trace.span_context.trace_id();
        Self {
            by_id: spans
                .iter()
                .filter(|s| s.span_context.trace_id() == id)
                .map(|s| (s.span_context.span_id(), s))
                .collect(),
        }
    }

    fn named(&self, name: &str) -> Vec<&'a SpanData> {
        let mut found: Vec<_> = self
            .by_id
            .values()
            .copied()
            .filter(|s| s.name == name)
            .collect();
        found.sort_by_key(|s| s.start_time);
        found
    }

    fn one(&self, name: &str, kind: SpanKind) -> &'a SpanData {
        let found: Vec<_> = self
            .named(name)
            .into_iter()
            .filter(|s| s.span_kind == kind)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {kind:?} span {name:?} in the trace; the trace has: {:#?}",
            self.names()
        );
        found[0]
    }

    fn parent(&self, span: &SpanData) -> Option<&'a SpanData> {
        self.by_id.get(&span.parent_span_id).copied()
    }

    fn assert_parent(&self, child: &SpanData, parent: &SpanData) {
        assert_eq!(
            child.parent_span_id,
            parent.span_context.span_id(),
            "{:?} should be a child of {:?}, its parent is {:?}",
            child.name,
            parent.name,
            self.parent(child).map(|p| &p.name)
        );
    }

    /// Names from `span` up to the root.
    fn chain(&self, span: &'a SpanData) -> Vec<String> {
        let mut names = vec![span.name.to_string()];
        let mut at = span;
        while let Some(p) = self.parent(at) {
            names.push(p.name.to_string());
            at = p;
        }
        names
    }

    fn assert_descends(&self, span: &'a SpanData, ancestor: &SpanData) {
        let mut at = span;
        while let Some(p) = self.parent(at) {
            if p.span_context.span_id() == ancestor.span_context.span_id() {
                return;
            }
            at = p;
        }
        panic!(
            "{:?} does not descend from {:?}: its chain is {:?}",
            span.name,
            ancestor.name,
            self.chain(span)
        );
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.by_id.values().map(|s| s.name.to_string()).collect();
        names.sort();
        names
    }
}

/// Flushes the batch exporter until `ready` holds for the finished spans.
async fn spans_when(ready: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    let t = telemetry();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::task::block_in_place(|| t.guard.flush());
        let spans = t.spans.get_finished_spans().expect("spans");
        if ready(&spans) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans did not arrive in time; finished: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one series in Prometheus text (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

async fn get(url: &str) -> reqwest::Result<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

async fn grpc_health(client: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    match client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
    {
        Ok(r) => r.into_inner().status,
        Err(s) if s.code() == tonic::Code::NotFound => ServingStatus::ServiceUnknown as i32,
        Err(s) => panic!("health check failed: {s}"),
    }
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if matches!(get(url).await, Ok((200, _))) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_photo_is_one_trace_from_webhook_to_telegram_reply_and_moves_the_metrics() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    telemetry();
    let dir = tempfile::tempdir().expect("tempdir");
    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    let mesh = start_mesh(&emulator.base_url(), emulator.token(), &options(dir.path()))
        .await
        .expect("mesh starts");
    let client = emulator.client();
    let gateway = format!("http://{}", mesh.gateway.http_addr());
    let detector = format!(
        "http://{}",
        mesh.worker
            .as_ref()
            .and_then(|w| w.http_addr())
            .expect("detector HTTP")
    );
    wait_ready(&format!("{gateway}/readyz")).await;
    wait_ready(&format!("{detector}/readyz")).await;
    let (_, gateway_before) = get(&format!("{gateway}/metrics")).await.expect("metrics");
    let (_, detector_before) = get(&format!("{detector}/metrics")).await.expect("metrics");

    let chat = 5101;
    let queued = client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let messages = client
        .wait_for_messages(chat, 2, WAIT)
        .await
        .expect("the bot answers");
    assert_eq!(messages[1].kind, SentKind::Photo, "{messages:#?}");

    // --- The trace ----------------------------------------------------
    let update_id = queued.update_id.to_string();
    let is_webhook = |s: &SpanData| {
        s.name == "POST /telegram/webhook" && attr(s, "update_id").as_deref() == Some(&update_id)
    };
    // Everything has ended once the Telegram reply span and the job span have.
    let spans = spans_when(|spans| {
        let Some(webhook) = spans.iter().find(|s| is_webhook(s)) else {
            return false;
        };
        let trace = webhook.span_context.trace_id();
        let ended = |name: &str| {
            spans
                .iter()
                .any(|s| s.name == name && s.span_context.trace_id() == trace)
        };
        ended("jobs process")
            && ended("telegram sendPhoto")
            && ended("inference")
            && ended("progress")
    })
    .await;
    let webhook = spans.iter().find(|s| is_webhook(s)).expect("webhook span");
    let trace = Trace::new(&spans, webhook);

    // Gateway: webhook → update → download, store, publish, "processing" notice.
    assert_eq!(webhook.span_kind, SpanKind::Server);
    assert_eq!(
        webhook.parent_span_id,
        SpanId::INVALID,
        "the webhook starts the trace"
    );
    assert_eq!(
        attr(webhook, "http.response.status_code").as_deref(),
        Some("200")
    );
    let update = trace.one("telegram.update", SpanKind::Internal);
    trace.assert_parent(update, webhook);
    let prediction_id = attr(update, "prediction_id").expect("prediction_id on the update span");
    assert_eq!(attr(update, "chat_id").as_deref(), Some("5101"));
    assert_eq!(
        attr(update, "update_id").as_deref(),
        Some(update_id.as_str())
    );
    assert_eq!(attr(update, "outcome").as_deref(), Some("queued"));
    let get_file = trace.one("telegram getFile", SpanKind::Client);
    trace.assert_parent(get_file, update);
    let store = trace.one("store original", SpanKind::Internal);
    trace.assert_parent(store, update);
    let publish = trace.one("jobs publish", SpanKind::Producer);
    trace.assert_parent(publish, update);
    assert_eq!(attr(publish, "messaging.system").as_deref(), Some("local"));
    assert_eq!(
        attr(publish, "messaging.destination.name").as_deref(),
        Some("jobs")
    );
    assert_eq!(
        attr(publish, "prediction_id").as_deref(),
        Some(prediction_id.as_str())
    );
    // Progress (the chat action, the notice) is its own task in the trace.
    let progress = trace.one("progress", SpanKind::Internal);
    trace.assert_parent(progress, update);
    let notices = trace.named("telegram sendMessage");
    assert_eq!(notices.len(), 1, "one processing notice");
    trace.assert_parent(notices[0], progress);
    assert_eq!(notices[0].span_kind, SpanKind::Client);
    let actions = trace.named("telegram sendChatAction");
    assert!(!actions.is_empty(), "the chat showed the bot at work");
    trace.assert_parent(actions[0], progress);

    // Detector: the job continues the trace from the message attributes.
    let job = trace.one("jobs process", SpanKind::Consumer);
    trace.assert_parent(job, publish);
    assert!(
        job.parent_span_is_remote,
        "the parent came through the queue"
    );
    assert_eq!(
        attr(job, "prediction_id").as_deref(),
        Some(prediction_id.as_str())
    );
    assert_eq!(attr(job, "chat_id").as_deref(), Some("5101"));
    assert_eq!(attr(job, "update_id").as_deref(), Some(update_id.as_str()));
    assert_eq!(
        attr(job, "messaging.destination.name").as_deref(),
        Some("jobs")
    );
    trace.assert_parent(trace.one("fetch original", SpanKind::Internal), job);
    let detect = trace.one("detect", SpanKind::Internal);
    trace.assert_parent(detect, job);
    let inference = trace.one("inference", SpanKind::Internal);
    trace.assert_parent(inference, detect);
    trace.assert_descends(inference, webhook);
    trace.assert_parent(trace.one("preprocess", SpanKind::Internal), detect);
    trace.assert_parent(trace.one("postprocess", SpanKind::Internal), detect);
    // One span name for every picture a job stores; `what` says which.
    let stored = trace.one("store image", SpanKind::Internal);
    trace.assert_parent(stored, job);
    assert_eq!(attr(stored, "what").as_deref(), Some("annotated photo"));
    trace.assert_parent(trace.one("save summary", SpanKind::Internal), job);

    // Results over gRPC: client in the job, server continuing from metadata.
    let rpc = "polybot.v1.Results/ReportResult";
    let client_span = trace.one(rpc, SpanKind::Client);
    trace.assert_parent(client_span, job);
    assert_eq!(attr(client_span, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attr(client_span, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    let server_span = trace.one(rpc, SpanKind::Server);
    trace.assert_parent(server_span, client_span);
    assert!(
        server_span.parent_span_is_remote,
        "the parent came in gRPC metadata"
    );
    assert_eq!(
        attr(server_span, "rpc.method").as_deref(),
        Some("ReportResult")
    );

    // The Telegram reply, under the Results call.
    let reply = trace.one("reply", SpanKind::Internal);
    trace.assert_parent(reply, server_span);
    assert_eq!(
        attr(reply, "prediction_id").as_deref(),
        Some(prediction_id.as_str())
    );
    let send_photo = trace.one("telegram sendPhoto", SpanKind::Client);
    trace.assert_descends(send_photo, server_span);
    assert_eq!(attr(send_photo, "chat_id").as_deref(), Some("5101"));
    assert_eq!(send_photo.status, Status::Unset, "the send succeeded");

    // One photo, one trace: every span about this prediction is in it.
    for s in spans
        .iter()
        .filter(|s| attr(s, "prediction_id").as_deref() == Some(prediction_id.as_str()))
    {
        assert_eq!(
            s.span_context.trace_id(),
            webhook.span_context.trace_id(),
            "{:?} is about the same photo but in another trace",
            s.name
        );
    }
    // Never the token nor image bytes in attributes.
    for s in trace.by_id.values() {
        for kv in &s.attributes {
            let v = kv.value.to_string();
            assert!(
                !v.contains(emulator.token()),
                "the bot token leaked into {:?}.{}",
                s.name,
                kv.key
            );
            assert!(v.len() < 512, "a large value in {:?}.{}", s.name, kv.key);
        }
    }

    // --- The metrics moved ---------------------------------------------
    let (status, gateway_after) = get(&format!("{gateway}/metrics")).await.expect("metrics");
    assert_eq!(status, 200);
    let (status, detector_after) = get(&format!("{detector}/metrics")).await.expect("metrics");
    assert_eq!(status, 200);
    let moved = |before: &str, after: &str, name: &str| {
        let (b, a) = (series(before, name), series(after, name));
        assert!(a >= b + 1.0, "{name} did not move: {b} → {a}\n{after}");
    };
    moved(
        &gateway_before,
        &gateway_after,
        "polybot_webhook_requests_total{status=\"200\"}",
    );
    moved(
        &gateway_before,
        &gateway_after,
        "polybot_replies_total{result=\"sent\"}",
    );
    for name in [
        "polybot_jobs_received_total",
        "polybot_jobs_succeeded_total",
        "polybot_inference_seconds_count",
        "polybot_processing_seconds_count",
        "polybot_queue_wait_seconds_count",
        "polybot_end_to_end_seconds_count",
    ] {
        moved(&detector_before, &detector_after, name);
    }
    assert!(series(&detector_after, "polybot_inference_seconds_sum") > 0.0);
    assert!(
        series(
            &detector_after,
            "polybot_inference_seconds_bucket{le=\"+Inf\"}"
        ) >= 1.0,
        "{detector_after}"
    );

    mesh.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_and_grpc_health_agree_while_serving_and_once_shutdown_begins() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    telemetry();
    let dir = tempfile::tempdir().expect("tempdir");
    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    let mut opts = options(dir.path());
    opts.detector = false;
    let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
        .await
        .expect("mesh starts");
    let http = format!("http://{}", mesh.gateway.http_addr());
    wait_ready(&format!("{http}/readyz")).await;
    assert_eq!(
        get(&format!("{http}/healthz")).await.expect("healthz").0,
        200
    );

    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.gateway.grpc_addr()))
            .expect("URL")
            .connect()
            .await
            .expect("gRPC connects");
    let mut health = HealthClient::new(channel);
    let serving = ServingStatus::Serving as i32;
    assert_eq!(grpc_health(&mut health, "").await, serving);
    assert_eq!(
        grpc_health(&mut health, "polybot.v1.Results").await,
        serving
    );
    assert_eq!(get(&format!("{http}/readyz")).await.expect("readyz").0, 200);

    // Shutdown flips both to not-serving before anything stops.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "polybot.v1.Results".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a first status")
        .expect("stream")
        .expect("a status");
    assert_eq!(first.status, serving);

    let shutdown = tokio::spawn(mesh.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("a status change within 10 s")
        .expect("stream")
        .expect("a status");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // From here /readyz never says ready again: 503 while the server drains,
    // then nothing listens.
    match get(&format!("{http}/readyz")).await {
        Ok((status, _)) => assert_eq!(status, 503, "readyz during shutdown"),
        Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
    }
    drop(watch);
    drop(health);
    tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .expect("shutdown within 20 s")
        .expect("shutdown task");
    emulator.shutdown().await;
}
