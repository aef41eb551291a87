//! Telemetry shared by every service: `tracing` subscriber set-up (JSON logs
//! in production, readable text locally), OpenTelemetry trace export over
//! OTLP/gRPC configured by the standard `OTEL_*` variables, and W3C trace
//! context propagation through queue message attributes and gRPC metadata,
//! so that one photo is one trace across services.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log aggregation (production).
    Json,
    /// Human-readable lines (local runs).
    Text,
}

/// Logging and tracing settings shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format: `json` in production, `text` locally. Filter with RUST_LOG.
    /// Traces are exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is
    /// set (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and
    /// OTEL_TRACES_SAMPLER[_ARG] are honoured too).
    #[arg(long, env = "POLYBOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("could not set up the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the tracer provider alive; flushes spans when shut down or dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops exporting. Call on graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("telemetry: flushing spans failed: {e}");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn otlp_endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Installs the global subscriber for `service` (the default service name
/// when OTEL_SERVICE_NAME is unset). With no OTLP endpoint configured,
/// nothing is exported and nothing fails.
pub fn init(service: &'static str, format: LogFormat) -> Result<TelemetryGuard, TelemetryError> {
    let provider = if otlp_endpoint_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Some(provider_with(exporter, service))
    } else {
        None
    };
    install(service, format, provider)
}

/// Like [`init`] but with a default log filter other than `info` (RUST_LOG still wins).
pub fn init_with_filter(
    service: &'static str,
    format: LogFormat,
    default_filter: &'static str,
) -> Result<TelemetryGuard, TelemetryError> {
    DEFAULT_FILTER.with(|f| f.set(default_filter));
    init(service, format)
}

thread_local! {
    static DEFAULT_FILTER: std::cell::Cell<&'static str> = const { std::cell::Cell::new("info") };
}

/// Like [`init`] with a given exporter (tests use the SDK's in-memory one).
pub fn init_with_exporter(
    service: &'static str,
    format: LogFormat,
    exporter: impl SpanExporter + 'static,
) -> Result<TelemetryGuard, TelemetryError> {
    install(service, format, Some(provider_with(exporter, service)))
}

fn provider_with(
    exporter: impl SpanExporter + 'static,
    service: &'static str,
) -> SdkTracerProvider {
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build()
}

fn install(
    service: &'static str,
    format: LogFormat,
    provider: Option<SdkTracerProvider>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER.with(|f| f.get())));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer().with_tracer(p.tracer(service))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a BTreeMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`)
/// into message attributes. Writes nothing when no trace is being recorded.
pub fn inject_context(attributes: &mut BTreeMap<String, String>) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(attributes));
}

/// Makes `span` a child of the trace context found in message attributes.
pub fn set_parent_from(span: &tracing::Span, attributes: &BTreeMap<String, String>) {
    let cx = TraceContextPropagator::new().extract(&MapExtractor(attributes));
    let _ = span.set_parent(cx);
}

/// The current span's trace context as W3C headers, for gRPC metadata or HTTP.
pub fn current_headers() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    inject_context(&mut map);
    map
}

/// The current trace id, for correlating logs and replies (empty when not tracing).
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let span_cx = cx.span().span_context().clone();
    span_cx.is_valid().then(|| span_cx.trace_id().to_string())
}

/// Every metric registered in this process, in the Prometheus text format
/// (served at `/metrics`). Services register their counters and histograms
/// in the default `prometheus` registry, with bounded label sets.
pub fn metrics_text() -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut buf) {
        tracing::warn!(error = %e, "could not encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Resolves on SIGTERM (what orchestrators send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// `<binary> healthcheck --url URL` for container HEALTHCHECKs: GET the URL
/// (plain HTTP) and succeed on status 200. Images carry no curl.
pub async fn healthcheck(url: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        match line.split_whitespace().nth(1) {
            Some("200") => Ok(()),
            Some(code) => Err(format!("{url} answered {code}")),
            None => Err(format!("{url} did not answer HTTP")),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), check)
        .await
        .map_err(|_| format!("{url} did not answer within 5 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_recording_span_nothing_is_injected() {
        let mut attrs = BTreeMap::new();
        inject_context(&mut attrs);
        assert!(attrs.is_empty(), "{attrs:?}");
    }

    #[test]
    fn a_traceparent_survives_extract_then_inject() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut attrs = BTreeMap::new();
        attrs.insert("traceparent".to_owned(), parent.to_owned());
        let cx = TraceContextPropagator::new().extract(&MapExtractor(&attrs));
        let mut out = BTreeMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut out));
        assert_eq!(out.get("traceparent").map(String::as_str), Some(parent));
    }
}
