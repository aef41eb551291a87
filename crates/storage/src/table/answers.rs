//! The answers concern: which of the bot's messages answered which photo,
//! so that a user's reply to an answer ("blur", "rotate left") can be
//! applied to the original photo. Telegram quotes only the answered message
//! in a reply (never what that message itself replied to), so the link must
//! be kept here, shared by every gateway.

use async_trait::async_trait;
use polybot_domain::{ChatId, ObjectKey, PredictionId};

use crate::Result;

/// The bot's answers, by their message, and the photo each was made from.
/// Kept as long as predictions (the configured [`crate::Retention`]).
#[async_trait]
pub trait SentAnswers: Send + Sync + 'static {
    /// Records that the bot's message `message_id` in `chat` answered
    /// `photo`. Idempotent: recording the same message again replaces it.
    async fn record_answer(
        &self,
        chat: ChatId,
        message_id: i64,
        photo: &AnsweredPhoto,
    ) -> Result<()>;
    /// The photo the bot's message `message_id` in `chat` answered; `None`
    /// when it is no answer of ours (a notice, help) or was forgotten.
    async fn answered_photo(&self, chat: ChatId, message_id: i64) -> Result<Option<AnsweredPhoto>>;
}

/// What one answer was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredPhoto {
    /// The prediction the answer showed.
    pub prediction_id: PredictionId,
    /// The user's photo it was made from (never the annotated copy).
    pub original_key: ObjectKey,
}
