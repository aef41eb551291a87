//! The [`SentAnswers`] contract.

use polybot_domain::{ChatId, ObjectKey, PredictionId};

use super::random_i64;
use crate::{AnsweredPhoto, SentAnswers};

/// An answer, once recorded, leads back to the photo it was made from, in
/// its own chat only; other messages lead nowhere.
pub async fn answers(table: &dyn SentAnswers) {
    let chat = ChatId(random_i64());
    let other_chat = ChatId(random_i64());
    let first = photo(chat);
    table
        .record_answer(chat, 41, &first)
        .await
        .expect("table: record_answer");
    assert_eq!(
        read(table, chat, 41).await,
        Some(first.clone()),
        "table: a recorded answer leads to its photo"
    );
    assert_eq!(
        read(table, chat, 42).await,
        None,
        "table: a message that is no recorded answer leads nowhere"
    );
    assert_eq!(
        read(table, other_chat, 41).await,
        None,
        "table: message ids are per chat: the same id in another chat is another message"
    );
    table
        .record_answer(chat, 41, &first)
        .await
        .expect("table: record_answer is idempotent");
    let second = photo(chat);
    table
        .record_answer(chat, 43, &second)
        .await
        .expect("table: record_answer");
    assert_eq!(read(table, chat, 43).await, Some(second));
    assert_eq!(
        read(table, chat, 41).await,
        Some(first),
        "table: each answer keeps its own photo"
    );
}

fn photo(chat: ChatId) -> AnsweredPhoto {
    let prediction_id = PredictionId::new();
    AnsweredPhoto {
        prediction_id,
        original_key: ObjectKey::original(chat, prediction_id, "jpg"),
    }
}

async fn read(table: &dyn SentAnswers, chat: ChatId, message_id: i64) -> Option<AnsweredPhoto> {
    table
        .answered_photo(chat, message_id)
        .await
        .unwrap_or_else(|e| panic!("table: answered_photo({chat}, {message_id}) failed: {e}"))
}
