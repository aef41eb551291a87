//! What the pipeline produces for one photo: detections in original-image
//! pixels, the annotated JPEG, per-stage timings, and the course-format
//! labels and summary made from them.

use std::time::Duration;

use polybot_domain::{Label, PredictionId, PredictionSummary};

use crate::geometry::BBox;

/// One detected object in original-image pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub class_id: usize,
    pub class_name: String,
    pub confidence: f32,
    pub bbox: BBox,
}

/// Time spent in each stage of the pipeline for one image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: Duration,
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
    pub annotate: Duration,
    pub encode: Duration,
}

impl Timings {
    pub fn total(&self) -> Duration {
        self.decode
            + self.preprocess
            + self.inference
            + self.postprocess
            + self.annotate
            + self.encode
    }
}

/// Everything the pipeline produces for one photo.
#[derive(Debug, Clone)]
pub struct DetectOutput {
    /// Size of the upright (EXIF-oriented) original image; `detections` are
    /// in its pixels. The annotated image may be smaller (a large JPEG is
    /// drawn at its decoded scale, within `annotated_max_side`).
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    pub annotated_jpeg: Vec<u8>,
    /// The annotated photo at full resolution, when asked for with
    /// [`AnnotatedSize::ForTelegram`] and the original is past Telegram's
    /// photo limits.
    pub full_jpeg: Option<Vec<u8>>,
    pub timings: Timings,
}

impl DetectOutput {
    /// Detections as course-format labels, normalised to 0..1 of the image.
    pub fn labels(&self) -> Vec<Label> {
        let (w, h) = (self.width.max(1) as f32, self.height.max(1) as f32);
        self.detections
            .iter()
            .map(|d| Label {
                class: d.class_name.clone(),
                cx: (d.bbox.x1 + d.bbox.x2) / 2.0 / w,
                cy: (d.bbox.y1 + d.bbox.y2) / 2.0 / h,
                width: d.bbox.width() / w,
                height: d.bbox.height() / h,
                confidence: d.confidence,
            })
            .collect()
    }

    /// The prediction summary for this output, given where the images live.
    pub fn summary(
        &self,
        prediction_id: PredictionId,
        original_img_path: String,
        predicted_img_path: String,
    ) -> PredictionSummary {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        PredictionSummary {
            prediction_id,
            original_img_path,
            predicted_img_path,
            full_img_path: None,
            labels: self.labels(),
            time,
            settings: polybot_domain::ChatSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_normalised_centre_and_size() {
        let out = DetectOutput {
            width: 200,
            height: 100,
            detections: vec![Detection {
                class_id: 0,
                class_name: "person".into(),
                confidence: 0.8,
                bbox: BBox {
                    x1: 50.0,
                    y1: 25.0,
                    x2: 150.0,
                    y2: 75.0,
                },
            }],
            annotated_jpeg: vec![],
            full_jpeg: None,
            timings: Timings::default(),
        };
        let l = &out.labels()[0];
        assert_eq!((l.cx, l.cy, l.width, l.height), (0.5, 0.5, 0.5, 0.5));
        assert_eq!(l.class, "person");
    }
}
