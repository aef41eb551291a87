//! Untrusted bytes → `decode::decode` and `decode::decode_at_least` with the
//! production caps, except a smaller pixel cap so the fuzzer's memory stays
//! well inside libFuzzer's RSS limit. The scale bound is tiny so that small
//! inputs take the reduced-scale path too (libjpeg-turbo's C code, whose
//! fatal errors unwind into Rust). Nothing may panic; an accepted image must
//! be inside the cap and have pixels; errors must be classified (permanent:
//! never retried).
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_fuzz::decode::{DecodeLimits, ScaleLimits, decode, decode_at_least};

const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 20 * 1024 * 1024,
    max_pixels: 4_000_000,
};

const SCALE: ScaleLimits = ScaleLimits {
    above: 32,
    min_long_side: 8,
};

/// What every accepted image must be: pixels, inside the cap, RGB, and no
/// larger than the original it stands for.
fn check_accepted(img: &image::RgbImage, original_width: u32, original_height: u32) {
    let (w, h) = img.dimensions();
    assert!(w > 0 && h > 0, "an accepted image has pixels");
    let long = original_width.max(original_height);
    assert!(
        w <= long && h <= long,
        "the decoded {w}×{h} is larger than the original {original_width}×{original_height}"
    );
    assert!(
        u64::from(original_width) * u64::from(original_height) <= LIMITS.max_pixels,
        "{original_width}×{original_height} is over the cap"
    );
    assert_eq!(img.as_raw().len(), w as usize * h as usize * 3);
}

fuzz_target!(|data: &[u8]| {
    match decode(data, LIMITS) {
        Ok(img) => check_accepted(&img, img.width(), img.height()),
        Err(e) => assert!(e.is_permanent(), "decoding errors are permanent: {e:?}"),
    }
    match decode_at_least(data, LIMITS, SCALE) {
        Ok(d) => check_accepted(&d.image, d.original_width, d.original_height),
        Err(e) => assert!(e.is_permanent(), "decoding errors are permanent: {e:?}"),
    }
});
