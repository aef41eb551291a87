//! The engine's own gauges: which model is loaded and why, and on how many
//! lanes.
//! (The worker's job metrics live in the `detector` service.)

use std::sync::LazyLock;

use crate::model::{Precision, PrecisionChoice, PrecisionSetting};

static MODEL: LazyLock<Option<prometheus::IntGaugeVec>> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "polybot_detector_model_info",
        "The loaded model: 1 on the label of its precision (fp32 or int8), 0 on the other",
        &["precision"]
    )
    .ok()
});
static CHOICE: LazyLock<Option<prometheus::IntGaugeVec>> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "polybot_detector_precision_choice",
        "How the model's precision was chosen: 1 on the setting (auto, fp32, int8), \
         the precision it came to and why (amx_int8, avx512_vnni, no_int8_units, set)",
        &["setting", "precision", "reason"]
    )
    .ok()
});
static LANES: LazyLock<Option<prometheus::IntGauge>> = LazyLock::new(|| {
    prometheus::register_int_gauge!("polybot_detector_lanes", "Inference lanes").ok()
});

/// Records how the precision was chosen (one series; the labels take a
/// handful of values).
pub fn precision_chosen(setting: PrecisionSetting, choice: PrecisionChoice) {
    if let Some(g) = CHOICE.as_ref() {
        g.reset();
        g.with_label_values(&[setting.as_str(), choice.precision.as_str(), choice.reason])
            .set(1);
    }
}

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
