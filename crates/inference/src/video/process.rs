//! Running ffmpeg on an untrusted clip: no shell, its own process group
//! (a terminal's Ctrl-C is the detector's to handle, not ffmpeg's), stderr
//! drained on a thread and kept bounded, a wall-clock deadline past which
//! it is killed, and killed on drop whatever happened. Frames come from
//! stdout as PPM, one at a time, through a channel of one, so the caller
//! never waits past the deadline and never holds more than three frames.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use image::RgbImage;

use crate::error::VideoError;

/// How much of stderr is kept: its start and its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    pub head: usize,
    pub tail: usize,
}

/// A running ffmpeg, killed when dropped.
pub(crate) struct Running {
    path: PathBuf,
    child: Child,
    stderr: Receiver<String>,
    deadline: Instant,
    limit: Duration,
}

impl Running {
    /// Starts `cmd` (stdin closed, stdout piped only if `stdout`), to be
    /// finished by `deadline` (`limit` is what the error reports).
    pub fn spawn(
        path: &Path,
        mut cmd: Command,
        stdout: bool,
        keep: Keep,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Self, VideoError> {
        let spawn_error = |source| VideoError::Spawn {
            path: path.to_path_buf(),
            source,
        };
        cmd.stdin(Stdio::null())
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .env("AV_LOG_FORCE_NOCOLOR", "1")
            .env("LC_ALL", "C")
            .process_group(0);
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let Some(err) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(std::io::Error::other("no stderr pipe")));
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let drained = std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || {
                let _ = tx.send(capture(err, keep));
            });
        if let Err(e) = drained {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(e));
        }
        Ok(Self {
            path: path.to_path_buf(),
            child,
            stderr: rx,
            deadline,
            limit,
        })
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub fn timed_out(&self) -> VideoError {
        VideoError::TimedOut { limit: self.limit }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Waits for ffmpeg to exit (killing it at the deadline): its status
    /// and what it said.
    pub fn finish(mut self) -> Result<(ExitStatus, String), VideoError> {
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= self.deadline => return Err(self.timed_out()),
                Ok(None) => {
                    std::thread::sleep(pause.min(self.deadline - Instant::now()));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(VideoError::Ffmpeg {
                        path: self.path.clone(),
                        detail: format!("waiting for it failed: {e}"),
                    });
                }
            }
        };
        // Its stderr closes when it exits, unless it left a child holding
        // it: then what was said is not worth waiting for.
        let grace = self
            .deadline
            .max(Instant::now() + Duration::from_millis(200));
        let said = self.stderr.recv_deadline(grace).unwrap_or_default();
        Ok((status, said))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Harmless if it has exited (and been waited for) already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads all of `from`, keeping its first `keep.head` and last
/// `keep.tail` bytes.
fn capture(mut from: impl Read, keep: Keep) -> String {
    let mut head = Vec::new();
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut dropped = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        let room = keep.head.saturating_sub(head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..room]);
        chunk = &chunk[room..];
        tail.extend(chunk);
        if tail.len() > keep.tail {
            dropped = true;
            tail.drain(..tail.len() - keep.tail);
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped {
        text.push_str("\n[…]\n");
    }
    text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    text
}

/// One frame off ffmpeg's stdout, or why there is none.
pub(crate) type FrameResult = Result<RgbImage, String>;

