//! The HTTP side: Telegram's webhook, liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use polybot_telemetry::tasks::Supervisor;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{Instrument, error, info, warn};

use crate::health::Health;
use crate::inbound;
use crate::intake::Intake;
use crate::secret::WebhookSecret;

/// Where Telegram posts updates. It does not contain the bot token, which
/// would otherwise end up in access logs.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Telegram updates are small JSON documents (files are fetched separately).
const MAX_UPDATE_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub webhook_secret: Option<WebhookSecret>,
    pub health: Health,
    /// Runs each update's intake as a task of its own.
    pub supervisor: Supervisor,
}

/// The routes, each request bounded by `request_timeout`, reading its body
/// included (408 past it, so a client that trickles its body cannot hold a
/// connection and a task). A webhook's intake runs detached and finishes
/// even then; Telegram's redelivery finds it done.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let health = state.health.clone();
    Router::new()
        .route(WEBHOOK_PATH, post(webhook))
        .with_state(state)
        .merge(polybot_telemetry::ops::router(Arc::new(move || {
            health.is_ready()
        })))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // A panic in a handler is a 500 for that request, not a dead connection task.
        .layer(CatchPanicLayer::new())
}

fn secret_matches(expected: &WebhookSecret, headers: &HeaderMap) -> bool {
    headers
        .get(SECRET_HEADER)
        .is_some_and(|given| expected.matches(given.as_bytes()))
}

/// The body is taken as a stream, not an extractor, so that the secret is
/// checked before a byte of it is read: a caller without the secret cannot
/// make us buffer a megabyte.
async fn webhook(State(state): State<AppState>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let span = tracing::info_span!(
        "telegram.webhook",
        otel.name = "POST /telegram/webhook",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = WEBHOOK_PATH,
        http.response.status_code = tracing::field::Empty,
        update_id = tracing::field::Empty,
    );
    async move {
        let status = handle_webhook(&state, &parts.headers, body).await;
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        crate::metrics::webhook_request(status);
        status
    }
    .instrument(span)
    .await
}

/// Whether an error of type `E` is somewhere in `e`'s chain of sources.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<E>() {
            return true;
        }
        cause = c.source();
    }
    false
}

