//! Detection with the real YOLO11n model on real photographs, through the
//! public pool API and the `detector` binary. Needs `cargo xtask setup`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use image::{ImageEncoder, RgbImage};
use polybot_detector::model::{default_assets_dir, default_model_path, default_ort_library};
use polybot_detector::{
    AnnotatedSize, DetectConfig, DetectError, Detector, ModelSource, PoolOptions, Precision,
};

fn asset(name: &str) -> PathBuf {
    let path = default_assets_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask setup` first",
        path.display()
    );
    path
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(asset(name)).expect("read sample photo")
}

fn detector(lanes: usize) -> Detector {
    Detector::load(&PoolOptions {
        source: ModelSource {
            model: default_model_path(),
            ort_library: default_ort_library(),
            intra_threads: 1,
            precision: Precision::Fp32,
        },
        lanes,
        config: DetectConfig::default(),
        video: polybot_inference::video::VideoConfig::default(),
    })
    .expect("load the model: run `cargo xtask setup` first")
}

fn counts(out: &polybot_detector::DetectOutput) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in &out.detections {
        assert!(d.confidence >= 0.25, "{d:?} is under the default threshold");
        *m.entry(d.class_name.clone()).or_insert(0) += 1;
    }
    m
}

fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn bus_photo_yields_a_bus_and_four_people() {
    let d = detector(1);
    assert_eq!(
        d.info().classes.len(),
        80,
        "class names come from the model metadata"
    );
    let out = d.detect(photo("bus.jpg")).await.expect("detect");
    assert_eq!(counts(&out), expected(&[("bus", 1), ("person", 4)]));
    assert_eq!((out.width, out.height), (810, 1080));
    let bus = out
        .detections
        .iter()
        .find(|d| d.class_name == "bus")
        .expect("bus");
    assert!(bus.confidence > 0.85, "{bus:?}");
    // The bus spans almost the whole width of the photo.
    assert!(bus.bbox.x1 < 60.0 && bus.bbox.x2 > 760.0, "{bus:?}");
}

#[tokio::test]
async fn zidane_photo_yields_two_people_and_a_tie() {
    let out = detector(1)
        .detect(photo("zidane.jpg"))
        .await
        .expect("detect");
    assert_eq!(counts(&out), expected(&[("person", 2), ("tie", 1)]));
    let labels = out.labels();
    assert!(
        labels
            .iter()
            .all(|l| (0.0..=1.0).contains(&l.cx) && (0.0..=1.0).contains(&l.width))
    );
}

#[tokio::test]
async fn annotated_image_is_a_jpeg_of_the_original_size() {
    let out = detector(1)
        .detect(photo("zidane.jpg"))
        .await
        .expect("detect");
    let img = image::load_from_memory(&out.annotated_jpeg).expect("decodable JPEG");
    assert_eq!((img.width(), img.height()), (1280, 720));
    assert_eq!(
        image::guess_format(&out.annotated_jpeg).ok(),
        Some(image::ImageFormat::Jpeg)
    );
}

/// A TIFF block holding only an Orientation tag.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&value.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

#[tokio::test]
async fn exif_orientation_is_honoured_before_detection() {
    // Store the bus photo sideways, as a phone does, with EXIF saying
    // "rotate 90° clockwise to display".
    let upright = image::load_from_memory(&photo("bus.jpg"))
        .expect("decode")
        .to_rgb8();
    let sideways: RgbImage = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
    enc.set_exif_metadata(exif_orientation(6)).expect("exif");
    enc.write_image(
        sideways.as_raw(),
        sideways.width(),
        sideways.height(),
        image::ExtendedColorType::Rgb8,
    )
    .expect("encode");

    let out = detector(1).detect(jpeg).await.expect("detect");
    assert_eq!((out.width, out.height), (810, 1080), "decoded upright");
    assert_eq!(counts(&out), expected(&[("bus", 1), ("person", 4)]));
}

/// bus.jpg upscaled `factor` times, stored sideways with EXIF orientation 6
/// (as a phone does), as a JPEG of quality 90.
fn large_sideways_bus(factor: u32) -> Vec<u8> {
    let upright = image::load_from_memory(&photo("bus.jpg"))
        .expect("decode")
        .to_rgb8();
    let big = image::imageops::resize(
        &upright,
        810 * factor,
        1080 * factor,
        image::imageops::FilterType::Triangle,
    );
    let sideways: RgbImage = image::imageops::rotate270(&big);
    let mut jpeg = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    enc.set_exif_metadata(exif_orientation(6)).expect("exif");
    enc.write_image(
        sideways.as_raw(),
        sideways.width(),
        sideways.height(),
        image::ExtendedColorType::Rgb8,
    )
    .expect("encode");
    jpeg
}

#[tokio::test]
async fn a_large_jpeg_is_decoded_scaled_but_detected_in_original_upright_pixels() {
    let d = detector(1);
    let small = d.detect(photo("bus.jpg")).await.expect("detect small");
    // 3240×2430 stored sideways; upright it is 2430×3240, three times bus.jpg.
    let out = d.detect(large_sideways_bus(3)).await.expect("detect large");
    assert_eq!((out.width, out.height), (2430, 3240), "original, upright");
    assert_eq!(counts(&out), expected(&[("bus", 1), ("person", 4)]));
    let bus = |o: &polybot_detector::DetectOutput| {
        o.detections
            .iter()
            .find(|d| d.class_name == "bus")
            .expect("bus")
            .bbox
    };
    let (large_bus, small_bus) = (bus(&out), bus(&small));
    let small_scaled = polybot_detector::BBox {
        x1: small_bus.x1 * 3.0,
        y1: small_bus.y1 * 3.0,
        x2: small_bus.x2 * 3.0,
        y2: small_bus.y2 * 3.0,
    };
    assert!(
        large_bus.iou(&small_scaled) > 0.9,
        "{large_bus:?} vs {small_scaled:?}"
    );
    // Drawn at the decoded scale (1/4: the longer side 810 still covers the
    // model's 640), upright, with the original's aspect.
    let annotated = image::load_from_memory(&out.annotated_jpeg).expect("JPEG");
    assert_eq!((annotated.width(), annotated.height()), (608, 810));
}

#[tokio::test]
async fn full_resolution_annotation_keeps_the_original_size() {
    let d = detector(1);
    let out = d
        .reserve()
        .await
        .expect("lane")
        .detect_sized(large_sideways_bus(3), AnnotatedSize::Full)
        .await
        .expect("detect");
    assert_eq!((out.width, out.height), (2430, 3240));
    let annotated = image::load_from_memory(&out.annotated_jpeg).expect("JPEG");
    assert_eq!((annotated.width(), annotated.height()), (2430, 3240));
    assert_eq!(counts(&out), expected(&[("bus", 1), ("person", 4)]));
}

#[tokio::test]
async fn a_large_png_is_annotated_within_the_bound() {
    // PNG has no DCT scaling: decoded in full, then drawn within 2560.
    let img = image::imageops::resize(
        &image::load_from_memory(&photo("zidane.jpg"))
            .expect("decode")
            .to_rgb8(),
        3200,
        1800,
        image::imageops::FilterType::Triangle,
    );
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(img.as_raw(), 3200, 1800, image::ExtendedColorType::Rgb8)
    .expect("encode");
    let out = detector(1).detect(png).await.expect("detect");
    assert_eq!((out.width, out.height), (3200, 1800));
    assert_eq!(counts(&out), expected(&[("person", 2), ("tie", 1)]));
    let annotated = image::load_from_memory(&out.annotated_jpeg).expect("JPEG");
    assert_eq!((annotated.width(), annotated.height()), (2560, 1440));
}

#[tokio::test]
async fn bad_files_give_typed_permanent_errors_and_the_pool_keeps_working() {
    let d = detector(1);
    let bus = photo("bus.jpg");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"this is a text file, not a photo".to_vec()),
        ("truncated", bus[..bus.len() / 2].to_vec()),
        ("header only", bus[..600].to_vec()),
    ];
    for (name, bytes) in cases {
        let err = d.detect(bytes).await.expect_err(name);
        assert!(err.is_permanent(), "{name}: {err:?} should be permanent");
        assert!(!err.to_string().is_empty());
    }
    // Found by `cargo xtask fuzz`: a 562-byte progressive JPEG on which
    // zune-jpeg 0.5.15's AVX2 upsampler fails an assertion (a panic inside
    // the codec). The lane turns it into an answer for this photo, not a dead
    // lane; a CPU without AVX2 takes zune's scalar path, which may decode it.
    let codec_panic = include_bytes!("fixtures/zune-jpeg-upsampler-panic.jpg").to_vec();
    match d.detect(codec_panic).await {
        Err(err) => assert!(
            err.is_permanent(),
            "codec panic: {err:?} should be permanent"
        ),
        Ok(_) => assert!(
            !has_avx2(),
            "the codec's AVX2 path no longer fails on this file: drop the case or keep it as a plain bad file"
        ),
    }
    // Still serving after all that.
    let out = d.detect(bus).await.expect("detect after errors");
    assert_eq!(
        out.detections
            .iter()
            .filter(|d| d.class_name == "bus")
            .count(),
        1
    );
}

#[tokio::test]
async fn crops_of_the_bus_photos_detection_are_jpegs_of_each_boxs_size() {
    let d = detector(1);
    let bus = photo("bus.jpg");
    let out = d.detect(bus.clone()).await.expect("detect");
    let labels = out.labels();
    assert_eq!(labels.len(), 5, "a bus and four people");
    let crops = d
        .reserve()
        .await
        .expect("lane")
        .crops(bus, labels.clone())
        .await
        .expect("crops");
    assert_eq!(crops.len(), labels.len(), "one per box");
    for (jpeg, label) in crops.iter().zip(&labels) {
        assert_eq!(
            image::guess_format(jpeg).ok(),
            Some(image::ImageFormat::Jpeg)
        );
        let img = image::load_from_memory(jpeg).expect("decodable JPEG");
        let (w, h) = (
            label.width * out.width as f32,
            label.height * out.height as f32,
        );
        assert!(
            (img.width() as f32 - w).abs() <= 2.0 && (img.height() as f32 - h).abs() <= 2.0,
            "{label:?}: {}×{} for a {w}×{h} box",
            img.width(),
            img.height()
        );
    }
}

/// Whether zune-jpeg takes its AVX2 paths on this CPU.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_without_decoding() {
    // 12000×12000 of one colour: tiny as PNG, 432 MB as pixels.
    let img = RgbImage::new(12000, 12000);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut png,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(img.as_raw(), 12000, 12000, image::ExtendedColorType::Rgb8)
    .expect("encode");
    drop(img);
    let err = detector(1).detect(png).await.expect_err("bomb");
    assert!(
        matches!(
            err,
            DetectError::TooManyPixels {
                width: 12000,
                height: 12000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn reserving_lanes_applies_back_pressure() {
    let d = detector(2);
    assert_eq!(d.free_lanes(), 2);
    let a = d.try_reserve().expect("first lane");
    let b = d.try_reserve().expect("second lane");
    assert!(d.try_reserve().is_none(), "no third lane");
    assert_eq!(d.free_lanes(), 0);
    drop(a);
    assert_eq!(d.free_lanes(), 1);
    let out = b
        .detect(photo("zidane.jpg"))
        .await
        .expect("detect on a reserved lane");
    assert_eq!(out.detections.len(), 3);
    assert_eq!(d.free_lanes(), 2);
}

#[test]
fn missing_model_error_says_to_run_setup() {
    let err = Detector::load(&PoolOptions {
        source: ModelSource {
            model: "/nonexistent/model.onnx".into(),
            ort_library: default_ort_library(),
            intra_threads: 1,
            precision: Precision::Fp32,
        },
        lanes: 1,
        config: DetectConfig::default(),
        video: polybot_inference::video::VideoConfig::default(),
    })
    .err()
    .expect("must fail");
    let text = err.to_string();
    assert!(
        text.contains("cargo xtask setup") && text.contains("POLYBOT_MODEL"),
        "{text}"
    );
}

#[test]
fn detect_cli_prints_json_lines_and_fails_after_reporting_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("notes.jpg");
    std::fs::write(&bad, b"not an image").expect("write");
    let out_dir = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(["detect", "--json", "--lanes", "1", "--out"])
        .arg(&out_dir)
        .arg(asset("bus.jpg"))
        .arg(&bad)
        .arg(asset("zidane.jpg"))
        .output()
        .expect("run detector");
    assert!(
        !output.status.success(),
        "one image failed, so the exit status is non-zero"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "both good images are reported: {stdout}");
    for line in &lines {
        for key in [
            "prediction_id",
            "original_img_path",
            "predicted_img_path",
            "labels",
            "time",
        ] {
            assert!(line.get(key).is_some(), "missing {key} in {line}");
        }
    }
    assert_eq!(lines[0]["labels"].as_array().map(Vec::len), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notes.jpg") && stderr.contains("not an image"),
        "{stderr}"
    );
    assert!(out_dir.join("bus.annotated.jpg").is_file());
    assert!(out_dir.join("zidane.annotated.jpg").is_file());
}

#[test]
fn detect_cli_prints_a_readable_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(["detect", "--lanes", "1"])
        .arg(asset("zidane.jpg"))
        .output()
        .expect("run detector");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1280×720") && stdout.contains("3 object(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("tie"), "{stdout}");
}

/// The worker's job step with the real model, against the embedded
/// backend: what the fake engine of the unit tests stands in for.
mod job_step {
    use polybot_detector::worker::testing::Fixture;
    use polybot_domain::{FailureKind, Filter, JobKind, JobResult, ObjectKey, QuarterTurns};
    use polybot_proto::Outcome;

    use super::{detector, photo};

    #[tokio::test]
    async fn a_detection_is_stored_and_reported_with_its_labels() {
        let f = Fixture::with_engine(detector(1));
        let job = f.request(&photo("bus.jpg"), JobKind::Detect).await;
        let report = f.step().run(&job).await.expect("done").expect("a report");
        let Outcome::Success(JobResult::Detected(summary)) = &report.outcome else {
            panic!("{report:?}");
        };
        assert!(
            summary
                .counts_text(polybot_domain::Lang::En)
                .contains("bus ×1"),
            "{summary:?}"
        );
        assert_eq!(report.reply_to_message_id, Some(7));
        f.stored(&summary.predicted_img_path).await;
        let record = f.record(job.prediction_id).await;
        assert_eq!(record.result, Some(JobResult::Detected(summary.clone())));
    }

    #[tokio::test]
    async fn a_filter_job_stores_and_reports_the_filtered_picture() {
        let f = Fixture::with_engine(detector(1));
        let turn = Filter::Rotate {
            quarter_turns: QuarterTurns::DEFAULT,
        };
        let job = f.request(&photo("bus.jpg"), JobKind::Filter(turn)).await;
        let report = f.step().run(&job).await.expect("done").expect("a report");
        let Outcome::Success(JobResult::Filtered(out)) = &report.outcome else {
            panic!("{report:?}");
        };
        assert_eq!((out.width, out.height, out.filter), (1080, 810, turn));
        let key = ObjectKey::parse(out.output_img_path.clone()).expect("key");
        let bytes = f.stored(key.as_str()).await;
        let img = image::load_from_memory(&bytes).expect("decodes");
        assert_eq!((img.width(), img.height()), (1080, 810));
    }

    #[tokio::test]
    async fn a_crops_job_cuts_the_detections_objects_out_of_the_photo_largest_first() {
        let f = Fixture::with_engine(detector(1));
        let detection = f.request(&photo("bus.jpg"), JobKind::Detect).await;
        f.step().run(&detection).await.expect("detected");
        let job = f.crops_of(&detection).await;
        let report = f.step().run(&job).await.expect("done").expect("a report");
        let Outcome::Success(JobResult::Cropped(summary)) = &report.outcome else {
            panic!("{report:?}");
        };
        assert_eq!((summary.objects, summary.crops.len()), (5, 5));
        assert_eq!(summary.crops[0].class, "bus", "{summary:?}");
        for crop in &summary.crops {
            let bytes = f.stored(&crop.path).await;
            image::load_from_memory(&bytes).expect("a decodable JPEG");
        }
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_picture_is_a_failure_to_tell_not_to_retry() {
        let f = Fixture::with_engine(detector(1));
        let job = f.request(b"not a picture", JobKind::Detect).await;
        let report = f
            .step()
            .run(&job)
            .await
            .expect("a permanent failure is reported")
            .expect("a report");
        assert!(
            matches!(
                report.outcome,
                Outcome::Failure {
                    kind: FailureKind::NotAnImage,
                    ..
                }
            ),
            "{report:?}"
        );
        let record = f.record(job.prediction_id).await;
        assert_eq!(record.result, None, "nothing stored");
    }
}
