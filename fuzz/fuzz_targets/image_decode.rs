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

fuzz_target!(|data: &[u8]| {
    match decode(data, LIMITS) {
        Ok(img) => {
            let (w, h) = img.dimensions();
            assert!(w > 0 && h > 0, "an accepted image has pixels");
            assert!(
                u64::from(w) * u64::from(h) <= LIMITS.max_pixels,
                "{w}×{h} is over the cap"
            );
            assert_eq!(img.as_raw().len(), w as usize * h as usize * 3);
        }
        Err(e) => assert!(e.is_permanent(), "decoding errors are permanent: {e:?}"),
    }
    match decode_at_least(data, LIMITS, SCALE) {
        Ok(d) => {
            let (w, h) = d.image.dimensions();
            assert!(w > 0 && h > 0, "an accepted image has pixels");
            assert!(
                w <= d.original_width.max(d.original_height)
                    && h <= d.original_width.max(d.original_height),
                "the decoded {w}×{h} is larger than the original {}×{}",
                d.original_width,
                d.original_height
            );
            assert!(
                u64::from(d.original_width) * u64::from(d.original_height) <= LIMITS.max_pixels,
                "{}×{} is over the cap",
                d.original_width,
                d.original_height
            );
            assert_eq!(d.image.as_raw().len(), w as usize * h as usize * 3);
        }
        Err(e) => assert!(e.is_permanent(), "decoding errors are permanent: {e:?}"),
    }
});
