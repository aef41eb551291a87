//! Telegram's length limits, so that no answer is refused for its length:
//! a caption holds at most 1,024 characters and a text 4,096, counted in
//! UTF-16 code units (as Telegram counts them: an emoji such as 🐶 is two).
//! A send over the limit is refused with a 400 that no retry can fix, so a
//! message is fitted before it is queued: a caption too long is cut at a
//! line or word boundary and ends with "…", and the rest follows as text;
//! a text too long goes as several texts; an edit (which cannot be split)
//! is shortened.

use crate::outbox::OutMessage;

/// The most a caption may hold.
pub const CAPTION_LIMIT: usize = 1024;
/// The most a text message may hold.
pub const TEXT_LIMIT: usize = 4096;

/// What marks a cut.
const ELLIPSIS: &str = "…";

/// Telegram's length of `s`: UTF-16 code units.
pub fn telegram_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `message` as one or more messages that each fit, in the order they are
/// to be sent; the first is the answer itself.
pub fn fit(mut message: OutMessage) -> Vec<OutMessage> {
    if let Some((caption, reply_to)) = message.caption_mut() {
        let (head, rest) = caption_and_rest(caption);
        *caption = head;
        return with_rest(message, rest, reply_to);
    }
    match message {
        // A keyboard stays under the first part, the message it belongs to.
        OutMessage::Text {
            text,
            reply_to,
            mut keyboard,
        } => split(&text, TEXT_LIMIT)
            .into_iter()
            .map(|text| OutMessage::Text {
                text,
                reply_to,
                keyboard: keyboard.take(),
            })
            .collect(),
        OutMessage::Edit {
            message_id,
            text,
            keyboard,
        } => vec![OutMessage::Edit {
            message_id,
            text: shorten(&text, TEXT_LIMIT),
            keyboard,
        }],
        other => vec![other],
    }
}

fn with_rest(first: OutMessage, rest: Vec<String>, reply_to: Option<i64>) -> Vec<OutMessage> {
    std::iter::once(first)
        .chain(rest.into_iter().map(|text| OutMessage::Text {
            text,
            reply_to,
            keyboard: None,
        }))
        .collect()
}

/// A caption that fits, and the texts that carry the rest of it.
fn caption_and_rest(caption: &str) -> (String, Vec<String>) {
    if telegram_len(caption) <= CAPTION_LIMIT {
        return (caption.to_owned(), Vec::new());
    }
    // Room for " …".
    let (head, tail) = cut(caption, CAPTION_LIMIT - 2);
    let tail = tail.trim_start();
    let rest = if tail.is_empty() {
        Vec::new()
    } else {
        split(tail, TEXT_LIMIT)
    };
    (marked(head), rest)
}

/// `head` with the mark of a cut: "person ×2, car ×1, …" after a whole
/// item of a list, "…" after a word.
fn marked(head: &str) -> String {
    let head = head.trim_end();
    if head.ends_with(',') {
        format!("{head} {ELLIPSIS}")
    } else {
        format!("{head}{ELLIPSIS}")
    }
}

/// `text` shortened to `limit`, ending with "…" when it was cut.
fn shorten(text: &str, limit: usize) -> String {
    if telegram_len(text) <= limit {
        return text.to_owned();
    }
    marked(cut(text, limit - 2).0)
}

