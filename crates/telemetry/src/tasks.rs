//! The service kit's task supervisor: every background task of the
//! gateway, the detector and the reporter is started through a
//! [`Supervisor`], so none runs unwatched.
//!
//! Two kinds of task:
//! - a **loop** ([`Supervisor::supervise`]) that should run until shutdown:
//!   when it ends or panics early it is logged, counted
//!   (`polybot_task_restarts_total`), marked not ready in the service's
//!   [`Components`] and started again after a backoff that doubles up to a
//!   limit (and resets once a run lasted a while). A loop that keeps dying
//!   is not ready most of the time, so `/readyz` answers 503;
//! - a **task** ([`Supervisor::spawn`]) that runs once: a server until
//!   shutdown, a reply for one request. A panic is logged and counted
//!   (`polybot_task_panics_total`); a task marked critical
//!   ([`Supervisor::spawn_critical`]) that stops before shutdown turns its
//!   component not ready for good, since the service cannot do its work
//!   without it.
//!
//! [`Supervisor::shutdown`] cancels every task's token and waits for them
//! within a grace period, then aborts the rest. Raw `tokio::spawn` in
//! production code lives only here.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};

/// Pauses between restarts of a supervised loop.
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

impl Backoff {
    /// The pause after `pause`: doubled, at most `max`.
    pub fn next(&self, pause: Duration) -> Duration {
        (pause * 2).min(self.max)
    }
}

/// Named readiness conditions: a service is ready only while every
/// registered component is (a supervised loop that runs, the webhook that
/// Telegram knows, a server that serves). Cloning shares the state.
#[derive(Clone, Default)]
pub struct Components {
    map: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    changed: Arc<Notify>,
}

impl Components {
    /// Records whether `name` works, and wakes whoever waits for a change.
    pub fn set(&self, name: &'static str, ok: bool) {
        let previous = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ok);
        if previous != Some(ok) {
            self.changed.notify_waiters();
            self.changed.notify_one();
        }
    }

    /// Whether `name` works (false when never registered).
    pub fn ok(&self, name: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(false)
    }

    /// Whether every registered component works (true when none is).
    pub fn all_ok(&self) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|ok| *ok)
    }

    /// The components that do not work, for a log line.
    pub fn failing(&self) -> Vec<&'static str> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Resolves at the next change of any component.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

static RESTARTS: std::sync::LazyLock<crate::metrics::Counter> = std::sync::LazyLock::new(|| {
    crate::metrics::Counter::new(
        "polybot_task_restarts_total",
        "polybot.task.restarts",
        "Background loops restarted after they ended or panicked, by task",
        &["task"],
    )
});

static PANICS: std::sync::LazyLock<crate::metrics::Counter> = std::sync::LazyLock::new(|| {
    crate::metrics::Counter::new(
        "polybot_task_panics_total",
        "polybot.task.panics",
        "One-off tasks that panicked, by task",
        &["task"],
    )
});

/// Starts, watches and stops a service's tasks. Cloning shares it.
#[derive(Clone)]
pub struct Supervisor {
    cancel: CancellationToken,
    components: Components,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

/// A supervisor of its own: a fresh token, and components nobody else
/// reports to (read them with [`Supervisor::components`]).
impl Default for Supervisor {
    fn default() -> Self {
        Self::new(CancellationToken::new(), Components::default())
    }
}

impl Supervisor {
    /// A supervisor whose tasks stop when `cancel` is cancelled, and whose
    /// loops report their state in `components`.
    pub fn new(cancel: CancellationToken, components: Components) -> Self {
        Self {
            cancel,
            components,
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        }
    }

    /// The token every task watches; cancelled by [`Supervisor::shutdown`].
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The readiness conditions the loops report to.
    pub fn components(&self) -> &Components {
        &self.components
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    fn add(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished tasks so the set does not grow with one-off tasks.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut.in_current_span());
    }

    /// Runs `task()` until shutdown, restarting it with `backoff` when it
    /// ends or panics. The component `name` is ready while the loop runs
    /// and not ready while it waits to restart.
    pub fn supervise<F, Fut>(&self, name: &'static str, backoff: Backoff, task: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.components.set(name, true);
        self.add(restart_loop(
            name,
            backoff,
            self.components.clone(),
            self.cancel.clone(),
            task,
        ));
    }

    /// Runs `fut` once. A panic is logged and counted; the service goes on.
    pub fn spawn(&self, name: &'static str, fut: impl Future<Output = ()> + Send + 'static) {
        self.add(async move {
            if let Err(e) = catch(fut).await {
                PANICS.inc(&[name]);
                error!(task = name, panic = %e, "a task panicked");
            }
        });
    }

    /// Runs `fut` once, as a part the service cannot work without (a
    /// server): the component `name` is ready while it runs, and stays not
    /// ready if it stops before shutdown.
    pub fn spawn_critical(
        &self,
        name: &'static str,
        fut: impl Future<Output = ()> + Send + 'static,
    ) {
        let components = self.components.clone();
        let cancel = self.cancel.clone();
        components.set(name, true);
        self.add(async move {
            let how = match catch(fut).await {
                Ok(()) => "ended".to_owned(),
                Err(e) => {
                    PANICS.inc(&[name]);
                    format!("panicked: {e}")
                }
            };
            if !cancel.is_cancelled() {
                components.set(name, false);
                error!(task = name, how = %how, "a critical task stopped; the service is not ready");
            }
        });
    }