/// Reads PPM frames from `stdout` onto a channel of one, each no larger
/// than `max_side` on either side, until `max_frames` or the end.
pub(crate) fn frames(
    stdout: ChildStdout,
    max_side: u32,
    max_frames: usize,
) -> std::io::Result<Receiver<FrameResult>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("ffmpeg-frames".into())
        .spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, stdout);
            for _ in 0..max_frames {
                let next = match read_ppm(&mut reader, max_side) {
                    Ok(Some(image)) => Ok(image),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// What waiting for the next frame gave.
pub(crate) enum Next {
    Frame(RgbImage),
    /// ffmpeg wrote something else than a frame.
    Garbled(String),
    End,
    TimedOut,
}

pub(crate) fn next(rx: &Receiver<FrameResult>, deadline: Instant) -> Next {
    match rx.recv_deadline(deadline) {
        Ok(Ok(image)) => Next::Frame(image),
        Ok(Err(e)) => Next::Garbled(e),
        Err(RecvTimeoutError::Disconnected) => Next::End,
        Err(RecvTimeoutError::Timeout) => Next::TimedOut,
    }
}

/// The longest PPM header ffmpeg writes is `P6\n65535 65535\n255\n`.
const MAX_HEADER: usize = 32;

/// Reads one binary PPM (`P6 W H 255`, then W×H×3 bytes); `None` at a
/// clean end of stream.
pub(crate) fn read_ppm(r: &mut impl BufRead, max_side: u32) -> Result<Option<RgbImage>, String> {
    if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let mut fields: Vec<u32> = Vec::with_capacity(3);
    let mut magic = [0u8; 2];
    r.read_exact(&mut magic).map_err(|e| e.to_string())?;
    if &magic != b"P6" {
        return Err(format!("a frame starts with {magic:?}, not P6"));
    }
    let mut header = 2;
    let mut number: Option<u32> = None;
    // Three numbers, each ended by one whitespace byte; the last one's
    // ends the header.
    while fields.len() < 3 {
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte)
            .map_err(|e| format!("a frame's header is cut off: {e}"))?;
        header += 1;
        if header > MAX_HEADER {
            return Err("a frame's header is too long".into());
        }
        match byte[0] {
            b @ b'0'..=b'9' => {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u32::from(b - b'0')))
                        .ok_or("a frame's header has a huge number")?,
                );
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                if let Some(n) = number.take() {
                    fields.push(n);
                }
            }
            other => return Err(format!("a frame's header has the byte {other:#04x}")),
        }
    }
    let (width, height, maxval) = (fields[0], fields[1], fields[2]);
    if maxval != 255 {
        return Err(format!("a frame has {maxval} levels, not 255"));
    }
    if width == 0 || height == 0 || width > max_side || height > max_side {
        return Err(format!(
            "a frame is {width}×{height}, outside 1..={max_side} per side"
        ));
    }
    let mut data = vec![0u8; width as usize * height as usize * 3];
    r.read_exact(&mut data)
        .map_err(|e| format!("a {width}×{height} frame is cut off: {e}"))?;
    RgbImage::from_raw(width, height, data)
        .map(Some)
        .ok_or_else(|| "a frame's pixels do not fit its size".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(w: u32, h: u32, fill: u8) -> Vec<u8> {
        let mut v = format!("P6\n{w} {h}\n255\n").into_bytes();
        v.extend(std::iter::repeat_n(fill, (w * h * 3) as usize));
        v
    }

    #[test]
    fn frames_are_read_one_by_one_to_a_clean_end() {
        let mut bytes = ppm(3, 2, 7);
        bytes.extend(ppm(1, 1, 9));
        let mut r = &bytes[..];
        let a = read_ppm(&mut r, 16).expect("first").expect("a frame");
        assert_eq!((a.dimensions(), a.get_pixel(2, 1).0), ((3, 2), [7, 7, 7]));
        let b = read_ppm(&mut r, 16).expect("second").expect("a frame");
        assert_eq!(b.dimensions(), (1, 1));
        assert!(read_ppm(&mut r, 16).expect("the end").is_none());
    }

    #[test]
    fn a_frame_larger_than_asked_for_is_refused_before_its_pixels_are_read() {
        let header = b"P6\n100000 100000\n255\n";
        let err = read_ppm(&mut &header[..], 1280).expect_err("too large");
        assert!(err.contains("100000×100000"), "{err}");
    }

    #[test]
    fn cut_or_foreign_frames_are_errors_not_panics() {
        let whole = ppm(4, 4, 1);
        for cut in [1, 2, 5, 11, whole.len() - 1] {
            assert!(read_ppm(&mut &whole[..cut], 16).is_err(), "cut at {cut}");
        }
        for bad in [
            &b"P5\n1 1\n255\n\0"[..],
            b"P6\n1 1\n65535\n\0\0",
            b"P6 -1 1 255 ",
            b"P6\n0 1\n255\n",
        ] {
            assert!(read_ppm(&mut &bad[..], 16).is_err(), "{bad:?}");
        }
        let long = b"P6 00000000000000000000000000001 1 255 ";
        assert!(read_ppm(&mut &long[..], 16).is_err());
    }

    #[test]
    fn stderr_keeps_its_start_and_its_end() {
        let text: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let kept = capture(&text[..], Keep { head: 10, tail: 20 });
        assert!(kept.starts_with("abcdefghij\n[…]\n"), "{kept}");
        assert!(kept.ends_with(std::str::from_utf8(&text[text.len() - 20..]).expect("ascii")));
        let short = capture(
            &b"short"[..],
            Keep {
                head: 2,
                tail: 2048,
            },
        );
        assert_eq!(short, "short");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_a_frame_an_end_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = read_ppm(&mut &bytes[..], 8);
        }
    }
}
