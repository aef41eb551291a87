//! Detection on a clip (a video, a GIF, a round video message): ffmpeg,
//! run as a subprocess, samples frames (the first always, then about one a
//! second, at most `max_frames`, spread over the whole clip when it is
//! longer), and each is detected and annotated like a photo.
//!
//! ffmpeg decodes every codec phones send (H.264 High with B-frames, HEVC,
//! VP9, AV1). The clip is untrusted: it is written to a temporary file (an
//! MP4 whose index is at its end cannot be read from a pipe), opened with
//! only the containers and decoders a clip needs and only the `file`
//! protocol (a playlist cannot make ffmpeg read other files), refused by
//! length and coded size before decoding, decoded on one thread with a
//! wall-clock limit, and read one frame at a time (never all at once).
//!
//! - [`sample`]: the frames alone, for any caller;
//! - [`detect_clip`]: detection on each, key frames and peaks
//!   ([`polybot_domain::video`]), on an [`Engine`] (the pool's lanes run it
//!   through [`crate::Slot::video`]);
//! - [`encode`]: clips made from pictures, for tests and the benchmark.

pub mod encode;
pub mod plan;
pub mod probe;
mod process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::RgbImage;
use polybot_domain::video::{ClassPeak, SampledFrame, VideoSummary, key_frames, peaks};
use polybot_domain::{ChatSettings, Label};

use crate::engine::Engine;
use crate::error::DetectError;
use crate::model::default_assets_dir;

pub use crate::error::VideoError;
pub use encode::{ClipFormat, encode_audio_only, encode_clip};
pub use plan::SamplePlan;
pub use probe::{Probe, VideoStream};

use process::{Keep, Next, Running};

/// Where `cargo xtask setup` puts ffmpeg (imageio-ffmpeg's static build).
pub fn default_ffmpeg_path() -> PathBuf {
    default_assets_dir().join("ffmpeg")
}

/// How clips are sampled, and the limits on an untrusted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The ffmpeg program.
    pub ffmpeg: PathBuf,
    /// Time between samples while the clip is short enough.
    pub interval: Duration,
    /// The most frames sampled from one clip.
    pub max_frames: usize,
    /// Frames are decoded scaled down to at most this long side.
    pub frame_max_side: u32,
    /// Longer clips are refused (as too large).
    pub max_duration: Duration,
    /// Clips of a larger coded width × height are refused (as too large).
    pub max_input_pixels: u64,
    /// Wall time for one clip, from opening it to its last frame
    /// (detection included: ffmpeg waits while a frame is detected);
    /// ffmpeg is killed past it.
    pub timeout: Duration,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            ffmpeg: default_ffmpeg_path(),
            interval: Duration::from_secs(1),
            max_frames: 30,
            frame_max_side: 1280,
            max_duration: Duration::from_secs(3600),
            max_input_pixels: 4096 * 4096,
            timeout: Duration::from_secs(120),
        }
    }
}

