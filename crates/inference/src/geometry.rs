//! Letterbox geometry: how an image of any size maps onto the model's input
//! canvas and how boxes map back. Pure arithmetic, property-tested.

/// How the model input canvas is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LetterboxMode {
    /// Always the full `size × size` square (needed for fixed-shape models).
    Square,
    /// The smallest stride-multiple rectangle that holds the scaled image,
    /// which saves compute on non-square photos (models with dynamic shapes).
    Rect,
}

/// Axis-aligned box in pixel coordinates: `(x1, y1)` top-left, `(x2, y2)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// The plan for one image: scale, resized size, canvas size and padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_w: u32,
    pub src_h: u32,
    pub scale: f32,
    /// Size of the resized image inside the canvas.
    pub new_w: u32,
    pub new_h: u32,
    /// Size of the tensor fed to the model.
    pub canvas_w: u32,
    pub canvas_h: u32,
    /// Offset of the resized image inside the canvas.
    pub pad_left: u32,
    pub pad_top: u32,
}

impl Letterbox {
    /// Plans a letterbox of a `src_w × src_h` image into a `size` canvas.
    ///
    /// Follows the Ultralytics convention (scale down or up to fit, centre,
    /// pad with grey) so detections match the reference implementation.
    pub fn plan(src_w: u32, src_h: u32, size: u32, stride: u32, mode: LetterboxMode) -> Self {
        let src_w = src_w.max(1);
        let src_h = src_h.max(1);
        let scale = (size as f32 / src_w as f32).min(size as f32 / src_h as f32);
        let new_w = ((src_w as f32 * scale).round() as u32).clamp(1, size);
        let new_h = ((src_h as f32 * scale).round() as u32).clamp(1, size);
        let (canvas_w, canvas_h) = match mode {
            LetterboxMode::Square => (size, size),
            LetterboxMode::Rect => (
                new_w.div_ceil(stride) * stride,
                new_h.div_ceil(stride) * stride,
            ),
        };
        let pad_left = (canvas_w - new_w) / 2;
        let pad_top = (canvas_h - new_h) / 2;
        Self {
            src_w,
            src_h,
            scale,
            new_w,
            new_h,
            canvas_w,
            canvas_h,
            pad_left,
            pad_top,
        }
    }

    /// Maps a box from canvas coordinates back to the original image, clipped to it.
    pub fn to_original(&self, b: BBox) -> BBox {
        // Use the per-axis ratio actually applied after rounding, so boxes
        // land exactly on the original pixels.
        let sx = self.new_w as f32 / self.src_w as f32;
        let sy = self.new_h as f32 / self.src_h as f32;
        let (px, py) = (self.pad_left as f32, self.pad_top as f32);
        let (w, h) = (self.src_w as f32, self.src_h as f32);
        BBox {
            x1: ((b.x1 - px) / sx).clamp(0.0, w),
            y1: ((b.y1 - py) / sy).clamp(0.0, h),
            x2: ((b.x2 - px) / sx).clamp(0.0, w),
            y2: ((b.y2 - py) / sy).clamp(0.0, h),
        }
    }

