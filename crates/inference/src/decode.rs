//! Safe image decoding: size caps checked from the header before any pixel
//! is decoded (decompression bombs), EXIF orientation applied, and every
//! failure mapped to a typed error rather than a panic. JPEGs much larger
//! than the model needs are decoded at a reduced DCT scale (1/2, 1/4, 1/8).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage, metadata::Orientation};

use crate::error::{DecoderError, DetectError, panic_message};

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

/// An upright decoded photo, possibly smaller than the original.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    /// Upright size of the full-resolution photo that `image` stands for.
    pub original_width: u32,
    pub original_height: u32,
}

impl Decoded {
    /// Factors that map `image` pixels to original pixels, per axis.
    pub fn to_original(&self) -> (f32, f32) {
        (
            self.original_width as f32 / self.image.width().max(1) as f32,
            self.original_height as f32 / self.image.height().max(1) as f32,
        )
    }

    /// Whether `image` is the photo at full resolution.
    pub fn is_full_resolution(&self) -> bool {
        self.image.dimensions() == (self.original_width, self.original_height)
    }
}

/// How far a large JPEG may be scaled down while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleLimits {
    /// Only JPEGs whose longer side is above this are scaled.
    pub above: u32,
    /// The decoded longer side never goes below this.
    pub min_long_side: u32,
}

impl ScaleLimits {
    /// Decode everything at full resolution.
    pub const FULL: Self = Self {
        above: u32::MAX,
        min_long_side: u32::MAX,
    };
}

/// Decodes `bytes` upright. A JPEG whose longer side is above
/// `scale.above` is decoded at the smallest DCT scale (1/2, 1/4 or 1/8)
/// that keeps its longer side at or above `scale.min_long_side`; anything
/// else at full resolution.
pub fn decode_at_least(
    bytes: &[u8],
    limits: DecodeLimits,
    scale: ScaleLimits,
) -> Result<Decoded, DetectError> {
    check_input(bytes, limits)?;
    if is_jpeg(bytes)
        && let Some(decoded) = decode_jpeg_scaled(bytes, limits, scale)?
    {
        return Ok(decoded);
    }
    let image = decode(bytes, limits)?;
    Ok(Decoded {
        original_width: image.width(),
        original_height: image.height(),
        image,
    })
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// The DCT reduction (1, 2, 4 or 8) that keeps `long_side` ≥ `min_long_side`.
pub fn dct_reduction(long_side: u32, min_long_side: u32) -> u32 {
    [8, 4, 2]
        .into_iter()
        .find(|k| long_side.div_ceil(*k) >= min_long_side)
        .unwrap_or(1)
}

/// The scaled path, through libjpeg-turbo's reduced IDCT (the `mozjpeg`
/// crate builds it from source). `None` when there is nothing to gain (no
/// reduction possible) or the JPEG is CMYK, which then takes the full decoder.
fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: DecodeLimits,
    scale: ScaleLimits,
) -> Result<Option<Decoded>, DetectError> {
    // libjpeg reports a fatal error by unwinding out of its error callback
    // (that is the crate's design, and it skips the panic hook); caught here,
    // a broken photo is an answer rather than a dead lane.
    std::panic::catch_unwind(|| decode_libjpeg_scaled(bytes, limits, scale)).unwrap_or_else(
        |payload| {
            Err(DetectError::Corrupt(DecoderError::Panicked(
                panic_message(&*payload).to_owned(),
            )))
        },
    )
}