impl VideoConfig {
    /// Runs `ffmpeg -version`: its first line, or why it cannot be used
    /// (for a clear failure at start-up rather than on the first clip).
    pub fn check(&self) -> Result<String, VideoError> {
        let limit = Duration::from_secs(10);
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-hide_banner", "-version"]);
        let mut running = Running::spawn(
            &self.ffmpeg,
            cmd,
            true,
            Keep {
                head: 0,
                tail: 2048,
            },
            Instant::now() + limit,
            limit,
        )?;
        let mut out = String::new();
        if let Some(stdout) = running.take_stdout() {
            let mut first = Vec::new();
            let mut r = std::io::BufReader::new(std::io::Read::take(stdout, 4096));
            let _ = std::io::BufRead::read_until(&mut r, b'\n', &mut first);
            // The rest (build options) is not needed; reading on would only
            // wait for the pipe.
            out = String::from_utf8_lossy(&first).trim().to_owned();
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        let (status, said) = running.finish()?;
        if !status.success() || !out.starts_with("ffmpeg version") {
            return Err(VideoError::Ffmpeg {
                path: self.ffmpeg.clone(),
                detail: format!("`ffmpeg -version` gave {status}: {out} {}", said.trim()),
            });
        }
        Ok(out)
    }
}

/// The containers a clip may come in (ffmpeg's demuxer names): MP4 and
/// QuickTime, Matroska and WebM, AVI, MPEG-TS and GIF. Anything else
/// (playlists, concat lists, image sequences) is refused before it is read.
pub const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,gif";

/// The video codecs sampled (ffmpeg's codec names, as a probe shows them).
pub const VIDEO_CODECS: &[&str] = &[
    "h264",
    "hevc",
    "vp8",
    "vp9",
    "av1",
    "mpeg4",
    "h263",
    "mpeg2video",
    "mjpeg",
    "gif",
];

/// The decoders ffmpeg may open: those of [`VIDEO_CODECS`], and the sound
/// decoders it opens while probing a clip's streams (sound is never
/// decoded past that).
const DECODERS: &str = "h264,hevc,vp8,vp9,libvpx,libvpx-vp9,av1,libdav1d,libaom-av1,mpeg4,h263,\
mpeg2video,mjpeg,gif,aac,aac_fixed,aac_latm,mp3,mp3float,mp2,mp2float,opus,libopus,vorbis,\
libvorbis,ac3,ac3_fixed,eac3,flac,alac,amrnb,amrwb,libopencore_amrnb,libopencore_amrwb,\
pcm_s16le,pcm_s16be,pcm_s24le,pcm_f32le,pcm_u8,pcm_mulaw,pcm_alaw";

/// Most of a probe's stderr that is read (metadata can be long).
const PROBE_STDERR: usize = 256 * 1024;
/// ffmpeg's last words kept for an error.
const ERROR_TAIL: usize = 2048;

/// One sampled frame, upright, scaled within `frame_max_side`.
#[derive(Debug)]
pub struct SampledImage {
    /// Its place among the samples, from 0.
    pub index: usize,
    /// How many samples the plan asks for (the clip may give fewer).
    pub planned: usize,
    /// When it is shown, from the clip's start.
    pub at: Duration,
    pub image: RgbImage,
}

/// What sampling found about a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipInfo {
    /// The container's length; `None` when it does not say.
    pub duration: Option<Duration>,
    /// The upright size of its frames (before scaling).
    pub width: u32,
    pub height: u32,
    /// ffmpeg's codec name: `h264`, `hevc`, `vp9`, `av1`…
    pub codec: String,
    /// ffmpeg's demuxer names.
    pub format: String,
    pub plan: SamplePlan,
    /// Frames that came out.
    pub sampled: usize,
    /// Time spent writing the clip out, probing and waiting for frames.
    pub decode: Duration,
}

/// Samples `clip`, handing each frame to `on_frame` as soon as it is
/// decoded (so one frame at a time is held); an error from `on_frame`
/// stops ffmpeg and is returned.
pub fn sample(
    config: &VideoConfig,
    clip: &[u8],
    mut on_frame: impl FnMut(SampledImage) -> Result<(), DetectError>,
) -> Result<ClipInfo, DetectError> {
    let start = Instant::now();
    let deadline = start + config.timeout;
    if clip.is_empty() {
        return Err(VideoError::Empty.into());
    }
    let file = write_temp(clip)?;
    let probe = probe(config, file.path(), deadline)?;
    let stream = admit(config, &probe)?;
    let plan = SamplePlan::new(probe.duration, config.interval, config.max_frames);
    let (width, height) = stream.upright();
    let mut info = ClipInfo {
        duration: probe.duration,
        width,
        height,
        codec: stream.codec.clone(),
        format: probe.format.clone(),
        plan,
        sampled: 0,
        decode: Duration::ZERO,
    };
    tracing::debug!(
        codec = %info.codec,
        format = %info.format,
        duration_ms = probe.duration.map(|d| d.as_millis()),
        width,
        height,
        frames = plan.frames,
        step_ms = plan.step.as_millis(),
        "sampling a clip"
    );

    let mut running = Running::spawn(
        &config.ffmpeg,
        decode_command(config, file.path(), &stream, plan),
        true,
        Keep {
            head: 1024,
            tail: ERROR_TAIL,
        },
        deadline,
        config.timeout,
    )?;
    let stdout = running.take_stdout().ok_or_else(|| VideoError::Ffmpeg {
        path: config.ffmpeg.clone(),
        detail: "no stdout pipe".into(),
    })?;
    let frames = process::frames(stdout, config.frame_max_side, plan.frames).map_err(|e| {
        VideoError::Spawn {
            path: config.ffmpeg.clone(),
            source: e,
        }
    })?;
    info.decode = start.elapsed();
    let mut garbled = None;
    loop {
        let t = Instant::now();
        let next = process::next(&frames, running.deadline());
        info.decode += t.elapsed();
        match next {
            Next::Frame(image) => {
                on_frame(SampledImage {
                    index: info.sampled,
                    planned: plan.frames,
                    at: plan.at(info.sampled),
                    image,
                })?;
                info.sampled += 1;
            }
            Next::Garbled(e) => {
                garbled = Some(e);
                break;
            }
            Next::End => break,
            Next::TimedOut => return Err(running.timed_out().into()),
        }
    }
    drop(frames);
    let t = Instant::now();
    let (status, said) = running.finish()?;
    info.decode += t.elapsed();
    judge(&Ending {
        ffmpeg: &config.ffmpeg,
        max_pixels: config.max_input_pixels,
        success: status.success(),
        status: status.to_string(),
        frames: info.sampled,
        planned: plan.frames,
        garbled,
        said: &said,
    })?;
    Ok(info)
}

