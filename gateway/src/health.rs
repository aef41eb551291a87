//! Readiness: the gateway is ready when its backends answer. One state
//! feeds both HTTP `/readyz` and the gRPC health service, so they agree;
//! shutdown flips both to not-serving first. Components (every supervised
//! loop and server, the webhook registration) add their own condition
//! through the service kit's [`Components`]: the gateway is ready only
//! while every registered component is, so a task that keeps dying turns
//! `/readyz` to 503.
//!
//! `/readyz` reports what the gRPC health service was last told, never a
//! state it has not published yet: a component's change wakes the checker,
//! which publishes to gRPC first and only then flips `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use polybot_storage::Backends;
use polybot_telemetry::tasks::Components;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

#[derive(Clone, Default)]
pub struct Health {
    /// What was last published to gRPC health.
    ready: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    components: Components,
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// The conditions readiness needs besides the backends: the gateway's
    /// [`polybot_telemetry::tasks::Supervisor`] reports its tasks here, and
    /// the webhook registration its own.
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Flips to not-serving for good (graceful shutdown).
    pub async fn stop(&self, reporter: &HealthReporter) {
        self.stopping.store(true, Ordering::SeqCst);
        publish(reporter, false).await;
    }
}

async fn publish(reporter: &HealthReporter, serving: bool) {
    use polybot_proto::v1::results_server::ResultsServer;
    type Svc = ResultsServer<crate::grpc::ResultsService>;
    if serving {
        reporter.set_serving::<Svc>().await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    } else {
        reporter.set_not_serving::<Svc>().await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }
}

/// Checks every backend, each within `timeout`.
pub async fn backends_answer(backends: &Backends, timeout: Duration) -> Result<(), String> {
    let checks = async {
        backends
            .objects
            .check()
            .await
            .map_err(|e| format!("object store: {e}"))?;
        backends
            .jobs
            .check()
            .await
            .map_err(|e| format!("job queue: {e}"))?;
        backends
            .table
            .check()
            .await
            .map_err(|e| format!("prediction table: {e}"))?;
        Ok::<_, String>(())
    };
    tokio::time::timeout(timeout, checks)
        .await
        .unwrap_or_else(|_| Err(format!("backends did not answer within {timeout:?}")))
}

/// Re-checks readiness every `every` until cancelled (a supervised loop).
pub async fn watch(
    health: Health,
    reporter: HealthReporter,
    backends: Backends,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut last: Option<bool> = None;
    loop {
        let backends_ok = match backends_answer(&backends, Duration::from_secs(3)).await {
            Ok(()) => true,
            Err(e) => {
                if last != Some(false) {
                    warn!(error = %e, "not ready");
                }
                false
            }
        };
        if health.stopping.load(Ordering::SeqCst) {
            // Not-serving was published for good; nothing more to say.
            cancel.cancelled().await;
            return;
        }
        let ok = backends_ok && health.components.all_ok();
        if last != Some(ok) {
            if ok {
                info!("ready");
            }
            publish(&reporter, ok).await;
            last = Some(ok);
        }
        // After gRPC health heard it, so the two never disagree.
        health.ready.store(ok, Ordering::SeqCst);
        // Re-check at once when a component changes, else every `every`.
        let step = if ok {
            every
        } else {
            every.min(Duration::from_millis(500))
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(step) => {}
            _ = health.components.changed() => {}
        }
    }
}
