//! The operations endpoints every service serves on its HTTP port:
//! `/healthz` (the process is alive: 200 while it runs), `/readyz` (200
//! when the service can do its work, 503 otherwise, e.g. while its backends
//! do not answer or after shutdown began) and `/metrics` (the Prometheus
//! text of [`crate::metrics_text`]). Container HEALTHCHECKs probe
//! `/healthz` through the binaries' `healthcheck` subcommand
//! ([`crate::healthcheck`]).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;

/// Whether the service is ready; called on every `/readyz` request.
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// `/healthz`, `/readyz` (answered by `ready`) and `/metrics`.
pub fn router(ready: ReadyCheck) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready() {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    crate::metrics_text(),
                )
            }),
        )
}
