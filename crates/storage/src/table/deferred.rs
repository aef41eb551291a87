//! The deferred-updates concern: updates the webhook acknowledged before
//! their answer was sent (a text answer can wait its turn in the outbox
//! for a while, and Telegram's webhook connections must not wait with it).
//! Each is kept, as Telegram sent it, until it is answered, so that a
//! gateway that dies meanwhile leaves it to another.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{BotId, ChatId, UpdateId};

use crate::Result;

#[async_trait]
pub trait DeferredUpdates: Send + Sync + 'static {
    /// Keeps `body` (the update's JSON) until [`Self::finish_deferred`];
    /// another gateway may take it up once `grace` has passed. Keeping an
    /// update kept already changes nothing.
    async fn defer_update(
        &self,
        bot: BotId,
        update: UpdateId,
        body: &str,
        grace: Duration,
    ) -> Result<()>;
    /// Up to `limit` updates kept past their grace and not finished (their
    /// gateway died or could not answer yet). Each is given `grace` again,
    /// so that two gateways looking at once do not both take it (the
    /// update's own claim makes a second take harmless anyway).
    async fn due_updates(&self, grace: Duration, limit: usize) -> Result<Vec<DeferredUpdate>>;
    /// The update was answered: forget it. Finishing one not kept is fine.
    async fn finish_deferred(&self, bot: BotId, update: UpdateId) -> Result<()>;
}

/// An update kept until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredUpdate {
    pub bot: BotId,
    pub update: UpdateId,
    /// The update's JSON, as Telegram sent it.
    pub body: String,
}

/// The chat a kept update (Telegram's JSON) is about, for erasing a chat:
/// the chat of its message (`message`, `edited_message`, `channel_post`…),
/// of the message under a pressed button (`callback_query`), or of a
/// membership change. `None` for an update without one (an inline query)
/// or that is not JSON.
pub(crate) fn chat_of_update(body: &str) -> Option<ChatId> {
    let update: serde_json::Value = serde_json::from_str(body).ok()?;
    // Every kind of update is an object under one key beside `update_id`.
    update.as_object()?.values().find_map(|kind| {
        let id = kind
            .pointer("/chat/id")
            .or_else(|| kind.pointer("/message/chat/id"))?;
        id.as_i64().map(ChatId)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_update_names_the_chat_of_its_message_or_button() {
        let message = r#"{"update_id":1,"message":{"message_id":5,"chat":{"id":-1001,"type":"group"},"text":"/forget"}}"#;
        assert_eq!(chat_of_update(message), Some(ChatId(-1001)));
        let press = r#"{"update_id":2,"callback_query":{"id":"9","from":{"id":3},"message":{"message_id":6,"chat":{"id":42}},"data":"x"}}"#;
        assert_eq!(chat_of_update(press), Some(ChatId(42)));
        let member = r#"{"update_id":3,"my_chat_member":{"chat":{"id":7},"from":{"id":3}}}"#;
        assert_eq!(chat_of_update(member), Some(ChatId(7)));
    }

    #[test]
    fn an_update_without_a_chat_names_none() {
        assert_eq!(chat_of_update(r#"{"update_id":1}"#), None);
        assert_eq!(
            chat_of_update(r#"{"update_id":1,"inline_query":{"id":"1","from":{"id":3}}}"#),
            None
        );
        assert_eq!(chat_of_update("not json"), None);
    }
}