fn decode_libjpeg_scaled(
    bytes: &[u8],
    limits: DecodeLimits,
    scale: ScaleLimits,
) -> Result<Option<Decoded>, DetectError> {
    use mozjpeg::{ColorSpace, Decompress, Marker};

    let mut decoder = Decompress::with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .map_err(map_libjpeg_error)?;
    let (width, height) = dimensions(decoder.size())?;
    check_pixels(width, height, limits)?;
    let long_side = width.max(height);
    if long_side <= scale.above {
        return Ok(None);
    }
    let k = dct_reduction(long_side, scale.min_long_side);
    if k == 1 {
        return Ok(None);
    }
    let gray = match decoder.color_space() {
        ColorSpace::JCS_GRAYSCALE => true,
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => return Ok(None),
        _ => false,
    };
    let orientation = decoder
        .markers()
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    // k is 2, 4 or 8: the output is (8 / k) / 8 of the original.
    decoder.scale(u8::try_from(8 / k).unwrap_or(8));
    let mut started = if gray {
        decoder.grayscale()
    } else {
        decoder.rgb()
    }
    .map_err(map_libjpeg_error)?;
    let (sw, sh) = dimensions((started.width(), started.height()))?;
    let pixels: Vec<u8> = started.read_scanlines().map_err(map_libjpeg_error)?;
    let corrupt = || DetectError::invalid("the JPEG decoder returned too few pixels");
    let mut image = if gray {
        DynamicImage::ImageLuma8(image::GrayImage::from_raw(sw, sh, pixels).ok_or_else(corrupt)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(sw, sh, pixels).ok_or_else(corrupt)?)
    };
    // Whatever follows the last scanline (trailing markers) cannot change the
    // pixels already read, so a complaint about it does not cost the photo.
    let _ = started.finish();
    image.apply_orientation(orientation);
    let (original_width, original_height) = if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Some(Decoded {
        image: image.into_rgb8(),
        original_width,
        original_height,
    }))
}

fn dimensions((width, height): (usize, usize)) -> Result<(u32, u32), DetectError> {
    let side = |v: usize| {
        u32::try_from(v).map_err(|_| DetectError::invalid("the JPEG is impossibly large"))
    };
    Ok((side(width)?, side(height)?))
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn map_libjpeg_error(e: std::io::Error) -> DetectError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        DetectError::Truncated(Some(DecoderError::Libjpeg(e)))
    } else {
        DetectError::Corrupt(DecoderError::Libjpeg(e))
    }
}

fn check_input(bytes: &[u8], limits: DecodeLimits) -> Result<(), DetectError> {
    check_size(bytes, limits)?;
    if is_jpeg(bytes) && !jpeg_is_complete(bytes) {
        return Err(DetectError::truncated());
    }
    Ok(())
}

