//! The README's Settings tables are the one list of settings operators read
//! (docs/CONFIG-SPEC.md points at them). This test reads every setting the
//! binaries' command lines define, with its environment variable and the
//! default the binary really uses, and checks the README lists each with
//! that default: a setting added without its row, or a default changed in
//! one place only, fails here.

use std::collections::BTreeMap;

use clap::CommandFactory;

/// Every `(environment variable, default)` a command and its subcommands
/// read, in `--help` order; `None` when the setting has no default.
fn settings(cmd: &clap::Command, out: &mut BTreeMap<String, Option<String>>) {
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        let default = (!default.is_empty()).then(|| default.join(","));
        out.insert(env.to_string_lossy().into_owned(), default);
    }
    for sub in cmd.get_subcommands() {
        settings(sub, out);
    }
}

/// The README's table rows that name `env` in backticks: the default is
/// the cell after the one that names it.
fn documented_defaults<'a>(readme: &'a str, env: &str) -> Vec<&'a str> {
    let quoted = format!("`{env}`");
    readme
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let at = cells.iter().position(|c| c.contains(&quoted))?;
            cells.get(at + 1).copied()
        })
        .collect()
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// Checks each setting of `cmd` against the README.
fn check(binary: &str, cmd: &clap::Command) -> Vec<String> {
    let readme = readme();
    let mut found = BTreeMap::new();
    settings(cmd, &mut found);
    assert!(!found.is_empty(), "{binary} reads no environment variable?");
    let mut problems = Vec::new();
    for (env, default) in found {
        let rows = documented_defaults(&readme, &env);
        if rows.is_empty() {
            problems.push(format!(
                "{binary}: `{env}` is not in a README settings table"
            ));
            continue;
        }
        let Some(default) = default else { continue };
        let matches = |cell: &&str| {
            let cell = cell.replace('`', "");
            // A path's default is found where the assets are (the README
            // names it from the checkout): the same file is enough.
            let file = |p: &str| std::path::Path::new(p).file_name().map(ToOwned::to_owned);
            cell == default || (cell.contains('/') && file(&cell) == file(&default))
        };
        if !rows.iter().any(matches) {
            problems.push(format!(
                "{binary}: `{env}` defaults to {default:?}, the README says {rows:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_gateway_setting_is_in_the_readme_with_its_real_default() {
    let problems = check("gateway", &polybot_gateway::cli::Cli::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_detector_setting_is_in_the_readme_with_its_real_default() {
    let problems = check("detector", &polybot_detector::cli::Cli::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_reporter_setting_is_in_the_readme_with_its_real_default() {
    let problems = check("reporter", &polybot_reporter::cli::Args::command());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The secrets never have flags (so `--help` cannot list them); the README
/// names every field the Secrets Manager secret may hold, as the gateway
/// reads them.
#[test]
fn the_readme_names_every_field_of_the_telegram_secret() {
    let readme = readme();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `POLYBOT_TELEGRAM_SECRET_ID`"))
        .expect("a row for POLYBOT_TELEGRAM_SECRET_ID");
    for field in polybot_storage::aws::TELEGRAM_SECRET_FIELDS {
        assert!(row.contains(&format!("\"{field}\"")), "{field}: {row}");
    }
}
