//! A clip (a video, a GIF, a round video) and what detection found in it:
//! the frames sampled from it, the key frames the answer shows, and the
//! largest number of each class seen at once, and when.
//!
//! The choices here are pure, so the engine that samples and detects and
//! the gateway that answers share one definition of them.

use std::fmt;
use std::time::Duration;

use polybot_i18n::{Lang, t};
use serde::{Deserialize, Serialize};

use crate::Label;
use crate::ids::PredictionId;
use crate::settings::ChatSettings;

/// The kind of message a clip came in: answered alike, named in logs and
/// in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipKind {
    Video,
    /// Telegram's "GIF": an MP4 without sound.
    Animation,
    /// A round video message.
    VideoNote,
}

impl ClipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Animation => "animation",
            Self::VideoNote => "video_note",
        }
    }

    /// How the answer names it.
    pub fn noun(self, lang: Lang) -> String {
        lang.text(match self {
            Self::Video => "clip-noun-video",
            Self::Animation => "clip-noun-animation",
            Self::VideoNote => "clip-noun-video-note",
        })
    }
}

impl fmt::Display for ClipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a detection of a clip found: the key frames (annotated, stored),
/// and each class's peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSummary {
    pub prediction_id: PredictionId,
    /// Where the clip is stored.
    pub original_img_path: String,
    pub clip: ClipKind,
    /// 1–[`VideoSummary::MAX_KEY_FRAMES`] annotated frames, in time order.
    pub key_frames: Vec<KeyFrame>,
    /// The largest number of each class seen at once, most first.
    pub peaks: Vec<ClassPeak>,
    /// The clip's length.
    pub duration_ms: u64,
    /// How many frames were sampled and detected.
    pub sampled: u32,
    /// When the last sampled frame is (the first is at 0).
    pub last_sample_ms: u64,
    /// Seconds since the Unix epoch when the detection finished.
    pub time: f64,
    #[serde(default, skip_serializing_if = "ChatSettings::is_default")]
    pub settings: ChatSettings,
}

impl VideoSummary {
    /// The most frames an answer shows (one media group, few enough to
    /// read at a glance).
    pub const MAX_KEY_FRAMES: usize = 4;

    /// What the answer says of the whole clip: each class's peak and when
    /// ("person ×3 at 0:02–0:07, bus ×1"), or that nothing was found.
    pub fn peaks_text(&self, lang: Lang) -> String {
        if self.peaks.is_empty() {
            return t!(lang, "clip-nothing-found", clip = self.clip.noun(lang));
        }
        let whole = (0, self.last_sample_ms);
        self.peaks
            .iter()
            .map(|p| p.describe(whole, lang))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl KeyFrame {
    /// The frame's caption: when, and what it shows ("0:07: bus ×1").
    pub fn caption(&self, lang: Lang) -> String {
        t!(
            lang,
            "key-frame",
            time = clock(self.at_ms),
            counts = crate::counts_text(&self.labels, lang),
        )
    }
}

/// One annotated frame, stored as a JPEG at `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyFrame {
    pub path: String,
    /// When in the clip, from its start.
    pub at_ms: u64,
    pub labels: Vec<Label>,
}

/// The largest number of one class seen in one frame, and the first and
/// last sampled frame that showed that many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassPeak {
    pub class: String,
    pub count: u32,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// One sampled frame's detections, as the summary needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledFrame {
    pub at: Duration,
    pub labels: Vec<Label>,
}

