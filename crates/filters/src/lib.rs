//! The course's image filters: what a photo captioned `blur`, `contour`,
//! `rotate`, `segment`, `salt and pepper` or (an album) `concat` gets back.
//!
//! The semantics are the course's `Img` class, kept exact so that results
//! match its tests:
//!
//! - every picture is first made grey, 0.2989 R + 0.5870 G + 0.1140 B, on
//!   the 0..255 channel values (whatever the file format: the course's
//!   `imread` gives 0..1 floats for PNG, which its thresholds did not
//!   expect);
//! - [`blur`]: the mean of each b×b window, "valid" mode, so the result is
//!   (H−b+1)×(W−b+1); the course divides with `//`, so each mean is floored
//!   to a whole grey level;
//! - [`contour`]: the absolute difference between horizontal neighbours,
//!   H×(W−1), then stretched to the full 0..255 range as the course's
//!   `imsave(cmap='gray')` does ([`Grey::stretched`]);
//! - [`rotate`]: 90° clockwise per quarter turn (the first row becomes the
//!   last column);
//! - [`segment`]: levels above T become 255, the rest 0;
//! - [`salt_and_pepper`]: one uniform draw r per pixel: r < P makes it
//!   white, r > 1 − P black, else it is unchanged (the course's order of
//!   tests);
//! - [`concat`]: left to right or top to bottom, the first picture first;
//!   where sizes differ the next picture is scaled to the first one's height
//!   (horizontal) or width (vertical), keeping its aspect ratio, where the
//!   course raised an error.
//!
//! # Exact grey levels
//!
//! Grey levels are held as whole ten-thousandths ([`Grey::SCALE`]): the
//! weights have four decimals, so 2989 R + 5870 G + 1140 B is the grey level
//! exactly, and blur's window sums (a summed-area table, so the cost does
//! not grow with the window) and floors, contour's differences and
//! segment's comparisons are exact integer arithmetic. The course computes
//! in f64, so its result can differ from ours only where a level lies within
//! rounding error of a blur floor or a threshold.
//!
//! Nothing here panics on any input: sizes that cannot work are
//! [`FilterError`]s.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Luma};
use polybot_domain::{BlurSize, Direction, Filter, Fraction, QuarterTurns};

/// Why a filter could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the picture is {width}×{height}, smaller than the {size}×{size} blur window")]
    TooSmallForBlur { width: u32, height: u32, size: u8 },
    #[error("the picture is {width} pixel(s) wide, contour needs at least 2")]
    TooNarrowForContour { width: u32 },
    #[error("concat needs at least 2 pictures, got {0}")]
    NotEnoughImages(usize),
    /// `index` counts from 0, in album order.
    #[error("picture {index} has no pixels")]
    EmptyImage { index: usize },
    #[error("the result would be {width}×{height}, more than {MAX_OUTPUT_PIXELS} pixels")]
    TooLarge { width: u64, height: u64 },
    #[error("could not encode the picture as {format}: {message}")]
    Encode {
        format: &'static str,
        message: String,
    },
}

/// The most pixels [`concat`] produces: an album of ten photos at
/// Telegram's 2560-pixel photo size fits; a 1-pixel-wide photo first,
/// scaling everything after it to a huge height, does not.
pub const MAX_OUTPUT_PIXELS: u64 = 50_000_000;

/// A grey picture, in exact ten-thousandths of a grey level (see the
/// [crate documentation](crate)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grey {
    width: u32,
    height: u32,
    /// Row-major, `width * height` values, each at most 255 × SCALE.
    levels: Vec<u32>,
}

const WHITE: u32 = 255 * Grey::SCALE;

impl Grey {
    /// Units per grey level.
    pub const SCALE: u32 = 10_000;

