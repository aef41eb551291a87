//! Clips sampled with the real ffmpeg, and detected with the real model:
//! which frames are sampled and when, how bad clips are refused, and that
//! ffmpeg is stopped at its time limit. Needs `cargo xtask setup` (ffmpeg,
//! the model, bus.jpg and zidane.jpg); `POLYBOT_FFMPEG` runs them on
//! another ffmpeg (`/usr/bin/ffmpeg`: Debian's, as in the images).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::{ImageFormat, Rgb, RgbImage};
use polybot_domain::ChatSettings;
use polybot_domain::FailureKind;
use polybot_inference::model::{default_assets_dir, default_model_path, default_ort_library};
use polybot_inference::video::{
    ClipFormat, ClipInfo, SampledImage, encode_audio_only, encode_clip, sample,
};
use polybot_inference::{
    DetectConfig, DetectError, Detector, ErrorKind, ModelSource, PoolOptions, Precision,
    VideoConfig, VideoError, VideoProgress,
};

const SECOND: Duration = Duration::from_secs(1);

fn asset(name: &str) -> PathBuf {
    let path = default_assets_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask setup` first",
        path.display()
    );
    path
}

/// The ffmpeg `cargo xtask setup` fetched, or the one `POLYBOT_FFMPEG`
/// names (as the detector takes it: e.g. Debian's, the images' one).
fn ffmpeg() -> PathBuf {
    match std::env::var_os("POLYBOT_FFMPEG") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "POLYBOT_FFMPEG={} is missing",
                path.display()
            );
            path
        }
        None => asset("ffmpeg"),
    }
}

fn config() -> VideoConfig {
    VideoConfig {
        ffmpeg: ffmpeg(),
        ..VideoConfig::default()
    }
}

fn png(rgb: [u8; 3], side: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    RgbImage::from_pixel(side, side, Rgb(rgb))
        .write_to(&mut out, ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

const RED: [u8; 3] = [220, 20, 20];
const GREEN: [u8; 3] = [20, 200, 20];
const BLUE: [u8; 3] = [20, 20, 220];

/// Which of red, green and blue a (solid) frame is.
fn colour(image: &RgbImage) -> [u8; 3] {
    let (w, h) = image.dimensions();
    let px = image.get_pixel(w / 2, h / 2).0;
    *[RED, GREEN, BLUE]
        .iter()
        .min_by_key(|c| (0..3).map(|i| c[i].abs_diff(px[i]) as u32).sum::<u32>())
        .expect("three colours")
}

/// A clip of solid 64×64 segments.
fn solid_clip(segments: &[([u8; 3], Duration)], fps: u32, format: ClipFormat) -> Vec<u8> {
    let pictures: Vec<(Vec<u8>, Duration)> =
        segments.iter().map(|(c, d)| (png(*c, 64), *d)).collect();
    let segments: Vec<(&[u8], Duration)> =
        pictures.iter().map(|(p, d)| (p.as_slice(), *d)).collect();
    encode_clip(&ffmpeg(), &segments, fps, format).expect("encode the clip")
}

/// A sampled frame's time and colour.
type Seen = (Duration, [u8; 3]);

/// Every sampled frame's time and colour, and what sampling said.
fn sample_colours(config: &VideoConfig, clip: &[u8]) -> Result<(Vec<Seen>, ClipInfo), DetectError> {
    let mut seen = Vec::new();
    let info = sample(config, clip, |s: SampledImage| {
        assert_eq!(s.index, seen.len());
        seen.push((s.at, colour(&s.image)));
        Ok(())
    })?;
    Ok((seen, info))
}

fn video_error(r: Result<impl std::fmt::Debug, DetectError>) -> VideoError {
    match r {
        Err(DetectError::Video(e)) => e,
        other => panic!("expected a video error, got {other:?}"),
    }
}

/// A program standing in for ffmpeg: `body` after `#!/bin/sh`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn the_first_frame_is_sampled_and_sample_i_is_at_i_seconds() {
    // One red frame (0.1 s at 10 fps), then blue.
    let clip = solid_clip(
        &[
            (RED, Duration::from_millis(100)),
            (BLUE, Duration::from_millis(2_900)),
        ],
        10,
        ClipFormat::H264,
    );
    let (seen, info) = sample_colours(&config(), &clip).expect("sampled");
    assert_eq!(
        seen,
        vec![(Duration::ZERO, RED), (SECOND, BLUE), (2 * SECOND, BLUE)]
    );
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("h264", 64, 64)
    );
    assert_eq!(info.duration, Some(3 * SECOND));
}

