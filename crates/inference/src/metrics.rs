//! The engine's own gauges: which model is loaded, and on how many lanes.
//! (The worker's job metrics live in the `detector` service.)

use std::sync::LazyLock;

use crate::model::Precision;

static MODEL: LazyLock<Option<prometheus::IntGaugeVec>> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "polybot_detector_model_info",
        "The loaded model: 1 on the label of its precision (fp32 or int8), 0 on the other",
        &["precision"]
    )
    .ok()
});
static LANES: LazyLock<Option<prometheus::IntGauge>> = LazyLock::new(|| {
    prometheus::register_int_gauge!("polybot_detector_lanes", "Inference lanes").ok()
});

/// Records which model this process loaded (the label is one of two values).
pub fn model_loaded(precision: Precision, lanes: usize) {
    if let Some(g) = MODEL.as_ref() {
        for p in [Precision::Fp32, Precision::Int8] {
            g.with_label_values(&[p.as_str()])
                .set(i64::from(p == precision));
        }
    }
    if let Some(g) = LANES.as_ref() {
        g.set(i64::try_from(lanes).unwrap_or(i64::MAX));
    }
}
