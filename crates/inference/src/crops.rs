//! A detection's objects cut out of its original photo (the answer's
//! `Crops` button): the photo decoded upright at full resolution, within the
//! same limits as detection, and each box cut at its own size and encoded
//! as JPEG. Runs on an inference lane, so crops share detection's bounded
//! CPU pool and back-pressure.
//!
//! Boxes are the detection's labels, normalised to 0..1 of the upright
//! original, so the photo is decoded at full resolution with its EXIF
//! orientation applied, exactly as detection measured them.

use image::RgbImage;
use polybot_domain::Label;

use crate::decode::{DecodeLimits, ScaleLimits, decode_at_least};
use crate::engine::encode_jpeg;
use crate::error::DetectError;

/// A box in the pixels of an image: its top-left corner and its size,
/// never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelRect {
    /// Where `label` lies in an image of `width` × `height` pixels: its box
    /// rounded to whole pixels and clamped to the image, at least 1×1 (a
    /// box past the edge or of no size still gives its user a picture).
    pub fn of(label: &Label, width: u32, height: u32) -> Self {
        let (x, w) = span(label.cx, label.width, width);
        let (y, h) = span(label.cy, label.height, height);
        Self {
            x,
            y,
            width: w,
            height: h,
        }
    }
}

/// The start and length on a side of `side` pixels of a box centred at
/// `centre` of size `size` (both in 0..1 of the side).
fn span(centre: f32, size: f32, side: u32) -> (u32, u32) {
    let side = side.max(1);
    let scale = f64::from(side);
    let half = f64::from(size) / 2.0;
    let lo = ((f64::from(centre) - half) * scale).round();
    let hi = ((f64::from(centre) + half) * scale).round();
    // `as` saturates (and takes NaN to 0), so a wild box from a stored
    // record still lands inside the image.
    let lo = (lo as u32).min(side - 1);
    let hi = (hi as u32).clamp(lo + 1, side);
    (lo, hi - lo)
}

/// Each of `boxes` cut out of `image`, in their order.
pub fn cut(image: &RgbImage, boxes: &[Label]) -> Vec<RgbImage> {
    let (width, height) = image.dimensions();
    boxes
        .iter()
        .map(|label| {
            let r = PixelRect::of(label, width, height);
            image::imageops::crop_imm(image, r.x, r.y, r.width, r.height).to_image()
        })
        .collect()
}

