//! Turning raw model output into detections: layout detection (YOLOv5 vs
//! YOLOv8/11 exports), confidence filtering and class-aware NMS. Pure code,
//! unit-tested with synthetic tensors.

use crate::geometry::BBox;

/// How the detection head lays out its output tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// YOLOv5 exports: `[1, N, 5 + C]`, row = cx, cy, w, h, objectness, class scores.
    V5 { anchors: usize, classes: usize },
    /// YOLOv8/11 exports: `[1, 4 + C, N]`, column = cx, cy, w, h, class scores.
    V8 { anchors: usize, classes: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported model output shape {shape:?}: expected [1, 4+C, N] (YOLOv8/11) or [1, N, 5+C] (YOLOv5){hint}"
)]
pub struct LayoutError {
    pub shape: Vec<i64>,
    pub hint: String,
}

impl OutputLayout {
    /// Recognises the layout from the output's shape. `classes` is the
    /// number of class names from the model's metadata, when it has any.
    pub fn detect(shape: &[i64], classes: Option<usize>) -> Result<Self, LayoutError> {
        let err = |hint: &str| LayoutError {
            shape: shape.to_vec(),
            hint: hint.to_owned(),
        };
        let [batch, a, b] = shape else {
            return Err(err(""));
        };
        if *batch != 1 && *batch != -1 {
            return Err(err(": batch size must be 1"));
        }
        let (a, b) = (
            usize::try_from(*a).map_err(|_| err(""))?,
            usize::try_from(*b).map_err(|_| err(""))?,
        );
        match classes {
            Some(c) if a == 4 + c => Ok(Self::V8 {
                anchors: b,
                classes: c,
            }),
            Some(c) if b == 5 + c => Ok(Self::V5 {
                anchors: a,
                classes: c,
            }),
            Some(c) => Err(err(&format!("; the model's metadata names {c} classes"))),
            // Without metadata, the attribute axis is the short one: a
            // detection head always has far more anchors than attributes.
            None if a < b && a > 4 => Ok(Self::V8 {
                anchors: b,
                classes: a - 4,
            }),
            None if b < a && b > 5 => Ok(Self::V5 {
                anchors: a,
                classes: b - 5,
            }),
            None => Err(err("")),
        }
    }

    pub fn classes(&self) -> usize {
        match *self {
            Self::V5 { classes, .. } | Self::V8 { classes, .. } => classes,
        }
    }

    fn len(&self) -> usize {
        match *self {
            Self::V5 { anchors, classes } => anchors * (5 + classes),
            Self::V8 { anchors, classes } => anchors * (4 + classes),
        }
    }
}

/// Confidence and NMS thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub confidence: f32,
    pub iou: f32,
    /// Upper bound on detections per image, after NMS.
    pub max_detections: usize,
}

/// The minimum confidence a detection needs, unless configured otherwise
/// (Ultralytics' own default).
pub const DEFAULT_CONFIDENCE: f32 = 0.25;
/// The IoU above which NMS suppresses a box, unless configured otherwise.
pub const DEFAULT_IOU: f32 = 0.45;

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            confidence: DEFAULT_CONFIDENCE,
            iou: DEFAULT_IOU,
            max_detections: 300,
        }
    }
}

/// One detection in the coordinates of the tensor it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: BBox,
    pub class_id: usize,
    pub score: f32,
}

/// Extracts candidates above the confidence threshold from a raw output.
pub fn candidates(data: &[f32], layout: OutputLayout, confidence: f32) -> Vec<Candidate> {
    if data.len() < layout.len() {
        return Vec::new();
    }
    match layout {
        OutputLayout::V8 {
            anchors: n,
            classes,
        } => {
            // Walk class rows contiguously (the tensor is row-major, one row
            // per attribute) instead of striding per anchor: this keeps the
            // 80×8400 scan in cache and lets the compiler vectorise it.
            let mut best = vec![f32::NEG_INFINITY; n];
            let mut best_class = vec![0u16; n];
            for c in 0..classes {
                let row = &data[(4 + c) * n..(5 + c) * n];
                for (i, &s) in row.iter().enumerate() {
                    if s > best[i] {
                        best[i] = s;
                        best_class[i] = c as u16;
                    }
                }
            }
            best.iter()
                .enumerate()
                .filter(|(_, s)| **s >= confidence)
                .map(|(i, &score)| Candidate {
                    bbox: BBox::from_center(data[i], data[n + i], data[2 * n + i], data[3 * n + i]),
                    class_id: best_class[i] as usize,
                    score,
                })
                .collect()
        }
        OutputLayout::V5 { anchors, classes } => {
            let stride = 5 + classes;
            data.chunks_exact(stride)
                .take(anchors)
                .filter(|row| row[4] >= confidence)
                .filter_map(|row| {
                    let (class_id, cls) = row[5..]
                        .iter()
                        .copied()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(&b.1))?;
                    let score = row[4] * cls;
                    (score >= confidence).then(|| Candidate {
                        bbox: BBox::from_center(row[0], row[1], row[2], row[3]),
                        class_id,
                        score,
                    })
                })
                .collect()
        }
    }
}

/// Class-aware non-maximum suppression: a box only suppresses boxes of its
/// own class, so a person holding a tie keeps both.
pub fn nms(mut cands: Vec<Candidate>, iou: f32, max_detections: usize) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept.len() >= max_detections {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class_id == c.class_id && k.bbox.iou(&c.bbox) > iou);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