/// Writes the clip where ffmpeg can seek in it; removed when dropped.
fn write_temp(clip: &[u8]) -> Result<tempfile::NamedTempFile, VideoError> {
    // No extension: ffmpeg guesses containers from names too.
    let mut file = tempfile::Builder::new()
        .prefix("polybot-clip-")
        .tempfile()
        .map_err(VideoError::TempFile)?;
    file.write_all(clip).map_err(VideoError::TempFile)?;
    file.flush().map_err(VideoError::TempFile)?;
    Ok(file)
}

/// The options that keep ffmpeg to what a clip needs, before `-i`: the
/// decoders themselves refuse pictures past the pixel limit (a stream
/// may change its size after the header the probe read).
fn input_options(cmd: &mut Command, config: &VideoConfig) {
    cmd.args(["-nostdin", "-threads", "1"])
        .args(["-protocol_whitelist", "file"])
        .args(["-format_whitelist", FORMATS])
        .args(["-codec_whitelist", DECODERS])
        .args(["-max_pixels", &config.max_input_pixels.to_string()]);
}

/// Asks ffmpeg what the file is.
fn probe(config: &VideoConfig, file: &Path, deadline: Instant) -> Result<Probe, VideoError> {
    let mut cmd = Command::new(&config.ffmpeg);
    cmd.arg("-hide_banner");
    input_options(&mut cmd, config);
    cmd.arg("-i").arg(file);
    let running = Running::spawn(
        &config.ffmpeg,
        cmd,
        false,
        Keep {
            head: PROBE_STDERR,
            tail: ERROR_TAIL,
        },
        deadline,
        config.timeout,
    )?;
    // ffmpeg exits 1 here ("At least one output file must be
    // specified"); what it printed is the answer.
    let (_, said) = running.finish()?;
    match probe::parse(&said) {
        Some(p) => Ok(p),
        None if recognised_but_broken(&said) => Err(VideoError::Corrupt {
            detail: last_words(&said),
        }),
        None => Err(VideoError::NotAVideo {
            detail: last_words(&said),
        }),
    }
}

/// Whether a file ffmpeg could not open was surely one of [`FORMATS`]
/// (its demuxer spoke: `[mov,mp4,… @ 0x…] moov atom not found`), so it
/// is a damaged clip (cut off, most often) rather than something else.
fn recognised_but_broken(said: &str) -> bool {
    if said.contains("misdetection possible") {
        return false;
    }
    said.lines().any(|line| {
        line.trim_start()
            .strip_prefix('[')
            .and_then(|l| l.split_once(" @ "))
            .is_some_and(|(names, _)| {
                names
                    .split(',')
                    .next()
                    .is_some_and(|first| FORMATS.split(',').any(|f| f == first))
            })
    })
}

