//! Every relative link in the README and in `docs/*.md` leads somewhere.
//!
//! The documentation is split by audience across several files that link
//! to each other's sections; a renamed heading or a moved file would
//! otherwise leave a reader at a dead link. This test reads each Markdown
//! file, finds its inline links and images (outside code), and checks that
//! the target file exists and that a `#fragment` names a heading of the
//! target as GitHub renders it. Web links (`https:`, `mailto:`) are not
//! fetched: a test must not depend on the network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository root (this package lives one level below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the polybot package lives in the workspace root")
        .to_path_buf()
}

/// The files checked: the README and every Markdown file under `docs/`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` that are prose: fenced code blocks are left out, so
/// a shell comment or a `# heading` inside an example is neither a link nor
/// an anchor.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => lines.push(line),
        }
    }
    lines
}

/// `line` without its code spans (`` `…` ``), whose brackets are literal.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the links and images on one line of prose:
/// `[text](target)` and `![alt](target)` (an optional `"title"` dropped),
/// and the `src="…"` of an HTML `<img>`, which the README uses to size its
/// picture.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("src=\"") {
        let after = &rest[at + 5..];
        let Some(end) = after.find('"') else { break };
        targets.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        if !target.is_empty() {
            targets.push(target.to_string());
        }
        rest = &after[end + 1..];
    }
    targets
}

/// Every anchor a document offers: one per ATX heading (`#` … `######`),
/// with GitHub's `-1`, `-2` suffixes for repeated headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = polybot_deploy::runbook::slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Whether a link leaves the repository (it is not checked).
fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// The broken links of `file`, each as "file: target (why)"; `checked`
/// counts the relative links looked at.
fn broken_links(file: &Path, checked: &mut usize) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("readable Markdown");
    let dir = file.parent().expect("a file has a folder");
    let mut broken = Vec::new();
    for line in prose_lines(&text) {
        for target in link_targets(line) {
            if is_external(&target) {
                continue;
            }
            *checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            if resolved.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let target_text = std::fs::read_to_string(&resolved).expect("readable Markdown");
            if !anchors(&target_text).contains(fragment) {
                broken.push(format!(
                    "{}: {target} (no heading with the anchor #{fragment} in {})",
                    file.display(),
                    resolved.display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repo_root();
    let mut checked = 0;
    let broken: Vec<String> = documents(&root)
        .iter()
        .flat_map(|f| broken_links(f, &mut checked))
        .collect();
    // The README alone links to every page under docs/: finding none
    // would mean the parser, not the docs, is broken.
    assert!(
        checked >= 10,
        "only {checked} relative links found; is the link parser broken?"
    );
    assert!(
        broken.is_empty(),
        "{} broken link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn every_page_under_docs_is_reachable_from_the_readme_or_another_page() {
    let root = repo_root();
    let files = documents(&root);
    let mut linked = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable Markdown");
        let dir = file.parent().expect("a file has a folder");
        for line in prose_lines(&text) {
            for target in link_targets(line) {
                if is_external(&target) {
                    continue;
                }
                let path = target.split('#').next().unwrap_or("");
                if !path.is_empty()
                    && let Ok(p) = dir.join(path).canonicalize()
                    && Some(p.as_path()) != file.canonicalize().ok().as_deref()
                {
                    linked.insert(p);
                }
            }
        }
    }
    let orphans: Vec<String> = files
        .iter()
        .skip(1) // the README is the entry point
        .filter(|f| !linked.contains(&f.canonicalize().expect("exists")))
        .map(|f| f.display().to_string())
        .collect();
    assert!(orphans.is_empty(), "pages nothing links to: {orphans:?}");
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# Polybot\n\
                ## `cargo xtask setup`: what it downloads\n\
                ## 1. State backend (once per account)\n\
                ```sh\n# not a heading\n```\n\
                ## Add a user-visible text (or a language)\n\
                ## Notes\n## Notes\n";
    let found = anchors(text);
    let expected: BTreeSet<String> = [
        "polybot",
        "cargo-xtask-setup-what-it-downloads",
        "1-state-backend-once-per-account",
        "add-a-user-visible-text-or-a-language",
        "notes",
        "notes-1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn links_are_found_in_prose_but_not_in_code() {
    let line = "See [deploy](docs/deploy.md#tear-down), ![pic](images/a.jpg \"title\"), \
                `[not](a-link.md)` and [web](https://example.com).";
    assert_eq!(
        link_targets(line),
        [
            "docs/deploy.md#tear-down",
            "images/a.jpg",
            "https://example.com"
        ]
    );
    assert_eq!(
        link_targets(r#"  <img src="docs/images/b.jpg" width="360""#),
        ["docs/images/b.jpg"]
    );
}

#[test]
fn a_dead_link_and_a_dead_anchor_are_reported() {
    let dir = std::env::temp_dir().join(format!("docs-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("target.md"), "# Present\n").expect("write");
    let page = dir.join("page.md");
    std::fs::write(
        &page,
        "[ok](target.md#present) [gone](missing.md) [bad](target.md#absent) [self](#nowhere)\n",
    )
    .expect("write");
    let mut checked = 0;
    let broken = broken_links(&page, &mut checked);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(checked, 4);
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert!(broken[0].contains("missing.md (no such file)"));
    assert!(broken[1].contains("#absent"));
    assert!(broken[2].contains("#nowhere"));
}
