//! The one clock the domain reads: seconds since the Unix epoch, as jobs,
//! summaries and records store time.

/// Seconds since the Unix epoch, as the summaries store time.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
