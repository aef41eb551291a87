//! The heartbeat: a running job's message is kept invisible to other
//! workers, from receipt until the report is acknowledged. At start-up the
//! heartbeat is checked against the queue's own visibility timeout.

use std::time::Duration;

use polybot_storage::{JobQueue, Receipt};
use tracing::warn;

use super::config::DEFAULT_VISIBILITY;
use super::error::WorkerError;

/// How often the heartbeat extends a job's visibility to `visibility`.
pub fn heartbeat_interval(visibility: Duration) -> Duration {
    (visibility / 3).max(Duration::from_millis(200))
}

/// The visibility the heartbeat sets: `configured`, else the queue's.
/// Fails when the heartbeat would not come well within the queue's
/// visibility timeout (its interval must be at most half of it), since a
/// job would then be delivered twice.
pub fn heartbeat_visibility(
    configured: Option<Duration>,
    queue: Option<Duration>,
) -> Result<Duration, WorkerError> {
    let visibility = configured.or(queue).unwrap_or(DEFAULT_VISIBILITY);
    let interval = heartbeat_interval(visibility);
    match queue {
        Some(queue) if interval * 2 > queue => Err(WorkerError::Heartbeat {
            interval,
            visibility,
            queue,
        }),
        _ => Ok(visibility),
    }
}

/// [`heartbeat_visibility`] against the queue's reported settings: the
/// start-up check (run it before loading the model, to fail fast).
pub async fn check_heartbeat(
    queue: &dyn JobQueue,
    configured: Option<Duration>,
) -> Result<Duration, WorkerError> {
    let settings = queue.settings().await.map_err(WorkerError::QueueSettings)?;
    heartbeat_visibility(configured, settings.visibility)
}

/// Keeps the message of `receipt` invisible for `visibility` at a time
/// while the job runs. Never returns.
pub(super) async fn keep_invisible(queue: &dyn JobQueue, receipt: &Receipt, visibility: Duration) {
    let every = heartbeat_interval(visibility);
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = queue.set_visibility(receipt, visibility).await {
            warn!(error = %e, "heartbeat failed; the job may be delivered to another worker");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_heartbeat_defaults_to_the_queues_own_visibility() {
        assert_eq!(
            heartbeat_visibility(None, Some(S(10))).expect("fits"),
            S(10)
        );
        assert_eq!(
            heartbeat_visibility(None, Some(S(60))).expect("fits"),
            S(60)
        );
        assert_eq!(
            heartbeat_visibility(None, None).expect("fits"),
            DEFAULT_VISIBILITY
        );
    }

    #[test]
    fn a_heartbeat_not_comfortably_below_the_queues_visibility_is_refused_with_the_settings_named()
    {
        // Every 20 s against a 30 s queue: over half of it.
        let err = heartbeat_visibility(Some(S(60)), Some(S(30))).expect_err("too slow");
        let message = err.to_string();
        assert!(matches!(err, WorkerError::Heartbeat { .. }), "{err:?}");
        assert!(
            message.contains("POLYBOT_VISIBILITY=60s") && message.contains("30s"),
            "{message}"
        );
        assert!(message.contains("at most 45s"), "{message}");
        // Every 15 s against a 30 s queue: half of it, accepted.
        assert_eq!(
            heartbeat_visibility(Some(S(45)), Some(S(30))).expect("fits"),
            S(45)
        );
        // A longer visibility than the queue's is fine when the beat is quick.
        assert_eq!(
            heartbeat_visibility(Some(S(12)), Some(S(10))).expect("fits"),
            S(12)
        );
    }
}
