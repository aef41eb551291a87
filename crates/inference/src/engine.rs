//! One inference lane's pipeline: decode, letterbox, infer, postprocess,
//! annotate and encode, with reusable buffers and per-stage timings.
//!
//! Large photos cost about what small ones cost: a JPEG larger than
//! `annotated_max_side` (2560, four times the model's input) is decoded at
//! the smallest DCT scale the letterbox allows, and the annotated copy is
//! drawn and encoded at that size; other photos are drawn at their own size
//! within `annotated_max_side`. Full resolution, when asked for, decodes
//! and draws the original. Detections are always in the original pixels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use polybot_domain::{ChatSettings, LabelStyle};

use crate::annotate::annotate_with;
use crate::decode::{DecodeLimits, ScaleLimits, decode_at_least};
use crate::error::{DetectError, LoadError, ResizeError};
use crate::geometry::{Letterbox, LetterboxMode};
use crate::model::{ModelInfo, ModelSource, open_session};
use crate::output::{DetectOutput, Detection, Timings};
use crate::postprocess::{OutputLayout, Thresholds, postprocess};

/// Telegram's largest photo size: the default bound of the annotated image.
pub const DEFAULT_ANNOTATED_MAX_SIDE: u32 = 2560;

/// Pipeline settings shared by every lane.
#[derive(Debug, Clone, Copy)]
pub struct DetectConfig {
    pub thresholds: Thresholds,
    pub letterbox: LetterboxMode,
    pub limits: DecodeLimits,
    pub jpeg_quality: u8,
    /// Longest side of the annotated image; 0 draws every photo at full
    /// resolution (and so decodes it in full).
    pub annotated_max_side: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            thresholds: Thresholds::default(),
            letterbox: LetterboxMode::Rect,
            limits: DecodeLimits::default(),
            jpeg_quality: 85,
            annotated_max_side: DEFAULT_ANNOTATED_MAX_SIDE,
        }
    }
}

/// How large the annotated image of one photo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnnotatedSize {
    /// As decoded for the model, within the configured `annotated_max_side`.
    #[default]
    Bounded,
    /// The original photo's size (for a reply sent as a document).
    Full,
    /// Bounded, plus a full-resolution copy ([`DetectOutput::full_jpeg`])
    /// when the original is past Telegram's photo limits, so that the user
    /// who sent a large file gets its detail back as a file.
    ForTelegram,
}

/// Telegram's `sendPhoto` limits: width + height, the longer side over the
/// shorter, and the file size.
pub const PHOTO_MAX_WIDTH_PLUS_HEIGHT: u64 = 10_000;
pub const PHOTO_MAX_RATIO: u64 = 20;
pub const PHOTO_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Telegram's `sendDocument` limit: a larger full-resolution copy is not made.
pub const DOCUMENT_MAX_BYTES: usize = 50 * 1024 * 1024;

/// Whether a photo of this size could not go back through `sendPhoto` as is.
pub fn past_photo_limits(width: u32, height: u32, bytes: usize) -> bool {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    w + h > PHOTO_MAX_WIDTH_PLUS_HEIGHT
        || w.max(h) > PHOTO_MAX_RATIO * w.min(h)
        || bytes > PHOTO_MAX_BYTES
}

/// The size of the picture a decoded image stands for, and the factors
/// from the image's pixels to its.
#[derive(Debug, Clone, Copy)]
struct Original {
    width: u32,
    height: u32,
    sx: f32,
    sy: f32,
}

/// Grey used by Ultralytics for letterbox padding.
const PAD: u8 = 114;

/// A session plus the buffers one lane reuses between images.
pub struct Engine {
    session: Session,
    info: Arc<ModelInfo>,
    config: DetectConfig,
    resizer: Resizer,
    tensor: Vec<f32>,
    /// u8 → f32 in 0..1, so the hot loop is a table lookup.
    lut: [f32; 256],
}

impl Engine {
    pub fn open(src: &ModelSource, config: DetectConfig) -> Result<Self, LoadError> {
        let (session, info) = open_session(src)?;
        let mut lut = [0.0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 255.0;
        }
        Ok(Self {
            session,
            info: Arc::new(info),
            config,
            resizer: Resizer::new(),
            tensor: Vec::new(),
            lut,
        })
    }

