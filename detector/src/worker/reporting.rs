//! Reporting a finished job: until `Results` acknowledges, retrying what
//! may succeed later with backoff, within the job's deadline. An outage
//! does not use up a receive, and the finished work is not redone.

use std::time::Duration;

use polybot_proto::Report;
use tracing::warn;

use super::ports::{ReportError, ResultsSink};

/// Longest pause between two report attempts.
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(30);

/// The pause before report attempt `attempt + 1` (0-based): doubling from
/// half a second, at most [`MAX_REPORT_BACKOFF`].
fn report_backoff(attempt: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_REPORT_BACKOFF)
}

/// Reports until `sink` acknowledges, retrying retryable failures with
/// backoff until `deadline` (at least one attempt is made). `Ok` says
/// whether the report was a duplicate.
pub(super) async fn report_until(
    sink: &dyn ResultsSink,
    report: &Report,
    deadline: tokio::time::Instant,
) -> Result<bool, ReportError> {
    let mut attempt = 0;
    loop {
        match sink.report(report).await {
            Ok(duplicate) => return Ok(duplicate),
            Err(e) if e.is_retryable() => {
                let pause = report_backoff(attempt);
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(e);
                }
                warn!(
                    error = %e,
                    retry_in = ?pause,
                    "Results did not acknowledge; keeping the job and retrying"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_retries_back_off_from_half_a_second_to_at_most_thirty() {
        let pauses: Vec<Duration> = (0..8).map(report_backoff).collect();
        assert_eq!(pauses[0], Duration::from_millis(500));
        assert_eq!(pauses[1], Duration::from_secs(1));
        assert_eq!(pauses[2], Duration::from_secs(2));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(report_backoff(7), MAX_REPORT_BACKOFF);
        assert_eq!(report_backoff(u32::MAX), MAX_REPORT_BACKOFF);
    }
}
