//! Detector metrics, in the process-wide Prometheus registry (served at
//! `/metrics`) and as OpenTelemetry instruments (exported over OTLP when
//! configured). Labels are bounded: failure kinds are a fixed set.

use std::sync::LazyLock;

use polybot_telemetry::metrics::{Counter, Histogram};

const SECONDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static RECEIVED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_jobs_received_total",
        "polybot.jobs.received",
        "Jobs received from the queue",
        &[],
    )
});
static SUCCEEDED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_jobs_succeeded_total",
        "polybot.jobs.succeeded",
        "Jobs detected and reported",
        &[],
    )
});
static FAILED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_jobs_failed_total",
        "polybot.jobs.failed",
        "Jobs that failed, by reason kind (permanent kinds are reported to the user; \
         transient, report and unreadable ones are retried by the queue)",
        &["reason"],
    )
});
static STORAGE_RETRIES: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_storage_retries_total",
        "polybot.storage.retries",
        "Storage calls of jobs that failed for now and were retried in place, \
         by call (fetch, read, store, save)",
        &["call"],
    )
});
static INFERENCE: LazyLock<Histogram> = LazyLock::new(|| {
    Histogram::seconds(
        "polybot_inference_seconds",
        "polybot.inference.duration",
        "ONNX Runtime session.run time",
        SECONDS,
    )
});
static PROCESSING: LazyLock<Histogram> = LazyLock::new(|| {
    Histogram::seconds(
        "polybot_processing_seconds",
        "polybot.processing.duration",
        "Detection time per job, decode to encoded annotated image",
        SECONDS,
    )
});
static QUEUE_WAIT: LazyLock<Histogram> = LazyLock::new(|| {
    Histogram::seconds(
        "polybot_queue_wait_seconds",
        "polybot.queue.wait",
        "Time from enqueue to receive",
        SECONDS,
    )
});
static END_TO_END: LazyLock<Histogram> = LazyLock::new(|| {
    Histogram::seconds(
        "polybot_end_to_end_seconds",
        "polybot.end_to_end.duration",
        "Time from the gateway accepting a photo to the acknowledged report",
        SECONDS,
    )
});

pub fn job_received() {
    RECEIVED.inc(&[]);
}
pub fn job_succeeded() {
    SUCCEEDED.inc(&[]);
}
pub fn job_failed(reason: &str) {
    FAILED.inc(&[reason]);
}
pub fn storage_retry(call: &'static str) {
    STORAGE_RETRIES.inc(&[call]);
}
pub fn inference(seconds: f64) {
    INFERENCE.observe(seconds)
}
pub fn processing(seconds: f64) {
    PROCESSING.observe(seconds)
}
pub fn queue_wait(seconds: f64) {
    QUEUE_WAIT.observe(seconds)
}
pub fn end_to_end(seconds: f64) {
    END_TO_END.observe(seconds)
}