    pub fn info(&self) -> &Arc<ModelInfo> {
        &self.info
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    pub fn set_letterbox(&mut self, mode: LetterboxMode) {
        self.config.letterbox = mode;
    }

    fn mode(&self) -> LetterboxMode {
        // A fixed-shape model only accepts its exact square.
        if self.info.dynamic {
            self.config.letterbox
        } else {
            LetterboxMode::Square
        }
    }

    /// The whole pipeline for one encoded image, annotated at the bounded size.
    pub fn detect(&mut self, bytes: &[u8]) -> Result<DetectOutput, DetectError> {
        self.detect_sized(bytes, AnnotatedSize::Bounded)
    }

    /// The whole pipeline for one encoded image, with the default settings.
    pub fn detect_sized(
        &mut self,
        bytes: &[u8],
        size: AnnotatedSize,
    ) -> Result<DetectOutput, DetectError> {
        self.detect_for(bytes, size, &ChatSettings::default())
    }

    /// The whole pipeline for one encoded image, as a chat's `settings`
    /// ask: after NMS only the objects they show are kept (and drawn), and
    /// boxes are labelled their way. A chat's confidence below the
    /// deployment's is honoured too: candidates are taken at the lower one.
    pub fn detect_for(
        &mut self,
        bytes: &[u8],
        size: AnnotatedSize,
        settings: &ChatSettings,
    ) -> Result<DetectOutput, DetectError> {
        let full = size == AnnotatedSize::Full || self.config.annotated_max_side == 0;
        let mut timings = Timings::default();
        let t = Instant::now();
        let decoded = {
            let span = tracing::info_span!(
                "decode",
                image_bytes = bytes.len(),
                image.width = tracing::field::Empty,
                image.height = tracing::field::Empty,
                decoded.width = tracing::field::Empty,
            );
            let _entered = span.enter();
            // Only photos larger than the annotated image may be scaled
            // down, and never below what the letterbox needs: the longer
            // side of the model's input.
            let scale = if full {
                ScaleLimits::FULL
            } else {
                ScaleLimits {
                    above: self.config.annotated_max_side,
                    min_long_side: self.info.size,
                }
            };
            let decoded = decode_at_least(bytes, self.config.limits, scale)?;
            span.record("image.width", decoded.original_width);
            span.record("image.height", decoded.original_height);
            span.record("decoded.width", decoded.image.width());
            decoded
        };
        timings.decode = t.elapsed();

        let (sx, sy) = decoded.to_original();
        let (width, height) = (decoded.original_width, decoded.original_height);
        let max_side = if full {
            u32::MAX
        } else {
            self.config.annotated_max_side
        };
        let (detections, annotated_jpeg) = self.detect_and_draw(
            decoded.image,
            Original {
                width,
                height,
                sx,
                sy,
            },
            max_side,
            settings,
            &mut timings,
        )?;

        let full_jpeg = if size == AnnotatedSize::ForTelegram
            && past_photo_limits(width, height, bytes.len())
        {
            self.annotate_full(bytes, &detections, settings.labels, &mut timings)?
        } else {
            None
        };

        Ok(DetectOutput {
            width,
            height,
            detections,
            annotated_jpeg,
            full_jpeg,
            timings,
        })
    }

    /// Detection on an already decoded picture (a video frame), as a
    /// chat's `settings` ask, annotated within `annotated_max_side`:
    /// [`Engine::detect_for`] after its decoding. The output's size and
    /// detections are the picture's own; `timings.decode` is zero.
    pub fn detect_frame(
        &mut self,
        image: RgbImage,
        settings: &ChatSettings,
    ) -> Result<DetectOutput, DetectError> {
        let mut timings = Timings::default();
        let (width, height) = image.dimensions();
        let max_side = match self.config.annotated_max_side {
            0 => u32::MAX,
            side => side,
        };
        let (detections, annotated_jpeg) = self.detect_and_draw(
            image,
            Original {
                width,
                height,
                sx: 1.0,
                sy: 1.0,
            },
            max_side,
            settings,
            &mut timings,
        )?;
        Ok(DetectOutput {
            width,
            height,
            detections,
            annotated_jpeg,
            full_jpeg: None,
            timings,
        })
    }

    /// Detects on `image` (which stands for a picture of `original`'s
    /// size), keeps what `settings` show, in original pixels, and draws
    /// them on `image` shrunk to fit `max_side`: the detections and the
    /// annotated JPEG.
    fn detect_and_draw(
        &mut self,
        image: RgbImage,
        original: Original,
        max_side: u32,
        settings: &ChatSettings,
        timings: &mut Timings,
    ) -> Result<(Vec<Detection>, Vec<u8>), DetectError> {
        let floor = self.config.thresholds.confidence;
        let least = settings.confidence.map_or(floor, |c| c.get());
        let in_image = self.detect_image_at(&image, timings, least)?;
        let Original {
            width,
            height,
            sx,
            sy,
        } = original;
        let detections: Vec<Detection> = in_image
            .into_iter()
            .filter(|d| settings.shows(&d.class_name, d.confidence, floor))
            .map(|d| scale_detection(d, sx, sy))
            .collect();

        let t = Instant::now();
        let _span = tracing::info_span!("annotate").entered();
        let mut canvas = self.annotation_canvas(image, max_side)?;
        let (ax, ay) = (
            canvas.width() as f32 / width.max(1) as f32,
            canvas.height() as f32 / height.max(1) as f32,
        );
        let drawn: Vec<Detection> = detections
            .iter()
            .cloned()
            .map(|d| scale_detection(d, ax, ay))
            .collect();
        annotate_with(&mut canvas, &drawn, settings.labels);
        timings.annotate = t.elapsed();
        let t = Instant::now();
        let jpeg = encode_jpeg(&canvas, self.config.jpeg_quality)?;
        timings.encode = t.elapsed();
        Ok((detections, jpeg))
    }

    /// The original at full resolution with `detections` (in its pixels)
    /// drawn on it; `None` when the JPEG would be too large to send.
    fn annotate_full(
        &mut self,
        bytes: &[u8],
        detections: &[Detection],
        labels: LabelStyle,
        timings: &mut Timings,
    ) -> Result<Option<Vec<u8>>, DetectError> {
        let _span = tracing::info_span!("annotate full resolution").entered();
        let t = Instant::now();
        let mut canvas = decode_at_least(bytes, self.config.limits, ScaleLimits::FULL)?.image;
        timings.decode += t.elapsed();
        let t = Instant::now();
        annotate_with(&mut canvas, detections, labels);
        timings.annotate += t.elapsed();
        let t = Instant::now();
        let jpeg = encode_jpeg(&canvas, self.config.jpeg_quality)?;
        timings.encode += t.elapsed();
        if jpeg.len() > DOCUMENT_MAX_BYTES {
            tracing::warn!(
                bytes = jpeg.len(),
                "the full-resolution copy is over Telegram's document limit; not kept"
            );
            return Ok(None);
        }
        Ok(Some(jpeg))
    }

    /// The image to draw on: the decoded photo, shrunk to fit `max_side`.
    fn annotation_canvas(
        &mut self,
        image: RgbImage,
        max_side: u32,
    ) -> Result<RgbImage, DetectError> {
        let (w, h) = image.dimensions();
        if w.max(h) <= max_side {
            return Ok(image);
        }
        let scale = max_side as f32 / w.max(h) as f32;
        let (nw, nh) = (
            ((w as f32 * scale).round() as u32).clamp(1, max_side),
            ((h as f32 * scale).round() as u32).clamp(1, max_side),
        );
        let src = ImageRef::new(w, h, image.as_raw(), PixelType::U8x3)
            .map_err(|e| DetectError::Resize(e.into()))?;
        let mut out = Image::new(nw, nh, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer
            .resize(&src, &mut out, &options)
            .map_err(|e| DetectError::Resize(e.into()))?;
        RgbImage::from_raw(nw, nh, out.into_vec())
            .ok_or(DetectError::Resize(ResizeError::WrongSize))
    }

    /// Letterbox, infer and postprocess an already decoded image.
    pub fn detect_image(
        &mut self,
        image: &RgbImage,
        timings: &mut Timings,
    ) -> Result<Vec<Detection>, DetectError> {
        let least = self.config.thresholds.confidence;
        self.detect_image_at(image, timings, least)
    }

    /// [`Engine::detect_image`], taking candidates at `confidence`.
    fn detect_image_at(
        &mut self,
        image: &RgbImage,
        timings: &mut Timings,
        confidence: f32,
    ) -> Result<Vec<Detection>, DetectError> {
        let t = Instant::now();
        let lb = {
            let _span = tracing::info_span!("preprocess").entered();
            self.prepare(image)?
        };
        timings.preprocess = t.elapsed();

        let t = Instant::now();
        let inference = tracing::info_span!(
            "inference",
            model.input_width = lb.canvas_w,
            model.input_height = lb.canvas_h,
        )
        .entered();
        let outputs = self
            .session
            .run(ort::inputs![
                TensorRef::from_array_view((
                    [1usize, 3, lb.canvas_h as usize, lb.canvas_w as usize],
                    &self.tensor[..],
                ))
                .map_err(DetectError::Inference)?
            ])
            .map_err(DetectError::Inference)?;
        timings.inference = t.elapsed();
        drop(inference);

        let t = Instant::now();
        let _postprocess = tracing::info_span!("postprocess").entered();
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(DetectError::OutputTensor)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let known = (!self.info.classes.is_empty()).then_some(self.info.classes.len());
        let layout = OutputLayout::detect(&dims, known).map_err(DetectError::OutputLayout)?;
        let thresholds = Thresholds {
            confidence,
            ..self.config.thresholds
        };
        let candidates = postprocess(data, layout, thresholds);
        let detections = candidates
            .into_iter()
            .map(|c| Detection {
                class_id: c.class_id,
                class_name: self
                    .info
                    .classes
                    .get(c.class_id)
                    .cloned()
                    .unwrap_or_else(|| format!("class{}", c.class_id)),
                confidence: c.score,
                bbox: lb.to_original(c.bbox),
            })
            .collect();
        timings.postprocess = t.elapsed();
        Ok(detections)
    }

    /// Only `session.run` on an already prepared tensor: the benchmark's
    /// baseline for what the rest of the pipeline costs.
    pub fn time_raw_inference(&mut self, image: &RgbImage) -> Result<Duration, DetectError> {
        let lb = self.prepare(image)?;
        let input = TensorRef::from_array_view((
            [1usize, 3, lb.canvas_h as usize, lb.canvas_w as usize],
            &self.tensor[..],
        ))
        .map_err(DetectError::Inference)?;
        let t = Instant::now();
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(DetectError::Inference)?;
        let elapsed = t.elapsed();
        drop(outputs);
        Ok(elapsed)
    }

    /// Letterboxes `image` into the lane's CHW float tensor.
    fn prepare(&mut self, image: &RgbImage) -> Result<Letterbox, DetectError> {
        let lb = Letterbox::plan(
            image.width(),
            image.height(),
            self.info.size,
            self.info.stride,
            self.mode(),
        );
        let src = ImageRef::new(
            image.width(),
            image.height(),
            image.as_raw(),
            PixelType::U8x3,
        )
        .map_err(|e| DetectError::Resize(e.into()))?;
        let mut resized = Image::new(lb.new_w, lb.new_h, PixelType::U8x3);
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer
            .resize(&src, &mut resized, &options)
            .map_err(|e| DetectError::Resize(e.into()))?;

        let (cw, ch) = (lb.canvas_w as usize, lb.canvas_h as usize);
        let plane = cw * ch;
        self.tensor.clear();
        self.tensor.resize(3 * plane, self.lut[PAD as usize]);
        let (r, rest) = self.tensor.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let (nw, left, top) = (lb.new_w as usize, lb.pad_left as usize, lb.pad_top as usize);
        let lut = &self.lut;
        for (y, row) in resized.buffer().chunks_exact(nw * 3).enumerate() {
            let start = (top + y) * cw + left;
            let (r, g, b) = (
                &mut r[start..start + nw],
                &mut g[start..start + nw],
                &mut b[start..start + nw],
            );
            for (x, px) in row.chunks_exact(3).enumerate() {
                r[x] = lut[px[0] as usize];
                g[x] = lut[px[1] as usize];
                b[x] = lut[px[2] as usize];
            }
        }
        Ok(lb)
    }
}

/// A detection with its box scaled by `sx`, `sy`.
fn scale_detection(mut d: Detection, sx: f32, sy: f32) -> Detection {
    d.bbox = crate::geometry::BBox {
        x1: d.bbox.x1 * sx,
        y1: d.bbox.y1 * sy,
        x2: d.bbox.x2 * sx,
        y2: d.bbox.y2 * sy,
    };
    d
}

/// Encodes an RGB image as baseline JPEG.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, DetectError> {
    let (w, h) = image.dimensions();
    let too_large = |_| DetectError::TooLargeToEncode {
        width: w,
        height: h,
    };
    let (w16, h16) = (
        u16::try_from(w).map_err(too_large)?,
        u16::try_from(h).map_err(too_large)?,
    );
    let mut out = Vec::with_capacity(image.as_raw().len() / 8);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(image.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(DetectError::Encode)?;
    Ok(out)
}
