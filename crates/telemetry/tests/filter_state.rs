//! Every `info` span reaches the trace, whatever ran just before it on the
//! same thread. The subscriber is global, so this file is its own test
//! binary with a single test.

use opentelemetry_sdk::trace::InMemorySpanExporter;
use polybot_telemetry::LogFormat;

#[test]
fn a_span_after_a_log_level_probe_still_reaches_the_trace() {
    // Log lines at debug, the trace at info: the two filters disagree
    // about debug, which is what leaves a stale per-layer decision behind.
    // SAFETY: the only test of this binary sets it before it starts any
    // thread or reads the environment anywhere else.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RUST_LOG", "debug")
    };
    let spans = InMemorySpanExporter::default();
    let guard = polybot_telemetry::init_with_exporter("test", LogFormat::Text, spans.clone())
        .expect("the only subscriber of this test binary");

    for round in 0..3 {
        // What a library does before an expensive log line: asks through
        // the log bridge whether debug is on, and then logs nothing.
        assert!(tracing_log::log::log_enabled!(
            tracing_log::log::Level::Debug
        ));
        tracing::info_span!("inference", round).in_scope(|| {});
    }
    guard.flush();

    let names: Vec<String> = spans
        .get_finished_spans()
        .expect("finished spans")
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["inference"; 3], "{names:?}");
}
