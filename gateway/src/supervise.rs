//! Supervision of background loops: a loop that ends or panics (while the
//! gateway is not shutting down) is logged, counted
//! (`polybot_task_restarts_total`), marked not ready in the gateway's `Health` and
//! started again after a backoff that doubles up to a limit, and resets once
//! the loop has run for a while.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::health::Health;

/// Pauses between restarts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run at least this long resets the pause to `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

static RESTARTS: std::sync::LazyLock<polybot_telemetry::metrics::Counter> =
    std::sync::LazyLock::new(|| {
        polybot_telemetry::metrics::Counter::new(
            "polybot_task_restarts_total",
            "polybot.task.restarts",
            "Background loops restarted after they ended or panicked, by task",
            &["task"],
        )
    });

/// Runs `task()` on its own Tokio task until `cancel`, restarting it when
/// it ends or panics. With `health`, the component `name` is ready while
/// the loop runs and not ready while it waits to restart.
pub async fn supervise<F, Fut>(
    name: &'static str,
    backoff: Backoff,
    health: Option<Health>,
    cancel: CancellationToken,
    mut task: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut pause = backoff.initial;
    loop {
        if let Some(h) = &health {
            h.set_component(name, true);
        }
        let started = Instant::now();
        let mut handle = tokio::spawn(task());
        let how = tokio::select! {
            _ = cancel.cancelled() => {
                // Give the loop a moment to see the cancellation itself.
                if tokio::time::timeout(Duration::from_secs(15), &mut handle).await.is_err() {
                    handle.abort();
                }
                return;
            }
            joined = &mut handle => match joined {
                Ok(()) => "ended".to_owned(),
                Err(e) if e.is_panic() => "panicked".to_owned(),
                Err(e) => e.to_string(),
            },
        };
        if cancel.is_cancelled() {
            return;
        }
        if let Some(h) = &health {
            h.set_component(name, false);
        }
        if started.elapsed() >= backoff.reset_after {
            pause = backoff.initial;
        }
        RESTARTS.inc(&[name]);
        error!(task = name, how = %how, restart_in_ms = pause.as_millis() as u64, "a background loop stopped; restarting it");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(backoff.max);
        info!(task = name, "restarting a background loop");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_loop_that_panics_is_restarted_and_readiness_follows_it() {
        let runs = Arc::new(AtomicU32::new(0));
        let cancel = CancellationToken::new();
        let health = Health::default();
        let backoff = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            reset_after: Duration::from_secs(60),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let supervisor = tokio::spawn({
            let runs = Arc::clone(&runs);
            let cancel = cancel.clone();
            let health = health.clone();
            supervise("test_loop", backoff, Some(health), cancel, move || {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    let _ = tx.send(n);
                    if n < 2 {
                        panic!("run {n} fails");
                    }
                    std::future::pending::<()>().await;
                }
            })
        });
        for expected in 0..3 {
            assert_eq!(rx.recv().await, Some(expected));
        }
        // The third run lives on: the component is marked as running.
        assert!(health.component_ok("test_loop"));
        cancel.cancel();
        supervisor.await.expect("the supervisor ends on cancel");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
