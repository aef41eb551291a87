//! What the Telegram side reports: a client span per Bot API call, and the
//! outbox's counters (dropped messages, 429 answers).

use std::sync::LazyLock;

use polybot_domain::ChatId;
use polybot_telemetry::metrics::Counter;

static DROPPED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_outbox_dropped_total",
        "polybot.outbox.dropped",
        "Messages and chat actions not sent, by kind and reason (backlog, stale, deadline, budget)",
        &["kind", "reason"],
    )
});

static RATE_LIMITED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_telegram_rate_limited_total",
        "polybot.telegram.rate_limited",
        "Telegram Bot API 429 (retry_after) answers, by method",
        &["method"],
    )
});

/// Counts a message the outbox did not send: `kind` is `notice`,
/// `answer` or `chat_action`, `reason` is `backlog`, `stale`, `deadline`
/// or (a chat action with no spare send in the global budget) `budget`.
pub(crate) fn dropped(kind: &'static str, reason: &'static str) {
    DROPPED.inc(&[kind, reason]);
}

/// Counts a 429 answer to `method`.
pub(crate) fn rate_limited(method: &'static str) {
    RATE_LIMITED.inc(&[method]);
}

/// A client span for one Bot API call. The URL is left out on purpose: it
/// contains the bot token.
pub(crate) fn bot_api_span(
    parent: &tracing::Span,
    method: &'static str,
    chat: Option<ChatId>,
) -> tracing::Span {
    tracing::info_span!(
        parent: parent,
        "telegram.request",
        otel.name = format!("telegram {method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        telegram.method = method,
        chat_id = chat.map(|c| c.0),
        error.type = tracing::field::Empty,
    )
}

pub(crate) fn record_error(span: &tracing::Span, kind: &'static str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", kind);
}