    /// The course's grey: 0.2989 R + 0.5870 G + 0.1140 B (alpha ignored,
    /// a grey source counts as R = G = B).
    pub fn from_image(image: &DynamicImage) -> Self {
        let converted;
        let rgb = match image.as_rgb8() {
            Some(rgb) => rgb,
            None => {
                converted = image.to_rgb8();
                &converted
            }
        };
        let levels = rgb
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(u32::from);
                2989 * r + 5870 * g + 1140 * b
            })
            .collect();
        Self {
            width: rgb.width(),
            height: rgb.height(),
            levels,
        }
    }

    /// A grey picture whose levels are exactly the 8-bit values given (no
    /// weighting): for known-answer tests and already-grey data.
    pub fn from_gray(image: &GrayImage) -> Self {
        Self {
            width: image.width(),
            height: image.height(),
            levels: image
                .pixels()
                .map(|p| u32::from(p.0[0]) * Self::SCALE)
                .collect(),
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The grey level (0.0..=255.0) at column `x`, row `y`.
    pub fn level(&self, x: u32, y: u32) -> Option<f64> {
        (x < self.width && y < self.height)
            .then(|| self.levels.get(self.index(x, y)))
            .flatten()
            .map(|&v| f64::from(v) / f64::from(Self::SCALE))
    }

    /// Every level, row by row.
    pub fn levels(&self) -> impl Iterator<Item = f64> + '_ {
        self.levels
            .iter()
            .map(|&v| f64::from(v) / f64::from(Self::SCALE))
    }

    fn index(&self, x: u32, y: u32) -> usize {
        y as usize * self.width as usize + x as usize
    }

    /// 8-bit grey, each level rounded to the nearest whole level (halves
    /// up). The brightest grey, 0.9999 × 255, becomes 255.
    pub fn to_gray_image(&self) -> GrayImage {
        self.to_gray_with(|v| ((v + Self::SCALE / 2) / Self::SCALE).min(255) as u8)
    }

    /// 8-bit grey stretched to the full range as matplotlib's
    /// `imsave(cmap='gray')` does for the course: x = (v − min)/(max − min),
    /// then ⌊256·x⌋ capped at 255, so the minimum is 0 and the maximum 255;
    /// a constant picture is all 0.
    pub fn stretched(&self) -> GrayImage {
        let min = self.levels.iter().copied().min().unwrap_or(0);
        let max = self.levels.iter().copied().max().unwrap_or(0);
        if max == min {
            return self.to_gray_with(|_| 0);
        }
        let span = f64::from(max - min);
        self.to_gray_with(|v| (f64::from(v - min) / span * 256.0).floor().min(255.0) as u8)
    }

    fn to_gray_with(&self, f: impl Fn(u32) -> u8) -> GrayImage {
        let mut out = GrayImage::new(self.width, self.height);
        for (p, &v) in out.pixels_mut().zip(&self.levels) {
            *p = Luma([f(v)]);
        }
        out
    }

    fn map(&self, f: impl FnMut(u32) -> u32) -> Self {
        Self {
            width: self.width,
            height: self.height,
            levels: self.levels.iter().copied().map(f).collect(),
        }
    }
}

/// The course's blur: the floor of the mean of each `size`×`size` window,
/// "valid" mode, so the result is (H−size+1)×(W−size+1).
pub fn blur(grey: &Grey, size: BlurSize) -> Result<Grey, FilterError> {
    let b = u32::from(size.get());
    let (w, h) = (grey.width, grey.height);
    if b > w || b > h {
        return Err(FilterError::TooSmallForBlur {
            width: w,
            height: h,
            size: size.get(),
        });
    }
    // Summed-area table with a zero first row and column: sat[y][x] is the
    // sum of all levels above and left of (x, y). u64: even 100 MP of white
    // sums to 2.6e14.
    let stride = w as usize + 1;
    let mut sat = vec![0u64; stride * (h as usize + 1)];
    for y in 0..h as usize {
        let mut row = 0u64;
        for x in 0..w as usize {
            row += u64::from(grey.levels[y * w as usize + x]);
            sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
        }
    }
    let (ow, oh) = (w - b + 1, h - b + 1);
    let area = u64::from(b) * u64::from(b) * u64::from(Grey::SCALE);
    let b = b as usize;
    let mut levels = Vec::with_capacity(ow as usize * oh as usize);
    for y in 0..oh as usize {
        for x in 0..ow as usize {
            let sum = sat[(y + b) * stride + x + b] + sat[y * stride + x]
                - sat[y * stride + x + b]
                - sat[(y + b) * stride + x];
            // The floored mean is a whole level ≤ 255, so this fits.
            levels.push((sum / area) as u32 * Grey::SCALE);
        }
    }
    Ok(Grey {
        width: ow,
        height: oh,
        levels,
    })
}

/// The course's contour before stretching: |left − right| of each pair of
/// horizontal neighbours, H×(W−1). [`apply`] then stretches it with
/// [`Grey::stretched`].
pub fn contour(grey: &Grey) -> Result<Grey, FilterError> {
    if grey.width < 2 {
        return Err(FilterError::TooNarrowForContour { width: grey.width });
    }
    let levels = grey
        .levels
        .chunks_exact(grey.width as usize)
        .flat_map(|row| row.windows(2).map(|p| p[0].abs_diff(p[1])))
        .collect();
    Ok(Grey {
        width: grey.width - 1,
        height: grey.height,
        levels,
    })
}

