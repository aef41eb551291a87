//! Telegram's privacy mode for bots in groups, on by default as Telegram's
//! is (`@BotFather` `/setprivacy`). Under it a group message reaches the
//! bot (getUpdates and webhook) only when it is:
//! - a command meant for it: `/command@this_bot` at the start of the text
//!   or caption, or a bare `/command` when this bot was the last bot to post
//!   in the group (with one bot: when it has posted there);
//! - a reply to one of the bot's messages;
//! - a message sent via the bot (inline);
//! - a service message (members joined or left, a pinned message…).
//!
//! Bare `@mentions` are not delivered. Private chats are not affected.
//! Messages held back are still recorded, so a test can tell that a user
//! sent them and the bot never saw them.

use serde_json::Value;

use crate::entities::find_entities;

/// Fields that make a message a service message.
const SERVICE_FIELDS: [&str; 12] = [
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "message_auto_delete_timer_changed",
    "chat_shared",
];

/// Whether a message in a chat reaches a bot in privacy mode. `bot_id` and
/// `bot_username` name the bot; `bot_posted_last` says whether it was the
/// last bot to post in the chat.
pub(crate) fn delivers(
    message: &Value,
    bot_id: i64,
    bot_username: &str,
    bot_posted_last: bool,
) -> bool {
    let chat_type = message
        .pointer("/chat/type")
        .and_then(Value::as_str)
        .unwrap_or("private");
    if !matches!(chat_type, "group" | "supergroup") {
        return true;
    }
    let from_bot = |pointer: &str| message.pointer(pointer).and_then(Value::as_i64) == Some(bot_id);
    if from_bot("/reply_to_message/from/id") || from_bot("/via_bot/id") {
        return true;
    }
    if SERVICE_FIELDS.iter().any(|f| message.get(*f).is_some()) {
        return true;
    }
    let text = message
        .get("text")
        .or_else(|| message.get("caption"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match leading_command(text) {
        Some(Some(to)) => to.eq_ignore_ascii_case(bot_username),
        Some(None) => bot_posted_last,
        None => false,
    }
}

/// The bot a leading `/command` names: `Some(Some(name))` for
/// `/command@name`, `Some(None)` for a bare `/command`, `None` when the
/// text does not start with a command (as Telegram marks them).
fn leading_command(text: &str) -> Option<Option<&str>> {
    let first = find_entities(text).into_iter().next()?;
    if first.kind != "bot_command" || first.offset != 0 {
        return None;
    }
    // Offset 0, and a command is ASCII: its length in UTF-16 is in bytes.
    let command = text.get(..first.length)?;
    Some(command.split_once('@').map(|(_, to)| to))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BOT: i64 = 123_456;
    const NAME: &str = "polybot_test_bot";

    fn group(extra: Value) -> Value {
        let mut message = json!({
            "message_id": 5,
            "chat": {"id": -42, "type": "supergroup", "title": "G"},
            "from": {"id": 1000, "is_bot": false, "first_name": "Ann"},
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            message[k] = v.clone();
        }
        message
    }

    fn delivered(extra: Value, posted: bool) -> bool {
        delivers(&group(extra), BOT, NAME, posted)
    }

    #[test]
    fn a_command_for_this_bot_is_delivered_in_text_or_caption() {
        assert!(delivered(
            json!({"text": "/detect@polybot_test_bot"}),
            false
        ));
        assert!(delivered(
            json!({"caption": "/Blur@Polybot_Test_Bot 8", "photo": []}),
            false
        ));
        assert!(!delivered(json!({"text": "/detect@other_bot"}), true));
    }

    #[test]
    fn a_bare_command_is_delivered_only_when_the_bot_posted_last() {
        assert!(!delivered(json!({"text": "/detect"}), false));
        assert!(delivered(json!({"text": "/detect"}), true));
        // Not at the start: not a command for anyone.
        assert!(!delivered(
            json!({"text": "look /detect@polybot_test_bot"}),
            true
        ));
    }

    #[test]
    fn mentions_and_chatter_are_not_delivered() {
        assert!(!delivered(json!({"text": "@polybot_test_bot look"}), true));
        assert!(!delivered(
            json!({"caption": "@polybot_test_bot blur", "photo": []}),
            true
        ));
        assert!(!delivered(json!({"photo": []}), true));
        assert!(!delivered(json!({"text": "hello"}), true));
    }

    #[test]
    fn replies_to_the_bot_via_the_bot_and_service_messages_are_delivered() {
        let reply =
            json!({"text": "thanks", "reply_to_message": {"message_id": 4, "from": {"id": BOT}}});
        assert!(delivered(reply, false));
        let reply_to_user =
            json!({"text": "nice", "reply_to_message": {"message_id": 3, "from": {"id": 1001}}});
        assert!(!delivered(reply_to_user, true));
        assert!(delivered(
            json!({"text": "x", "via_bot": {"id": BOT}}),
            false
        ));
        assert!(delivered(json!({"new_chat_members": [{"id": 7}]}), false));
    }

    #[test]
    fn private_chats_get_everything() {
        let message = json!({"chat": {"id": 9, "type": "private"}, "text": "@someone hi"});
        assert!(delivers(&message, BOT, NAME, false));
    }
}
