//! Every alarm links to its section of `docs/RUNBOOK.md`, checked on the
//! Terraform source (fast, no Terraform needed; the deployment test checks
//! the same on the applied alarms): the monitoring module's list of runbook
//! sections names each alarm, each alarm's description uses its entry, and
//! each entry's anchor (`alarm-<name>`) is a heading of the runbook.

use std::collections::BTreeSet;

use polybot_deploy::runbook::{duplicate_headings, heading_anchors};
use polybot_deploy::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The strings between quotes in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The monitoring module's runbook sections: the list after
/// `for anchor in [` in `locals.runbook`.
fn sections(main_tf: &str) -> Vec<String> {
    let start = main_tf
        .find("for anchor in [")
        .expect("the runbook list (`for anchor in [`) in modules/monitoring/main.tf");
    let list = &main_tf[start..];
    let end = list.find(']').expect("the end of the runbook list");
    quoted(&list[..end])
}

/// Each `resource "aws_cloudwatch_metric_alarm" "<name>" { ... }` block.
fn alarm_blocks(tf: &str) -> Vec<(String, String)> {
    let marker = "resource \"aws_cloudwatch_metric_alarm\" \"";
    tf.match_indices(marker)
        .map(|(at, _)| {
            let rest = &tf[at + marker.len()..];
            let name = rest.split('"').next().unwrap_or_default().to_owned();
            // The block ends at the next top-level closing brace.
            let end = rest.find("\n}\n").map_or(rest.len(), |e| e + 3);
            (name, rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn every_alarm_links_to_a_heading_of_the_runbook() {
    let runbook = read("docs/RUNBOOK.md");
    let anchors = heading_anchors(&runbook);
    assert!(
        duplicate_headings(&runbook).is_empty(),
        "docs/RUNBOOK.md repeats headings (GitHub numbers their anchors): {:?}",
        duplicate_headings(&runbook)
    );
    let main_tf = read("terraform/modules/monitoring/main.tf");
    let listed = sections(&main_tf);
    assert!(listed.len() >= 8, "{listed:?}");
    assert!(
        main_tf.contains("#alarm-${anchor}"),
        "the runbook links are <runbook_url>#alarm-<name>"
    );
    for name in &listed {
        assert!(
            anchors.contains(&format!("alarm-{name}")),
            "the alarm {name} links to #alarm-{name}, but docs/RUNBOOK.md has no heading \"Alarm: {name}\""
        );
    }
    // Every alarm's description uses its entry; the for_each alarm takes
    // its descriptions from a map whose entries do.
    let mut used = BTreeSet::new();
    for (resource, block) in alarm_blocks(&main_tf) {
        let uses: Vec<String> = block
            .match_indices("local.runbook[\"")
            .map(|(at, m)| {
                block[at + m.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        if block.contains("each.value.description") {
            continue;
        }
        assert_eq!(
            uses.len(),
            1,
            "aws_cloudwatch_metric_alarm.{resource}'s description must link to one runbook section: {uses:?}"
        );
        // The section is the alarm's own: its name ends with it.
        let name_line = block
            .lines()
            .find(|l| l.trim_start().starts_with("alarm_name"))
            .unwrap_or_default();
        assert!(
            name_line.contains(&format!("-{}\"", uses[0])),
            "aws_cloudwatch_metric_alarm.{resource} ({name_line}) links to another alarm's section ({})",
            uses[0]
        );
        used.extend(uses);
    }
    for (at, m) in main_tf.match_indices("local.runbook[\"") {
        used.insert(
            main_tf[at + m.len()..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let listed: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(
        used, listed,
        "every runbook section listed is linked by an alarm, and no alarm links to an unlisted one"
    );
    // The runbook's own procedures the alarms send operators to.
    for section in [
        "dead-letters-inspect-redrive-purge",
        "finding-one-requests-logs",
        "reaching-the-gateways-grpc",
        "scaling-the-detectors",
        "rotating-secrets-and-tokens",
        "webhook-secret",
        "bot-token",
        "results-token",
        "operator-token",
    ] {
        assert!(
            anchors.contains(section),
            "docs/RUNBOOK.md lacks #{section}"
        );
    }
    // Its internal links land on headings.
    for (at, _) in runbook.match_indices("](#") {
        let anchor = runbook[at + 3..].split(')').next().unwrap_or_default();
        assert!(
            anchors.contains(anchor),
            "docs/RUNBOOK.md links to #{anchor}, which is none of its headings"
        );
    }
}
