//! Production log lines: one JSON object per line, with the `trace_id` and
//! `span_id` of the span the event happened in, so a log search can jump to
//! the trace and back.
//!
//! Every key appears once per line: an event field named like one of the
//! line's own keys (`message` beside the event's message, `level`, …) is
//! kept as `<name>_field`, so parsers that keep the last (or first)
//! duplicate never lose the real message.

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
        if may_repeat_keys(event) {
            dedupe_keys(&mut line);
        }
        if let Some((trace_id, span_id)) = current_ids() {
            add_ids(&mut line, &trace_id, &span_id);
        }
        writer.write_str(&line)
    }
}

/// Keys the formatter writes itself (besides the event's fields).
const LINE_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "target",
    "span",
    "spans",
    "filename",
    "line_number",
    "threadName",
    "threadId",
    "trace_id",
    "span_id",
];

/// Whether the event has two fields of one name (an explicit `message`
/// beside the formatted message), or a field named like a line key.
fn may_repeat_keys(event: &Event<'_>) -> bool {
    let fields = event.metadata().fields();
    let messages = fields.iter().filter(|f| f.name() == "message").count();
    messages > 1 || fields.iter().any(|f| LINE_KEYS.contains(&f.name()))
}

/// The members of a JSON object in order, duplicates kept.
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Rewrites `line` so each key appears once: the first keeps its name
/// (the formatter's own key, or the event's message, which tracing records
/// first), later ones become `<key>_field`. Leaves unparsable lines alone.
fn dedupe_keys(line: &mut String) {
    let Ok(Members(members)) = serde_json::from_str::<Members>(line.trim_end()) else {
        return;
    };
    let mut object = serde_json::Map::with_capacity(members.len());
    for (key, value) in members {
        let mut name = key;
        while object.contains_key(&name) {
            name.push_str("_field");
        }
        object.insert(name, value);
    }
    if let Ok(mut text) = serde_json::to_string(&serde_json::Value::Object(object)) {
        text.push('\n');
        *line = text;
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
    fn a_field_named_message_does_not_repeat_the_message_key() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                code = 14,
                message = "transport error",
                "Results did not acknowledge"
            );
            tracing::info!(level = "custom", "a field named like a line key");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            let Members(members) = serde_json::from_str(line).unwrap();
            let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
            let all = keys.len();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), all, "a key repeats: {line}");
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["message"], "Results did not acknowledge", "{text}");
        assert_eq!(first["message_field"], "transport error", "{text}");
        assert_eq!(first["code"], 14);
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["level"], "INFO", "{text}");
        assert_eq!(second["level_field"], "custom", "{text}");
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