/// Refuses a clip by its probe: no video, a codec not sampled, or past
/// the limits. Nothing is decoded yet.
pub fn admit(config: &VideoConfig, probe: &Probe) -> Result<VideoStream, VideoError> {
    let Some(stream) = probe.video.clone() else {
        return Err(if probe.streams == 0 {
            VideoError::Corrupt {
                detail: format!("the {} container holds no streams (cut off?)", probe.format),
            }
        } else {
            VideoError::NoVideoTrack
        });
    };
    if !VIDEO_CODECS.contains(&stream.codec.as_str()) {
        return Err(VideoError::UnsupportedCodec {
            codec: stream.codec,
        });
    }
    if stream.pixels() == 0 {
        // Its size is in its first frame's header, which is missing.
        return Err(VideoError::Corrupt {
            detail: format!("the {} track does not say its size", stream.codec),
        });
    }
    if stream.pixels() > config.max_input_pixels {
        return Err(VideoError::TooManyPixels {
            width: stream.width,
            height: stream.height,
            limit: config.max_input_pixels,
        });
    }
    if let Some(duration) = probe.duration
        && duration > config.max_duration
    {
        return Err(VideoError::TooLong {
            duration,
            limit: config.max_duration,
        });
    }
    Ok(stream)
}

/// `ffmpeg … -i FILE -map 0:N -vf fps,scale,format -frames:v N -f image2pipe -c:v ppm -`
fn decode_command(
    config: &VideoConfig,
    file: &Path,
    stream: &VideoStream,
    plan: SamplePlan,
) -> Command {
    let side = config.frame_max_side.max(1);
    // `round=up`: the sample at t is the frame on screen at t (the last
    // one starting at or before it); `start_time=0`: sample 0 is at the
    // clip's start, filled with its first frame if its video starts late.
    let filters = format!(
        "fps=fps={}:start_time=0:round=up,\
         scale=w='min(iw,{side})':h='min(ih,{side})':force_original_aspect_ratio=decrease:flags=bilinear,\
         format=rgb24",
        plan.rate()
    );
    let mut cmd = Command::new(&config.ffmpeg);
    cmd.args(["-v", "error", "-filter_threads", "1"]);
    input_options(&mut cmd, config);
    cmd.arg("-i")
        .arg(file)
        .args(["-map", &format!("0:{}", stream.index)])
        .args(["-an", "-sn", "-dn", "-vf", &filters])
        .args(["-frames:v", &plan.frames.to_string()])
        .args(["-f", "image2pipe", "-c:v", "ppm", "-"]);
    cmd
}

/// How a decode ended.
struct Ending<'a> {
    ffmpeg: &'a Path,
    max_pixels: u64,
    success: bool,
    status: String,
    frames: usize,
    planned: usize,
    /// The frame reader's complaint, if ffmpeg wrote something else.
    garbled: Option<String>,
    /// ffmpeg's stderr (at `-v error`, only problems).
    said: &'a str,
}

/// Whether a decode that ended so gave the clip's frames: a failure, no
/// frames, or far fewer than planned with errors is a damaged clip.
fn judge(end: &Ending<'_>) -> Result<(), VideoError> {
    let problems: Vec<&str> = end
        .said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_noise(l))
        .collect();
    let detail = || {
        if problems.is_empty() {
            format!("ffmpeg exited with {}", end.status)
        } else {
            last_words(&problems.join("\n"))
        }
    };
    if let Some((width, height)) = oversized(end.said) {
        return Err(VideoError::TooManyPixels {
            width,
            height,
            limit: end.max_pixels,
        });
    }
    if end.frames == 0 && DECODER_MISSING.iter().any(|m| end.said.contains(m)) {
        // No decoder for the stream, or none we allow: a codec known by
        // another name than the probe's.
        return Err(VideoError::UnsupportedCodec {
            codec: "a codec without an allowed decoder".into(),
        });
    }
    if !end.success || end.frames == 0 {
        return Err(VideoError::Corrupt {
            detail: if end.frames == 0 && end.success && problems.is_empty() {
                "no frames came out".into()
            } else {
                detail()
            },
        });
    }
    if let Some(e) = &end.garbled {
        return Err(VideoError::Ffmpeg {
            path: end.ffmpeg.to_path_buf(),
            detail: format!("its output is not the frames asked for: {e}"),
        });
    }
    // A clip's video may end a sample before its container does (longer
    // sound); a cut-off one ends early with decoder errors.
    if end.frames + 1 < end.planned && !problems.is_empty() {
        return Err(VideoError::Corrupt {
            detail: format!(
                "only {} of {} frames decoded: {}",
                end.frames,
                end.planned,
                detail()
            ),
        });
    }
    if !problems.is_empty() {
        tracing::debug!(errors = %detail(), "ffmpeg complained but gave the frames");
    }
    Ok(())
}