/// The file's size, before anything parses it.
fn check_size(bytes: &[u8], limits: DecodeLimits) -> Result<(), DetectError> {
    if bytes.is_empty() {
        return Err(DetectError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DetectError::FileTooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn check_pixels(width: u32, height: u32, limits: DecodeLimits) -> Result<(), DetectError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DetectError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(DetectError::invalid("the image has no pixels"));
    }
    Ok(())
}

/// Decodes `bytes` into an upright RGB image at full resolution.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, DetectError> {
    check_size(bytes, limits)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DetectError::Corrupt(DecoderError::Read(e)))?;
    if reader.format().is_none() {
        return Err(DetectError::NotAnImage);
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(DetectError::truncated());
    }
    let mut image_limits = image::Limits::default();
    // Four bytes per pixel (RGBA) with headroom for the decoder's own buffers.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(image_limits);

    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
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
    // memchr's SIMD search: a 12-megapixel photo's 2 MB were 3 ms byte by byte.
    let last = |marker: u8| memchr::memmem::rfind(bytes, &[0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

fn map_image_error(e: ImageError) -> DetectError {
    match e {
        ImageError::Unsupported(_) => DetectError::NotAnImage,
        ImageError::Limits(l) => DetectError::Corrupt(DecoderError::Limits(l)),
        ImageError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DetectError::Truncated(Some(e.into()))
        }
        other if says_truncated(&other) => DetectError::Truncated(Some(other.into())),
        other => DetectError::Corrupt(other.into()),
    }
}

/// Whether a decoding error is the codec's way of saying the data ends
/// early: zune-jpeg and png report truncation as a decoding error, known
/// only by its text.
fn says_truncated(e: &ImageError) -> bool {
    let lower = e.to_string().to_ascii_lowercase();
    lower.contains("eof") || lower.contains("truncat") || lower.contains("unexpected end")
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
        assert!(matches!(r, Err(DetectError::Truncated(_))), "{:?}", r.err());
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

    const SCALE: ScaleLimits = ScaleLimits {
        above: 2560,
        min_long_side: 640,
    };

    #[test]
    fn the_dct_reduction_never_goes_below_the_minimum_side() {
        assert_eq!(dct_reduction(4032, 640), 4); // 1008; 1/8 would be 504
        assert_eq!(dct_reduction(5120, 640), 8); // exactly 640
        assert_eq!(dct_reduction(1200, 640), 1);
        assert_eq!(dct_reduction(1280, 640), 2);
        assert_eq!(dct_reduction(4032, u32::MAX), 1);
    }

    #[test]
    fn a_jpeg_above_the_bound_is_decoded_at_a_reduced_scale() {
        let d = decode_at_least(&jpeg(3000, 1000), DecodeLimits::default(), SCALE).expect("jpeg");
        assert_eq!(d.image.dimensions(), (750, 250));
        assert_eq!((d.original_width, d.original_height), (3000, 1000));
        assert!(!d.is_full_resolution());
        assert_eq!(d.to_original(), (4.0, 4.0));
    }

    #[test]
    fn a_jpeg_within_the_bound_or_asked_in_full_keeps_its_resolution() {
        let d = decode_at_least(&jpeg(2000, 900), DecodeLimits::default(), SCALE).expect("jpeg");
        assert_eq!(d.image.dimensions(), (2000, 900));
        let f = decode_at_least(
            &jpeg(3000, 1000),
            DecodeLimits::default(),
            ScaleLimits::FULL,
        )
        .expect("jpeg");
        assert!(f.is_full_resolution());
        assert_eq!(f.image.dimensions(), (3000, 1000));
    }

    #[test]
    fn the_scaled_path_checks_the_pixel_cap_and_truncation_too() {
        let limits = DecodeLimits {
            max_bytes: usize::MAX,
            max_pixels: 1_000_000,
        };
        let r = decode_at_least(&jpeg(3000, 1000), limits, SCALE);
        assert!(matches!(r, Err(DetectError::TooManyPixels { .. })), "{r:?}");
        let data = jpeg(3000, 1000);
        let r = decode_at_least(&data[..data.len() / 2], DecodeLimits::default(), SCALE);
        assert!(matches!(r, Err(DetectError::Truncated(_))), "{:?}", r.err());
    }

    #[test]
    fn a_fatal_libjpeg_error_on_the_scaled_path_is_a_permanent_error_not_a_panic() {
        let mut data = jpeg(3000, 1000);
        // SOF0's sample precision: 12 bits is valid JPEG that an 8-bit
        // libjpeg refuses with a fatal error, which unwinds out of C.
        let sof = data
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG has SOF0");
        data[sof + 4] = 12;
        let r = decode_at_least(&data, DecodeLimits::default(), SCALE);
        match r {
            Err(DetectError::Corrupt(DecoderError::Panicked(message))) => {
                assert!(message.contains("precision"), "{message}")
            }
            other => panic!("expected a corrupt-JPEG error, got {other:?}"),
        }
    }

    #[test]
    fn a_large_greyscale_jpeg_is_scaled_and_comes_out_rgb() {
        let img = image::GrayImage::from_fn(2800, 1400, |x, _| image::Luma([(x % 256) as u8]));
        let mut data = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut data)
            .write_image(img.as_raw(), 2800, 1400, image::ExtendedColorType::L8)
            .expect("encode grey jpeg");
        let d = decode_at_least(&data, DecodeLimits::default(), SCALE).expect("grey jpeg");
        assert_eq!(d.image.dimensions(), (700, 350));
        assert_eq!((d.original_width, d.original_height), (2800, 1400));
        let p = d.image.get_pixel(100, 100);
        assert_eq!(p[0], p[1], "grey stays grey: {p:?}");
    }

    #[test]
    fn png_and_jpeg_decode_to_rgb_of_the_right_size() {
        let a = decode(&png(33, 17), DecodeLimits::default()).expect("png");
        assert_eq!(a.dimensions(), (33, 17));
        let b = decode(&jpeg(40, 30), DecodeLimits::default()).expect("jpeg");
        assert_eq!(b.dimensions(), (40, 30));
    }
}
