//! Gateway metrics, in the process-wide Prometheus registry (served at
//! `/metrics`) and as OpenTelemetry instruments (exported over OTLP when
//! configured). Labels are bounded: status codes, outcome names.

use std::sync::LazyLock;

use axum::http::StatusCode;
use polybot_telemetry::metrics::Counter;

static WEBHOOK_REQUESTS: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_webhook_requests_total",
        "polybot.webhook.requests",
        "Telegram webhook requests by HTTP status",
        &["status"],
    )
});

static REPLIES: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_replies_total",
        "polybot.replies",
        "Results reports by what was sent (sent, duplicate, undeliverable, error)",
        &["result"],
    )
});

static PREVIOUS_TOKEN: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_results_previous_token_total",
        "polybot.results.previous_token",
        "Results calls made with the previous results token (a rotation is done when this stops growing)",
        &[],
    )
});

static DEAD_LETTERS: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_dead_letters_total",
        "polybot.dead_letters",
        "Jobs taken from the dead-letter queue, by result (answered, unreadable, unanswerable, error)",
        &["result"],
    )
});

pub fn webhook_request(status: StatusCode) {
    WEBHOOK_REQUESTS.inc(&[status.as_str()]);
}

pub fn reply(result: &'static str) {
    REPLIES.inc(&[result]);
}

pub fn dead_letter(result: &'static str) {
    DEAD_LETTERS.inc(&[result]);
}

pub fn previous_results_token() {
    PREVIOUS_TOKEN.inc(&[]);
}