#[test]
fn a_90_second_clip_is_covered_by_at_most_30_frames_spread_over_it() {
    let third = Duration::from_secs(30);
    let clip = solid_clip(
        &[(RED, third), (GREEN, third), (BLUE, third)],
        2,
        ClipFormat::H264,
    );
    let (seen, info) = sample_colours(&config(), &clip).expect("sampled");
    assert_eq!(info.plan.step, 3 * SECOND);
    assert_eq!(seen.len(), 30, "{seen:?}");
    for (i, (at, c)) in seen.iter().enumerate() {
        assert_eq!(*at, 3 * SECOND * i as u32);
        let expected = [RED, GREEN, BLUE][(at.as_secs() / 30) as usize];
        assert_eq!(*c, expected, "the frame at {at:?}");
    }
    assert!(seen.last().expect("frames").0 >= Duration::from_secs(85));
}

#[test]
fn vp9_webm_and_a_round_video_note_decode_too() {
    let segments = [(RED, SECOND), (GREEN, SECOND)];
    let webm = solid_clip(&segments, 10, ClipFormat::Vp9);
    let (seen, info) = sample_colours(&config(), &webm).expect("vp9");
    assert_eq!(info.codec, "vp9");
    assert!(info.format.contains("webm"), "{}", info.format);
    assert_eq!(seen, vec![(Duration::ZERO, RED), (SECOND, GREEN)]);

    let note = solid_clip(&segments, 10, ClipFormat::VideoNote);
    let mut sizes = Vec::new();
    let info = sample(&config(), &note, |s| {
        sizes.push(s.image.dimensions());
        Ok(())
    })
    .expect("round note");
    assert_eq!(
        (info.codec.as_str(), info.width, info.height),
        ("h264", 384, 384)
    );
    assert_eq!(sizes, vec![(384, 384); 2]);

    let gif = solid_clip(&segments, 10, ClipFormat::Animation);
    let (seen, _) = sample_colours(&config(), &gif).expect("animation");
    assert_eq!(seen.len(), 2);
}

#[test]
fn frames_are_scaled_down_to_the_longest_side_asked_for() {
    let picture = {
        let mut out = Cursor::new(Vec::new());
        RgbImage::from_pixel(320, 180, Rgb(GREEN))
            .write_to(&mut out, ImageFormat::Png)
            .expect("png");
        out.into_inner()
    };
    let clip =
        encode_clip(&ffmpeg(), &[(&picture, SECOND)], 5, ClipFormat::Animation).expect("clip");
    let config = VideoConfig {
        frame_max_side: 160,
        ..config()
    };
    let mut sizes = Vec::new();
    let info = sample(&config, &clip, |s| {
        sizes.push(s.image.dimensions());
        Ok(())
    })
    .expect("sampled");
    assert_eq!((info.width, info.height), (320, 180), "the clip's own size");
    assert_eq!(sizes, vec![(160, 90)]);
}

#[test]
fn a_truncated_clip_is_a_corrupt_video() {
    let segments = [(RED, 3 * SECOND), (BLUE, 3 * SECOND)];
    // Index first: the probe sees 6 s, decoding stops half way.
    let gif = solid_clip(&segments, 10, ClipFormat::Animation);
    // Index last: the index is gone.
    let mp4 = solid_clip(&segments, 10, ClipFormat::H264);
    for (name, clip) in [("index first", gif), ("index last", mp4)] {
        let cut = &clip[..clip.len() / 2];
        let err = video_error(sample(&config(), cut, |_| Ok(())));
        assert_eq!(err.kind(), ErrorKind::CorruptVideo, "{name}: {err}");
        let err = DetectError::from(err);
        assert_eq!(err.failure_kind(), FailureKind::CorruptVideo);
        assert!(err.is_permanent());
    }
}

