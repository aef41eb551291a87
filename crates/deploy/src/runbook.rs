//! The runbook (`docs/RUNBOOK.md`) as the alarms link to it: every alarm's
//! description ends with `<runbook_url>#<anchor>`, and the anchor must be a
//! heading of the runbook as GitHub renders it, or the link lands at the
//! top of a long page in the middle of an incident.

use std::collections::BTreeSet;

/// GitHub's anchor for a Markdown heading's text: lower case, letters,
/// digits, `-` and `_` kept, spaces turned into `-`, everything else
/// dropped (so "Alarm: webhook-4xx" is `alarm-webhook-4xx`). Inline code
/// marks are dropped with the other punctuation.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every ATX heading (`#` to `######`) outside fenced code
/// blocks. GitHub suffixes a repeated anchor with `-1`, `-2`, ...; a
/// repeated heading is reported by [`duplicate_headings`] instead, since an
/// alarm should not link to a numbered copy.
pub fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    headings(markdown).into_iter().map(|h| slug(&h)).collect()
}

/// Headings whose anchors collide.
pub fn duplicate_headings(markdown: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    headings(markdown)
        .into_iter()
        .filter(|h| !seen.insert(slug(h)))
        .collect()
}

fn headings(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            out.push(
                line[hashes..]
                    .trim()
                    .trim_end_matches('#')
                    .trim()
                    .to_owned(),
            );
        }
    }
    out
}

/// The anchor an alarm description links to: what follows `<url>#`, up to
/// the next whitespace; `None` if the description does not link to `url`.
pub fn linked_anchor<'a>(description: &'a str, url: &str) -> Option<&'a str> {
    let at = description.find(&format!("{url}#"))? + url.len() + 1;
    let rest = &description[at..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches(['.', ',', ')']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(slug("Alarm: webhook-4xx"), "alarm-webhook-4xx");
        assert_eq!(slug("DLQ: inspect and redrive"), "dlq-inspect-and-redrive");
        assert_eq!(
            slug("Reaching the gateway's gRPC (`grpcurl`)"),
            "reaching-the-gateways-grpc-grpcurl"
        );
        let md = "# Title\n\n## Alarm: dlq-not-empty ##\n```sh\n# not a heading\n```\n#not a heading either\n### Scaling\n";
        assert_eq!(
            heading_anchors(md),
            BTreeSet::from([
                "title".to_owned(),
                "alarm-dlq-not-empty".to_owned(),
                "scaling".to_owned()
            ])
        );
        assert!(duplicate_headings(md).is_empty());
        assert_eq!(duplicate_headings("## A\n## a\n"), ["a"]);
    }

    #[test]
    fn the_linked_anchor_is_read_from_a_description() {
        let url = "https://example.com/docs/RUNBOOK.md";
        assert_eq!(
            linked_anchor(&format!("Jobs wait. Runbook: {url}#oldest-job-age"), url),
            Some("oldest-job-age")
        );
        assert_eq!(
            linked_anchor(&format!("See {url}#dlq-not-empty. Then redrive."), url),
            Some("dlq-not-empty")
        );
        assert_eq!(linked_anchor("No link here.", url), None);
    }
}
