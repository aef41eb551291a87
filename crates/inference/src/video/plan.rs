//! Which moments of a clip are sampled: one every `interval` from the
//! first frame, or, when that would take more than `max_frames`,
//! `max_frames` spread evenly over the whole clip (so a two-minute clip is
//! covered, not its first thirty seconds).

use std::time::Duration;

/// Sample `frames` frames, the `i`-th at `i × step` from the clip's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplePlan {
    pub step: Duration,
    /// How many frames to ask ffmpeg for (it may give fewer: a clip's
    /// video can end before its container's length).
    pub frames: usize,
}

impl SamplePlan {
    /// The plan for a clip of `duration` (`None`: unknown, so sampled
    /// every `interval` until `max_frames` or its end).
    pub fn new(duration: Option<Duration>, interval: Duration, max_frames: usize) -> Self {
        // Steps are whole milliseconds, so times and the filter's rate
        // (1000 / step) are exact.
        let interval = interval.max(Duration::from_millis(1));
        let interval =
            Duration::from_millis(u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        let max_frames = max_frames.max(1);
        let Some(duration) = duration else {
            return Self {
                step: interval,
                frames: max_frames,
            };
        };
        let max = u32::try_from(max_frames).unwrap_or(u32::MAX);
        if duration <= interval.saturating_mul(max) {
            // Every sample before the end: 0, 1, … s for a 6.5 s clip is 7.
            let whole = duration.as_nanos().div_ceil(interval.as_nanos());
            let frames = usize::try_from(whole)
                .unwrap_or(max_frames)
                .clamp(1, max_frames);
            Self {
                step: interval,
                frames,
            }
        } else {
            let step_ms = duration.as_millis() / u128::from(max);
            let step_ms = u64::try_from(step_ms).unwrap_or(u64::MAX).max(1);
            Self {
                step: Duration::from_millis(step_ms).max(interval),
                frames: max_frames,
            }
        }
    }

    /// When the `i`-th sample is, from the clip's start.
    pub fn at(&self, i: usize) -> Duration {
        self.step
            .saturating_mul(u32::try_from(i).unwrap_or(u32::MAX))
    }

    /// The `fps` filter's rate for this plan: `1000/STEP_MS`.
    pub fn rate(&self) -> String {
        format!("1000/{}", self.step.as_millis().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_short_clip_is_sampled_every_second_from_its_first_frame() {
        let p = SamplePlan::new(Some(Duration::from_millis(6_500)), SECOND, 30);
        assert_eq!(
            p,
            SamplePlan {
                step: SECOND,
                frames: 7
            }
        );
        assert_eq!(p.at(0), Duration::ZERO);
        assert_eq!(p.at(6), Duration::from_secs(6));
        assert_eq!(p.rate(), "1000/1000");
    }

    #[test]
    fn a_clip_shorter_than_a_step_still_gives_its_first_frame() {
        for d in [Duration::ZERO, Duration::from_millis(40)] {
            assert_eq!(SamplePlan::new(Some(d), SECOND, 30).frames, 1);
        }
    }

    #[test]
    fn a_two_minute_clip_is_covered_by_thirty_frames_four_seconds_apart() {
        let p = SamplePlan::new(Some(Duration::from_secs(120)), SECOND, 30);
        assert_eq!(
            p,
            SamplePlan {
                step: Duration::from_secs(4),
                frames: 30
            }
        );
        assert_eq!(p.at(29), Duration::from_secs(116));
        assert_eq!(p.rate(), "1000/4000");
    }

    #[test]
    fn a_clip_of_unknown_length_is_sampled_every_interval_up_to_the_cap() {
        let p = SamplePlan::new(None, SECOND, 30);
        assert_eq!(
            p,
            SamplePlan {
                step: SECOND,
                frames: 30
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn samples_start_at_zero_stay_inside_the_clip_and_cover_it(
            ms in 0u64..20_000_000,
            interval_ms in 1u64..5_000,
            max in 1usize..60,
        ) {
            let d = Duration::from_millis(ms);
            let interval = Duration::from_millis(interval_ms);
            let p = SamplePlan::new(Some(d), interval, max);
            proptest::prop_assert!(p.frames >= 1 && p.frames <= max);
            proptest::prop_assert_eq!(p.at(0), Duration::ZERO);
            proptest::prop_assert!(p.step >= interval, "never denser than asked");
            // Every sample but the first is inside the clip…
            if p.frames > 1 {
                proptest::prop_assert!(p.at(p.frames - 1) < d);
            }
            // …and the last is within one step (plus rounding) of its end.
            let tail = d.saturating_sub(p.at(p.frames - 1));
            proptest::prop_assert!(tail <= p.step + Duration::from_millis(max as u64), "{p:?} leaves {tail:?}");
        }
    }
}
