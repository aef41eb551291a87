//! Drawing detections on the photo: a box per object in its class colour
//! and a label with class name and score, in a font from the `dejavu` crate.

use std::sync::LazyLock;

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

use polybot_domain::LabelStyle;

use crate::output::Detection;

/// The Ultralytics palette, so our pictures look like the ones users know.
const PALETTE: [[u8; 3]; 20] = [
    [0xFF, 0x38, 0x38],
    [0xFF, 0x9D, 0x97],
    [0xFF, 0x70, 0x1F],
    [0xFF, 0xB2, 0x1D],
    [0xCF, 0xD2, 0x31],
    [0x48, 0xF9, 0x0A],
    [0x92, 0xCC, 0x17],
    [0x3D, 0xDB, 0x86],
    [0x1A, 0x93, 0x34],
    [0x00, 0xD4, 0xBB],
    [0x2C, 0x99, 0xA8],
    [0x00, 0xC2, 0xFF],
    [0x34, 0x45, 0x93],
    [0x64, 0x73, 0xFF],
    [0x00, 0x18, 0xEC],
    [0x84, 0x38, 0xFF],
    [0x52, 0x00, 0x85],
    [0xCB, 0x38, 0xFF],
    [0xFF, 0x95, 0xC8],
    [0xFF, 0x37, 0xC7],
];

static FONT: LazyLock<Option<FontRef<'static>>> =
    LazyLock::new(|| FontRef::try_from_slice(dejavu::sans::bold()).ok());

pub fn class_color(class_id: usize) -> Rgb<u8> {
    Rgb(PALETTE[class_id % PALETTE.len()])
}

/// Black or white, whichever reads better on `bg` (WCAG relative luminance).
pub fn text_color(bg: Rgb<u8>) -> Rgb<u8> {
    let lin = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(bg[0]) + 0.7152 * lin(bg[1]) + 0.0722 * lin(bg[2]);
    // Contrast with black is (l+0.05)/0.05, with white 1.05/(l+0.05).
    if (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

/// Draws every detection onto `image`, labelled with name and score.
pub fn annotate(image: &mut RgbImage, detections: &[Detection]) {
    annotate_with(image, detections, LabelStyle::Score);
}

/// Draws every detection onto `image`, labelled as the chat chose.
pub fn annotate_with(image: &mut RgbImage, detections: &[Detection], labels: LabelStyle) {
    let (w, h) = image.dimensions();
    let thickness = (((w + h) as f32 / 2.0 * 0.003).round() as u32).max(2);
    let font_px = (((w + h) as f32 / 2.0 * 0.03).round()).max(12.0);
    let scale = PxScale::from(font_px);

    for det in detections {
        let color = class_color(det.class_id);
        let x1 = det.bbox.x1.round() as i32;
        let y1 = det.bbox.y1.round() as i32;
        let bw = (det.bbox.width().round() as u32).max(1);
        let bh = (det.bbox.height().round() as u32).max(1);
        for t in 0..thickness {
            let (tw, th) = (bw.saturating_sub(2 * t), bh.saturating_sub(2 * t));
            if tw == 0 || th == 0 {
                break;
            }
            draw_hollow_rect_mut(
                image,
                Rect::at(x1 + t as i32, y1 + t as i32).of_size(tw, th),
                color,
            );
        }

        let Some(font) = FONT.as_ref() else { continue };
        let text = match labels {
            LabelStyle::Score => format!("{} {:.2}", det.class_name, det.confidence),
            LabelStyle::Name => det.class_name.clone(),
        };
        let (tw, th) = text_size(scale, font, &text);
        let pad = (thickness as i32).max(2);
        let label_h = th as i32 + 2 * pad;
        let label_w = tw as i32 + 2 * pad;
        // Above the box when it fits, otherwise just inside its top edge.
        let ly = if y1 - label_h >= 0 { y1 - label_h } else { y1 };
        let lx = x1.clamp(0, (w as i32 - label_w).max(0));
        draw_filled_rect_mut(
            image,
            Rect::at(lx, ly).of_size(label_w as u32, label_h as u32),
            color,
        );
        draw_text_mut(
            image,
            text_color(color),
            lx + pad,
            ly + pad,
            scale,
            font,
            &text,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    #[test]
    fn label_text_is_dark_on_light_colours_and_light_on_dark_ones() {
        assert_eq!(text_color(Rgb([255, 255, 0])), Rgb([0, 0, 0]));
        assert_eq!(text_color(Rgb([0x34, 0x45, 0x93])), Rgb([255, 255, 255]));
    }

    #[test]
    fn the_embedded_font_loads() {
        assert!(FONT.is_some());
    }

    #[test]
    fn annotating_draws_the_class_colour_and_survives_boxes_at_the_edges() {
        let mut img = RgbImage::from_pixel(200, 100, Rgb([128, 128, 128]));
        let dets = [
            Detection {
                class_id: 0,
                class_name: "person".into(),
                confidence: 0.9,
                bbox: BBox {
                    x1: 10.0,
                    y1: 30.0,
                    x2: 60.0,
                    y2: 90.0,
                },
            },
            Detection {
                class_id: 5,
                class_name: "bus".into(),
                confidence: 0.5,
                bbox: BBox {
                    x1: 150.0,
                    y1: 0.0,
                    x2: 200.0,
                    y2: 100.0,
                },
            },
            Detection {
                class_id: 7,
                class_name: "x".into(),
                confidence: 0.3,
                bbox: BBox {
                    x1: 199.0,
                    y1: 99.0,
                    x2: 200.0,
                    y2: 100.0,
                },
            },
        ];
        annotate(&mut img, &dets);
        assert_eq!(
            *img.get_pixel(10, 60),
            class_color(0),
            "left edge of the first box"
        );
        assert_eq!(
            *img.get_pixel(120, 60),
            Rgb([128, 128, 128]),
            "untouched background"
        );
    }
}
