//! `parse_mode` checking: HTML, MarkdownV2 and legacy Markdown.
//!
//! The real API refuses a message whose markup it cannot parse ("can't parse
//! entities"), a classic production bug (an unescaped `.` in MarkdownV2, a
//! stray `<` in HTML). The emulator reproduces the common cases so tests catch
//! them, and returns the plain text Telegram would show. It is a checker, not a
//! full reimplementation: entities are not reported back.

use crate::error::ApiError;

/// Checks `text` against `parse_mode` and returns the text without markup.
pub(crate) fn render(parse_mode: Option<&str>, text: &str) -> Result<String, ApiError> {
    let Some(mode) = parse_mode.filter(|m| !m.is_empty()) else {
        return Ok(text.to_owned());
    };
    let result = match mode.to_ascii_lowercase().as_str() {
        "html" => html(text),
        "markdownv2" => markdown_v2(text),
        "markdown" => markdown_legacy(text),
        _ => return Err(ApiError::bad_request("unsupported parse_mode")),
    };
    result.map_err(|e| ApiError::bad_request(format!("can't parse entities: {e}")))
}

const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

fn html(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let Some(end) = rest.find('>') else {
                    return Err(format!("Unclosed start tag at byte offset {offset}"));
                };
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match stack.pop() {
                        Some((open, _)) if open == name => {}
                        Some((open, _)) => {
                            return Err(format!(
                                "Can't find end tag corresponding to start tag \"{open}\""
                            ));
                        }
                        None => return Err(format!("Unexpected end tag at byte offset {offset}")),
                    }
                } else {
                    let name = inner
                        .split(|c: char| c.is_whitespace())
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {offset}"
                        ));
                    }
                    stack.push((name, offset));
                }
                offset += end + 1;
                rest = &rest[end + 1..];
            }
            '&' => {
                let entity_end = rest[1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
                    .map(|i| i + 1);
                let decoded = match entity_end {
                    Some(end) if rest[end..].starts_with(';') => decode_entity(&rest[1..end]),
                    _ => None,
                };
                match (decoded, entity_end) {
                    (Some(ch), Some(end)) => {
                        out.push(ch);
                        offset += end + 1;
                        rest = &rest[end + 1..];
                    }
                    // Telegram keeps an `&` that starts no known entity as text.
                    _ => {
                        out.push('&');
                        offset += 1;
                        rest = &rest[1..];
                    }
                }
            }
            _ => {
                out.push(c);
                offset += c.len_utf8();
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some((open, _)) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    Ok(out)
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

fn entity_name(marker: &str) -> &'static str {
    match marker {
        "*" => "Bold",
        "_" => "Italic",
        "__" => "Underline",
        "~" => "Strikethrough",
        "||" => "Spoiler",
        "[" => "TextUrl",
        _ => "Entity",
    }
}

fn markdown_v2(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    // Open markers with the byte offset where they started.
    let mut stack: Vec<(&'static str, usize)> = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let at_line_start = |i: usize| i == 0 || chars[i - 1].1 == '\n';
    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            '\\' => {
                match next {
                    Some(n) if (n as u32) >= 1 && (n as u32) <= 126 => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => {
                        return Err(
                            "Character '\\' is reserved and must be escaped with the preceding '\\'"
                                .to_owned(),
                        );
                    }
                }
                i += 2;
            }
            '`' => {
                let fence = next == Some('`') && chars.get(i + 2).map(|&(_, c)| c) == Some('`');
                let open_len = if fence { 3 } else { 1 };
                let mut j = i + open_len;
                let mut found = None;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' => j += 2,
                        '`' if !fence => {
                            found = Some(j + 1);
                            break;
                        }
                        '`' if fence
                            && chars.get(j + 1).map(|&(_, c)| c) == Some('`')
                            && chars.get(j + 2).map(|&(_, c)| c) == Some('`') =>
                        {
                            found = Some(j + 3);
                            break;
                        }
                        _ => j += 1,
                    }
                }
                let Some(after) = found else {
                    let name = if fence { "Pre" } else { "Code" };
                    return Err(format!(
                        "Can't find end of {name} entity at byte offset {offset}"
                    ));
                };
                let inner_end = after - open_len;
                let mut k = i + open_len;
                while k < inner_end {
                    if chars[k].1 == '\\' && k + 1 < inner_end {
                        k += 1;
                    }
                    out.push(chars[k].1);
                    k += 1;
                }
                i = after;
            }
            '*' | '~' => {
                toggle(&mut stack, if c == '*' { "*" } else { "~" }, offset);
                i += 1;
            }
            '_' => {
                if next == Some('_') {
                    toggle(&mut stack, "__", offset);
                    i += 2;
                } else {
                    toggle(&mut stack, "_", offset);
                    i += 1;
                }
            }
            '|' if next == Some('|') => {
                toggle(&mut stack, "||", offset);
                i += 2;
            }
            '[' => {
                stack.push(("[", offset));
                i += 1;
            }
            '!' if next == Some('[') => {
                stack.push(("[", offset));
                i += 2;
            }
            ']' if stack.iter().any(|(m, _)| *m == "[") => {
                if next != Some('(') {
                    return Err(
                        "Character ']' is reserved and must be escaped with the preceding '\\'"
                            .to_owned(),
                    );
                }
                let mut j = i + 2;
                while j < chars.len() && chars[j].1 != ')' {
                    if chars[j].1 == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!(
                        "Can't find end of a URL at byte offset {}",
                        chars[i + 1].0
                    ));
                }
                if let Some(pos) = stack.iter().rposition(|(m, _)| *m == "[") {
                    stack.remove(pos);
                }
                i = j + 1;
            }
            '>' if at_line_start(i) => {
                // Block quotation.
                i += 1;
            }
            // The remaining reserved characters (the others were handled above).
            ']' | '(' | ')' | '>' | '#' | '+' | '-' | '=' | '|' | '{' | '}' | '.' | '!' => {
                return Err(format!(
                    "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                ));
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if let Some((marker, offset)) = stack.first() {
        return Err(format!(
            "Can't find end of {} entity at byte offset {offset}",
            entity_name(marker)
        ));
    }
    Ok(out)
}

fn toggle(stack: &mut Vec<(&'static str, usize)>, marker: &'static str, offset: usize) {
    if let Some(pos) = stack.iter().rposition(|(m, _)| *m == marker) {
        stack.remove(pos);
    } else {
        stack.push((marker, offset));
    }
}

fn markdown_legacy(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<(char, usize)> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        match (c, open) {
            ('\\', None) => match chars.peek() {
                Some(&(_, n)) if matches!(n, '*' | '_' | '`' | '[') => {
                    out.push(n);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            ('*' | '_' | '`', None) => open = Some((c, offset)),
            ('[', None) => open = Some(('[', offset)),
            (c, Some((m, _))) if c == m => open = None,
            (']', Some(('[', _))) => {
                // Skip "(url)".
                if matches!(chars.peek(), Some(&(_, '('))) {
                    for (_, u) in chars.by_ref() {
                        if u == ')' {
                            break;
                        }
                    }
                }
                open = None;
            }
            _ => out.push(c),
        }
    }
    if let Some((_, offset)) = open {
        return Err(format!(
            "Can't find end of the entity starting at byte offset {offset}"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(mode: &str, text: &str) -> String {
        match render(Some(mode), text) {
            Err(e) => e.description,
            Ok(plain) => panic!("expected an error, got {plain:?}"),
        }
    }

    #[test]
    fn html_strips_tags_and_decodes_entities() {
        assert_eq!(
            render(
                Some("HTML"),
                "<b>bus</b> 94% &lt;ok&gt; &amp; <a href=\"x\">link</a>"
            )
            .ok(),
            Some("bus 94% <ok> & link".to_owned())
        );
    }

    #[test]
    fn html_rejects_unknown_and_unbalanced_tags() {
        assert!(err("HTML", "a <br> b").contains("Unsupported start tag \"br\""));
        assert!(err("HTML", "<b>bold").contains("Can't find end tag"));
        assert!(err("HTML", "x</b>").contains("Unexpected end tag"));
        assert!(err("HTML", "1 < 2").contains("Unclosed start tag"));
    }

    #[test]
    fn markdown_v2_requires_escaping_reserved_characters() {
        assert!(err("MarkdownV2", "score 0.94").contains("Character '.' is reserved"));
        assert_eq!(
            render(
                Some("MarkdownV2"),
                "*bus* 0\\.94 `a.b` [x](http://e.com/a.b)"
            )
            .ok(),
            Some("bus 0.94 a.b x".to_owned())
        );
        assert!(
            err("MarkdownV2", "*open").contains("Can't find end of Bold entity at byte offset 0")
        );
    }

    #[test]
    fn legacy_markdown_and_unknown_modes() {
        assert_eq!(
            render(Some("Markdown"), "*a* b.c").ok(),
            Some("a b.c".to_owned())
        );
        assert!(err("Markdown", "*a").contains("Can't find end of the entity"));
        assert_eq!(err("Foo", "x"), "Bad Request: unsupported parse_mode");
        assert_eq!(render(None, "a.b").ok(), Some("a.b".to_owned()));
    }
}