    /// Maps a box from the original image into canvas coordinates.
    pub fn to_canvas(&self, b: BBox) -> BBox {
        let sx = self.new_w as f32 / self.src_w as f32;
        let sy = self.new_h as f32 / self.src_h as f32;
        let (px, py) = (self.pad_left as f32, self.pad_top as f32);
        BBox {
            x1: b.x1 * sx + px,
            y1: b.y1 * sy + py,
            x2: b.x2 * sx + px,
            y2: b.y2 * sy + py,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rect_letterbox_of_a_portrait_photo_is_a_stride_multiple_rectangle() {
        // bus.jpg is 810×1080.
        let lb = Letterbox::plan(810, 1080, 640, 32, LetterboxMode::Rect);
        assert_eq!((lb.new_w, lb.new_h), (480, 640));
        assert_eq!((lb.canvas_w, lb.canvas_h), (480, 640));
        let sq = Letterbox::plan(810, 1080, 640, 32, LetterboxMode::Square);
        assert_eq!((sq.canvas_w, sq.canvas_h), (640, 640));
        assert_eq!(sq.pad_left, 80);
    }

    #[test]
    fn rect_letterbox_of_a_landscape_photo_pads_to_the_next_stride() {
        // zidane.jpg is 1280×720: scaled to 640×360, padded to 640×384.
        let lb = Letterbox::plan(1280, 720, 640, 32, LetterboxMode::Rect);
        assert_eq!((lb.new_w, lb.new_h), (640, 360));
        assert_eq!((lb.canvas_w, lb.canvas_h), (640, 384));
        assert_eq!(lb.pad_top, 12);
    }

    #[test]
    fn iou_of_identical_boxes_is_one_and_of_disjoint_boxes_zero() {
        let a = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 10.0,
            y2: 10.0,
        };
        let b = BBox {
            x1: 20.0,
            y1: 20.0,
            x2: 30.0,
            y2: 30.0,
        };
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b), 0.0);
    }

    proptest! {
        #[test]
        fn letterbox_round_trip_maps_boxes_back_to_original_pixels(
            w in 1u32..5000, h in 1u32..5000,
            fx1 in 0.0f32..1.0, fy1 in 0.0f32..1.0, fx2 in 0.0f32..1.0, fy2 in 0.0f32..1.0,
            rect in any::<bool>(),
        ) {
            let mode = if rect { LetterboxMode::Rect } else { LetterboxMode::Square };
            let lb = Letterbox::plan(w, h, 640, 32, mode);
            let b = BBox {
                x1: fx1.min(fx2) * w as f32, y1: fy1.min(fy2) * h as f32,
                x2: fx1.max(fx2) * w as f32, y2: fy1.max(fy2) * h as f32,
            };
            let back = lb.to_original(lb.to_canvas(b));
            // Within a thousandth of a pixel per original pixel of size, i.e. float noise.
            let tol = 1e-3 * (w.max(h) as f32).max(1.0);
            prop_assert!((back.x1 - b.x1).abs() <= tol);
            prop_assert!((back.y1 - b.y1).abs() <= tol);
            prop_assert!((back.x2 - b.x2).abs() <= tol);
            prop_assert!((back.y2 - b.y2).abs() <= tol);
        }

        #[test]
        fn letterbox_canvas_holds_the_image_and_respects_the_stride(
            w in 1u32..8000, h in 1u32..8000, rect in any::<bool>(),
        ) {
            let mode = if rect { LetterboxMode::Rect } else { LetterboxMode::Square };
            let lb = Letterbox::plan(w, h, 640, 32, mode);
            prop_assert!(lb.canvas_w <= 640 && lb.canvas_h <= 640);
            prop_assert_eq!(lb.canvas_w % 32, 0);
            prop_assert_eq!(lb.canvas_h % 32, 0);
            prop_assert!(lb.pad_left + lb.new_w <= lb.canvas_w);
            prop_assert!(lb.pad_top + lb.new_h <= lb.canvas_h);
            // The longer side always fills the canvas.
            prop_assert!(lb.new_w == 640 || lb.new_h == 640);
        }

        #[test]
        fn canvas_boxes_map_inside_the_original_image(
            w in 1u32..5000, h in 1u32..5000,
            x1 in -100.0f32..800.0, y1 in -100.0f32..800.0, dw in 0.0f32..800.0, dh in 0.0f32..800.0,
        ) {
            let lb = Letterbox::plan(w, h, 640, 32, LetterboxMode::Rect);
            let b = lb.to_original(BBox { x1, y1, x2: x1 + dw, y2: y1 + dh });
            prop_assert!(b.x1 >= 0.0 && b.x2 <= w as f32 && b.y1 >= 0.0 && b.y2 <= h as f32);
        }
    }
}
