//! The one retention clock: how long what a chat leaves behind is kept
//! (prediction records, their reply and extra claims, notices, answers, and
//! on the embedded backend the pictures). On AWS the images bucket's
//! lifecycle rule expires the pictures; Terraform's `retention_days` sets
//! both it and this setting.

use std::time::Duration;

/// Whole days, 1 to [`Retention::MAX_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Retention {
    days: u16,
}

/// Thirty days: what the records were always kept for, and Terraform's
/// default `retention_days`.
pub const DEFAULT_RETENTION: Retention = Retention { days: 30 };

/// A retention outside 1 to [`Retention::MAX_DAYS`] whole days.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a retention must be 1 to {max} whole days, not {given}", max = Retention::MAX_DAYS)]
pub struct RetentionError {
    /// What was asked for, as given.
    pub given: String,
}

impl Retention {
    /// Ten years: longer is a typo, not a policy.
    pub const MAX_DAYS: u16 = 3650;

    /// `days` whole days, if within 1 to [`Retention::MAX_DAYS`].
    pub fn days(days: u32) -> Result<Self, RetentionError> {
        match u16::try_from(days) {
            Ok(days @ 1..=Self::MAX_DAYS) => Ok(Self { days }),
            _ => Err(RetentionError {
                given: days.to_string(),
            }),
        }
    }

    /// The number of days.
    pub fn as_days(self) -> u16 {
        self.days
    }

    /// The retention as a duration (days of 24 hours).
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.days) * 24 * 60 * 60)
    }
}

impl Default for Retention {
    fn default() -> Self {
        DEFAULT_RETENTION
    }
}

/// The number of days, as the setting is written.
impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.days.fmt(f)
    }
}

/// A number of days, as `POLYBOT_RETENTION_DAYS` holds it.
impl std::str::FromStr for Retention {
    type Err = RetentionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refused = || RetentionError {
            given: text.to_owned(),
        };
        let days = text.trim().parse::<u32>().map_err(|_| refused())?;
        Self::days(days).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_is_one_to_ten_years_of_whole_days() {
        assert_eq!(Retention::days(1).map(Retention::as_days), Ok(1));
        assert_eq!(Retention::days(3650).map(Retention::as_days), Ok(3650));
        assert!(Retention::days(0).is_err());
        assert!(Retention::days(3651).is_err());
        assert!(Retention::days(u32::MAX).is_err());
    }

    #[test]
    fn the_setting_reads_whole_days_and_names_what_it_refused() {
        assert_eq!("7".parse::<Retention>().map(Retention::as_days), Ok(7));
        assert_eq!(" 30 ".parse::<Retention>(), Ok(DEFAULT_RETENTION));
        for wrong in ["0", "-1", "1.5", "7d", "", "99999"] {
            let e = wrong.parse::<Retention>().expect_err(wrong);
            assert!(e.to_string().contains(wrong), "{e}");
        }
    }

    #[test]
    fn the_default_is_thirty_days() {
        assert_eq!(Retention::default().as_days(), 30);
        assert_eq!(
            DEFAULT_RETENTION.as_duration(),
            Duration::from_secs(30 * 24 * 60 * 60)
        );
        assert_eq!(DEFAULT_RETENTION.to_string(), "30");
    }
}
