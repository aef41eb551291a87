//! Trace context over gRPC: the W3C headers travel in request metadata. A
//! client adds [`TraceInterceptor`] to its channel; a server continues the
//! caller's trace with [`set_parent_from_metadata`].

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes the current span's trace context into every outgoing request.
/// Interceptors run when the call is made, inside the caller's span.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_metadata(request.metadata_mut());
        Ok(request)
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`)
/// into gRPC metadata.
pub fn inject_metadata(metadata: &mut MetadataMap) {
    for (k, v) in crate::current_headers() {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(k.as_bytes()),
            MetadataValue::try_from(v.as_str()),
        ) {
            metadata.insert(key, value);
        }
    }
}

/// Makes `span` a child of the trace context in a request's metadata.
pub fn set_parent_from_metadata(span: &tracing::Span, metadata: &MetadataMap) {
    let cx = TraceContextPropagator::new().extract(&MetadataExtractor(metadata));
    let _ = span.set_parent(cx);
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}
