//! Domain types shared by every Polybot service.
//!
//! Newtypes carry meaning through the code (a `ChatId` is never confused
//! with an `UpdateId`), and the prediction summary has one definition that
//! the detector writes, the table stores and the gateway reads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A Telegram chat, where replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Telegram update's id; unique per bot, used to deduplicate deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpdateId(pub i64);

impl fmt::Display for UpdateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One photo's journey through the system: job, images, summary and reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PredictionId(Uuid);

impl PredictionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for PredictionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for PredictionId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ParseIdError(format!("{s:?} is not a prediction id (a UUID)")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseIdError(String);

/// A key in the object store: relative, `/`-separated, no `..` segments.
///
/// Validated once here so that the local file-backed store can map keys to
/// paths without any risk of escaping its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: impl Into<String>) -> Result<Self, ParseIdError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 1024
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && key.chars().all(|c| !c.is_control() && c != '\\');
        if ok {
            Ok(Self(key))
        } else {
            Err(ParseIdError(format!("{key:?} is not a valid object key")))
        }
    }

    /// Where a chat's original photo for a prediction is stored.
    pub fn original(chat: ChatId, id: PredictionId, extension: &str) -> Self {
        Self(format!("{chat}/original/{id}.{extension}"))
    }

    /// Where the annotated photo for a prediction is stored.
    pub fn predicted(chat: ChatId, id: PredictionId) -> Self {
        Self(format!("{chat}/predicted/{id}.jpg"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = ParseIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> Self {
        k.0
    }
}

/// One detected object, in the course's summary format: the box centre and
/// size normalised to 0..1 of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub class: String,
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
    pub height: f32,
    pub confidence: f32,
}

/// The prediction summary, compatible with the course format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSummary {
    pub prediction_id: PredictionId,
    pub original_img_path: String,
    pub predicted_img_path: String,
    pub labels: Vec<Label>,
    /// Seconds since the Unix epoch when the prediction finished.
    pub time: f64,
}

impl PredictionSummary {
    /// Per-class counts, most frequent first, ties by name: what the user reads.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for label in &self.labels {
            match counts.iter_mut().find(|(c, _)| *c == label.class) {
                Some((_, n)) => *n += 1,
                None => counts.push((label.class.clone(), 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// A short human line such as "person ×2, car ×1", or "no objects found".
    pub fn counts_text(&self) -> String {
        let counts = self.counts();
        if counts.is_empty() {
            return "no objects found".to_owned();
        }
        counts
            .iter()
            .map(|(class, n)| format!("{class} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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

    fn summary(labels: Vec<Label>) -> PredictionSummary {
        PredictionSummary {
            prediction_id: PredictionId::new(),
            original_img_path: "1/original/x.jpg".into(),
            predicted_img_path: "1/predicted/x.jpg".into(),
            labels,
            time: 0.0,
        }
    }

    #[test]
    fn counts_text_orders_by_count_then_name() {
        let s = summary(vec![
            label("car"),
            label("person"),
            label("person"),
            label("bus"),
        ]);
        assert_eq!(s.counts_text(), "person ×2, bus ×1, car ×1");
    }

    #[test]
    fn counts_text_says_when_nothing_was_found() {
        assert_eq!(summary(vec![]).counts_text(), "no objects found");
    }

    #[test]
    fn object_keys_reject_path_escapes() {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a/\nb"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(ObjectKey::parse("42/original/x.jpg").is_ok());
    }

    #[test]
    fn summary_serialises_in_the_course_format() {
        let s = summary(vec![label("dog")]);
        let v: serde_json::Value = serde_json::to_value(&s).expect("serialise");
        for key in [
            "prediction_id",
            "original_img_path",
            "predicted_img_path",
            "labels",
            "time",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let l = &v["labels"][0];
        for key in ["class", "cx", "cy", "width", "height", "confidence"] {
            assert!(l.get(key).is_some(), "label missing {key}");
        }
    }

    #[test]
    fn prediction_id_round_trips_through_text() {
        let id = PredictionId::new();
        assert_eq!(id.to_string().parse::<PredictionId>(), Ok(id));
        assert!("nope".parse::<PredictionId>().is_err());
    }
}
