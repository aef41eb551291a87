//! Services as separate processes, as in production: a child process whose
//! standard error goes to a file (shown when a test fails), a free port,
//! readiness polling, and a real OTLP/gRPC receiver (`oteltest`'s sink
//! from the tools virtualenv) that collects the spans and metrics the
//! processes export.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Where the tools virtualenv's programs are: `$POLYBOT_TOOLS_BIN`, else
/// the workspace's `.cache/venv/bin`.
pub fn tools_bin() -> PathBuf {
    std::env::var_os("POLYBOT_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv/bin"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process whose stderr goes to a log file.
pub struct Proc {
    pub name: String,
    pub child: Child,
    log: PathBuf,
    out: PathBuf,
}

impl Proc {
    /// Starts `cmd`; its stderr goes to `<dir>/<name>-<random>.log`, its
    /// stdout to `<dir>/<name>-<random>.stdout`. The
    /// process is killed when the `Proc` is dropped.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Self {
        let run = uuid::Uuid::new_v4().simple();
        let log = dir.join(format!("{name}-{run}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let out = dir.join(format!("{name}-{run}.stdout"));
        let out_file = std::fs::File::create(&out).expect("stdout file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_file))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
            out,
        }
    }

    /// Everything the process wrote to stdout so far (the services write
    /// only their EMF metric lines there, `POLYBOT_METRICS_EMF`).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Everything the process wrote to stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines (services log JSON with `POLYBOT_LOG_FORMAT=json`).
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Sends SIGTERM and waits for a clean exit (status 0).
    pub async fn terminate(&mut self, within: Duration) {
        self.signal("-TERM");
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not stop within {within:?}:\n{}",
                    self.name,
                    self.logs()
                )
            })
            .expect("wait");
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM:\n{}",
            self.name,
            self.logs()
        );
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill -9");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    /// Waits for the process to exit by itself; its exit status.
    pub async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not exit within {within:?}:\n{}",
                    self.name,
                    self.logs()
                )
            })
            .expect("wait")
    }

    /// Polls `url` until it answers 2xx; panics with the logs if the
    /// process exits first or `within` passes.
    pub async fn wait_http_ok(&mut self, url: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(url).timeout(Duration::from_secs(2)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready in time:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `oteltest`'s gRPC sink with a handler that prints one JSON line per span
/// and per metric. The sink binds a port we cannot read back, so a second
/// loopback port is added and printed.
const SINK: &str = r#"
import json, logging, sys, threading
from google.protobuf.json_format import MessageToDict
from oteltest.sink import GrpcSink
from oteltest.sink.handler import RequestHandler

# The server answers exports on a thread pool, and `print` writes the text
# and its newline separately: two exports at once could merge two records
# into one unreadable line. One write per record, one writer at a time.
LOCK = threading.Lock()

def emit(record):
    line = json.dumps(record) + "\n"
    with LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()

def service(resource):
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value
    return None

def value(any_value):
    d = MessageToDict(any_value)
    return next(iter(d.values()), None)

def each(resources, scopes, items):
    """(service name, item) for every item of every scope of every resource."""
    for r in resources:
        svc = service(r.resource)
        for scope in getattr(r, scopes):
            for item in getattr(scope, items):
                yield svc, item

class JsonLines(RequestHandler):
    def handle_trace(self, request, headers):
        for svc, s in each(request.resource_spans, "scope_spans", "spans"):
            emit({"signal": "span", "service": svc, "name": s.name,
                  "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                  "parent_span_id": s.parent_span_id.hex(), "kind": s.kind,
                  "attributes": {kv.key: value(kv.value) for kv in s.attributes}})

    def handle_metrics(self, request, headers):
        for svc, m in each(request.resource_metrics, "scope_metrics", "metrics"):
            emit({"signal": "metric", "service": svc, "name": m.name,
                  "data": m.WhichOneof("data")})

    def handle_logs(self, request, headers):
        pass

sink = GrpcSink(JsonLines(), logging.getLogger("otelsink"), port=0)
port = sink.svr.add_insecure_port("127.0.0.1:0")
sink.start()
emit({"signal": "ready", "port": port})
sink.wait_for_termination()
"#;

/// A real OTLP/gRPC receiver; what it received, as JSON records
/// (`{"signal": "span" | "metric", "service", "name", ...}`).
pub struct OtlpReceiver {
    _child: Child,
    port: u16,
    records: Arc<Mutex<Vec<Value>>>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let python = tools_bin().join("python");
        assert!(
            python.is_file(),
            "{} is missing: run `cargo xtask setup`",
            python.display()
        );
        let mut child = Command::new(&python)
            .args(["-c", SINK])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the OTLP receiver starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the OTLP receiver is ready within 30 s (is oteltest installed? run `cargo xtask setup`)")
            .expect("read")
            .expect("a first line");
        let ready: Value = serde_json::from_str(&ready).expect("JSON");
        assert_eq!(ready["signal"], "ready", "{ready}");
        let port = ready["port"].as_u64().expect("port") as u16;
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&records);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => sink.lock().expect("records lock").push(v),
                    // Said out loud: a record lost here fails a test later.
                    Err(e) => {
                        eprintln!("the OTLP receiver printed an unreadable line ({e}): {line}")
                    }
                }
            }
        });
        Self {
            _child: child,
            port,
            records,
        }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the services.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn records(&self) -> Vec<Value> {
        self.records.lock().expect("records lock").clone()
    }

    /// The spans `service` exported so far.
    pub fn spans_of(&self, service: &str) -> Vec<Value> {
        spans_in(&self.records(), service)
            .into_iter()
            .cloned()
            .collect()
    }
}

/// The spans of `service` among `records` (a snapshot of
/// [`OtlpReceiver::records`]).
pub fn spans_in<'a>(records: &'a [Value], service: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["signal"] == "span" && r["service"] == service)
        .collect()
}

/// Points `cmd` at the receiver with short export intervals, and clears
/// any OTLP setting inherited from the test's environment.
pub fn otlp_env(cmd: &mut Command, endpoint: Option<&str>) {
    cmd.env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    if let Some(endpoint) = endpoint {
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "1000");
    }
}
