//! The INT8 model finds what the FP32 model finds: every FP32 detection with
//! confidence ≥ 0.4 has an INT8 detection of the same class at IoU ≥ 0.8.
//!
//! The photos are bus.jpg and zidane.jpg, which `cargo xtask setup` keeps
//! out of the INT8 model's calibration set (`CALIBRATION_PHOTOS` in
//! xtask/src/assets.rs). Needs `cargo xtask setup`, which builds the model.

use std::path::PathBuf;

use polybot_inference::agreement::{self, MIN_CONFIDENCE, MIN_IOU};
use polybot_inference::model::{
    default_assets_dir, default_int8_model_path, default_model_path, default_ort_library,
};
use polybot_inference::{DetectConfig, Detection, Engine, ModelSource, Precision};

fn engine(model: PathBuf, precision: Precision) -> Engine {
    assert!(
        model.is_file(),
        "{} is missing: run `cargo xtask setup` first",
        model.display()
    );
    Engine::open(
        &ModelSource {
            model,
            ort_library: default_ort_library(),
            intra_threads: 1,
            precision,
        },
        DetectConfig::default(),
    )
    .expect("open the model")
}

fn int8_model() -> PathBuf {
    std::env::var_os("POLYBOT_MODEL_INT8")
        .map(PathBuf::from)
        .unwrap_or_else(default_int8_model_path)
}

fn describe(dets: &[Detection]) -> String {
    dets.iter()
        .map(|d| {
            format!(
                "{} {:.2} [{:.0},{:.0},{:.0},{:.0}]",
                d.class_name, d.confidence, d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn int8_finds_every_confident_fp32_detection_on_photos_outside_its_calibration() {
    let mut fp32 = engine(default_model_path(), Precision::Fp32);
    let mut int8 = engine(int8_model(), Precision::Int8);
    assert_eq!(int8.info().precision, Precision::Int8);
    assert_eq!(
        int8.info().classes.len(),
        80,
        "metadata survives quantization"
    );
    let mut checked = 0;
    for name in ["bus.jpg", "zidane.jpg"] {
        let bytes = std::fs::read(default_assets_dir().join(name)).expect("sample photo");
        let reference = fp32.detect(&bytes).expect("fp32").detections;
        let candidate = int8.detect(&bytes).expect("int8").detections;
        let a = agreement::compare(&reference, &candidate, MIN_CONFIDENCE, MIN_IOU);
        assert!(
            a.holds(),
            "{name}: INT8 matched {a}\n  fp32: {}\n  int8: {}",
            describe(&reference),
            describe(&candidate)
        );
        checked += a.checked;
    }
    // bus ×1 + person ×4 (one at 0.61), person ×2 + tie ×1.
    assert!(checked >= 7, "only {checked} FP32 detections were checked");
}

#[test]
fn selecting_int8_without_the_model_names_the_setting_and_the_setup_step() {
    let err = polybot_inference::Detector::load(&polybot_inference::PoolOptions {
        source: ModelSource {
            model: "/nonexistent/yolo11n-int8.onnx".into(),
            ort_library: default_ort_library(),
            intra_threads: 1,
            precision: Precision::Int8,
        },
        lanes: 1,
        config: DetectConfig::default(),
        video: polybot_inference::VideoConfig::default(),
    })
    .err()
    .expect("must fail");
    let text = err.to_string();
    assert!(
        text.contains("POLYBOT_MODEL_INT8") && text.contains("cargo xtask setup"),
        "{text}"
    );
}