/// The picture size a decoder refused as past `-max_pixels`: `Picture size
/// 640x368 exceeds specified max pixel count 1000`.
fn oversized(said: &str) -> Option<(u32, u32)> {
    said.lines().find_map(|line| {
        let (before, _) = line.split_once(" exceeds specified max pixel count")?;
        let size = before.rsplit(' ').next()?;
        let (w, h) = size.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    })
}

/// What ffmpeg (7 and Debian's 5.1) says when it has no decoder to open.
const DECODER_MISSING: &[&str] = &[
    "Error while opening decoder",
    "Decoder (codec",
    "no decoder found",
];

/// stderr lines that say nothing about the video.
fn is_noise(line: &str) -> bool {
    // A sound codec not on the decoder list, met while probing streams.
    line.contains("not on whitelist") || line.starts_with("Last message repeated")
}

/// The end of what ffmpeg said, bounded for an error message.
fn last_words(said: &str) -> String {
    let said = said.trim();
    let mut start = said.len().saturating_sub(ERROR_TAIL);
    while !said.is_char_boundary(start) {
        start += 1;
    }
    let words = &said[start..];
    if words.is_empty() {
        "ffmpeg said nothing".into()
    } else {
        words.to_owned()
    }
}

/// Sampling progress: `done` of `total` planned frames detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoProgress {
    pub done: usize,
    pub total: usize,
}

/// One frame of a clip's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    /// When in the clip, from its start.
    pub at: Duration,
    /// What was detected, normalised to the frame (see
    /// [`crate::DetectOutput::labels`]).
    pub labels: Vec<Label>,
    pub annotated_jpeg: Vec<u8>,
}

/// What detection found in a clip.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOutput {
    /// The container's length, or the last sample's time when it does not say.
    pub duration: Duration,
    /// The upright size of its frames (before scaling for detection).
    pub width: u32,
    pub height: u32,
    /// ffmpeg's codec name: `h264`, `hevc`, `vp9`, `av1`…
    pub codec: String,
    /// How many frames were sampled and detected.
    pub sampled: usize,
    /// The last sampled frame's time: the peaks' whole span is from 0 to
    /// it (see [`ClassPeak::describe`]).
    pub last_sample: Duration,
    /// The frames the answer shows ([`key_frames`]), in time order, each
    /// with its annotated JPEG.
    pub key_frames: Vec<VideoFrame>,
    /// Each class's most at once ([`peaks`]), most first.
    pub peaks: Vec<ClassPeak>,
    /// Time spent writing, probing and decoding (waiting for ffmpeg).
    pub decode: Duration,
    /// Time spent detecting, annotating and encoding frames.
    pub detect: Duration,
}

