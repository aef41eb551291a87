//! Whether one model finds what another finds: every reference detection
//! above a confidence needs a candidate detection of the same class that
//! overlaps it enough. Used to hold the INT8 model to the FP32 one.

use crate::output::Detection;

/// The INT8-vs-FP32 rule: FP32 detections with confidence ≥ 0.4 must be
/// found again at IoU ≥ 0.8.
pub const MIN_CONFIDENCE: f32 = 0.4;
pub const MIN_IOU: f32 = 0.8;

/// The outcome of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Reference detections at or above the confidence.
    pub checked: usize,
    /// Of those, how many a candidate of the same class matches at the IoU.
    pub matched: usize,
    /// The lowest best-IoU over the checked detections (1 when none were checked).
    pub worst_iou: f32,
}

impl Agreement {
    pub fn holds(&self) -> bool {
        self.matched == self.checked
    }
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} (worst IoU {:.2})",
            self.matched, self.checked, self.worst_iou
        )
    }
}

/// Checks `candidate` against `reference` under `min_confidence` and `min_iou`.
pub fn compare(
    reference: &[Detection],
    candidate: &[Detection],
    min_confidence: f32,
    min_iou: f32,
) -> Agreement {
    let mut out = Agreement {
        checked: 0,
        matched: 0,
        worst_iou: 1.0,
    };
    for r in reference.iter().filter(|r| r.confidence >= min_confidence) {
        let best = candidate
            .iter()
            .filter(|c| c.class_id == r.class_id)
            .map(|c| c.bbox.iou(&r.bbox))
            .fold(0.0f32, f32::max);
        out.checked += 1;
        out.matched += usize::from(best >= min_iou);
        out.worst_iou = out.worst_iou.min(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    fn det(class_id: usize, confidence: f32, x1: f32) -> Detection {
        Detection {
            class_id,
            class_name: format!("c{class_id}"),
            confidence,
            bbox: BBox {
                x1,
                y1: 0.0,
                x2: x1 + 100.0,
                y2: 100.0,
            },
        }
    }

    #[test]
    fn a_same_class_box_that_overlaps_enough_matches() {
        let a = compare(&[det(0, 0.9, 0.0)], &[det(0, 0.8, 5.0)], 0.4, 0.8);
        assert!(a.holds(), "{a}");
        assert_eq!((a.checked, a.matched), (1, 1));
        assert!((a.worst_iou - 95.0 / 105.0).abs() < 1e-4, "{a}");
    }

    #[test]
    fn another_class_or_a_shifted_box_does_not_match() {
        let wrong_class = compare(&[det(0, 0.9, 0.0)], &[det(1, 0.9, 0.0)], 0.4, 0.8);
        assert!(!wrong_class.holds());
        assert_eq!(wrong_class.worst_iou, 0.0);
        let shifted = compare(&[det(0, 0.9, 0.0)], &[det(0, 0.9, 30.0)], 0.4, 0.8);
        assert!(!shifted.holds(), "{shifted}");
    }

    #[test]
    fn reference_detections_under_the_confidence_are_not_checked() {
        let a = compare(&[det(0, 0.3, 0.0)], &[], 0.4, 0.8);
        assert_eq!((a.checked, a.matched), (0, 0));
        assert!(a.holds());
    }
}
