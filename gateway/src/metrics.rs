//! Gateway metrics, in the process-wide Prometheus registry (served at
//! `/metrics`). Labels are bounded: status codes, outcome names.

use std::sync::LazyLock;

use axum::http::StatusCode;
use prometheus::{IntCounterVec, register_int_counter_vec};

static WEBHOOK_REQUESTS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "polybot_webhook_requests_total",
        "Telegram webhook requests by HTTP status",
        &["status"]
    )
    .ok()
});

static REPLIES: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "polybot_replies_total",
        "Results reports by what was sent (sent, duplicate, undeliverable, error)",
        &["result"]
    )
    .ok()
});

static DEAD_LETTERS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "polybot_dead_letters_total",
        "Jobs taken from the dead-letter queue, by result (answered, unreadable, error)",
        &["result"]
    )
    .ok()
});

pub fn webhook_request(status: StatusCode) {
    if let Some(c) = WEBHOOK_REQUESTS.as_ref() {
        c.with_label_values(&[status.as_str()]).inc();
    }
}

pub fn reply(result: &'static str) {
    if let Some(c) = REPLIES.as_ref() {
        c.with_label_values(&[result]).inc();
    }
}

pub fn dead_letter(result: &'static str) {
    if let Some(c) = DEAD_LETTERS.as_ref() {
        c.with_label_values(&[result]).inc();
    }
}
