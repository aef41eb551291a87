//! A caption's filter on one photo: decode (upright, within the same limits
//! as detection), apply the course's filter, encode in the format that
//! keeps the result (PNG where JPEG would smear it). Runs on an inference
//! lane, so filters share detection's bounded CPU pool and back-pressure.

use image::DynamicImage;
use polybot_domain::{Direction, Filter};

use crate::decode::{DecodeLimits, decode};
use crate::error::DetectError;

/// A filtered picture, encoded.
#[derive(Debug, Clone)]
pub struct FilterOutput {
    pub bytes: Vec<u8>,
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
    /// `png` or `jpg`, for the object key.
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Decodes `bytes` and applies `filter`. `seed` makes salt and pepper
/// repeatable, so a redelivered job stores the same picture.
pub fn run(
    bytes: &[u8],
    limits: DecodeLimits,
    filter: Filter,
    seed: u64,
) -> Result<FilterOutput, DetectError> {
    let image = {
        let _span = tracing::info_span!("decode", image_bytes = bytes.len()).entered();
        DynamicImage::ImageRgb8(decode(bytes, limits)?)
    };
    let grey = {
        let _span = tracing::info_span!("filter", filter = %filter).entered();
        polybot_filters::apply(&image, filter, seed).map_err(DetectError::Filter)?
    };
    encoded(&grey, polybot_filters::Format::for_filter(filter))
}

/// Decodes an album's photos and joins them (`concat`), the first photo
/// left (horizontal) or on top (vertical).
pub fn run_concat(
    photos: &[Vec<u8>],
    limits: DecodeLimits,
    direction: Direction,
) -> Result<FilterOutput, DetectError> {
    let images = {
        let _span = tracing::info_span!("decode", photos = photos.len()).entered();
        photos
            .iter()
            .map(|bytes| decode(bytes, limits).map(DynamicImage::ImageRgb8))
            .collect::<Result<Vec<_>, _>>()?
    };
    let grey = {
        let _span = tracing::info_span!("concat", %direction).entered();
        polybot_filters::apply_concat(&images, direction).map_err(DetectError::Filter)?
    };
    encoded(&grey, polybot_filters::Format::FOR_CONCAT)
}

/// A result encoded in `format`, with its size.
fn encoded(
    grey: &image::GrayImage,
    format: polybot_filters::Format,
) -> Result<FilterOutput, DetectError> {
    let _span = tracing::info_span!("encode").entered();
    let encoded = polybot_filters::encode_as(grey, format).map_err(DetectError::Filter)?;
    Ok(FilterOutput {
        bytes: encoded.bytes,
        mime: encoded.mime,
        extension: encoded.extension,
        width: grey.width(),
        height: grey.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polybot_domain::{BlurSize, QuarterTurns};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 40) as u8, (y * 60) as u8, 128])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn a_rotated_photo_swaps_its_sides_and_comes_back_as_jpeg() {
        let out = run(
            &png(6, 4),
            DecodeLimits::default(),
            Filter::Rotate {
                quarter_turns: QuarterTurns::DEFAULT,
            },
            0,
        )
        .expect("rotate");
        assert_eq!((out.width, out.height, out.mime), (4, 6, "image/jpeg"));
        let back = image::load_from_memory(&out.bytes).expect("decodes");
        assert_eq!((back.width(), back.height()), (4, 6));
    }

    #[test]
    fn a_segmented_photo_comes_back_as_exact_png_of_black_and_white() {
        let out = run(
            &png(6, 4),
            DecodeLimits::default(),
            Filter::Segment { threshold: 100 },
            0,
        )
        .expect("segment");
        assert_eq!((out.mime, out.extension), ("image/png", "png"));
        let back = image::load_from_memory(&out.bytes)
            .expect("decodes")
            .to_luma8();
        assert!(back.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        assert_eq!((back.width(), back.height()), (6, 4));
    }

    #[test]
    fn a_blur_larger_than_the_photo_is_the_photos_fault_and_named_too_small() {
        let size = BlurSize::new(16).expect("in range");
        let err = run(
            &png(6, 4),
            DecodeLimits::default(),
            Filter::Blur { size },
            0,
        )
        .expect_err("too small");
        assert!(err.is_permanent(), "{err}");
        assert_eq!(err.kind().as_str(), "too_small");
    }

    #[test]
    fn salt_and_pepper_is_the_same_for_the_same_seed() {
        let filter = Filter::SaltAndPepper {
            fraction: polybot_domain::Fraction::DEFAULT,
        };
        let a = run(&png(16, 16), DecodeLimits::default(), filter, 7).expect("a");
        let b = run(&png(16, 16), DecodeLimits::default(), filter, 7).expect("b");
        assert_eq!(a.bytes, b.bytes);
    }

    #[test]
    fn a_file_that_is_not_a_picture_is_refused_as_not_an_image() {
        let err = run(
            b"hello, not a picture",
            DecodeLimits::default(),
            Filter::Contour,
            0,
        )
        .expect_err("not an image");
        assert_eq!(err.kind().as_str(), "not_an_image");
    }
}