/// Candidates, then NMS: the whole postprocessing step.
pub fn postprocess(data: &[f32], layout: OutputLayout, t: Thresholds) -> Vec<Candidate> {
    nms(
        candidates(data, layout, t.confidence),
        t.iou,
        t.max_detections,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a `[1, 4+C, N]` tensor from per-anchor (cx, cy, w, h, scores).
    fn v8_tensor(anchors: &[([f32; 4], Vec<f32>)], classes: usize) -> Vec<f32> {
        let n = anchors.len();
        let mut t = vec![0.0; (4 + classes) * n];
        for (i, (b, scores)) in anchors.iter().enumerate() {
            for k in 0..4 {
                t[k * n + i] = b[k];
            }
            for (c, s) in scores.iter().enumerate() {
                t[(4 + c) * n + i] = *s;
            }
        }
        t
    }

    fn v5_tensor(anchors: &[([f32; 4], f32, Vec<f32>)]) -> Vec<f32> {
        anchors
            .iter()
            .flat_map(|(b, obj, scores)| {
                b.iter()
                    .copied()
                    .chain([*obj])
                    .chain(scores.iter().copied())
            })
            .collect()
    }

    #[test]
    fn layout_is_detected_from_shape_and_class_count() {
        assert_eq!(
            OutputLayout::detect(&[1, 84, 8400], Some(80)),
            Ok(OutputLayout::V8 {
                anchors: 8400,
                classes: 80
            })
        );
        assert_eq!(
            OutputLayout::detect(&[1, 25200, 85], Some(80)),
            Ok(OutputLayout::V5 {
                anchors: 25200,
                classes: 80
            })
        );
        // Real outputs are inspected at run time, so dynamic (-1) axes never reach here.
        assert!(OutputLayout::detect(&[1, 84, -1], Some(80)).is_err());
        assert_eq!(
            OutputLayout::detect(&[1, 6, 8400], None),
            Ok(OutputLayout::V8 {
                anchors: 8400,
                classes: 2
            })
        );
        assert_eq!(
            OutputLayout::detect(&[1, 25200, 7], None),
            Ok(OutputLayout::V5 {
                anchors: 25200,
                classes: 2
            })
        );
        assert!(OutputLayout::detect(&[1, 84, 8400], Some(3)).is_err());
        assert!(OutputLayout::detect(&[84, 8400], None).is_err());
    }

    #[test]
    fn v8_candidates_take_the_best_class_and_drop_low_scores() {
        let t = v8_tensor(
            &[
                ([50.0, 50.0, 20.0, 10.0], vec![0.1, 0.9]),
                ([10.0, 10.0, 4.0, 4.0], vec![0.2, 0.1]),
            ],
            2,
        );
        let c = candidates(
            &t,
            OutputLayout::V8 {
                anchors: 2,
                classes: 2,
            },
            0.25,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert!((c[0].score - 0.9).abs() < 1e-6);
        assert_eq!(
            c[0].bbox,
            BBox {
                x1: 40.0,
                y1: 45.0,
                x2: 60.0,
                y2: 55.0
            }
        );
    }

    #[test]
    fn v5_candidates_multiply_objectness_by_class_score() {
        let t = v5_tensor(&[
            ([50.0, 50.0, 20.0, 10.0], 0.8, vec![0.5, 0.9]),
            // High class score but low objectness: dropped.
            ([10.0, 10.0, 4.0, 4.0], 0.2, vec![0.99, 0.0]),
            // Objectness passes, product does not: dropped.
            ([10.0, 10.0, 4.0, 4.0], 0.4, vec![0.5, 0.0]),
        ]);
        let c = candidates(
            &t,
            OutputLayout::V5 {
                anchors: 3,
                classes: 2,
            },
            0.25,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert!((c[0].score - 0.72).abs() < 1e-6);
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let b = |x: f32| BBox {
            x1: x,
            y1: 0.0,
            x2: x + 10.0,
            y2: 10.0,
        };
        let cands = vec![
            Candidate {
                bbox: b(0.0),
                class_id: 0,
                score: 0.9,
            },
            Candidate {
                bbox: b(1.0),
                class_id: 0,
                score: 0.8,
            }, // overlaps the first: gone
            Candidate {
                bbox: b(1.0),
                class_id: 1,
                score: 0.7,
            }, // other class: kept
            Candidate {
                bbox: b(50.0),
                class_id: 0,
                score: 0.6,
            }, // far away: kept
        ];
        let kept = nms(cands, 0.45, 300);
        let scores: Vec<f32> = kept.iter().map(|c| c.score).collect();
        assert_eq!(scores, vec![0.9, 0.7, 0.6]);
    }

    #[test]
    fn nms_caps_the_number_of_detections() {
        let cands = (0..10)
            .map(|i| Candidate {
                bbox: BBox {
                    x1: i as f32 * 100.0,
                    y1: 0.0,
                    x2: i as f32 * 100.0 + 10.0,
                    y2: 10.0,
                },
                class_id: 0,
                score: 0.5,
            })
            .collect();
        assert_eq!(nms(cands, 0.45, 3).len(), 3);
    }

    #[test]
    fn postprocess_on_a_short_tensor_returns_nothing_instead_of_panicking() {
        let layout = OutputLayout::V8 {
            anchors: 100,
            classes: 80,
        };
        assert!(postprocess(&[0.5; 10], layout, Thresholds::default()).is_empty());
    }
}
