//! Detector metrics in the process-wide Prometheus registry (served at
//! `/metrics`). Labels are bounded: failure kinds are a fixed set.

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounter, IntCounterVec, register_histogram, register_int_counter,
    register_int_counter_vec,
};

const SECONDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static RECEIVED: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "polybot_jobs_received_total",
        "Jobs received from the queue"
    )
    .ok()
});
static SUCCEEDED: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!("polybot_jobs_succeeded_total", "Jobs detected and reported").ok()
});
static FAILED: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "polybot_jobs_failed_total",
        "Jobs that failed, by reason kind (permanent kinds are reported to the user; \
         transient, report and unreadable ones are retried by the queue)",
        &["reason"]
    )
    .ok()
});
static INFERENCE: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    register_histogram!(
        "polybot_inference_seconds",
        "ONNX Runtime session.run time",
        SECONDS.to_vec()
    )
    .ok()
});
static PROCESSING: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    register_histogram!(
        "polybot_processing_seconds",
        "Detection time per job, decode to encoded annotated image",
        SECONDS.to_vec()
    )
    .ok()
});
static QUEUE_WAIT: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    register_histogram!(
        "polybot_queue_wait_seconds",
        "Time from enqueue to receive",
        SECONDS.to_vec()
    )
    .ok()
});
static END_TO_END: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    register_histogram!(
        "polybot_end_to_end_seconds",
        "Time from the gateway accepting a photo to the acknowledged report",
        SECONDS.to_vec()
    )
    .ok()
});

pub fn job_received() {
    if let Some(c) = RECEIVED.as_ref() {
        c.inc();
    }
}
pub fn job_succeeded() {
    if let Some(c) = SUCCEEDED.as_ref() {
        c.inc();
    }
}
pub fn job_failed(reason: &str) {
    if let Some(c) = FAILED.as_ref() {
        c.with_label_values(&[reason]).inc();
    }
}
fn observe(h: &LazyLock<Option<Histogram>>, seconds: f64) {
    if let Some(h) = h.as_ref() {
        h.observe(seconds.max(0.0));
    }
}
pub fn inference(seconds: f64) {
    observe(&INFERENCE, seconds)
}
pub fn processing(seconds: f64) {
    observe(&PROCESSING, seconds)
}
pub fn queue_wait(seconds: f64) {
    observe(&QUEUE_WAIT, seconds)
}
pub fn end_to_end(seconds: f64) {
    observe(&END_TO_END, seconds)
}