async fn handle_webhook(state: &AppState, headers: &HeaderMap, body: Body) -> StatusCode {
    // Without a secret the webhook is off (long-polling mode): an endpoint
    // anyone could post fake updates to must not exist.
    let Some(secret) = &state.webhook_secret else {
        return StatusCode::NOT_FOUND;
    };
    if !secret_matches(secret, headers) {
        warn!("webhook call with a missing or wrong secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_UPDATE_BYTES as u64) {
        warn!(
            limit = MAX_UPDATE_BYTES,
            announced, "webhook body over the limit"
        );
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let body = match axum::body::to_bytes(body, MAX_UPDATE_BYTES).await {
        Ok(body) => body,
        Err(e) if caused_by::<http_body_util::LengthLimitError>(&e) => {
            warn!(limit = MAX_UPDATE_BYTES, "webhook body over the limit");
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        Err(e) => {
            // The client went away or was too slow to send it.
            warn!(error = %e, "webhook body not read");
            return StatusCode::BAD_REQUEST;
        }
    };
    let inbound = match inbound::parse_bytes(&body, state.intake.me()) {
        Ok(inbound) => inbound,
        Err(e @ inbound::UnreadableUpdate::NotJson(_)) => {
            warn!(error = %e, "webhook body is not JSON");
            return StatusCode::BAD_REQUEST;
        }
        Err(e) => {
            // Answering 4xx would make Telegram retry an update we can never
            // read; accept it and say so in the logs.
            warn!(error = %e, "an update we cannot read was dropped");
            crate::intake::given_up("unreadable");
            return StatusCode::OK;
        }
    };
    tracing::Span::current().record("update_id", inbound.update_id().0);
    let sender = inbound::sender_language(&body);
    if inbound.answers_with_text() {
        // Kept in the table, then answered off this request: a text
        // answer may wait its turn for a while.
        if let Err(e) = state.intake.defer(&inbound, &body).await {
            warn!(error = %e, "could not keep the update; Telegram will deliver it again");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        crate::deferred::answer_later(&state.intake, &state.supervisor, inbound, sender);
        return StatusCode::OK;
    }
    // Intake runs on its own task: if Telegram (or a load balancer) drops
    // the connection, hyper cancels this handler, but not the intake, which
    // then finishes the update's claim or releases it.
    let intake = Arc::clone(&state.intake);
    let task = state.supervisor.spawn_with("webhook_update", async move {
        intake.handle_in(inbound, sender).await
    });
    match task.await {
        Some(Ok(handled)) => {
            info!(outcome = handled.as_str(), "update handled");
            StatusCode::OK
        }
        // Telegram delivers the update again later.
        Some(Err(e)) => {
            warn!(error = %e, "update not handled yet; Telegram will deliver it again");
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => {
            error!("handling an update panicked");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    //! The webhook's answers to Telegram: 200 means "forget this update",
    //! 503 means "deliver it again", and neither depends on a network.
    use axum::http::Request;
    use polybot_domain::BotId;
    use tower::ServiceExt;

    use super::*;
    use crate::fake::{Call, FakeMessenger, local_backends};
    use crate::messenger::MessengerError;

    const SECRET: &str = "a-webhook-secret-of-enough-length-0123456789";

    fn update(id: i64) -> String {
        serde_json::json!({
            "update_id": id,
            "message": {
                "message_id": 5,
                "date": 0,
                "chat": {"id": 42, "type": "private"},
                "from": {"id": 42, "is_bot": false, "first_name": "Ada"},
                "photo": [{"file_id": "file", "file_unique_id": "u", "width": 64, "height": 48, "file_size": 10}]
            }
        })
        .to_string()
    }

    async fn post(app: &Router, body: String, secret: &str) -> StatusCode {
        let request = Request::post(WEBHOOK_PATH)
            .header(SECRET_HEADER, secret)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        app.clone()
            .oneshot(request)
            .await
            .expect("the router answers")
            .status()
    }

    #[tokio::test]
    async fn the_webhook_answers_503_while_telegram_fails_and_200_once_the_update_is_handled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        messenger.serve("file", &b"jpeg bytes"[..]);
        let intake = Intake::new(backends.clone(), messenger.clone(), BotId(1), 1024);
        let app = router(
            AppState {
                intake: Arc::new(intake),
                webhook_secret: Some(
                    WebhookSecret::parse(SECRET.to_owned().into()).expect("a valid secret"),
                ),
                health: Health::default(),
                supervisor: Supervisor::default(),
            },
            Duration::from_secs(5),
        );

        assert_eq!(
            post(&app, update(1), "wrong").await,
            StatusCode::UNAUTHORIZED
        );
        messenger.fail_next(
            Call::Download,
            MessengerError::Unavailable("Bad Gateway".into()),
        );
        assert_eq!(
            post(&app, update(1), SECRET).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "an outage must make Telegram deliver the update again"
        );
        assert_eq!(post(&app, update(1), SECRET).await, StatusCode::OK);
        assert_eq!(post(&app, update(1), SECRET).await, StatusCode::OK);
        assert_eq!(
            backends.jobs.stats().await.expect("stats").visible,
            1,
            "three deliveries, one job"
        );
        assert_eq!(
            post(&app, "{not json".to_owned(), SECRET).await,
            StatusCode::BAD_REQUEST
        );
        // An update of a kind we do not read is accepted, not retried forever.
        assert_eq!(
            post(&app, r#"{"update_id": 9, "poll": {}}"#.to_owned(), SECRET).await,
            StatusCode::OK
        );
    }
}