/// Each class's peak over the sampled frames, most first, ties by name.
pub fn peaks(frames: &[SampledFrame]) -> Vec<ClassPeak> {
    let mut peaks: Vec<ClassPeak> = Vec::new();
    for frame in frames {
        let at = millis(frame.at);
        let mut counts: Vec<(&str, u32)> = Vec::new();
        for label in &frame.labels {
            match counts.iter_mut().find(|(c, _)| *c == label.class) {
                Some((_, n)) => *n += 1,
                None => counts.push((&label.class, 1)),
            }
        }
        for (class, count) in counts {
            match peaks.iter_mut().find(|p| p.class == class) {
                Some(p) if count > p.count => {
                    p.count = count;
                    p.from_ms = at;
                    p.to_ms = at;
                }
                Some(p) if count == p.count => p.to_ms = at,
                Some(_) => {}
                None => peaks.push(ClassPeak {
                    class: class.to_owned(),
                    count,
                    from_ms: at,
                    to_ms: at,
                }),
            }
        }
    }
    peaks.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.class.cmp(&b.class)));
    peaks
}

/// How far apart two key frames that show the same counts must be: closer,
/// they are most likely the same scene.
const SAME_SCENE_APART: Duration = Duration::from_secs(5);

/// Which sampled frames the answer shows: up to `max`, those with the most
/// objects, spread over the clip (no two closer than a `max`-th of its
/// sampled span; then, while too few, closer ones), in time order. Two
/// frames that show the same counts are both shown only when they are
/// spread at least [`SAME_SCENE_APART`] apart. Always at least one
/// when there are frames: with nothing found anywhere, the first.
pub fn key_frames(frames: &[SampledFrame], max: usize) -> Vec<usize> {
    if frames.is_empty() || max == 0 {
        return Vec::new();
    }
    let span = frames
        .iter()
        .map(|f| f.at)
        .max()
        .unwrap_or_default()
        .saturating_sub(frames.iter().map(|f| f.at).min().unwrap_or_default());
    let gap = span / u32::try_from(max).unwrap_or(u32::MAX);
    // Most objects first; among equals, the earlier.
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by(|&a, &b| {
        frames[b]
            .labels
            .len()
            .cmp(&frames[a].labels.len())
            .then(frames[a].at.cmp(&frames[b].at))
    });
    // Spread first; if too few frames are that far apart, closer ones,
    // but only those that show something the chosen ones do not (three
    // frames of one parked bus tell the user nothing more than one).
    let mut chosen: Vec<usize> = Vec::new();
    for (pass, gap) in [gap, gap / 2, Duration::ZERO].into_iter().enumerate() {
        for &i in &order {
            if chosen.len() == max || frames[i].labels.is_empty() {
                break;
            }
            let far = chosen
                .iter()
                .all(|&c| c != i && frames[c].at.abs_diff(frames[i].at) >= gap);
            let new = chosen
                .iter()
                .all(|&c| crate::counts(&frames[c].labels) != crate::counts(&frames[i].labels));
            let apart = pass == 0 && gap >= SAME_SCENE_APART;
            if far && (new || apart) {
                chosen.push(i);
            }
        }
    }
    if chosen.is_empty() {
        chosen.push(order[0]);
    }
    chosen.sort_by_key(|&i| frames[i].at);
    chosen
}

/// A time in a clip as the answer writes it: `0:07`, `1:02:03`.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