#[test]
fn random_bytes_audio_and_playlists_are_unsupported_videos() {
    let random: Vec<u8> = (0..60_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let audio = encode_audio_only(&ffmpeg(), 2 * SECOND).expect("m4a");
    // A playlist that would make ffmpeg read another file into frames.
    let playlist =
        b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
            .to_vec();
    for (name, clip) in [
        ("random bytes", random),
        ("audio only", audio),
        ("a playlist", playlist),
        ("text", b"hello".to_vec()),
        ("nothing", Vec::new()),
    ] {
        let mut frames = 0;
        let err = video_error(sample(&config(), &clip, |_| {
            frames += 1;
            Ok(())
        }));
        assert_eq!(err.kind(), ErrorKind::UnsupportedVideo, "{name}: {err}");
        assert_eq!(frames, 0, "{name}");
        assert_eq!(
            DetectError::from(err).failure_kind(),
            FailureKind::UnsupportedVideo
        );
    }
    let audio = encode_audio_only(&ffmpeg(), SECOND).expect("m4a");
    assert!(matches!(
        video_error(sample(&config(), &audio, |_| Ok(()))),
        VideoError::NoVideoTrack
    ));
}

#[test]
fn a_clip_past_the_limits_is_too_large_and_is_not_decoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls");
    let logging = script(
        dir.path(),
        "ffmpeg",
        &format!(
            "echo \"$*\" >> '{}'\nexec '{}' \"$@\"",
            log.display(),
            ffmpeg().display()
        ),
    );
    let clip = solid_clip(&[(RED, 2 * SECOND)], 10, ClipFormat::H264);
    let calls = || std::fs::read_to_string(&log).unwrap_or_default();

    let small = VideoConfig {
        ffmpeg: logging.clone(),
        max_input_pixels: 63 * 63,
        ..VideoConfig::default()
    };
    let err = video_error(sample(&small, &clip, |_| panic!("decoded a frame")));
    assert!(
        matches!(
            err,
            VideoError::TooManyPixels {
                width: 64,
                height: 64,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(DetectError::from(err).failure_kind(), FailureKind::TooLarge);
    assert_eq!(
        calls().lines().count(),
        1,
        "only the probe ran: {}",
        calls()
    );
    assert!(!calls().contains("image2pipe"));

    let short = VideoConfig {
        ffmpeg: logging,
        max_duration: SECOND,
        ..VideoConfig::default()
    };
    let err = video_error(sample(&short, &clip, |_| panic!("decoded a frame")));
    assert!(matches!(err, VideoError::TooLong { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert_eq!(calls().lines().count(), 2, "{}", calls());
}

#[test]
fn a_hanging_ffmpeg_is_killed_at_the_time_limit_and_not_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = solid_clip(&[(RED, SECOND)], 10, ClipFormat::H264);
    // Hangs at once (the probe), or only once asked for frames.
    let at_once = script(dir.path(), "hangs", "exec sleep 30");
    let decoding = script(
        dir.path(),
        "hangs-decoding",
        &format!(
            "case \"$*\" in *image2pipe*) exec sleep 30;; esac\nexec '{}' \"$@\"",
            ffmpeg().display()
        ),
    );
    for program in [at_once, decoding] {
        let config = VideoConfig {
            ffmpeg: program.clone(),
            timeout: Duration::from_millis(1_500),
            ..VideoConfig::default()
        };
        let t = Instant::now();
        let err = video_error(sample(&config, &clip, |_| Ok(())));
        let took = t.elapsed();
        assert!(
            matches!(err, VideoError::TimedOut { .. }),
            "{}: {err}",
            program.display()
        );
        assert!(
            took < Duration::from_secs(5),
            "{}: took {took:?}",
            program.display()
        );
        let err = DetectError::from(err);
        assert_eq!(err.failure_kind(), FailureKind::Internal);
        assert!(err.is_permanent(), "a timeout would only time out again");
    }
}

#[test]
fn a_missing_ffmpeg_is_a_retryable_internal_error_and_the_real_one_checks_out() {
    let missing = VideoConfig {
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..VideoConfig::default()
    };
    let clip = solid_clip(&[(RED, SECOND)], 10, ClipFormat::H264);
    let err = DetectError::from(video_error(sample(&missing, &clip, |_| Ok(()))));
    assert_eq!(err.failure_kind(), FailureKind::Internal);
    assert!(
        !err.is_permanent(),
        "a redelivery may find ffmpeg installed"
    );
    assert!(missing.check().is_err());
    let version = config().check().expect("ffmpeg -version");
    assert!(version.starts_with("ffmpeg version"), "{version}");
}

fn detector() -> Detector {
    Detector::load(&PoolOptions {
        source: ModelSource {
            model: default_model_path(),
            ort_library: default_ort_library(),
            intra_threads: 1,
            precision: Precision::Fp32,
        },
        lanes: 1,
        config: DetectConfig::default(),
        video: config(),
    })
    .expect("load the model: run `cargo xtask setup` first")
}

#[tokio::test]
async fn people_then_a_bus_peak_each_in_their_own_half_with_progress_per_frame() {
    let zidane = std::fs::read(asset("zidane.jpg")).expect("zidane.jpg");
    let bus = std::fs::read(asset("bus.jpg")).expect("bus.jpg");
    let clip = encode_clip(
        &ffmpeg(),
        &[(&zidane, 3 * SECOND), (&bus, 3 * SECOND)],
        10,
        ClipFormat::H264,
    )
    .expect("encode");
    let reports: Arc<Mutex<Vec<VideoProgress>>> = Arc::default();
    let seen = Arc::clone(&reports);
    let out = detector()
        .reserve()
        .await
        .expect("a lane")
        .video(
            clip,
            ChatSettings::default(),
            Box::new(move |p| seen.lock().expect("progress").push(p)),
        )
        .await
        .expect("detected");

    assert_eq!(
        (out.codec.as_str(), out.width, out.height),
        ("h264", 1280, 720)
    );
    assert_eq!(
        (out.duration, out.sampled, out.last_sample),
        (6 * SECOND, 6, 5 * SECOND)
    );
    let reports = reports.lock().expect("progress").clone();
    let expected: Vec<VideoProgress> = (1..=6)
        .map(|done| VideoProgress { done, total: 6 })
        .collect();
    assert_eq!(reports, expected);

    let half = 3_000;
    let peak = |class: &str| {
        out.peaks
            .iter()
            .find(|p| p.class == class)
            .unwrap_or_else(|| panic!("no {class} peak in {:?}", out.peaks))
    };
    let bus_peak = peak("bus");
    assert!(bus_peak.from_ms >= half, "{bus_peak:?}");
    // zidane.jpg's two people; bus.jpg's are more, so the person peak is
    // where the bus is, and the tie only where zidane is.
    let person = peak("person");
    assert!(person.count >= 3 && person.from_ms >= half, "{person:?}");
    let tie = peak("tie");
    assert!(tie.to_ms < half, "{tie:?}");

    assert!(!out.key_frames.is_empty() && out.key_frames.len() <= 4);
    assert!(out.key_frames.windows(2).all(|w| w[0].at < w[1].at));
    assert!(out.key_frames.iter().any(|k| k.at >= 3 * SECOND));
    for k in &out.key_frames {
        assert_eq!(k.at.subsec_nanos(), 0, "samples are on whole seconds");
        let jpeg = image::load_from_memory_with_format(&k.annotated_jpeg, ImageFormat::Jpeg)
            .expect("an annotated JPEG");
        assert_eq!((jpeg.width(), jpeg.height()), (1280, 720));
        assert!(k.labels.iter().all(|l| (0.0..=1.0).contains(&l.cx)));
    }
    assert!(out.detect > Duration::ZERO && out.decode > Duration::ZERO);
}

#[tokio::test]
async fn a_chat_that_only_wants_buses_sees_only_buses_in_the_clip() {
    let bus = std::fs::read(asset("bus.jpg")).expect("bus.jpg");
    let clip =
        encode_clip(&ffmpeg(), &[(&bus, 2 * SECOND)], 5, ClipFormat::Animation).expect("encode");
    let settings = ChatSettings::default().with(polybot_domain::SettingsChange::Classes(
        polybot_domain::ClassChoice::Only(["bus".to_owned()].into()),
    ));
    let out = detector()
        .reserve()
        .await
        .expect("a lane")
        .video(clip, settings, Box::new(|_| {}))
        .await
        .expect("detected");
    assert_eq!(out.peaks.len(), 1, "{:?}", out.peaks);
    assert_eq!(out.peaks[0].class, "bus");
}
