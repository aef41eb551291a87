//! Telemetry shared by every service: `tracing` subscriber set-up (JSON logs
//! carrying `trace_id`/`span_id` in production, readable text locally),
//! OpenTelemetry trace and metric export over OTLP/gRPC configured by the
//! standard `OTEL_*` variables, metrics that are served in the Prometheus
//! format too, and W3C trace context propagation through queue message
//! attributes and gRPC metadata, so that one photo is one trace across
//! services.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod emf;
pub mod grpc;
pub mod logs;
pub mod metrics;
pub mod ops;
pub mod tasks;

/// The OpenTelemetry API, for callers that need its types.
pub use opentelemetry;

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
    /// Log format: `json` in production (with trace_id and span_id), `text`
    /// locally. Filter log lines with RUST_LOG. Traces and metrics are
    /// exported over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set
    /// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
    /// OTEL_{TRACES,METRICS}_EXPORTER=none and OTEL_METRIC_EXPORT_INTERVAL are
    /// honoured too).
    #[arg(long, env = "POLYBOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Write the service's metrics to stdout once a minute as CloudWatch
    /// Embedded Metric Format lines (namespace `Polybot`, dimension
    /// `Service`), which CloudWatch Logs turns into metrics: how the
    /// deployment's metrics reach CloudWatch without an agent (Terraform
    /// turns it on).
    #[arg(long, env = "POLYBOT_METRICS_EMF", default_value_t = false)]
    pub metrics_emf: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("could not set up the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the tracer and meter providers alive; flushes them when shut down
/// or dropped.
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    emf: Option<emf::EmfThread>,
}

impl TelemetryGuard {
    /// Exports every finished span (and the current metric values) now.
    pub fn flush(&self) {
        if let Some(p) = &self.tracer
            && let Err(e) = p.force_flush()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
        if let Some(p) = &self.meter
            && let Err(e) = p.force_flush()
        {
            eprintln!("telemetry: flushing metrics failed: {e}");
        }
    }

    /// Flushes and stops exporting. Call on graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(mut emf) = self.emf.take() {
            emf.stop();
        }
        if let Some(provider) = self.tracer.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
        if let Some(provider) = self.meter.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("telemetry: flushing metrics failed: {e}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|s| !s.trim().is_empty())
}

/// Whether OTLP export of `signal` (`TRACES` or `METRICS`) is configured:
/// an endpoint is set and `OTEL_<signal>_EXPORTER` is not `none`.
fn otlp_configured(signal: &str) -> bool {
    let disabled = std::env::var(format!("OTEL_{signal}_EXPORTER"))
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled
        && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || env_set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

/// Installs the global subscriber for `service` (the default service name
/// when OTEL_SERVICE_NAME is unset). Spans and metrics are exported over
/// OTLP/gRPC when an endpoint is configured; with none, nothing is exported
/// and nothing fails, but spans still get trace ids, so the context still
/// propagates to other services and log lines still carry `trace_id`.
pub fn init(service: &'static str, format: LogFormat) -> Result<TelemetryGuard, TelemetryError> {
    let tracer = if otlp_configured("TRACES") {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        tracer_provider(Some(exporter), service)
    } else {
        tracer_provider(None::<opentelemetry_otlp::SpanExporter>, service)
    };
    let meter = if otlp_configured("METRICS") {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        // Every OTEL_METRIC_EXPORT_INTERVAL (default 60 s), and on shutdown.
        Some(
            SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource(service))
                .build(),
        )
    } else {
        None
    };
    install(service, format, tracer, meter)
}

/// [`init`] with the settings every binary shares: the log format, and
/// metrics as EMF lines on stdout when `POLYBOT_METRICS_EMF` is on.
pub fn init_from(
    service: &'static str,
    args: &TelemetryArgs,
) -> Result<TelemetryGuard, TelemetryError> {
    let mut guard = init(service, args.log_format)?;
    if args.metrics_emf {
        guard.emf = Some(emf::EmfThread::start(service, emf::INTERVAL));
    }
    Ok(guard)
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

/// Like [`init`] with a given span exporter (tests use the SDK's in-memory
/// one) and no metric export.
pub fn init_with_exporter(
    service: &'static str,
    format: LogFormat,
    exporter: impl SpanExporter + 'static,
) -> Result<TelemetryGuard, TelemetryError> {
    install(
        service,
        format,
        tracer_provider(Some(exporter), service),
        None,
    )
}

fn resource(service: &'static str) -> opentelemetry_sdk::Resource {
    // `builder()` reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    resource.build()
}

/// A provider that exports through `exporter` in batches, or exports
/// nothing (but still makes valid, propagated span contexts) without one.
/// The sampler honours OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
fn tracer_provider(
    exporter: Option<impl SpanExporter + 'static>,
    service: &'static str,
) -> SdkTracerProvider {
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    if let Some(exporter) = exporter {
        builder = builder.with_batch_exporter(exporter);
    }
    builder.build()
}

fn install(
    service: &'static str,
    format: LogFormat,
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // RUST_LOG filters the log lines only: spans at info and above always
    // reach the trace, so a quiet log level does not break the trace.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER.with(|f| f.get())));
    let fmt = match format {
        LogFormat::Json => logs::json_layer(std::io::stderr).boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    opentelemetry::global::set_tracer_provider(tracer.clone());
    if let Some(m) = &meter {
        opentelemetry::global::set_meter_provider(m.clone());
    }
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer(service))
        .with_filter(spans_at_info());
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard {
        tracer: Some(tracer),
        meter,
        emf: None,
    })
}

/// The trace's filter: spans and events at `info` and above, asked afresh
/// for every span.
///
/// A per-layer filter hands its decision from `enabled` to `on_new_span`
/// through a thread-local. A plain level filter caches `Interest::always`
/// for a callsite, so `enabled` is skipped and `on_new_span` reads whatever
/// decision an unrelated call left there: `log::log_enabled!` through the
/// log bridge, or a `tracing` call made from inside a layer. The next span
/// then silently vanished from the trace (in CI, the detector's
/// `inference` span, one run in four; tokio-rs/tracing#2519). Answering
/// `sometimes` makes every span pass through `enabled` first.
fn spans_at_info<S>() -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber,
{
    tracing_subscriber::filter::DynFilterFn::new(|meta, _| LevelFilter::INFO >= *meta.level())
        .with_max_level_hint(LevelFilter::INFO)
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    /// Empty values are never written: the W3C propagator writes an empty
    /// `tracestate` when the trace has none, and queues such as SQS refuse
    /// empty attribute values (an empty header means "absent" anyway).
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
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
/// into message attributes. Writes nothing when no trace is being recorded,
/// and never an empty value (no `tracestate` when the trace has none).
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

    #[test]
    fn a_trace_without_tracestate_injects_no_empty_attribute() {
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let cx = TraceContextPropagator::new().extract(&MapExtractor(&attrs));
        let mut out = BTreeMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut out));
        assert!(out.contains_key("traceparent"), "{out:?}");
        assert!(
            out.values().all(|v| !v.is_empty()),
            "empty attribute values injected: {out:?}"
        );
        assert!(!out.contains_key("tracestate"), "{out:?}");
    }
}
