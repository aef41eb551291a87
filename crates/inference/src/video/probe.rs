//! What `ffmpeg -hide_banner -i FILE` says about a clip (imageio-ffmpeg
//! ships no ffprobe): its container, length and first real video stream.
//! Pure text parsing, so it is tested on ffmpeg's own words.

use std::time::Duration;

/// A clip as ffmpeg found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The demuxer's names, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
    /// The container's length; `None` when ffmpeg says `N/A`.
    pub duration: Option<Duration>,
    /// How many streams of any kind the container holds.
    pub streams: usize,
    /// The first video stream that is not a cover picture.
    pub video: Option<VideoStream>,
}

/// One video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoStream {
    /// Its index in the file, for `-map 0:INDEX`.
    pub index: usize,
    /// ffmpeg's codec name (`h264`, `hevc`, `vp9`, `av1`…).
    pub codec: String,
    /// The coded size; 0×0 when ffmpeg did not say.
    pub width: u32,
    pub height: u32,
    /// The display matrix's rotation in degrees (phones record portrait
    /// video as rotated landscape); ffmpeg turns frames upright.
    pub rotation: i32,
}

impl VideoStream {
    /// The size of the upright frames ffmpeg decodes.
    pub fn upright(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// The coded pixel count, which the resolution limit is checked on.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Parses ffmpeg's description of its first input; `None` when it
/// described none (it could not open the file).
pub fn parse(stderr: &str) -> Option<Probe> {
    let mut probe: Option<Probe> = None;
    // The stream whose block (its indented lines) is being read.
    let mut current: Option<Stream> = None;
    let mut streams: Vec<Stream> = Vec::new();
    for line in stderr.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = line.strip_prefix("Input #0, ") {
            let format = rest.split(", from '").next().unwrap_or(rest);
            probe = Some(Probe {
                format: format.to_owned(),
                duration: None,
                streams: 0,
                video: None,
            });
        } else if line.starts_with("Input #") || line.starts_with("Output #") {
            break;
        }
        let Some(p) = probe.as_mut() else { continue };
        if let Some(rest) = trimmed.strip_prefix("Duration: ") {
            let value = rest.split(',').next().unwrap_or_default();
            p.duration = parse_clock(value);
        } else if let Some(rest) = trimmed.strip_prefix("Stream #0:") {
            streams.extend(current.take());
            current = parse_stream(rest);
        } else if let Some(rest) = trimmed.strip_prefix("displaymatrix: rotation of ")
            && let Some(s) = current.as_mut()
        {
            let degrees = rest.split_whitespace().next().unwrap_or_default();
            s.rotation = degrees.parse::<f64>().map_or(0, |d| d.round() as i32);
        }
    }
    streams.extend(current);
    let mut probe = probe?;
    probe.streams = streams.len();
    probe.video = streams.into_iter().find_map(|s| match s.kind {
        Kind::Video {
            codec,
            width,
            height,
        } => Some(VideoStream {
            index: s.index,
            codec,
            width,
            height,
            rotation: s.rotation,
        }),
        Kind::Other => None,
    });
    Some(probe)
}

struct Stream {
    index: usize,
    kind: Kind,
    rotation: i32,
}

enum Kind {
    Video {
        codec: String,
        width: u32,
        height: u32,
    },
    /// Audio, subtitles, data, or a cover picture.
    Other,
}

/// `0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(…), 640x360 […], …`
fn parse_stream(rest: &str) -> Option<Stream> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let index = rest[..digits].parse().ok()?;
    let (_, after_id) = rest.split_once(": ")?;
    let (kind, description) = after_id.split_once(": ")?;
    let kind = if kind == "Video" && !description.contains("(attached pic)") {
        let parts = top_level_parts(description);
        let codec = parts
            .first()
            .and_then(|p| p.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        let (width, height) = parts
            .iter()
            .skip(1)
            .find_map(|p| p.split_whitespace().next().and_then(parse_size))
            .unwrap_or((0, 0));
        Kind::Video {
            codec,
            width,
            height,
        }
    } else {
        Kind::Other
    };
    Some(Stream {
        index,
        kind,
        rotation: 0,
    })
}

/// Splits at commas outside parentheses: `yuv420p(tv, bt709)` stays one part.
fn top_level_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// `640x360`.
fn parse_size(token: &str) -> Option<(u32, u32)> {
    let (w, h) = token.split_once('x')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(w) || !digits(h) {
        return None;
    }
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// `01:02:03.45`; `None` for `N/A` or anything else.
fn parse_clock(text: &str) -> Option<Duration> {
    let mut fields = text.trim().split(':');
    let (h, m, s) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let s: f64 = s.parse().ok()?;
    if !(0.0..60.0).contains(&s) || m >= 60 {
        return None;
    }
    Some(Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffmpeg 7.0.2 on a libx264 MP4 turned to portrait, with sound.
    const PHONE: &str = "\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/tmp/polybot-clip-x':
  Metadata:
    major_brand     : isom
    title           : Stream #0:7: Video: h264, 9999x9999
  Duration: 00:01:02.50, start: 0.000000, bitrate: 121 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, mono, fltp, 69 kb/s (default)
      Metadata:
        handler_name    : SoundHandler
  Stream #0:1[0x2](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 119 kb/s, 30 fps, 30 tbr, 10240 tbn (default)
      Metadata:
        handler_name    : VideoHandler
      Side data:
        displaymatrix: rotation of -90.00 degrees
At least one output file must be specified
";

    #[test]
    fn a_phone_clip_gives_its_length_codec_coded_size_and_rotation() {
        let p = parse(PHONE).expect("an input");
        assert_eq!(p.format, "mov,mp4,m4a,3gp,3g2,mj2");
        assert_eq!(p.duration, Some(Duration::from_millis(62_500)));
        assert_eq!(p.streams, 2);
        let v = p.video.expect("a video stream");
        assert_eq!(
            v,
            VideoStream {
                index: 1,
                codec: "h264".into(),
                width: 1920,
                height: 1080,
                rotation: -90,
            }
        );
        assert_eq!(v.upright(), (1080, 1920));
        assert_eq!(v.pixels(), 1920 * 1080);
    }

    #[test]
    fn a_codec_tag_that_looks_like_a_size_is_not_taken_for_one() {
        // `0x31637661` is in the first part, which is never a size.
        let p = parse(PHONE).expect("an input");
        assert_ne!(p.video.expect("video").width, 0x3163);
    }

    #[test]
    fn audio_with_a_cover_picture_has_no_video_track() {
        let text = "\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'song.m4a':
  Duration: 00:00:02.00, start: 0.000000, bitrate: 75 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 69 kb/s (default)
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600, 90k tbr, 90k tbn (attached pic)
";
        let p = parse(text).expect("an input");
        assert_eq!(p.streams, 2);
        assert_eq!(p.video, None);
    }

    #[test]
    fn a_webm_without_a_length_and_streams_under_a_program_are_read() {
        let text = "\
Input #0, matroska,webm, from 'v.webm':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Program 1
    Stream #0:0: Video: vp9 (Profile 0), yuv420p(tv, progressive), 320x240, SAR 1:1 DAR 4:3, 10 fps, 10 tbr, 1k tbn
";
        let p = parse(text).expect("an input");
        assert_eq!(p.format, "matroska,webm");
        assert_eq!(p.duration, None);
        let v = p.video.expect("video");
        assert_eq!((v.codec.as_str(), v.width, v.height), ("vp9", 320, 240));
        assert_eq!(v.upright(), (320, 240));
    }

    #[test]
    fn a_file_ffmpeg_could_not_open_has_no_input() {
        let text = "\
[in#0 @ 0x17b50ac0] Error opening input: Invalid data found when processing input
Error opening input file rnd.bin.
Error opening input files: Invalid data found when processing input
";
        assert_eq!(parse(text), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn a_header_without_streams_counts_none() {
        let text = "\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'tiny.mp4':
  Metadata:
    major_brand     : isom
  Duration: N/A, bitrate: N/A
At least one output file must be specified
";
        let p = parse(text).expect("an input");
        assert_eq!((p.streams, p.video), (0, None));
    }

    #[test]
    fn clock_values_parse_and_nonsense_does_not() {
        assert_eq!(parse_clock("00:00:06.00"), Some(Duration::from_secs(6)));
        assert_eq!(
            parse_clock("01:02:03.45"),
            Some(Duration::from_millis(3_723_450))
        );
        for bad in ["N/A", "", "1:2", "00:61:00.00", "00:00:xx", "1:2:3:4"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_are_two_numbers_around_an_x() {
        assert_eq!(parse_size("640x360"), Some((640, 360)));
        for bad in ["0x", "x360", "64x36a", "yuv420p", ""] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn a_stream_line_gives_back_its_size(w in 1u32..10_000, h in 1u32..10_000, index in 0usize..16) {
            let text = format!(
                "Input #0, matroska,webm, from 'x':\n  Stream #0:{index}(eng): Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/smpte2084), {w}x{h} [SAR 1:1], 30 fps\n"
            );
            let v = parse(&text).and_then(|p| p.video).expect("video");
            proptest::prop_assert_eq!((v.index, v.width, v.height), (index, w, h));
        }
    }
}
