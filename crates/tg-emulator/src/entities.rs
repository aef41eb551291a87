//! The `MessageEntity` list Telegram attaches to a user's text or caption.
//!
//! Clients do not send entities for plain typing: Telegram's servers find
//! `/commands` and `@mentions` themselves, and bots (teloxide's command
//! parser included) rely on them. The rules follow TDLib's
//! `find_bot_commands` and `find_mentions` closely enough for tests; offsets
//! and lengths are in UTF-16 code units, as on the wire.

use serde_json::{Value, json};

/// Longest command name Telegram recognises in a text (not the 32 allowed
/// for `setMyCommands`: users may type longer ones).
const MAX_COMMAND_CHARS: usize = 64;
/// Telegram usernames are 5–32 characters.
const MIN_USERNAME_CHARS: usize = 5;
const MAX_USERNAME_CHARS: usize = 32;
/// The bot name after `/command@` is checked less strictly by Telegram.
const MIN_COMMAND_BOT_CHARS: usize = 3;

/// One entity found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entity {
    /// `bot_command` or `mention`.
    pub kind: &'static str,
    /// Start, in UTF-16 code units.
    pub offset: usize,
    /// Length, in UTF-16 code units.
    pub length: usize,
}

impl Entity {
    pub fn to_json(&self) -> Value {
        json!({ "type": self.kind, "offset": self.offset, "length": self.length })
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// TDLib's `is_word_character`: letters and digits of any script, and `_`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters that, right before or after a `/command`, stop Telegram from
/// treating it as one (`a/b`, `//x`, `</x>`, `\x`).
fn blocks_command(c: char) -> bool {
    is_word_char(c) || matches!(c, '/' | '<' | '>' | '\\')
}

/// Every `bot_command` and `mention` entity of `text`, ordered by offset.
pub(crate) fn find_entities(text: &str) -> Vec<Entity> {
    let chars: Vec<char> = text.chars().collect();
    // UTF-16 offset of each char index (plus the end), for the wire format.
    let mut utf16 = Vec::with_capacity(chars.len() + 1);
    let mut at = 0;
    for c in &chars {
        utf16.push(at);
        at += c.len_utf16();
    }
    utf16.push(at);

    let run_end = |from: usize| {
        let mut i = from;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        i
    };

    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = i.checked_sub(1).map(|p| chars[p]);
        if c == '/' && !prev.is_some_and(blocks_command) {
            let name_end = run_end(i + 1);
            let name_len = name_end - (i + 1);
            let mut end = name_end;
            let mut next = name_end;
            if name_end < chars.len() && chars[name_end] == '@' {
                next = run_end(name_end + 1);
                let bot_len = next - (name_end + 1);
                if (MIN_COMMAND_BOT_CHARS..=MAX_USERNAME_CHARS).contains(&bot_len) {
                    end = next;
                }
            }
            let followed_ok = chars.get(next).is_none_or(|&n| !blocks_command(n));
            if (1..=MAX_COMMAND_CHARS).contains(&name_len) && followed_ok {
                found.push(Entity {
                    kind: "bot_command",
                    offset: utf16[i],
                    length: utf16[end] - utf16[i],
                });
                i = end;
                continue;
            }
            i = name_end.max(i + 1);
            continue;
        }
        // `a@b` is an address, not a mention; `/cmd@bot` was consumed above.
        if c == '@' && !prev.is_some_and(|p| is_word_char(p) || p == '@') {
            let end = run_end(i + 1);
            let len = end - (i + 1);
            let followed_ok = chars.get(end).is_none_or(|&n| !is_word_char(n) && n != '@');
            if (MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&len) && followed_ok {
                found.push(Entity {
                    kind: "mention",
                    offset: utf16[i],
                    length: utf16[end] - utf16[i],
                });
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    found
}

/// The entities of `text` as a JSON array, or `None` when there are none
/// (Telegram omits the field then).
pub(crate) fn entities_json(text: &str) -> Option<Value> {
    let found = find_entities(text);
    (!found.is_empty()).then(|| Value::Array(found.iter().map(Entity::to_json).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&'static str, usize, usize)> {
        find_entities(text)
            .into_iter()
            .map(|e| (e.kind, e.offset, e.length))
            .collect()
    }

    #[test]
    fn leading_command_with_and_without_bot_name() {
        assert_eq!(found("/start"), vec![("bot_command", 0, 6)]);
        assert_eq!(found("/start arg"), vec![("bot_command", 0, 6)]);
        assert_eq!(
            found("/detect@polybot_test_bot"),
            vec![("bot_command", 0, 24)]
        );
        assert_eq!(found("/"), vec![]);
        assert_eq!(found("/ start"), vec![]);
    }

    #[test]
    fn commands_anywhere_after_a_non_word_character() {
        assert_eq!(found("look /detect"), vec![("bot_command", 5, 7)]);
        assert_eq!(
            found("/a\n/b_2 (/c)"),
            vec![
                ("bot_command", 0, 2),
                ("bot_command", 3, 4),
                ("bot_command", 9, 2)
            ]
        );
        // Paths, fractions and escaped slashes are not commands.
        assert_eq!(found("a/b 1/2 //x \\/y /xя"), vec![]);
    }

    #[test]
    fn mentions_need_five_to_32_name_characters() {
        assert_eq!(
            found("hey @polybot_test_bot look"),
            vec![("mention", 4, 17)]
        );
        assert_eq!(found("@abcd @abcde"), vec![("mention", 6, 6)]);
        assert_eq!(found(&format!("@{}", "a".repeat(33))), vec![]);
        assert_eq!(found("mail me@example_host.org"), vec![]);
        assert_eq!(found("@ann!"), vec![]);
        assert_eq!(found("@annie!"), vec![("mention", 0, 6)]);
    }

    #[test]
    fn bot_name_of_a_command_is_not_a_mention() {
        assert_eq!(
            found("/detect@polybot_test_bot @someone_else"),
            vec![("bot_command", 0, 24), ("mention", 25, 13)]
        );
    }

    #[test]
    fn offsets_count_utf16_units_after_emoji() {
        // 🚌 is one char but two UTF-16 units; é is one unit.
        assert_eq!(found("🚌 /detect"), vec![("bot_command", 3, 7)]);
        assert_eq!(
            found("é🚌🚌 @polybot_test_bot /x@polybot_test_bot"),
            vec![("mention", 6, 17), ("bot_command", 24, 19)]
        );
        let json = entities_json("🚌 /detect").unwrap();
        assert_eq!(
            json,
            json!([{"type": "bot_command", "offset": 3, "length": 7}])
        );
        assert_eq!(entities_json("nothing here"), None);
    }
}
