//! Untrusted bytes → `decode::decode` with the production caps, except a
//! smaller pixel cap so the fuzzer's memory stays well inside libFuzzer's
//! RSS limit. Nothing may panic; an accepted image must be inside the cap
//! and have pixels; errors must be classified (permanent: never retried).
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_fuzz::decode::{DecodeLimits, decode};

const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 20 * 1024 * 1024,
    max_pixels: 4_000_000,
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
});
