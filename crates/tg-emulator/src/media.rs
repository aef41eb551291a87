//! Image inspection and the photo-size ladder Telegram builds for photos.
//!
//! Telegram turns every photo into several JPEG sizes (thumbnails up to the
//! full picture) and bots usually pick the largest. The emulator does the same
//! so a bot that picks the first (smallest) size gets a visibly worse image.

use std::io::Cursor;

use axum::body::Bytes;
use image::{DynamicImage, ImageFormat, ImageReader, codecs::jpeg::JpegEncoder};

/// What the bytes are, when they are an image the `image` crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl ImageInfo {
    pub fn mime(&self) -> &'static str {
        self.format.to_mime_type()
    }

    pub fn extension(&self) -> &'static str {
        self.format
            .extensions_str()
            .first()
            .copied()
            .unwrap_or("bin")
    }
}

/// Reads format and dimensions from the header only (no full decode).
pub(crate) fn sniff(bytes: &[u8]) -> Option<ImageInfo> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let format = reader.format()?;
    let (width, height) = reader.into_dimensions().ok()?;
    Some(ImageInfo {
        format,
        width,
        height,
    })
}

/// Longest sides of the downscaled copies (Telegram's `s`, `m` and `x` sizes).
const THUMB_SIDES: [u32; 3] = [90, 320, 800];
/// Telegram never keeps a photo side above this.
const MAX_PHOTO_SIDE: u32 = 2560;

/// One entry of a photo's size ladder.
#[derive(Debug, Clone)]
pub(crate) struct SizedImage {
    pub bytes: Bytes,
    pub width: u32,
    pub height: u32,
}

/// Builds the sizes Telegram would store for a photo, smallest first.
///
/// The largest entry is the original bytes when the picture fits within
/// 2560 px, so a test that sends `bus.jpg` gets exactly `bus.jpg` back from
/// the largest size; smaller entries are re-encoded JPEG thumbnails. Bytes that
/// do not decode give a single entry of the original bytes with 0×0 size (the
/// real API would refuse them; tests use this to feed a bot corrupt input).
pub(crate) fn photo_sizes(bytes: &Bytes) -> Vec<SizedImage> {
    let original_only = || {
        vec![SizedImage {
            bytes: bytes.clone(),
            width: 0,
            height: 0,
        }]
    };
    let Some(image) = decode(bytes) else {
        return original_only();
    };
    let (width, height) = (image.width(), image.height());
    let longest = width.max(height);
    let mut sizes: Vec<SizedImage> = THUMB_SIDES
        .iter()
        .filter(|&&side| side < longest)
        .filter_map(|&side| downscale(&image, side))
        .collect();
    if longest <= MAX_PHOTO_SIDE {
        sizes.push(SizedImage {
            bytes: bytes.clone(),
            width,
            height,
        });
    } else if let Some(capped) = downscale(&image, MAX_PHOTO_SIDE) {
        sizes.push(capped);
    } else {
        return original_only();
    }
    sizes
}

/// A single JPEG thumbnail of at most 320 px, as Telegram attaches to image
/// documents.
pub(crate) fn document_thumbnail(bytes: &[u8]) -> Option<SizedImage> {
    let image = decode(bytes)?;
    let side = 320.min(image.width().max(image.height()));
    downscale(&image, side)
}

fn decode(bytes: &[u8]) -> Option<DynamicImage> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .decode()
        .ok()
}

fn downscale(image: &DynamicImage, side: u32) -> Option<SizedImage> {
    let small = image.thumbnail(side, side).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&small)
        .ok()?;
    Some(SizedImage {
        bytes: Bytes::from(out),
        width: small.width(),
        height: small.height(),
    })
}

/// Encodes a solid-colour JPEG; used by tests and handy for demos.
pub fn test_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Vec::new();
    // Encoding an in-memory RGB buffer cannot fail for sane sizes; an empty
    // vector on failure keeps this helper panic-free.
    let _ = JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_sizes_build_a_ladder_ending_with_the_original() {
        let jpeg = Bytes::from(test_jpeg(1000, 500));
        let sizes = photo_sizes(&jpeg);
        let dims: Vec<(u32, u32)> = sizes.iter().map(|s| (s.width, s.height)).collect();
        assert_eq!(dims, vec![(90, 45), (320, 160), (800, 400), (1000, 500)]);
        assert_eq!(sizes.last().map(|s| s.bytes.clone()), Some(jpeg));
    }

    #[test]
    fn photo_sizes_tolerate_non_images() {
        let sizes = photo_sizes(&Bytes::from_static(b"not an image"));
        assert_eq!(sizes.len(), 1);
        assert_eq!((sizes[0].width, sizes[0].height), (0, 0));
    }

    #[test]
    fn sniff_reads_dimensions_without_decoding() {
        let info = sniff(&test_jpeg(64, 48));
        assert_eq!(
            info.map(|i| (i.width, i.height, i.mime())),
            Some((64, 48, "image/jpeg"))
        );
        assert_eq!(sniff(b"plain text"), None);
    }
}