/// Decodes `bytes` upright at full resolution and cuts out each of
/// `boxes`, encoded as JPEG of `jpeg_quality`, in their order. The photo is
/// decoded even when there are no boxes, so a broken photo is always an
/// error, told to the user as detection's would be.
pub fn run(
    bytes: &[u8],
    limits: DecodeLimits,
    boxes: &[Label],
    jpeg_quality: u8,
) -> Result<Vec<Vec<u8>>, DetectError> {
    let image = {
        let _span = tracing::info_span!("decode", image_bytes = bytes.len()).entered();
        decode_at_least(bytes, limits, ScaleLimits::FULL)?.image
    };
    let crops = {
        let _span = tracing::info_span!("crop", boxes = boxes.len()).entered();
        cut(&image, boxes)
    };
    let _span = tracing::info_span!("encode").entered();
    crops
        .iter()
        .map(|crop| encode_jpeg(crop, jpeg_quality))
        .collect()
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, Rgb};

    use super::*;

    const RED: Rgb<u8> = Rgb([220, 20, 20]);
    const BLUE: Rgb<u8> = Rgb([20, 20, 220]);
    const GREY: Rgb<u8> = Rgb([128, 128, 128]);

    /// A 200×100 grey picture with a red 40×20 block at (20, 10) and a blue
    /// 60×50 block at (120, 40).
    fn blocks() -> RgbImage {
        RgbImage::from_fn(200, 100, |x, y| {
            if (20..60).contains(&x) && (10..30).contains(&y) {
                RED
            } else if (120..180).contains(&x) && (40..90).contains(&y) {
                BLUE
            } else {
                GREY
            }
        })
    }

    /// The label of a pixel box in a `width` × `height` picture.
    fn label(x: u32, y: u32, w: u32, h: u32, (width, height): (u32, u32)) -> Label {
        let (width, height) = (width as f32, height as f32);
        Label {
            class: "thing".into(),
            cx: (x as f32 + w as f32 / 2.0) / width,
            cy: (y as f32 + h as f32 / 2.0) / height,
            width: w as f32 / width,
            height: h as f32 / height,
            confidence: 0.9,
        }
    }

    fn png(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode png");
        out
    }

    fn close(a: Rgb<u8>, b: Rgb<u8>) -> bool {
        a.0.iter().zip(b.0).all(|(x, y)| x.abs_diff(y) <= 24)
    }

    #[test]
    fn a_boxs_crop_has_the_boxs_size_and_exactly_its_pixels() {
        let image = blocks();
        let size = image.dimensions();
        let crops = cut(
            &image,
            &[label(20, 10, 40, 20, size), label(120, 40, 60, 50, size)],
        );
        assert_eq!(crops.len(), 2);
        assert_eq!(crops[0].dimensions(), (40, 20));
        assert!(crops[0].pixels().all(|p| *p == RED));
        assert_eq!(crops[1].dimensions(), (60, 50));
        assert!(crops[1].pixels().all(|p| *p == BLUE));
    }

    #[test]
    fn a_crop_keeps_the_boxs_own_offset_into_the_picture() {
        let image = blocks();
        // One pixel more on every side of the red block: grey around red.
        let crop = &cut(&image, &[label(19, 9, 42, 22, image.dimensions())])[0];
        assert_eq!(crop.dimensions(), (42, 22));
        assert_eq!(*crop.get_pixel(0, 0), GREY);
        assert_eq!(*crop.get_pixel(1, 1), RED);
        assert_eq!(*crop.get_pixel(40, 20), RED);
        assert_eq!(*crop.get_pixel(41, 21), GREY);
    }

    #[test]
    fn boxes_past_the_edge_are_clamped_to_the_picture() {
        let size = (200, 100);
        let past_left_top = Label {
            cx: 0.0,
            cy: 0.0,
            width: 0.2,
            height: 0.4,
            ..label(0, 0, 1, 1, size)
        };
        assert_eq!(
            PixelRect::of(&past_left_top, size.0, size.1),
            PixelRect {
                x: 0,
                y: 0,
                width: 20,
                height: 20
            }
        );
        let past_right_bottom = Label {
            cx: 1.0,
            cy: 0.95,
            width: 0.5,
            height: 0.5,
            ..past_left_top.clone()
        };
        assert_eq!(
            PixelRect::of(&past_right_bottom, size.0, size.1),
            PixelRect {
                x: 150,
                y: 70,
                width: 50,
                height: 30
            }
        );
        let everything = Label {
            cx: 0.5,
            cy: 0.5,
            width: 3.0,
            height: 3.0,
            ..past_left_top
        };
        let crop = &cut(&blocks(), &[everything])[0];
        assert_eq!(crop.dimensions(), size);
    }

    #[test]
    fn a_box_of_no_size_or_outside_the_picture_still_gives_one_pixel() {
        let size = (200, 100);
        let base = label(0, 0, 1, 1, size);
        let cases = [
            (0.5, 0.5, 0.0, 0.0),
            (1.5, 1.5, 0.1, 0.1),
            (-1.0, -1.0, 0.1, 0.1),
            (f32::NAN, f32::NAN, f32::NAN, f32::NAN),
        ];
        for (cx, cy, width, height) in cases {
            let l = Label {
                cx,
                cy,
                width,
                height,
                ..base.clone()
            };
            let r = PixelRect::of(&l, size.0, size.1);
            assert_eq!((r.width, r.height), (1, 1), "{l:?}");
            assert!(r.x < size.0 && r.y < size.1, "{l:?}: {r:?}");
        }
    }

    #[test]
    fn each_box_comes_back_as_a_jpeg_of_its_size_and_colour() {
        let image = blocks();
        let size = image.dimensions();
        let boxes = [label(120, 40, 60, 50, size), label(20, 10, 40, 20, size)];
        let jpegs = run(&png(&image), DecodeLimits::default(), &boxes, 90).expect("crops");
        assert_eq!(jpegs.len(), 2);
        for (jpeg, (dims, colour)) in jpegs.iter().zip([((60, 50), BLUE), ((40, 20), RED)]) {
            assert_eq!(
                image::guess_format(jpeg).ok(),
                Some(image::ImageFormat::Jpeg)
            );
            let back = image::load_from_memory(jpeg).expect("decodes").to_rgb8();
            assert_eq!(back.dimensions(), dims);
            let centre = *back.get_pixel(dims.0 / 2, dims.1 / 2);
            assert!(close(centre, colour), "{centre:?} vs {colour:?}");
        }
    }

    #[test]
    fn boxes_are_cut_from_the_upright_photo_as_exif_orientation_says() {
        // Stored sideways, as a phone does, with EXIF saying "rotate 90°
        // clockwise to display": the boxes are in the upright picture.
        let upright = blocks();
        let sideways = image::imageops::rotate270(&upright);
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
        encoder
            .set_exif_metadata(exif_orientation(6))
            .expect("exif");
        encoder
            .write_image(
                sideways.as_raw(),
                sideways.width(),
                sideways.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode");
        let boxes = [label(120, 40, 60, 50, upright.dimensions())];
        let jpegs = run(&jpeg, DecodeLimits::default(), &boxes, 90).expect("crops");
        let back = image::load_from_memory(&jpegs[0])
            .expect("decodes")
            .to_rgb8();
        assert_eq!(back.dimensions(), (60, 50));
        let centre = *back.get_pixel(30, 25);
        assert!(close(centre, BLUE), "{centre:?}");
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

    #[test]
    fn a_corrupt_or_foreign_file_is_the_same_permanent_error_as_for_detection() {
        let image = png(&blocks());
        let boxes = [label(20, 10, 40, 20, (200, 100))];
        let limits = DecodeLimits::default();
        let cut_off = run(&image[..image.len() / 2], limits, &boxes, 90).expect_err("cut off");
        assert_eq!(
            cut_off.kind(),
            crate::ErrorKind::CorruptImage,
            "{cut_off:?}"
        );
        let text = run(b"not a photo at all", limits, &boxes, 90).expect_err("text");
        assert!(matches!(text, DetectError::NotAnImage), "{text:?}");
        for err in [cut_off, text] {
            assert!(err.is_permanent(), "{err:?}");
        }
    }

    #[test]
    fn a_photo_with_no_boxes_gives_no_crops_but_is_still_checked() {
        let limits = DecodeLimits::default();
        assert!(
            run(&png(&blocks()), limits, &[], 90)
                .expect("no crops")
                .is_empty()
        );
        assert!(run(b"", limits, &[], 90).is_err());
    }
}
