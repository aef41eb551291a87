//! Safe image decoding: size caps checked from the header before any pixel
//! is decoded (decompression bombs), EXIF orientation applied, and every
//! failure mapped to a typed error rather than a panic.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage, metadata::Orientation};

use crate::error::DetectError;

/// Caps applied to untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest accepted file; Telegram's Bot API serves at most 20 MB.
    pub max_bytes: usize,
    /// Largest accepted width × height, checked before decoding.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_pixels: 50_000_000,
        }
    }
}

/// Decodes `bytes` into an upright RGB image.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, DetectError> {
    if bytes.is_empty() {
        return Err(DetectError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DetectError::FileTooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DetectError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DetectError::NotAnImage);
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(DetectError::Truncated);
    }
    let mut image_limits = image::Limits::default();
    // Four bytes per pixel (RGBA) with headroom for the decoder's own buffers.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(image_limits);

    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DetectError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(DetectError::Corrupt("the image has no pixels".into()));
    }
    // A broken EXIF block should not cost the user their detections.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    image.apply_orientation(orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    })
}

/// Whether a JPEG ends its last scan with an end-of-image marker.
///
/// The JPEG decoder fills a cut-off scan with grey instead of failing, so a
/// half-uploaded photo would be "detected" as a grey smear. Entropy-coded
/// data never contains `FF D9` (byte stuffing), so the last EOI must come
/// after the last start-of-scan; looking at the last one also skips an
/// EXIF thumbnail's own markers, which come first.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| {
        bytes
            .windows(2)
            .rposition(|w| w[0] == 0xFF && w[1] == marker)
    };
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

fn map_image_error(e: ImageError) -> DetectError {
    match e {
        ImageError::Unsupported(_) => DetectError::NotAnImage,
        ImageError::Limits(l) => DetectError::Corrupt(format!("over the decoder's limits: {l}")),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DetectError::Truncated
        }
        other => {
            let text = other.to_string();
            // zune-jpeg and png report truncation as a decoding error.
            let lower = text.to_ascii_lowercase();
            if lower.contains("eof")
                || lower.contains("truncat")
                || lower.contains("unexpected end")
            {
                DetectError::Truncated
            } else {
                DetectError::Corrupt(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, image::Rgb([10, 20, 30]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode png");
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    }

    #[test]
    fn a_jpeg_cut_inside_its_scan_is_reported_as_truncated() {
        let data = jpeg(64, 48);
        let r = decode(&data[..data.len() - 2], DecodeLimits::default());
        assert!(matches!(r, Err(DetectError::Truncated)), "{:?}", r.err());
    }

    #[test]
    fn empty_input_is_rejected_as_empty() {
        assert!(matches!(
            decode(&[], DecodeLimits::default()),
            Err(DetectError::Empty)
        ));
    }

    #[test]
    fn text_is_rejected_as_not_an_image() {
        let r = decode(b"hello, this is not a photo", DecodeLimits::default());
        assert!(matches!(r, Err(DetectError::NotAnImage)), "{r:?}");
    }

    #[test]
    fn truncated_jpeg_is_a_permanent_error_not_a_panic() {
        let data = jpeg(64, 48);
        for cut in [10, data.len() / 3, data.len() / 2, data.len() - 2] {
            match decode(&data[..cut], DecodeLimits::default()) {
                Ok(_) => panic!("a JPEG cut at {cut} of {} bytes decoded", data.len()),
                Err(err) => assert!(err.is_permanent(), "{err:?}"),
            }
        }
    }

    #[test]
    fn garbage_after_a_jpeg_header_is_a_permanent_error() {
        let mut data = jpeg(64, 48);
        for b in data.iter_mut().skip(200) {
            *b = 0x5a;
        }
        if let Err(e) = decode(&data, DecodeLimits::default()) {
            assert!(e.is_permanent(), "{e:?}");
        }
    }

    #[test]
    fn decompression_bomb_is_rejected_from_the_header_before_decoding() {
        // A 20000×20000 PNG of one colour compresses to a few hundred KB
        // but would need 1.2 GB to decode.
        let limits = DecodeLimits {
            max_bytes: usize::MAX,
            max_pixels: 1_000_000,
        };
        let data = png(2000, 1000);
        let r = decode(&data, limits);
        assert!(
            matches!(
                r,
                Err(DetectError::TooManyPixels {
                    width: 2000,
                    height: 1000,
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn oversized_file_is_rejected_before_parsing() {
        let limits = DecodeLimits {
            max_bytes: 100,
            max_pixels: u64::MAX,
        };
        let r = decode(&png(64, 64), limits);
        assert!(matches!(r, Err(DetectError::FileTooLarge { .. })), "{r:?}");
    }

    #[test]
    fn png_and_jpeg_decode_to_rgb_of_the_right_size() {
        let a = decode(&png(33, 17), DecodeLimits::default()).expect("png");
        assert_eq!(a.dimensions(), (33, 17));
        let b = decode(&jpeg(40, 30), DecodeLimits::default()).expect("jpeg");
        assert_eq!(b.dimensions(), (40, 30));
    }
}