/// Samples `clip`, detects each frame as `settings` ask on `engine`,
/// reporting `progress` after each, and chooses the key frames and
/// peaks. Every frame's annotated JPEG is kept until the key frames are
/// chosen (at most `max_frames`, each one bounded frame), then the others
/// are dropped.
pub fn detect_clip(
    engine: &mut Engine,
    config: &VideoConfig,
    clip: &[u8],
    settings: &ChatSettings,
    progress: &dyn Fn(VideoProgress),
) -> Result<VideoOutput, DetectError> {
    let limit = engine.config().limits.max_bytes;
    if clip.len() > limit {
        return Err(DetectError::FileTooLarge {
            size: clip.len(),
            limit,
        });
    }
    let mut frames: Vec<SampledFrame> = Vec::new();
    let mut jpegs: Vec<Vec<u8>> = Vec::new();
    let mut detect = Duration::ZERO;
    let info = sample(config, clip, |s| {
        let t = Instant::now();
        let out = engine.detect_frame(s.image, settings)?;
        detect += t.elapsed();
        frames.push(SampledFrame {
            at: s.at,
            labels: out.labels(),
        });
        jpegs.push(out.annotated_jpeg);
        progress(VideoProgress {
            done: s.index + 1,
            total: s.planned,
        });
        Ok(())
    })?;
    let chosen = key_frames(&frames, VideoSummary::MAX_KEY_FRAMES);
    let peaks = peaks(&frames);
    let last = frames.last().map(|f| f.at).unwrap_or_default();
    let mut jpegs: Vec<Option<Vec<u8>>> = jpegs.into_iter().map(Some).collect();
    let key_frames = chosen
        .into_iter()
        .filter_map(|i| {
            let frame = frames.get(i)?;
            Some(VideoFrame {
                at: frame.at,
                labels: frame.labels.clone(),
                annotated_jpeg: jpegs.get_mut(i)?.take()?,
            })
        })
        .collect();
    Ok(VideoOutput {
        duration: info.duration.unwrap_or(last),
        width: info.width,
        height: info.height,
        codec: info.codec,
        sampled: info.sampled,
        last_sample: last,
        key_frames,
        peaks,
        decode: info.decode,
        detect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending<'a>(success: bool, frames: usize, planned: usize, said: &'a str) -> Ending<'a> {
        Ending {
            ffmpeg: Path::new("ffmpeg"),
            max_pixels: 1000,
            success,
            status: if success {
                "exit status: 0"
            } else {
                "exit status: 1"
            }
            .into(),
            frames,
            planned,
            garbled: None,
            said,
        }
    }

    fn kind(r: Result<(), VideoError>) -> Option<crate::ErrorKind> {
        r.err().map(|e| e.kind())
    }

    use crate::ErrorKind::{CorruptVideo, Internal, UnsupportedVideo};

    #[test]
    fn all_frames_or_a_sample_short_without_errors_is_a_clip() {
        assert_eq!(kind(judge(&ending(true, 6, 6, ""))), None);
        // Its sound runs a second longer than its video.
        assert_eq!(kind(judge(&ending(true, 5, 6, ""))), None);
        // Concealed damage: every frame came out.
        assert_eq!(
            kind(judge(&ending(
                true,
                6,
                6,
                "[h264 @ 0x1] error while decoding MB 3 4"
            ))),
            None
        );
    }

    #[test]
    fn a_cut_off_clip_is_damaged_and_says_why() {
        let said = "[h264 @ 0x29830a00] Invalid NAL unit size (46904 > 1499).\n\
                    [h264 @ 0x29830a00] Error splitting the input into NAL units.";
        let err = judge(&ending(true, 3, 6, said)).expect_err("cut off");
        assert_eq!(err.kind(), CorruptVideo);
        assert!(
            err.to_string().contains("only 3 of 6") && err.to_string().contains("NAL"),
            "{err}"
        );
    }

    #[test]
    fn no_frames_or_a_failed_ffmpeg_is_a_damaged_clip() {
        assert_eq!(kind(judge(&ending(true, 0, 6, ""))), Some(CorruptVideo));
        assert_eq!(
            kind(judge(&ending(false, 4, 6, "boom"))),
            Some(CorruptVideo)
        );
    }

    #[test]
    fn a_decoder_off_the_list_is_an_unsupported_codec_and_sound_codecs_are_noise() {
        let said = "[h264 @ 0x1] Codec (h264) not on whitelist 'hevc'\n\
                    [vist#0:0/h264 @ 0x2] Error while opening decoder: Invalid argument";
        assert_eq!(
            kind(judge(&ending(false, 0, 6, said))),
            Some(UnsupportedVideo)
        );
        let aac =
            "[aac @ 0x1] Codec (aac) not on whitelist 'h264'\n    Last message repeated 1 times";
        assert_eq!(kind(judge(&ending(true, 2, 6, aac))), None);
    }

    #[test]
    fn a_picture_the_decoder_refused_as_too_many_pixels_makes_the_clip_too_large() {
        let said = "[h264 @ 0x1] [IMGUTILS @ 0x7f] Picture size 640x368 exceeds specified max \
                    pixel count 1000, see the documentation if you wish to increase it\n\
                    [h264 @ 0x1] video_get_buffer: image parameters invalid";
        let err = judge(&ending(true, 1, 6, said)).expect_err("refused");
        assert!(
            matches!(
                err,
                VideoError::TooManyPixels {
                    width: 640,
                    height: 368,
                    limit: 1000
                }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::TooLarge);
    }

    #[test]
    fn frames_that_are_not_frames_are_ffmpegs_fault_not_the_clips() {
        let mut end = ending(true, 2, 6, "");
        end.garbled = Some("a frame starts with [0, 0], not P6".into());
        assert_eq!(kind(judge(&end)), Some(Internal));
    }

    #[test]
    fn admission_refuses_by_track_codec_size_and_length_before_decoding() {
        let config = VideoConfig {
            max_input_pixels: 1920 * 1080,
            max_duration: Duration::from_secs(60),
            ..VideoConfig::default()
        };
        let video = |codec: &str, w: u32, h: u32| VideoStream {
            index: 0,
            codec: codec.into(),
            width: w,
            height: h,
            rotation: 0,
        };
        let probe = |video: Option<VideoStream>, streams: usize, secs: u64| Probe {
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration: Some(Duration::from_secs(secs)),
            streams,
            video,
        };
        let ok = admit(&config, &probe(Some(video("hevc", 1920, 1080)), 2, 60));
        assert_eq!(ok.expect("admitted").codec, "hevc");
        let refused = |p: Probe| admit(&config, &p).expect_err("refused").kind();
        use crate::ErrorKind::TooLarge;
        assert_eq!(refused(probe(None, 1, 5)), UnsupportedVideo);
        assert_eq!(refused(probe(None, 0, 5)), CorruptVideo);
        assert_eq!(
            refused(probe(Some(video("prores", 64, 64)), 1, 5)),
            UnsupportedVideo
        );
        assert_eq!(
            refused(probe(Some(video("h264", 3840, 2160)), 1, 5)),
            TooLarge
        );
        assert_eq!(refused(probe(Some(video("h264", 64, 64)), 1, 61)), TooLarge);
        assert_eq!(
            refused(probe(Some(video("h264", 0, 0)), 1, 5)),
            CorruptVideo
        );
    }

    #[test]
    fn a_file_our_demuxer_spoke_about_is_broken_and_others_are_not_videos() {
        let cut = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0xaa53600] reached eof, corrupted CTTS atom\n\
                   [mov,mp4,m4a,3gp,3g2,mj2 @ 0xaa53600] error reading header\n\
                   [in#0 @ 0xaa53300] Error opening input: End of file";
        assert!(recognised_but_broken(cut));
        assert!(recognised_but_broken(
            "[matroska,webm @ 0x1] EBML header parsing failed"
        ));
        let guessed = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] Format mov,mp4,m4a,3gp,3g2,mj2 detected only \
                       with low score of 1, misdetection possible!\n\
                       [mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found";
        assert!(!recognised_but_broken(guessed));
        let foreign = "[in#0 @ 0x17b50ac0] Error opening input: Invalid data found when processing input\n\
                       [wav @ 0x1] something";
        assert!(!recognised_but_broken(foreign));
    }

    #[test]
    fn the_default_ffmpeg_is_in_the_assets_folder() {
        assert_eq!(default_ffmpeg_path(), default_assets_dir().join("ffmpeg"));
        let d = VideoConfig::default();
        assert_eq!((d.interval, d.max_frames), (Duration::from_secs(1), 30));
    }

    #[test]
    fn last_words_are_bounded_and_cut_on_a_character() {
        let long = "é".repeat(5000);
        let words = last_words(&long);
        assert!(words.len() <= ERROR_TAIL && words.chars().all(|c| c == 'é'));
        assert_eq!(last_words("  "), "ffmpeg said nothing");
    }
}