    /// Runs `fut` once and gives back its output through the returned
    /// future (a panic is logged and counted, and it yields `None`). The
    /// work belongs to the supervisor, not to the caller: dropping the
    /// returned future does not stop it, and shutdown waits for it.
    pub fn spawn_with<T: Send + 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.add(async move {
            match catch(fut).await {
                Ok(out) => {
                    let _ = tx.send(out);
                }
                Err(e) => {
                    PANICS.inc(&[name]);
                    error!(task = name, panic = %e, "a task panicked");
                }
            }
        });
        async move { rx.await.ok() }
    }

    /// Cancels every task and waits for them to end within `grace`; the
    /// rest are aborted (and waited for, so none runs on after this
    /// returns). Returns how many had to be aborted.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_ok() {
            return 0;
        }
        let left = tasks.len();
        warn!(
            left,
            ?grace,
            "tasks did not stop within the grace period; aborting them"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        left
    }
}

/// Runs `fut`, catching a panic as an error. Inline, not on a task of its
/// own, so aborting the caller stops the work too.
async fn catch<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(panic_text)
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

async fn restart_loop<F, Fut>(
    name: &'static str,
    backoff: Backoff,
    components: Components,
    cancel: CancellationToken,
    mut task: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut pause = backoff.initial;
    loop {
        components.set(name, true);
        let started = Instant::now();
        let run = catch(task());
        tokio::pin!(run);
        let how = tokio::select! {
            _ = cancel.cancelled() => {
                // Give the loop a moment to see the cancellation itself;
                // dropping it then stops it.
                let _ = tokio::time::timeout(Duration::from_secs(15), &mut run).await;
                return;
            }
            ended = &mut run => match ended {
                Ok(()) => "ended".to_owned(),
                Err(panic) => format!("panicked: {panic}"),
            },
        };
        if cancel.is_cancelled() {
            return;
        }
        components.set(name, false);
        if started.elapsed() >= backoff.reset_after {
            pause = backoff.initial;
        }
        RESTARTS.inc(&[name]);
        error!(task = name, how = %how, restart_in_ms = pause.as_millis() as u64, "a background loop stopped; restarting it");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = backoff.next(pause);
        info!(task = name, "restarting a background loop");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick() -> Backoff {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            reset_after: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_loop_that_panics_is_restarted_and_readiness_follows_it() {
        let runs = Arc::new(AtomicU32::new(0));
        let components = Components::default();
        let supervisor = Supervisor::new(CancellationToken::new(), components.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // The loop dies twice, then lives; between deaths it waits on a gate
        // so the test can see the not-ready state.
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(0u32);
        supervisor.supervise("test_loop", quick(), {
            let runs = Arc::clone(&runs);
            let cancel = supervisor.cancel_token();
            move || {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                let tx = tx.clone();
                let mut gate = gate_rx.clone();
                let cancel = cancel.clone();
                async move {
                    let _ = tx.send(n);
                    if n < 2 {
                        let _ = gate.wait_for(|g| *g > n).await;
                        panic!("run {n} fails");
                    }
                    cancel.cancelled().await;
                }
            }
        });
        for expected in 0..3 {
            assert_eq!(rx.recv().await, Some(expected));
            if expected < 2 {
                assert!(
                    components.ok("test_loop"),
                    "ready while run {expected} runs"
                );
                gate_tx.send_replace(expected + 1);
                // The death is seen: not ready until the restart.
                tokio::time::timeout(Duration::from_secs(5), async {
                    while components.ok("test_loop") {
                        components.changed().await;
                    }
                })
                .await
                .expect("the component turns not ready when its loop dies");
                assert!(!components.all_ok());
                assert_eq!(components.failing(), vec!["test_loop"]);
            }
        }
        // The third run lives on: the component is marked as running.
        assert!(components.ok("test_loop"));
        assert_eq!(supervisor.shutdown(Duration::from_secs(5)).await, 0);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_critical_task_that_stops_early_makes_the_service_not_ready() {
        let components = Components::default();
        let supervisor = Supervisor::new(CancellationToken::new(), components.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        supervisor.spawn_critical("server", async move {
            let _ = stop_rx.await;
        });
        assert!(components.ok("server"));
        stop_tx.send(()).expect("the task waits");
        tokio::time::timeout(Duration::from_secs(5), async {
            while components.ok("server") {
                components.changed().await;
            }
        })
        .await
        .expect("the component turns not ready");
        supervisor.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_critical_task_ending_on_shutdown_is_not_a_failure() {
        let components = Components::default();
        let supervisor = Supervisor::new(CancellationToken::new(), components.clone());
        let cancel = supervisor.cancel_token();
        supervisor.spawn_critical("server", async move { cancel.cancelled().await });
        assert_eq!(supervisor.shutdown(Duration::from_secs(5)).await, 0);
        assert!(components.ok("server"));
    }

    #[tokio::test]
    async fn a_panicking_one_off_task_leaves_the_rest_running_and_yields_none() {
        let supervisor = Supervisor::new(CancellationToken::new(), Components::default());
        let failed = supervisor.spawn_with("reply", async { panic!("boom") });
        let fine = supervisor.spawn_with("reply", async { 7 });
        assert_eq!(failed.await, None::<()>);
        assert_eq!(fine.await, Some(7));
    }

    #[tokio::test]
    async fn shutdown_aborts_what_outlives_the_grace_and_says_how_many() {
        let supervisor = Supervisor::new(CancellationToken::new(), Components::default());
        // Ignores cancellation.
        supervisor.spawn("stubborn", std::future::pending::<()>());
        let cancel = supervisor.cancel_token();
        supervisor.spawn("polite", async move { cancel.cancelled().await });
        let aborted = supervisor.shutdown(Duration::from_millis(100)).await;
        assert_eq!(aborted, 1);
    }
}
