//! Clips and every still picture a phone sends, as a chat user meets them,
//! through the real binaries (`polybot gateway`, `polybot detector` with
//! the real model and ffmpeg) on one embedded-backend data folder, against
//! the Telegram emulator. The clips are made in the test from the sample
//! photos with the same ffmpeg: an H.264 High-profile video with B-frames
//! (as phones record), a GIF (Telegram's silent MP4) and a round video.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, ffmpeg, photos).

mod support;

use std::time::Duration;

use polybot_inference::video::{ClipFormat, default_ffmpeg_path, encode_clip};
use support::chat::{User, caption};
use support::{Ground, Queue, WAIT, photo};
use tg_emulator::{SentKind, SentMessage, StickerKind, UserMessageOptions, VideoMeta};

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

/// A clip of the sample photos `segments` (name, seconds) at 10 frames a
/// second, in `format`.
fn clip(segments: &[(&str, u64)], format: ClipFormat) -> Vec<u8> {
    let pictures: Vec<(Vec<u8>, Duration)> = segments
        .iter()
        .map(|(name, secs)| (photo(name), Duration::from_secs(*secs)))
        .collect();
    let segments: Vec<(&[u8], Duration)> = pictures
        .iter()
        .map(|(bytes, d)| (bytes.as_slice(), *d))
        .collect();
    encode_clip(&default_ffmpeg_path(), &segments, 10, format).expect("encode the clip")
}

/// The caption of an answer: the first item's (an album's says it all).
fn first_caption(answer: &[SentMessage]) -> &str {
    answer.first().map(caption).unwrap_or_default()
}

