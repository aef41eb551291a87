//! Black-box tests of the caption grammar as a chat user meets it: photos
//! with captions go through the Telegram Bot API emulator to the whole mesh
//! on the embedded backend (gateway, queue, detector with the real model,
//! Results over gRPC), and the answers are read back from the emulator.
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use image::GrayImage;
use polybot_testkit::{caption, jpeg, sample_photo, text};
use support::WAIT;
use support::in_process::InProcess;
use support::pictures::mean_difference;
use tg_emulator::{EmulatorClient, SentKind, SentMessage};

/// The bot, and a user who talks to it.
struct Bot(InProcess);

impl Bot {
    async fn start() -> Self {
        Self(InProcess::without_notice().await)
    }

    fn client(&self) -> &EmulatorClient {
        &self.0.client
    }

    /// Sends a photo with `caption` in a private chat of its own, and
    /// returns the one answer, which must quote it.
    async fn ask(&self, chat: i64, photo: Vec<u8>, caption: &str) -> SentMessage {
        let options = tg_emulator::UserMessageOptions {
            caption: Some(caption.to_owned()),
            ..Default::default()
        };
        let sent = self
            .client()
            .send_user_photo(chat, photo, &options)
            .await
            .expect("send");
        let m = self
            .client()
            .wait_for_messages(chat, 1, WAIT)
            .await
            .expect("the bot answers in time");
        assert_eq!(m.len(), 1, "{caption:?}: one answer: {m:#?}");
        assert_eq!(
            m[0].reply_to_message_id, sent.message_id,
            "{caption:?}: the answer quotes the photo"
        );
        m.into_iter().next().expect("one message")
    }

    /// The picture an answer carries, in grey.
    async fn picture(&self, m: &SentMessage) -> GrayImage {
        support::pictures::picture(self.client(), m).await
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

/// The course's grey (0.2989 R + 0.5870 G + 0.1140 B), rounded: what every
/// filter starts from.
fn grey(photo: &[u8]) -> GrayImage {
    let rgb = image::load_from_memory(photo).expect("decodable").to_rgb8();
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0.map(f64::from);
        image::Luma([(0.2989 * r + 0.5870 * g + 0.1140 * b).round() as u8])
    })
}

/// Asserts `got` is `want` up to JPEG's losses (the photo was decoded, the
/// answer re-encoded at quality 90), and clearly not `wrong`, the same
/// photo turned another way with the same sides.
fn assert_turned(got: &GrayImage, want: &GrayImage, wrong: &GrayImage, what: &str) {
    assert_eq!(got.dimensions(), want.dimensions(), "{what}");
    let off = mean_difference(got, want);
    let other = mean_difference(got, wrong);
    assert!(off < 3.0, "{what}: {off:.2} grey levels off on average");
    assert!(
        other > 10.0 * off.max(1.0),
        "{what}: as close to the other turn ({other:.2}) as to this one ({off:.2})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_turns_by_degrees_in_the_direction_asked_and_says_so_in_words() {
    let bot = Bot::start().await;
    // 810×1080, taller than wide, so a quarter turn shows in the sides.
    let bus = sample_photo("bus.jpg");
    let upright = grey(&bus);
    assert_eq!(upright.dimensions(), (810, 1080));
    let clockwise = image::imageops::rotate90(&upright);
    let half = image::imageops::rotate180(&upright);
    let anticlockwise = image::imageops::rotate270(&upright);

    let answer = bot.ask(9101, bus.clone(), "rotate 90").await;
    assert_eq!(answer.kind, SentKind::Photo, "{answer:#?}");
    assert_eq!(caption(&answer), "rotated 90° clockwise");
    let got = bot.picture(&answer).await;
    assert_eq!(got.dimensions(), (1080, 810));
    assert_turned(&got, &clockwise, &anticlockwise, "rotate 90");

    let answer = bot.ask(9102, bus.clone(), "rotate 180").await;
    assert_eq!(caption(&answer), "rotated 180°");
    let got = bot.picture(&answer).await;
    assert_eq!(got.dimensions(), (810, 1080));
    assert_turned(&got, &half, &upright, "rotate 180");

    for (chat, request) in [(9103, "rotate left"), (9104, "Rotate 90 anticlockwise")] {
        let answer = bot.ask(chat, bus.clone(), request).await;
        assert_eq!(caption(&answer), "rotated 90° anticlockwise", "{request:?}");
        let got = bot.picture(&answer).await;
        assert_turned(&got, &anticlockwise, &clockwise, request);
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_word_caption_that_is_no_command_gets_detection() {
    let bot = Bot::start().await;
    for (chat, words) in [(9201, "Lunch"), (9202, "🐶"), (9203, "Paris")] {
        let answer = bot.ask(chat, sample_photo("bus.jpg"), words).await;
        assert_eq!(answer.kind, SentKind::Photo, "{words:?}: {answer:#?}");
        assert!(
            caption(&answer).contains("bus ×1"),
            "{words:?}: the counts of what is in the photo: {answer:#?}"
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_command_suggests_the_action_it_is_nearest_to() {
    let bot = Bot::start().await;
    let answer = bot.ask(9301, sample_photo("bus.jpg"), "/blurr").await;
    assert_eq!(answer.kind, SentKind::Text, "{answer:#?}");
    let reply = text(&answer);
    assert!(reply.contains("Did you mean blur?"), "{reply}");
    assert!(
        reply.contains("\"blur 16\""),
        "the list of actions: {reply}"
    );
    // A command like nothing the bot does gets the list, no guess.
    let answer = bot.ask(9302, sample_photo("bus.jpg"), "/sharpen").await;
    let reply = text(&answer);
    assert!(
        !reply.contains("Did you mean") && reply.contains("\"blur 16\""),
        "{reply}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_picture_too_small_for_its_filter_gets_the_fix_for_that_filter() {
    let bot = Bot::start().await;
    let picture = |w, h| {
        jpeg(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 4) as u8, 96])
        }))
    };
    // One pixel wide: contour needs two pixels across.
    let answer = bot.ask(9401, picture(1, 60), "contour").await;
    assert_eq!(answer.kind, SentKind::Text, "{answer:#?}");
    let reply = text(&answer);
    assert!(
        reply.contains("contour") && reply.contains("larger photo"),
        "{reply}"
    );
    assert!(
        !reply.contains("blur"),
        "no blur advice for contour: {reply}"
    );
    // 10×10 under a 16×16 blur: a smaller size fits.
    let answer = bot.ask(9402, picture(10, 10), "blur").await;
    let reply = text(&answer);
    assert!(reply.contains("\"blur 4\""), "{reply}");
    bot.stop().await;
}
