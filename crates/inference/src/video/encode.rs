//! Clips made from still pictures with ffmpeg's encoders, in the forms
//! Telegram delivers: for tests and the benchmark, not for answers.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use polybot_inference::video::{ClipFormat, default_ffmpeg_path, encode_clip};
//! let zidane = std::fs::read("zidane.jpg")?;
//! let bus = std::fs::read("bus.jpg")?;
//! // 3 s of people, then 3 s of a bus, at 10 frames a second.
//! let mp4 = encode_clip(
//!     &default_ffmpeg_path(),
//!     &[(&zidane, Duration::from_secs(3)), (&bus, Duration::from_secs(3))],
//!     10,
//!     ClipFormat::H264,
//! )?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The forms of clip [`encode_clip`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFormat {
    /// A phone's video: H.264 High profile with B-frames (libx264, 3),
    /// yuv420p, a silent AAC track, in an MP4 with its index at the end.
    H264,
    /// Telegram's "GIF": H.264 in an MP4 without sound, index first.
    Animation,
    /// A round video message: a 384×384 centre crop, H.264 with sound.
    VideoNote,
    /// VP9 in WebM, without sound.
    Vp9,
}

impl ClipFormat {
    /// The file extension ffmpeg chooses the container by.
    fn extension(self) -> &'static str {
        match self {
            Self::Vp9 => "webm",
            _ => "mp4",
        }
    }
}

/// A clip of `segments`, each an encoded picture (JPEG, PNG…) shown for
/// its duration, at `fps` frames a second. Every picture is fitted into
/// the first one's size (rounded down to even sides), padded with black.
pub fn encode_clip(
    ffmpeg: &Path,
    segments: &[(&[u8], Duration)],
    fps: u32,
    format: ClipFormat,
) -> io::Result<Vec<u8>> {
    let Some((first, _)) = segments.first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a clip needs at least one picture",
        ));
    };
    let (w, h) = image::ImageReader::new(io::Cursor::new(first))
        .with_guessed_format()?
        .into_dimensions()
        .map_err(io::Error::other)?;
    let (w, h) = ((w & !1).max(2), (h & !1).max(2));
    let fps = fps.max(1);
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-v", "error", "-nostdin", "-y"]);
    let mut graph = String::new();
    let mut total = Duration::ZERO;
    for (i, (picture, seconds)) in segments.iter().enumerate() {
        let path = dir.path().join(format!("still-{i}"));
        std::fs::write(&path, picture)?;
        cmd.args(["-loop", "1", "-framerate", &fps.to_string()])
            .args(["-t", &format!("{:.3}", seconds.as_secs_f64())])
            .arg("-i")
            .arg(&path);
        graph.push_str(&format!(
            "[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps},format=yuv420p[v{i}];"
        ));
        total += *seconds;
    }
    for i in 0..segments.len() {
        graph.push_str(&format!("[v{i}]"));
    }
    let last = match format {
        ClipFormat::VideoNote => {
            "scale=384:384:force_original_aspect_ratio=increase,crop=384:384,setsar=1"
        }
        _ => "null",
    };
    graph.push_str(&format!(
        "concat=n={}:v=1:a=0[cat];[cat]{last}[out]",
        segments.len()
    ));
    let sound = matches!(format, ClipFormat::H264 | ClipFormat::VideoNote);
    if sound {
        cmd.args(["-f", "lavfi", "-t", &format!("{:.3}", total.as_secs_f64())])
            .args(["-i", "anullsrc=r=48000:cl=mono"]);
    }
    cmd.args(["-filter_complex", &graph, "-map", "[out]"]);
    if sound {
        cmd.args(["-map", &format!("{}:a", segments.len())]).args([
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-shortest",
        ]);
    } else {
        cmd.arg("-an");
    }
    match format {
        ClipFormat::Vp9 => {
            cmd.args(["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "40"])
                .args([
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                    "-pix_fmt",
                    "yuv420p",
                ]);
        }
        _ => {
            cmd.args(["-c:v", "libx264", "-profile:v", "high", "-bf", "3"])
                .args(["-preset", "veryfast", "-pix_fmt", "yuv420p"]);
        }
    }
    if matches!(format, ClipFormat::Animation | ClipFormat::VideoNote) {
        cmd.args(["-movflags", "+faststart"]);
    }
    let out = dir.path().join(format!("clip.{}", format.extension()));
    cmd.arg(&out);
    run(cmd)?;
    std::fs::read(out)
}

/// An audio-only file (an M4A of a sine tone), for the "no video track" case.
pub fn encode_audio_only(ffmpeg: &Path, length: Duration) -> io::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("sound.m4a");
    let mut cmd = Command::new(ffmpeg);
    cmd.args([
        "-hide_banner",
        "-v",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
    ])
    .arg("-i")
    .arg(format!(
        "sine=frequency=440:duration={:.3}",
        length.as_secs_f64()
    ))
    .args(["-c:a", "aac"])
    .arg(&out);
    run(cmd)?;
    std::fs::read(out)
}

fn run(mut cmd: Command) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ffmpeg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