/// Quarter turns clockwise: in each turn the first row becomes the last
/// column, so width and height swap.
pub fn rotate(grey: &Grey, quarter_turns: QuarterTurns) -> Grey {
    let mut out = grey.clone();
    for _ in 0..quarter_turns.get() {
        out = rotate_once(&out);
    }
    out
}

fn rotate_once(grey: &Grey) -> Grey {
    let (w, h) = (grey.width, grey.height);
    // Output (x', y') = (h−1−y, x): output row y' is input column x = y'
    // read from the bottom up.
    let levels = (0..w)
        .flat_map(|x| (0..h).rev().map(move |y| grey.levels[grey.index(x, y)]))
        .collect();
    Grey {
        width: h,
        height: w,
        levels,
    }
}

/// Levels above `threshold` become 255, the rest 0.
pub fn segment(grey: &Grey, threshold: u8) -> Grey {
    let t = u32::from(threshold) * Grey::SCALE;
    grey.map(|v| if v > t { WHITE } else { 0 })
}

/// Each pixel independently white with probability `fraction`, black with
/// probability `fraction`, else unchanged. `uniform` must return values in
/// [0, 1); one draw per pixel, row by row, so a seeded source (such as
/// [`SplitMix64`]) gives the same picture every time.
pub fn salt_and_pepper(grey: &Grey, fraction: Fraction, mut uniform: impl FnMut() -> f64) -> Grey {
    let p = fraction.get();
    grey.map(|v| {
        let r = uniform();
        if r < p {
            WHITE
        } else if r > 1.0 - p {
            0
        } else {
            v
        }
    })
}

/// Joins two or more pictures (made grey) in album order. Where sizes
/// differ, each later picture is first scaled (bilinear) to the first one's
/// height (horizontal) or width (vertical), keeping its aspect ratio.
pub fn concat(images: &[DynamicImage], direction: Direction) -> Result<Grey, FilterError> {
    let [first, ..] = images else {
        return Err(FilterError::NotEnoughImages(0));
    };
    if images.len() < 2 {
        return Err(FilterError::NotEnoughImages(images.len()));
    }
    if let Some(index) = images
        .iter()
        .position(|i| i.width() == 0 || i.height() == 0)
    {
        return Err(FilterError::EmptyImage { index });
    }
    let horizontal = direction == Direction::Horizontal;
    // The side every picture shares, and each picture's other side once
    // scaled to it (rounded, at least 1 pixel).
    let shared = if horizontal {
        first.height()
    } else {
        first.width()
    };
    let mut sides = Vec::with_capacity(images.len());
    for image in images {
        let (along, across) = if horizontal {
            (image.width(), image.height())
        } else {
            (image.height(), image.width())
        };
        let scaled = if across == shared {
            u64::from(along)
        } else {
            ((u64::from(along) * u64::from(shared) + u64::from(across) / 2) / u64::from(across))
                .max(1)
        };
        sides.push(scaled);
    }
    // Saturating: thousands of pictures scaled to a huge side must end in
    // TooLarge, not an overflow.
    let total = sides
        .iter()
        .fold(0u64, |sum, &side| sum.saturating_add(side));
    let (width, height) = if horizontal {
        (total, u64::from(shared))
    } else {
        (u64::from(shared), total)
    };
    let too_large = FilterError::TooLarge { width, height };
    if width.saturating_mul(height) > MAX_OUTPUT_PIXELS {
        return Err(too_large);
    }
    let (Ok(out_w), Ok(out_h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(too_large);
    };
    let mut levels = vec![0u32; (width * height) as usize];
    let mut offset = 0usize;
    for (image, &side) in images.iter().zip(&sides) {
        // `side` ≤ total, which fits u32 (checked above).
        let side = side as u32;
        let (w, h) = if horizontal {
            (side, shared)
        } else {
            (shared, side)
        };
        let grey = if (w, h) == (image.width(), image.height()) {
            Grey::from_image(image)
        } else {
            Grey::from_image(&image.resize_exact(w, h, FilterType::Triangle))
        };
        if horizontal {
            for (y, row) in grey.levels.chunks_exact(w as usize).enumerate() {
                let start = y * out_w as usize + offset;
                levels[start..start + row.len()].copy_from_slice(row);
            }
            offset += w as usize;
        } else {
            levels[offset..offset + grey.levels.len()].copy_from_slice(&grey.levels);
            offset += grey.levels.len();
        }
    }
    Ok(Grey {
        width: out_w,
        height: out_h,
        levels,
    })
}

/// A filter applied to one photo, as the bot sends it back: grey, 8-bit,
/// contour stretched. `seed` drives salt and pepper, so a retried job gives
/// the same picture (derive it from the request, e.g. its id).
pub fn apply(image: &DynamicImage, filter: Filter, seed: u64) -> Result<GrayImage, FilterError> {
    let grey = Grey::from_image(image);
    Ok(match filter {
        Filter::Blur { size } => blur(&grey, size)?.to_gray_image(),
        Filter::Contour => contour(&grey)?.stretched(),
        Filter::Rotate { quarter_turns } => rotate(&grey, quarter_turns).to_gray_image(),
        Filter::Segment { threshold } => segment(&grey, threshold).to_gray_image(),
        Filter::SaltAndPepper { fraction } => {
            let mut rng = SplitMix64::new(seed);
            salt_and_pepper(&grey, fraction, || rng.next_f64()).to_gray_image()
        }
    })
}

/// An album joined, as the bot sends it back: grey, 8-bit.
pub fn apply_concat(
    images: &[DynamicImage],
    direction: Direction,
) -> Result<GrayImage, FilterError> {
    concat(images, direction).map(|g| g.to_gray_image())
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator, good
/// enough for noise and reproducible in tests, without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a result is sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

/// JPEG quality for photographic results: high enough that the grey
/// gradients show no banding, and small enough for a quick upload.
pub const JPEG_QUALITY: u8 = 90;

impl Format {
    /// PNG where JPEG's 8×8 blocks would visibly damage the result: segment
    /// (two levels; JPEG would add grey rings at every edge), contour (thin
    /// bright lines on black) and salt and pepper (single-pixel noise, which
    /// JPEG smears). JPEG for blur and rotate, which are still photographs,
    /// where PNG would be several times larger for no visible gain.
    pub fn for_filter(filter: Filter) -> Self {
        match filter {
            Filter::Segment { .. } | Filter::Contour | Filter::SaltAndPepper { .. } => Self::Png,
            Filter::Blur { .. } | Filter::Rotate { .. } => Self::Jpeg,
        }
    }

    /// A concatenated album is a photograph: JPEG.
    pub const FOR_CONCAT: Self = Self::Jpeg;

    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
        }
    }
}