/// Each answer's pictures decode as JPEGs of a sensible size.
async fn pictures_are_real(user: &User<'_>, answer: &[SentMessage]) {
    for m in answer.iter().filter(|m| m.kind == SentKind::Photo) {
        let picture = support::pictures::picture(user.client, m).await;
        assert!(
            picture.width() >= 200 && picture.height() >= 200,
            "{}×{}",
            picture.width(),
            picture.height()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_video_a_gif_and_a_round_video_are_answered_with_their_objects_and_when() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let _detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 7301 };
    let none = UserMessageOptions::default();

    // People, then a bus: both named, each with when it was seen.
    let video = clip(&[("zidane.jpg", 3), ("bus.jpg", 3)], ClipFormat::H264);
    let sent = client
        .send_user_video(user.chat, video, &VideoMeta::new(1280, 720, 6), &none)
        .await
        .expect("send the video");
    let answer = user.answers_to(sent.message_id).await;
    let text = first_caption(&answer);
    assert!(text.contains("person \u{d7}"), "{text}");
    assert!(text.contains("bus \u{d7}1"), "{text}");
    assert!(text.contains(" at 0:0"), "when each was seen: {text}");
    assert!(
        (2..=4).contains(&answer.len()),
        "key frames of the people and of the bus: {answer:#?}"
    );
    assert!(answer.iter().all(|m| m.kind == SentKind::Photo));
    assert!(
        answer.iter().all(|m| m.media_group_id.is_some()),
        "one album"
    );
    pictures_are_real(&user, &answer).await;

    // A GIF of the bus.
    let gif = clip(&[("bus.jpg", 2)], ClipFormat::Animation);
    let sent = client
        .send_user_animation(user.chat, gif, &VideoMeta::new(810, 1080, 2), &none)
        .await
        .expect("send the GIF");
    let answer = user.answers_to(sent.message_id).await;
    assert!(
        first_caption(&answer).contains("bus \u{d7}1"),
        "{answer:#?}"
    );

    // A round video of people.
    let note = clip(&[("zidane.jpg", 2)], ClipFormat::VideoNote);
    let sent = client
        .send_user_video_note(user.chat, note, 384, 2, &none)
        .await
        .expect("send the round video");
    let answer = user.answers_to(sent.message_id).await;
    assert!(first_caption(&answer).contains("person"), "{answer:#?}");
    pictures_are_real(&user, &answer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_clip_a_huge_clip_and_odd_pictures_each_get_one_clear_answer() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let _detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 7302 };
    let none = UserMessageOptions::default();

    // A video cut off in the middle (its index, at the end, is lost).
    let mut broken = clip(&[("bus.jpg", 4)], ClipFormat::H264);
    broken.truncate(broken.len() / 2);
    let sent = client
        .send_user_video(user.chat, broken, &VideoMeta::default(), &none)
        .await
        .expect("send");
    let answer = user.answers_to(sent.message_id).await;
    assert_eq!(answer.len(), 1, "{answer:#?}");
    let text = answer[0].text.as_deref().unwrap_or_default();
    assert!(
        text.contains("damaged or incomplete")
            || text.contains("format isn\u{2019}t supported")
            || text.contains("format isn't supported"),
        "{text}"
    );

    // Over the Bot API's 20 MB: answered at once, never downloaded.
    let huge = vec![0u8; 21 * 1024 * 1024];
    let sent = client
        .send_user_video(user.chat, huge, &VideoMeta::default(), &none)
        .await
        .expect("send");
    let answer = user.answers_to(sent.message_id).await;
    assert_eq!(answer.len(), 1, "{answer:#?}");
    let text = answer[0].text.as_deref().unwrap_or_default();
    assert!(
        text.contains("too large") && text.contains("20 MB"),
        "{text}"
    );

    // A still sticker of the bus photo: a WebP, detected.
    let bus = image::load_from_memory(&photo("bus.jpg")).expect("bus.jpg");
    let sticker = bus.resize(512, 512, image::imageops::FilterType::Triangle);
    let mut webp = std::io::Cursor::new(Vec::new());
    sticker
        .write_to(&mut webp, image::ImageFormat::WebP)
        .expect("encode WebP");
    let sent = client
        .send_user_sticker(user.chat, webp.into_inner(), StickerKind::Static, &none)
        .await
        .expect("send");
    let answer = user.answers_to(sent.message_id).await;
    assert!(caption(&answer[0]).contains("bus \u{d7}1"), "{answer:#?}");

    // An animated sticker: one line saying what can be looked at.
    let sent = client
        .send_user_sticker(
            user.chat,
            b"{\"tgs\":1}".to_vec(),
            StickerKind::Animated,
            &none,
        )
        .await
        .expect("send");
    let answer = user.answers_to(sent.message_id).await;
    assert_eq!(answer.len(), 1);
    let text = answer[0].text.as_deref().unwrap_or_default();
    assert!(text.contains("animated stickers"), "{text}");

    // An iPhone photo sent as a file: the format and the fix.
    let heic = UserMessageOptions {
        file_name: Some("IMG_0420.HEIC".into()),
        mime_type: Some("image/heic".into()),
        ..UserMessageOptions::default()
    };
    let sent = client
        .send_user_document(user.chat, b"....ftypheic".to_vec(), &heic)
        .await
        .expect("send");
    let answer = user.answers_to(sent.message_id).await;
    assert_eq!(answer.len(), 1);
    let text = answer[0].text.as_deref().unwrap_or_default();
    assert!(
        text.contains("HEIC") && text.contains("as a photo"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_clip_and_a_failing_album_send_still_give_one_answer() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let _detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 7303 };

    client
        .fail_next("sendMediaGroup", 1, 502)
        .await
        .expect("fault");
    let video = clip(&[("zidane.jpg", 2), ("bus.jpg", 2)], ClipFormat::H264);
    let sent = client
        .send_user_video(
            user.chat,
            video,
            &VideoMeta::new(1280, 720, 4),
            &UserMessageOptions::default(),
        )
        .await
        .expect("send");
    client.redeliver(sent.update_id).await.expect("redeliver");
    let answer = user.answers_to(sent.message_id).await;
    assert!(first_caption(&answer).contains("bus"), "{answer:#?}");
    // Long enough for a second answer to show, if there were one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let groups = client.media_groups(user.chat).await.expect("groups");
    assert_eq!(groups.len(), 1, "one album: {groups:#?}");
    let quoting = user
        .messages()
        .await
        .into_iter()
        .filter(|m| m.reply_to_message_id == sent.message_id)
        .filter(|m| m.text.is_none())
        .count();
    assert_eq!(quoting, groups[0].len(), "nothing but the one album");
    assert!(WAIT > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detector_killed_during_a_clip_leaves_it_to_the_next_which_answers_it_once() {
    // A short visibility, so the killed detector's job comes back soon.
    let ground = Ground::new(Queue {
        visibility: 6,
        max_receives: 3,
    })
    .await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let mut detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = User { client, chat: 7304 };
    let backends = support::open_backends(ground.data.clone(), &ground.queue).await;

    // Two minutes: 30 sampled frames, seconds of work on the lane.
    let video = clip(&[("zidane.jpg", 60), ("bus.jpg", 60)], ClipFormat::H264);
    let sent = client
        .send_user_video(
            user.chat,
            video,
            &VideoMeta::new(1280, 720, 120),
            &UserMessageOptions::default(),
        )
        .await
        .expect("send");
    // Killed as soon as it holds the job.
    let started = std::time::Instant::now();
    loop {
        let stats = backends.jobs.stats().await.expect("stats");
        if stats.in_flight == 1 {
            break;
        }
        assert!(started.elapsed() < WAIT, "the detector takes the clip");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    detector.kill().await;
    let _next = ground.detector(&ports).await;

    let answer = user.answers_to(sent.message_id).await;
    assert!(first_caption(&answer).contains("bus"), "{answer:#?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let groups = client.media_groups(user.chat).await.expect("groups");
    assert_eq!(groups.len(), 1, "answered once: {groups:#?}");
    let sorry = user
        .messages()
        .await
        .into_iter()
        .filter(|m| m.text.as_deref().is_some_and(|t| t.starts_with("Sorry")))
        .count();
    assert_eq!(sorry, 0, "no apology: the clip was answered");
}
