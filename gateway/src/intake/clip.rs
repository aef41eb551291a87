//! The clip path: a video, a GIF or a round video within Telegram's
//! download limit is stored under its update's key, recorded and queued as
//! one job of detection on its frames; a larger one is answered at once
//! with the limit, without downloading it.

use std::time::Duration;

use polybot_domain::{
    ChatId, ClipKind, FailureKind, Job, Lang, PredictionId, UpdateId, now_epoch, t,
};
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::inbound::PhotoRef;

/// Most frames a detector samples from a clip (its
/// `POLYBOT_VIDEO_MAX_FRAMES` default): a clip's expected cost is one
/// detection per second of it, up to this.
pub const EXPECTED_FRAMES_AT_MOST: u32 = 30;

/// How long a queued clip's cost counts in the scaling backlog at most
/// (its job normally removes it when it ends).
pub const CLIP_COST_HOLDS: Duration = Duration::from_secs(60 * 60);

/// A clip's extra cost over one photo, in photos: a detection per sampled
/// frame (one a second, from the first), the decoding about one more. A
/// clip whose length Telegram did not give (a file) counts as the longest.
pub fn extra_cost(seconds: Option<u32>) -> u32 {
    seconds.map_or(EXPECTED_FRAMES_AT_MOST, |s| {
        s.saturating_add(1).min(EXPECTED_FRAMES_AT_MOST)
    })
}

/// What a user reads about a clip over the download limit of `limit`
/// bytes.
pub fn too_large_text(kind: ClipKind, limit: u64, lang: Lang) -> String {
    t!(
        lang,
        "clip-too-large",
        clip = kind.noun(lang),
        mb = limit / (1024 * 1024),
    )
}

/// A clip to take: where it came from and what its message says of it.
pub(super) struct ClipRequest {
    pub update_id: UpdateId,
    pub chat: ChatId,
    pub message_id: i64,
    pub kind: ClipKind,
    /// Its length as Telegram says; `None` for a video sent as a file.
    pub seconds: Option<u32>,
    pub lang: Lang,
}

impl Intake {
    pub(super) async fn accept_clip(
        &self,
        request: ClipRequest,
        clip: &PhotoRef,
    ) -> Result<Handled, IntakeError> {
        let ClipRequest {
            update_id,
            chat,
            message_id,
            kind,
            seconds,
            lang,
        } = request;
        if clip.size > self.max_download {
            info!(size = clip.size, %kind, "clip over the download limit");
            let text = too_large_text(kind, self.max_download, lang);
            return self.answer(chat, message_id, &text).await;
        }
        let original_key = match self.fetch_original(update_id, chat, clip).await? {
            Ok(key) => key,
            // Telegram reported a smaller size than it would serve.
            Err(FailureKind::TooLarge) => {
                let text = too_large_text(kind, self.max_download, lang);
                return self.answer(chat, message_id, &text).await;
            }
            Err(_) => {
                let text = FailureKind::CorruptVideo.user_message(lang);
                return self.answer(chat, message_id, &text).await;
            }
        };
        let prediction_id = PredictionId::for_update(self.bot, update_id);
        tracing::Span::current().record("prediction_id", tracing::field::display(prediction_id));
        let job = Job::video(
            prediction_id,
            chat,
            message_id,
            update_id,
            original_key,
            kind,
        )
        .in_language(lang);
        // Counted before it is queued, so no detector can end it first.
        let until = now_epoch() + CLIP_COST_HOLDS.as_secs_f64();
        self.backends
            .table
            .add_cost(prediction_id, extra_cost(seconds), until)
            .await?;
        self.submit(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_costs_a_detection_a_second_up_to_the_frames_sampled() {
        assert_eq!(extra_cost(Some(0)), 1);
        assert_eq!(extra_cost(Some(6)), 7);
        assert_eq!(extra_cost(Some(600)), EXPECTED_FRAMES_AT_MOST);
        assert_eq!(extra_cost(None), EXPECTED_FRAMES_AT_MOST);
    }

    #[test]
    fn the_too_large_answer_names_the_limit() {
        let text = too_large_text(ClipKind::Animation, 20 * 1024 * 1024, Lang::En);
        assert!(text.contains("GIF") && text.contains("20 MB"), "{text}");
    }
}
