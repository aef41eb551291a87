//! Production log lines: one JSON object per line, with the `trace_id` and
//! `span_id` of the span the event happened in, so a log search can jump to
//! the trace and back.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The JSON log layer: flattened event fields, the current span's fields
/// under `span`, and `trace_id` / `span_id` (W3C hex) when the event
/// happened inside a traced span.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format = tracing_subscriber::fmt::format()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false);
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(WithTraceIds(format))
        .with_writer(writer)
}

/// Wraps a JSON event formatter and adds `trace_id` and `span_id` to each
/// object. The ids come from the OpenTelemetry context that
/// `tracing-opentelemetry` activates when a span is entered.
pub struct WithTraceIds<F = Format<Json>>(pub F);

impl<S, F> FormatEvent<S, JsonFields> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: FormatEvent<S, JsonFields>,
    JsonFields: for<'a> FormatFields<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        if let Some((trace_id, span_id)) = current_ids() {
            add_ids(&mut line, &trace_id, &span_id);
        }
        writer.write_str(&line)
    }
}

/// The active span's trace and span ids, if a valid one is active.
fn current_ids() -> Option<(String, String)> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// Inserts the ids as the last members of the JSON object in `line`.
fn add_ids(line: &mut String, trace_id: &str, span_id: &str) {
    let end = line.trim_end().len();
    if !line[..end].ends_with('}') || end < 2 {
        return;
    }
    // Both ids are hex, so they need no escaping.
    let members = format!(",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"");
    line.insert_str(end - 1, &members);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(buffer: &Buffer) -> Vec<serde_json::Value> {
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn json_lines_carry_the_trace_and_span_ids_of_the_current_span() {
        let buffer = Buffer::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(json_layer(buffer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let (trace_id, job_span_id, step_span_id) =
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!("outside any span");
                let job = tracing::info_span!("job", prediction_id = "p-1");
                let step = job.in_scope(|| {
                    tracing::info!(answer = 42, "inside the job");
                    let step = tracing::info_span!("step");
                    step.in_scope(|| tracing::warn!("inside a child"));
                    step
                });
                use opentelemetry::trace::TraceContextExt;
                let job_cx = job.context();
                let step_cx = step.context();
                (
                    job_cx.span().span_context().trace_id().to_string(),
                    job_cx.span().span_context().span_id().to_string(),
                    step_cx.span().span_context().span_id().to_string(),
                )
            });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 3, "{lines:#?}");

        assert_eq!(lines[0]["message"], "outside any span");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        assert!(lines[0].get("span_id").is_none(), "{}", lines[0]);

        assert_eq!(lines[1]["message"], "inside the job");
        assert_eq!(lines[1]["answer"], 42);
        assert_eq!(lines[1]["level"], "INFO");
        assert_eq!(lines[1]["span"]["name"], "job");
        assert_eq!(lines[1]["span"]["prediction_id"], "p-1");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str());
        assert_eq!(lines[1]["span_id"], job_span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        assert_eq!(job_span_id.len(), 16);

        assert_eq!(lines[2]["trace_id"], trace_id.as_str(), "same trace");
        assert_eq!(lines[2]["span_id"], step_span_id.as_str(), "the child's id");
        assert_ne!(step_span_id, job_span_id);
    }

    #[test]
    fn ids_are_added_as_the_last_members() {
        let mut line = "{\"a\":1}\n".to_owned();
        add_ids(
            &mut line,
            "0af7651916cd43dd8448eb211c80319c",
            "b7ad6b7169203331",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(v["span_id"], "b7ad6b7169203331");
        assert!(line.ends_with("}\n"));
    }
}
