//! A job's storage calls (fetching its photos, reading the records it works
//! from, storing its pictures, saving its result) are retried in place
//! while their error is retryable.
//!
//! The heartbeat keeps the job's message invisible meanwhile, so an S3 or
//! DynamoDB outage costs no receive. Leaving the job for redelivery instead
//! spent one receive per visibility timeout: at 60 s and 3 receives, a
//! three-minute outage dead-lettered every queued photo and each user got
//! an apology. The job's deadline (the caller's timeout) bounds the wait.

use std::future::Future;
use std::time::Duration;

use polybot_storage::StorageError;
use tracing::{info, warn};

/// The first pause after a failure; each further one doubles, up to
/// [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// Often enough to answer soon after the storage is back, rarely enough to
/// add nothing to an outage's load.
const LONGEST_PAUSE: Duration = Duration::from_secs(10);
/// One warning per this many failures of one call, after the first.
const WARN_EVERY: u32 = 10;

/// A storage call a job makes, named for logs and the bounded `call` label
/// of `polybot_storage_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StorageCall {
    Fetch,
    /// A record the job works from (the detection a crops job cuts).
    Read,
    Store,
    Save,
}

impl StorageCall {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Read => "read",
            Self::Store => "store",
            Self::Save => "save",
        }
    }
}

/// Runs `call` until it succeeds or fails permanently, pausing with
/// exponential backoff (and jitter, so that workers do not retry in step)
/// after each retryable failure.
pub(super) async fn patiently<T, F, Fut>(what: StorageCall, mut call: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let mut pause = FIRST_PAUSE;
    let mut failures = 0u32;
    loop {
        match call().await {
            Err(e) if e.is_retryable() => {
                failures += 1;
                crate::metrics::storage_retry(what.as_str());
                if failures == 1 || failures.is_multiple_of(WARN_EVERY) {
                    warn!(
                        call = what.as_str(),
                        failures,
                        error = %super::step::chain(&e),
                        "storage unavailable; retrying in place (the job keeps its message)"
                    );
                }
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            outcome => {
                if failures > 0 && outcome.is_ok() {
                    info!(call = what.as_str(), failures, "storage is back");
                }
                return outcome;
            }
        }
    }
}

/// `pause` less up to a quarter, at random.
fn jittered(pause: Duration) -> Duration {
    let quarter = pause / 4;
    let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
    pause - Duration::from_nanos(if nanos == 0 { 0 } else { random_u64() % nanos })
}

/// A random number good enough for jitter, without a dependency: std's
/// randomly seeded hasher.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn down() -> StorageError {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        StorageError::unavailable("test store", "reading", refused)
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_failures_are_retried_until_the_call_succeeds() {
        let calls = AtomicU32::new(0);
        let got = patiently(StorageCall::Fetch, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 5 {
                Err(down())
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(got.expect("succeeds at last"), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let got: Result<(), _> = patiently(StorageCall::Save, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StorageError::invalid("no such table"))
        })
        .await;
        assert!(!got.expect_err("permanent").is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pauses_grow_to_the_longest_and_stay_there() {
        let started = tokio::time::Instant::now();
        let calls = AtomicU32::new(0);
        patiently(StorageCall::Store, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 20 {
                Err(down())
            } else {
                Ok(())
            }
        })
        .await
        .expect("succeeds at last");
        // 0.2 + 0.4 + … + 6.4 s, then 14 pauses of 10 s, each less up to
        // a quarter.
        let longest: f64 = (0..6).map(|i| 0.2 * f64::from(1 << i)).sum::<f64>() + 14.0 * 10.0;
        let waited = started.elapsed().as_secs_f64();
        assert!(waited <= longest + 0.01, "{waited} s");
        assert!(waited >= 0.75 * longest, "{waited} s");
    }
}
