//! How long intake keeps trying one update: deliveries are counted per
//! update, and past the budget the update is given up on (the user gets an
//! apology, or the update is skipped), which is counted in a metric.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use polybot_domain::{BotId, UpdateId};

/// How many deliveries of one update are tried, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    pub max_attempts: u32,
    pub max_age: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_age: Duration::from_secs(10 * 60),
        }
    }
}

/// Deliveries seen per update (in memory: a restart starts the count again).
#[derive(Default)]
pub(super) struct Attempts {
    seen: Mutex<HashMap<(BotId, UpdateId), (Instant, u32)>>,
}

impl Attempts {
    /// Counts one more attempt; whether the budget is now spent.
    pub(super) fn count(&self, key: (BotId, UpdateId), budget: RetryBudget) -> (u32, bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, (first, _)| first.elapsed() < budget.max_age * 2);
        }
        let entry = seen.entry(key).or_insert((Instant::now(), 0));
        entry.1 += 1;
        let spent = entry.1 >= budget.max_attempts || entry.0.elapsed() >= budget.max_age;
        (entry.1, spent)
    }

    pub(super) fn forget(&self, key: (BotId, UpdateId)) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
}

static POISON: std::sync::LazyLock<polybot_telemetry::metrics::Counter> =
    std::sync::LazyLock::new(|| {
        polybot_telemetry::metrics::Counter::new(
            "polybot_updates_given_up_total",
            "polybot.updates.given_up",
            "Updates that could not be handled, by what was done (apologised, skipped, unreadable)",
            &["result"],
        )
    });

/// Counts an update that was given up on.
pub fn given_up(result: &'static str) {
    POISON.inc(&[result]);
}