impl ClassPeak {
    /// `person ×3 at 0:02–0:07`; without a time when the peak held over
    /// the whole sampled clip (`whole`: its first and last frames' times).
    pub fn describe(&self, whole: (u64, u64), lang: Lang) -> String {
        let head = t!(
            lang,
            "counts-item",
            class = lang.class_name(&self.class),
            count = self.count,
        );
        if (self.from_ms, self.to_ms) == whole {
            head
        } else if clock(self.from_ms) == clock(self.to_ms) {
            t!(lang, "peak-at", peak = head, time = clock(self.from_ms))
        } else {
            t!(
                lang,
                "peak-between",
                peak = head,
                from = clock(self.from_ms),
                to = clock(self.to_ms),
            )
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(class: &str) -> Label {
        Label {
            class: class.into(),
            cx: 0.5,
            cy: 0.5,
            width: 0.1,
            height: 0.1,
            confidence: 0.9,
        }
    }

    fn frame(secs: u64, classes: &[&str]) -> SampledFrame {
        SampledFrame {
            at: Duration::from_secs(secs),
            labels: classes.iter().map(|c| label(c)).collect(),
        }
    }

    #[test]
    fn a_peak_is_the_most_seen_at_once_and_spans_the_frames_that_showed_it() {
        let frames = [
            frame(0, &["person"]),
            frame(1, &[]),
            frame(2, &["person", "person", "person"]),
            frame(3, &["person", "person"]),
            frame(7, &["person", "person", "person", "bus"]),
        ];
        let p = peaks(&frames);
        assert_eq!(
            p,
            vec![
                ClassPeak {
                    class: "person".into(),
                    count: 3,
                    from_ms: 2000,
                    to_ms: 7000
                },
                ClassPeak {
                    class: "bus".into(),
                    count: 1,
                    from_ms: 7000,
                    to_ms: 7000
                },
            ]
        );
        assert_eq!(p[0].describe((0, 7000), Lang::En), "person ×3 at 0:02–0:07");
        assert_eq!(p[1].describe((0, 7000), Lang::En), "bus ×1 at 0:07");
    }

    #[test]
    fn a_peak_over_the_whole_clip_is_named_without_a_time() {
        let frames = [frame(0, &["cat"]), frame(1, &["cat"]), frame(2, &["cat"])];
        let p = peaks(&frames);
        assert_eq!(p[0].describe((0, 2000), Lang::En), "cat ×1");
    }

    #[test]
    fn key_frames_are_the_busiest_spread_over_the_clip_in_time_order() {
        // The busiest moments are 10 and 11 s; 11 s is too close to 10 s
        // to be shown too, while quieter moments elsewhere are.
        let mut frames: Vec<SampledFrame> = (0..20).map(|s| frame(s, &["person"])).collect();
        frames[10] = frame(10, &["person"; 5]);
        frames[11] = frame(11, &["person"; 4]);
        frames[2] = frame(2, &["person"; 3]);
        frames[17] = frame(17, &["person"; 2]);
        let chosen = key_frames(&frames, 4);
        assert_eq!(chosen.len(), 4);
        assert!(chosen.contains(&10) && chosen.contains(&2) && chosen.contains(&17));
        assert!(
            !chosen.contains(&11),
            "too close to the busiest: {chosen:?}"
        );
        assert!(chosen.windows(2).all(|w| w[0] < w[1]), "time order");
    }

    #[test]
    fn close_frames_that_show_the_same_as_a_chosen_one_are_left_out() {
        // A parked bus for six seconds, people for the first one: the bus
        // once, the people once, not four frames of the same bus.
        let mut frames: Vec<SampledFrame> = (0..6).map(|s| frame(s, &["bus"])).collect();
        frames[0] = frame(0, &["person", "person"]);
        assert_eq!(key_frames(&frames, 4), vec![0, 2]);
        let same: Vec<SampledFrame> = (0..3).map(|s| frame(s, &["bus"])).collect();
        assert_eq!(key_frames(&same, 4), vec![0]);
        // A minute of one street: its moments, spread over the minute.
        let street: Vec<SampledFrame> = (0..30).map(|s| frame(2 * s, &["person"])).collect();
        assert_eq!(key_frames(&street, 4), vec![0, 8, 16, 24]);
    }

    #[test]
    fn a_clip_with_nothing_found_shows_its_first_frame_only() {
        let frames: Vec<SampledFrame> = (0..5).map(|s| frame(s, &[])).collect();
        assert_eq!(key_frames(&frames, 4), vec![0]);
        assert!(peaks(&frames).is_empty());
    }

    #[test]
    fn a_short_clip_shows_no_more_frames_than_it_has() {
        let frames = [frame(0, &["dog"]), frame(1, &["dog", "dog"])];
        assert_eq!(key_frames(&frames, 4), vec![0, 1]);
        assert!(key_frames(&[], 4).is_empty());
    }

    #[test]
    fn clock_writes_minutes_and_hours() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(7_900), "0:07");
        assert_eq!(clock(62_000), "1:02");
        assert_eq!(clock(3_723_000), "1:02:03");
    }
}