/// `text` in pieces of at most `limit`, cut at boundaries where it can be.
fn split(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while telegram_len(rest) > limit {
        let (head, tail) = cut(rest, limit);
        pieces.push(head.trim_end().to_owned());
        rest = tail.trim_start();
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// The longest head of `text` within `limit` code units that ends at a line
/// break, else after a ", " or a space, else at any character; and the rest.
/// A head of a quarter of the room at least, so a boundary far back does not
/// make many small pieces.
fn cut(text: &str, limit: usize) -> (&str, &str) {
    let mut units = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        if units + c.len_utf16() > limit {
            break;
        }
        units += c.len_utf16();
        end = at + c.len_utf8();
    }
    let hard = &text[..end];
    let floor = end / 4;
    let boundary = [
        hard.rfind('\n'),
        hard.rfind(", ").map(|i| i + 1),
        hard.rfind(' '),
    ]
    .into_iter()
    .flatten()
    .find(|&i| i > floor && i > 0);
    let at = boundary.unwrap_or(end);
    (&text[..at], &text[at..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn photo(caption: &str) -> OutMessage {
        OutMessage::Photo {
            jpeg: Bytes::from_static(b"jpeg"),
            caption: caption.to_owned(),
            reply_to: Some(7),
            keyboard: None,
        }
    }

    fn texts(messages: &[OutMessage]) -> Vec<&str> {
        messages
            .iter()
            .map(|m| match m {
                OutMessage::Text { text, .. } => text.as_str(),
                OutMessage::Photo { caption, .. }
                | OutMessage::Document { caption, .. }
                | OutMessage::MediaGroup { caption, .. } => caption.as_str(),
                OutMessage::Edit { text, .. } => text.as_str(),
                OutMessage::Delete { .. } | OutMessage::Saved { .. } => "",
            })
            .collect()
    }

    #[test]
    fn a_caption_at_the_limit_in_utf16_units_is_sent_as_it_is() {
        // 512 dogs are 1,024 UTF-16 units (and 512 chars, 2,048 bytes).
        let dogs = "🐶".repeat(512);
        assert_eq!(telegram_len(&dogs), CAPTION_LIMIT);
        let sent = fit(photo(&dogs));
        assert_eq!(texts(&sent), [dogs.as_str()]);
    }

    #[test]
    fn a_caption_one_unit_over_is_cut_and_its_rest_follows_as_a_reply_text() {
        let dogs = format!("{} {}", "🐶".repeat(400), "🐱".repeat(112));
        assert_eq!(telegram_len(&dogs), CAPTION_LIMIT + 1);
        let sent = fit(photo(&dogs));
        assert_eq!(sent.len(), 2, "{:?}", texts(&sent));
        let parts = texts(&sent);
        assert_eq!(parts[0], format!("{}…", "🐶".repeat(400)));
        assert_eq!(parts[1], "🐱".repeat(112));
        assert!(matches!(
            sent[1],
            OutMessage::Text {
                reply_to: Some(7),
                ..
            }
        ));
    }

    #[test]
    fn a_busy_count_caption_is_cut_after_a_whole_count() {
        let counts: Vec<String> = (0..200).map(|i| format!("thing{i} ×{i}")).collect();
        let caption = counts.join(", ");
        let sent = fit(photo(&caption));
        let parts = texts(&sent);
        assert!(telegram_len(parts[0]) <= CAPTION_LIMIT);
        assert!(parts[0].ends_with(", …"), "{}", parts[0]);
        let head = parts[0].trim_end_matches(", …");
        assert!(counts.iter().any(|c| head.ends_with(c.as_str())), "{head}");
        let joined = format!("{head}, {}", parts[1..].join(" "));
        assert_eq!(joined, caption);
    }

    #[test]
    fn a_text_over_4096_units_goes_as_several_texts() {
        let lines: Vec<String> = (0..600).map(|i| format!("line {i:04}")).collect();
        let text = lines.join("\n");
        let sent = fit(OutMessage::Text {
            text: text.clone(),
            reply_to: None,
            keyboard: None,
        });
        assert!(sent.len() >= 2);
        for part in texts(&sent) {
            assert!(telegram_len(part) <= TEXT_LIMIT);
        }
        assert_eq!(texts(&sent).join("\n"), text);
    }

    #[test]
    fn an_edit_too_long_is_shortened() {
        let sent = fit(OutMessage::Edit {
            message_id: 3,
            text: "x".repeat(5000),
            keyboard: None,
        });
        let parts = texts(&sent);
        assert_eq!(parts.len(), 1);
        assert_eq!(telegram_len(parts[0]), TEXT_LIMIT - 1);
        assert!(parts[0].ends_with('…'));
    }

    proptest! {
        #[test]
        fn every_part_fits_and_nothing_is_lost(
            words in proptest::collection::vec("[a-z🐶é×\\n]{0,12}", 0..700),
        ) {
            let caption = words.join(" ");
            let sent = fit(photo(&caption));
            let parts = texts(&sent);
            prop_assert!(telegram_len(parts[0]) <= CAPTION_LIMIT);
            for part in &parts[1..] {
                prop_assert!(telegram_len(part) <= TEXT_LIMIT);
                prop_assert!(!part.is_empty());
            }
            // What was sent, without the cut's marks and the whitespace at
            // the cuts, is the caption without whitespace.
            let sent_chars: String = parts
                .iter()
                .enumerate()
                .map(|(i, p)| if i == 0 && sent.len() > 1 { p.strip_suffix('…').unwrap_or(p) } else { p })
                .flat_map(|p| p.chars())
                .filter(|c| !c.is_whitespace())
                .collect();
            let expected: String = caption.chars().filter(|c| !c.is_whitespace()).collect();
            prop_assert_eq!(sent_chars, expected);
        }
    }
}