/// An encoded result, ready to upload and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub extension: &'static str,
}

/// Encodes a filter's result in the format chosen for it
/// ([`Format::for_filter`]).
pub fn encode(image: &GrayImage, filter: Filter) -> Result<Encoded, FilterError> {
    encode_as(image, Format::for_filter(filter))
}

/// Encodes a result as PNG or JPEG ([`JPEG_QUALITY`]).
pub fn encode_as(image: &GrayImage, format: Format) -> Result<Encoded, FilterError> {
    let mut bytes = Cursor::new(Vec::new());
    let written = match format {
        Format::Png => image.write_with_encoder(PngEncoder::new(&mut bytes)),
        Format::Jpeg => {
            image.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
        }
    };
    written.map_err(|e| FilterError::Encode {
        format: format.extension(),
        message: e.to_string(),
    })?;
    Ok(Encoded {
        bytes: bytes.into_inner(),
        mime: format.mime(),
        extension: format.extension(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};

    /// A grey picture from rows of 8-bit levels.
    fn grey(rows: &[&[u8]]) -> Grey {
        let h = rows.len() as u32;
        let w = rows.first().map_or(0, |r| r.len()) as u32;
        let flat: Vec<u8> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Grey::from_gray(&GrayImage::from_raw(w, h, flat).expect("rows of equal length"))
    }

    /// The levels of a grey picture as rows of whole numbers (asserting
    /// that they are whole).
    fn rows(g: &Grey) -> Vec<Vec<u32>> {
        g.levels
            .chunks(g.width.max(1) as usize)
            .map(|r| {
                r.iter()
                    .map(|&v| {
                        assert_eq!(v % Grey::SCALE, 0, "not a whole level: {v}");
                        v / Grey::SCALE
                    })
                    .collect()
            })
            .collect()
    }

    fn size(n: u8) -> BlurSize {
        BlurSize::new(n).expect("valid size")
    }

    fn turns(n: u8) -> QuarterTurns {
        QuarterTurns::new(n).expect("valid turns")
    }

    fn fraction(p: f64) -> Fraction {
        Fraction::new(p).expect("valid fraction")
    }

    fn rgb(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| Rgb(f(x, y))))
    }

    /// A photo-like picture: smooth gradients with some texture.
    fn photo(w: u32, h: u32) -> DynamicImage {
        rgb(w, h, |x, y| {
            [
                (x * 255 / w.max(1)) as u8,
                (y * 255 / h.max(1)) as u8,
                ((x * 7 + y * 13) % 256) as u8,
            ]
        })
    }

    #[test]
    fn grey_uses_the_course_weights_exactly() {
        let g = Grey::from_image(&rgb(2, 1, |x, _| {
            if x == 0 {
                [100, 150, 200]
            } else {
                [255, 255, 255]
            }
        }));
        // 0.2989·100 + 0.5870·150 + 0.1140·200 = 140.74
        assert_eq!(g.level(0, 0), Some(140.74));
        assert_eq!(g.level(1, 0), Some(254.9745));
        assert_eq!(g.level(2, 0), None);
        // Nearest level, halves up; the brightest grey is 255.
        assert_eq!(g.to_gray_image().into_raw(), vec![141, 255]);
        // A grey source counts as R = G = B.
        let l = DynamicImage::ImageLuma8(GrayImage::from_raw(1, 1, vec![200]).expect("1×1"));
        assert_eq!(Grey::from_image(&l).level(0, 0), Some(199.98));
    }

    #[test]
    fn blur_is_the_floored_mean_of_each_window_in_valid_mode() {
        let g = grey(&[&[0, 10, 20], &[30, 40, 50], &[60, 70, 80]]);
        let b = blur(&g, size(2)).expect("fits");
        assert_eq!((b.width(), b.height()), (2, 2));
        assert_eq!(rows(&b), vec![vec![20, 30], vec![50, 60]]);
        assert_eq!(rows(&blur(&g, size(3)).expect("fits")), vec![vec![40]]);
        assert_eq!(rows(&blur(&g, size(1)).expect("fits")), rows(&g));
        // 7/4 = 1.75 floors to 1, as the course's `//` does.
        assert_eq!(
            rows(&blur(&grey(&[&[1, 2], &[2, 2]]), size(2)).expect("fits")),
            vec![vec![1]]
        );
    }

    #[test]
    fn blur_of_a_constant_picture_is_constant() {
        let g = Grey::from_image(&rgb(40, 30, |_, _| [90, 90, 90]));
        let b = blur(&g, size(16)).expect("fits");
        assert_eq!((b.width(), b.height()), (40 - 15, 30 - 15));
        // 0.9999 × 90 = 89.991, floored.
        assert!(b.levels().all(|v| v == 89.0));
    }

    #[test]
    fn blur_matches_a_direct_window_sum() {
        let mut rng = SplitMix64::new(7);
        let (w, h) = (23u32, 17u32);
        let data: Vec<u8> = (0..w * h).map(|_| (rng.next_u64() % 256) as u8).collect();
        let g = Grey::from_image(&DynamicImage::ImageLuma8(
            GrayImage::from_raw(w, h, data).expect("size"),
        ));
        for n in [1u8, 2, 5, 17] {
            let b = blur(&g, size(n)).expect("fits");
            let n = u32::from(n);
            for y in 0..=h - n {
                for x in 0..=w - n {
                    let sum: u64 = (y..y + n)
                        .flat_map(|yy| (x..x + n).map(move |xx| (xx, yy)))
                        .map(|(xx, yy)| u64::from(g.levels[g.index(xx, yy)]))
                        .sum();
                    let expected = (sum / (u64::from(n * n) * u64::from(Grey::SCALE))) as f64;
                    assert_eq!(b.level(x, y), Some(expected), "n={n} at ({x},{y})");
                }
            }
        }
    }

    #[test]
    fn blur_bigger_than_the_picture_is_an_error() {
        let g = grey(&[&[1, 2, 3], &[4, 5, 6]]);
        assert_eq!(
            blur(&g, size(3)),
            Err(FilterError::TooSmallForBlur {
                width: 3,
                height: 2,
                size: 3
            })
        );
        assert!(blur(&grey(&[]), size(1)).is_err());
    }

    #[test]
    fn contour_is_the_difference_of_horizontal_neighbours() {
        let g = grey(&[&[10, 30, 25, 25], &[0, 255, 0, 1]]);
        let c = contour(&g).expect("wide enough");
        assert_eq!((c.width(), c.height()), (3, 2));
        assert_eq!(rows(&c), vec![vec![20, 5, 0], vec![255, 255, 1]]);
        assert_eq!(
            contour(&grey(&[&[1], &[2]])),
            Err(FilterError::TooNarrowForContour { width: 1 })
        );
    }

    #[test]
    fn contour_of_a_horizontal_ramp_is_constant_before_stretching() {
        let ramp = Grey::from_image(&rgb(50, 10, |x, _| {
            let v = (x * 5) as u8;
            [v, v, v]
        }));
        let c = contour(&ramp).expect("wide enough");
        let first = c.level(0, 0).expect("pixel");
        assert!(first > 0.0);
        assert!(c.levels().all(|v| v == first));
        // Stretched, a constant picture is all 0, like matplotlib's.
        assert!(c.stretched().pixels().all(|p| p.0[0] == 0));
    }

    #[test]
    fn stretching_maps_the_minimum_to_0_and_the_maximum_to_255() {
        let g = grey(&[&[10, 20, 30], &[10, 15, 30]]);
        // x = 0, 0.5, 1 and 0, 0.25, 1 → ⌊256x⌋ capped at 255.
        assert_eq!(g.stretched().into_raw(), vec![0, 128, 255, 0, 64, 255]);
        let contoured = apply(&photo(64, 48), Filter::Contour, 0).expect("contour");
        assert_eq!((contoured.width(), contoured.height()), (63, 48));
        assert_eq!(contoured.pixels().map(|p| p.0[0]).min(), Some(0));
        assert_eq!(contoured.pixels().map(|p| p.0[0]).max(), Some(255));
    }

    #[test]
    fn rotate_turns_clockwise_and_the_first_row_becomes_the_last_column() {
        let g = grey(&[&[1, 2, 3], &[4, 5, 6]]);
        let once = rotate(&g, turns(1));
        assert_eq!((once.width(), once.height()), (2, 3));
        assert_eq!(rows(&once), vec![vec![4, 1], vec![5, 2], vec![6, 3]]);
        assert_eq!(
            rows(&rotate(&g, turns(2))),
            vec![vec![6, 5, 4], vec![3, 2, 1]]
        );
        assert_eq!(
            rows(&rotate(&g, turns(3))),
            vec![vec![3, 6], vec![2, 5], vec![1, 4]]
        );
        assert_eq!(rotate(&g, turns(0)), g);
    }

    #[test]
    fn quarter_turns_match_the_image_crates_clockwise_and_anticlockwise_turns() {
        let p = photo(37, 21);
        let g = Grey::from_image(&p);
        let grey8 = g.to_gray_image();
        let expected = [
            grey8.clone(),
            image::imageops::rotate90(&grey8),
            image::imageops::rotate180(&grey8),
            // Three clockwise quarter turns are one anticlockwise.
            image::imageops::rotate270(&grey8),
        ];
        for (n, want) in (0..4).zip(expected) {
            assert_eq!(rotate(&g, turns(n)).to_gray_image(), want, "{n} turns");
        }
    }

    #[test]
    fn rotating_swaps_dimensions_and_four_turns_are_the_identity() {
        let g = Grey::from_image(&photo(37, 21));
        let mut r = g.clone();
        for i in 1..=4 {
            r = rotate(&r, turns(1));
            let expected = if i % 2 == 1 { (21, 37) } else { (37, 21) };
            assert_eq!((r.width(), r.height()), expected);
        }
        assert_eq!(r, g);
        assert_eq!(rotate(&rotate(&g, turns(3)), turns(1)), g);
    }

    #[test]
    fn segment_makes_levels_above_the_threshold_white_and_the_rest_black() {
        let g = grey(&[&[99, 100, 101], &[0, 255, 150]]);
        assert_eq!(
            rows(&segment(&g, 100)),
            vec![vec![0, 0, 255], vec![0, 255, 255]]
        );
        assert!(segment(&g, 255).levels().all(|v| v == 0.0));
        let out = apply(&photo(64, 48), Filter::Segment { threshold: 100 }, 0).expect("segment");
        let mut seen: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![0, 255], "only black and white");
    }

    #[test]
    fn salt_and_pepper_follows_the_course_order_of_tests() {
        let g = grey(&[&[50, 50, 50, 50]]);
        let mut draws = [0.1, 0.9, 0.5, 0.2].into_iter();
        let out = salt_and_pepper(&g, fraction(0.2), || draws.next().unwrap_or(0.5));
        // r < P white, r > 1 − P black, else unchanged (0.2 is not < 0.2).
        assert_eq!(rows(&out), vec![vec![255, 0, 50, 50]]);
        let unchanged = salt_and_pepper(&g, fraction(0.0), || 0.0);
        assert_eq!(unchanged, g);
    }

    #[test]
    fn salt_and_pepper_proportions_hold_on_a_large_picture() {
        let g = Grey::from_gray(&GrayImage::from_pixel(1000, 1000, Luma([128])));
        for p in [0.2, 0.05, 0.5] {
            let mut rng = SplitMix64::new(42);
            let out = salt_and_pepper(&g, fraction(p), || rng.next_f64());
            let n = f64::from(1000 * 1000);
            let white = out.levels().filter(|&v| v == 255.0).count() as f64 / n;
            let black = out.levels().filter(|&v| v == 0.0).count() as f64 / n;
            // One million draws: the standard error is below 0.0005.
            assert!((white - p).abs() < 0.003, "p={p} white {white}");
            assert!((black - p).abs() < 0.003, "p={p} black {black}");
        }
        // The same seed gives the same picture.
        let f = Filter::SaltAndPepper {
            fraction: Fraction::DEFAULT,
        };
        let a = apply(&photo(30, 20), f, 9).expect("apply");
        assert_eq!(a, apply(&photo(30, 20), f, 9).expect("apply"));
        assert_ne!(a, apply(&photo(30, 20), f, 10).expect("apply"));
    }

    #[test]
    fn splitmix_is_uniform_in_the_unit_interval() {
        let mut rng = SplitMix64::new(0);
        let draws: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        assert!(draws.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn concat_of_a_photo_with_itself_gives_equal_halves() {
        let p = photo(31, 20);
        let g = Grey::from_image(&p);
        let h = concat(&[p.clone(), p.clone()], Direction::Horizontal).expect("concat");
        assert_eq!((h.width(), h.height()), (62, 20));
        for y in 0..20 {
            for x in 0..31 {
                assert_eq!(h.level(x, y), g.level(x, y));
                assert_eq!(h.level(x + 31, y), g.level(x, y));
            }
        }
        let v = concat(&[p.clone(), p], Direction::Vertical).expect("concat");
        assert_eq!((v.width(), v.height()), (31, 40));
        let half = v.levels.len() / 2;
        assert_eq!(v.levels[..half], v.levels[half..]);
        assert_eq!(v.levels[..half], g.levels[..]);
    }

    #[test]
    fn concat_puts_the_first_picture_first() {
        let dark = rgb(2, 2, |_, _| [0, 0, 0]);
        let light = rgb(3, 2, |_, _| [255, 255, 255]);
        let h = concat(
            &[dark.clone(), light.clone(), dark.clone()],
            Direction::Horizontal,
        )
        .expect("concat")
        .to_gray_image();
        assert_eq!(h.dimensions(), (7, 2));
        assert_eq!(h.as_raw()[..7], [0, 0, 255, 255, 255, 0, 0]);
        let dark = rgb(2, 1, |_, _| [0, 0, 0]);
        let light = rgb(2, 2, |_, _| [255, 255, 255]);
        let v = apply_concat(&[dark, light], Direction::Vertical).expect("concat");
        assert_eq!(v.into_raw(), vec![0, 0, 255, 255, 255, 255]);
    }

    #[test]
    fn concat_scales_later_pictures_to_the_first_ones_side() {
        let first = photo(40, 20);
        // 30×30 scaled to height 20 is 20×20.
        let square = rgb(30, 30, |_, _| [200, 200, 200]);
        let h = concat(&[first.clone(), square.clone()], Direction::Horizontal).expect("concat");
        assert_eq!((h.width(), h.height()), (60, 20));
        // A constant picture stays constant when scaled.
        assert_eq!(h.level(50, 10), Some(199.98));
        // 30×30 scaled to width 40 is 40×40.
        let v = concat(&[first, square], Direction::Vertical).expect("concat");
        assert_eq!((v.width(), v.height()), (40, 60));
        // Aspect ratio kept, rounded: 10×3 to height 20 is 67×20.
        let wide = rgb(10, 3, |_, _| [1, 2, 3]);
        let h = concat(&[photo(5, 20), wide], Direction::Horizontal).expect("concat");
        assert_eq!((h.width(), h.height()), (5 + 67, 20));
    }

    #[test]
    fn concat_refuses_what_it_cannot_join() {
        let p = photo(4, 4);
        assert_eq!(
            concat(&[], Direction::Horizontal),
            Err(FilterError::NotEnoughImages(0))
        );
        assert_eq!(
            concat(std::slice::from_ref(&p), Direction::Vertical),
            Err(FilterError::NotEnoughImages(1))
        );
        let empty = DynamicImage::ImageRgb8(ImageBuffer::new(0, 5));
        assert_eq!(
            concat(&[p.clone(), empty], Direction::Horizontal),
            Err(FilterError::EmptyImage { index: 1 })
        );
        // A thin first picture would scale a wide one to 400 million pixels.
        let tall = rgb(1, 20_000, |_, _| [0, 0, 0]);
        let wide = rgb(20_000, 1, |_, _| [0, 0, 0]);
        assert!(matches!(
            concat(&[tall, wide], Direction::Horizontal),
            Err(FilterError::TooLarge { .. })
        ));
    }

    #[test]
    fn apply_gives_each_filter_its_size() {
        let p = photo(40, 30);
        let cases = [
            (Filter::Blur { size: size(16) }, (25, 15)),
            (Filter::Contour, (39, 30)),
            (
                Filter::Rotate {
                    quarter_turns: turns(1),
                },
                (30, 40),
            ),
            (
                Filter::Rotate {
                    quarter_turns: turns(2),
                },
                (40, 30),
            ),
            (Filter::Segment { threshold: 100 }, (40, 30)),
            (
                Filter::SaltAndPepper {
                    fraction: fraction(0.2),
                },
                (40, 30),
            ),
        ];
        for (filter, dims) in cases {
            assert_eq!(
                apply(&p, filter, 1).expect("apply").dimensions(),
                dims,
                "{filter}"
            );
        }
        assert!(matches!(
            apply(&photo(10, 10), Filter::Blur { size: size(16) }, 0),
            Err(FilterError::TooSmallForBlur { .. })
        ));
        assert!(apply(&photo(1, 10), Filter::Contour, 0).is_err());
    }

    #[test]
    fn encoding_keeps_segment_exact_and_names_the_format() {
        let seg = apply(&photo(40, 30), Filter::Segment { threshold: 120 }, 0).expect("segment");
        let e = encode(&seg, Filter::Segment { threshold: 120 }).expect("encode");
        assert_eq!((e.mime, e.extension), ("image/png", "png"));
        assert!(e.bytes.starts_with(b"\x89PNG"));
        let back = image::load_from_memory(&e.bytes)
            .expect("decode")
            .to_luma8();
        assert_eq!(back, seg, "PNG keeps a two-level picture exact");

        let blurred = apply(&photo(40, 30), Filter::Blur { size: size(4) }, 0).expect("blur");
        let e = encode(&blurred, Filter::Blur { size: size(4) }).expect("encode");
        assert_eq!((e.mime, e.extension), ("image/jpeg", "jpg"));
        assert!(e.bytes.starts_with(&[0xff, 0xd8]));
        let back = image::load_from_memory(&e.bytes).expect("decode");
        assert_eq!((back.width(), back.height()), (37, 27));

        for filter in [
            Filter::Contour,
            Filter::SaltAndPepper {
                fraction: Fraction::DEFAULT,
            },
        ] {
            assert_eq!(Format::for_filter(filter), Format::Png, "{filter}");
        }
        assert_eq!(
            Format::for_filter(Filter::Rotate {
                quarter_turns: turns(1)
            }),
            Format::Jpeg
        );
        assert_eq!(Format::FOR_CONCAT.mime(), "image/jpeg");
    }

    #[test]
    fn encoding_an_empty_picture_does_not_panic() {
        let empty = GrayImage::new(0, 0);
        for format in [Format::Png, Format::Jpeg] {
            let _ = encode_as(&empty, format);
        }
    }

    /// The bus photo from `cargo xtask setup` (POLYBOT_ASSETS_DIR or the
    /// workspace's .cache/assets), if it is there.
    fn bus() -> Option<DynamicImage> {
        let dir = std::env::var_os("POLYBOT_ASSETS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/assets")
            });
        let path = dir.join("bus.jpg");
        match image::open(&path) {
            Ok(image) => Some(image),
            Err(e) => {
                eprintln!("skipped: {}: {e}; run `cargo xtask setup`", path.display());
                None
            }
        }
    }

    #[test]
    fn every_filter_works_on_a_real_photo() {
        let Some(bus) = bus() else { return };
        let (w, h) = (bus.width(), bus.height());
        let check = |filter: Filter, dims: (u32, u32)| {
            let out = apply(&bus, filter, 13).expect("apply");
            assert_eq!(out.dimensions(), dims, "{filter}");
            let e = encode(&out, filter).expect("encode");
            assert!(!e.bytes.is_empty());
            out
        };
        check(
            Filter::Blur {
                size: BlurSize::DEFAULT,
            },
            (w - 15, h - 15),
        );
        let c = check(Filter::Contour, (w - 1, h));
        assert_eq!(c.pixels().map(|p| p.0[0]).max(), Some(255));
        check(
            Filter::Rotate {
                quarter_turns: turns(1),
            },
            (h, w),
        );
        let s = check(Filter::Segment { threshold: 100 }, (w, h));
        assert!(s.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
        check(
            Filter::SaltAndPepper {
                fraction: Fraction::DEFAULT,
            },
            (w, h),
        );
        let joined =
            apply_concat(&[bus.clone(), bus.clone()], Direction::Horizontal).expect("concat");
        assert_eq!(joined.dimensions(), (2 * w, h));
    }
}
