//! Readiness: the gateway is ready when its backends answer. One state
//! feeds both HTTP `/readyz` and the gRPC health service, so they agree;
//! shutdown flips both to not-serving first. Components (the polling loop,
//! the webhook registration) add their own condition: the gateway is ready
//! only while every registered component is.
//!
//! `/readyz` reports what the gRPC health service was last told, never a
//! state it has not published yet: a component's change wakes the checker,
//! which publishes to gRPC first and only then flips `/readyz`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polybot_storage::Backends;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

#[derive(Clone, Default)]
pub struct Health {
    /// What was last published to gRPC health.
    ready: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    components: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    changed: Arc<Notify>,
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// Records whether a component (a supervised loop, the webhook
    /// registration) works; readiness needs every component to.
    pub fn set_component(&self, name: &'static str, ok: bool) {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ok);
        self.changed.notify_one();
    }

    /// Whether the component works (false when never registered).
    pub fn component_ok(&self, name: &str) -> bool {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(false)
    }

    fn components_ok(&self) -> bool {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|ok| *ok)
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

/// Re-checks readiness every `every` until cancelled.
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
            return;
        }
        let ok = backends_ok && health.components_ok();
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
            _ = health.changed.notified() => {}
        }
    }
}
