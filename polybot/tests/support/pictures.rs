//! Comparing the pictures the bot sent: decoded from the emulator's files
//! and compared in grey, up to JPEG's losses.

use image::GrayImage;
use tg_emulator::{EmulatorClient, SentMessage};

/// The picture a message of the bot carries, in grey.
pub async fn picture(client: &EmulatorClient, m: &SentMessage) -> GrayImage {
    let file = m.file.as_ref().expect("a picture");
    let bytes = client.file_bytes(&file.file_id).await.expect("bytes");
    image::load_from_memory(&bytes)
        .expect("decodable")
        .to_luma8()
}

/// The mean absolute difference of two pictures of the same size, in grey
/// levels.
pub fn mean_difference(a: &GrayImage, b: &GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| u64::from(p.0[0].abs_diff(q.0[0])))
        .sum();
    sum as f64 / f64::from(a.width() * a.height())
}
