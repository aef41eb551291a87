//! docs/configuration.md, the configuration reference, is generated here
//! from the binaries' own command lines (`gateway`, `detector`, `reporter`,
//! `polybot`): every setting with its environment variable, flag, the
//! default the binary really uses and its `--help` text, under a
//! hand-written header (precedence, secrets) kept in this file. The test
//! fails when the committed file differs from what the command lines say,
//! so a setting added, renamed or given another default cannot be missed
//! in the docs. Regenerate with:
//!
//! ```text
//! POLYBOT_UPDATE_DOCS=1 cargo test -p polybot --test settings_docs
//! ```
//!
//! Secrets are never flags (so `--help` cannot list them, nor this file a
//! default for one); they are listed by the header, and a test checks that
//! every `…_FILE` setting names a secret the header lists.

use std::fmt::Write as _;

use clap::CommandFactory;

/// The command that rewrites the file, as the stale-file message quotes it.
const REGENERATE: &str = "POLYBOT_UPDATE_DOCS=1 cargo test -p polybot --test settings_docs";

/// Where the generated file lives, from this crate (`polybot/`).
fn docs_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

/// The hand-written part: what the tables cannot say. `{fields}` is
/// replaced by the Secrets Manager fields the gateway reads, `{min}` and
/// `{max}` by the webhook secret's lengths the gateway accepts.
const HEADER: &str = r#"# Configuration reference

Every setting of the four binaries, generated from their command lines by
`polybot/tests/settings_docs.rs` (the test fails when this file is stale).
Do not edit it by hand: change the `--help` text or the default in the
code, then run

```sh
POLYBOT_UPDATE_DOCS=1 cargo test -p polybot --test settings_docs
```

## How a setting is read

- A **flag** wins over its **environment variable**, which wins over the
  **default**. Deployments (Terraform's user data, `docker-compose*.yaml`,
  the images) set environment variables only.
- A setting without a default is off or unset unless given (for example no
  `POLYBOT_PUBLIC_URL`: no webhook URL to register).
- `polybot gateway` and `polybot detector` take exactly the settings of
  `gateway` and `detector worker`, so one image can run every service.
- `<assets>` in a default is `$POLYBOT_ASSETS_DIR` when that is set, else
  `.cache/assets` in the checkout the binary was built from, where
  `cargo xtask setup` puts the model, ONNX Runtime and ffmpeg.
- Every binary has `healthcheck --url URL` (GET, exit 0 on HTTP 200) for
  container health checks.

## Secrets

Secrets are never flags (the process list would show them), so the tables
below do not list them and no secret has a default. Each comes from its
environment variable, else the file its `…_FILE` setting names, else a
Secrets Manager secret:

| secret | environment | file | Secrets Manager |
|---|---|---|---|
| bot token (from @BotFather) | `TELEGRAM_TOKEN` | `TELEGRAM_TOKEN_FILE` | `telegram_token` in `POLYBOT_TELEGRAM_SECRET_ID` |
| webhook secret (Telegram sends it with every delivery) | `TELEGRAM_WEBHOOK_SECRET` | `TELEGRAM_WEBHOOK_SECRET_FILE` | `webhook_secret` in `POLYBOT_TELEGRAM_SECRET_ID` |
| detectors' Results token | `POLYBOT_RESULTS_TOKEN` | `POLYBOT_RESULTS_TOKEN_FILE` | `results_token` in `POLYBOT_RESULTS_SECRET_ID` when set, else in `POLYBOT_TELEGRAM_SECRET_ID` (gateway) |
| the Results token being rotated out (gateway) | `POLYBOT_RESULTS_TOKEN_PREVIOUS` | `POLYBOT_RESULTS_TOKEN_PREVIOUS_FILE` | `results_token_previous`, as `results_token` |
| operators' token (operator RPCs) | `POLYBOT_OPERATOR_TOKEN` | `POLYBOT_OPERATOR_TOKEN_FILE` | `operator_token` in `POLYBOT_TELEGRAM_SECRET_ID` |

The `POLYBOT_TELEGRAM_SECRET_ID` secret is a JSON object; the gateway reads
these fields of it: {fields}. The webhook secret is {min}–{max} characters
of `A-Z`, `a-z`, `0-9`, `_` and `-` (Telegram allows 1–{max}; the gateway
asks for {min}, out of reach of guessing).

The storage layout (bucket keys, queue, table items) is described in
[operations.md](operations.md).
"#;

/// One setting (or argument) of one command, as its table row shows it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    env: Option<String>,
    flag: String,
    default: Option<String>,
    help: String,
}

/// Words in a setting's name that say it could carry a secret; a setting
/// naming a file or a secret's id is only a pointer to one.
fn carries_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    let pointer = name.ends_with("-file") || name.ends_with("-secret-id");
    !pointer
        && ["token", "secret", "password"]
            .iter()
            .any(|w| name.contains(w))
}

/// The default paths found under the assets folder, which depends on
/// where this build (or `POLYBOT_ASSETS_DIR`) is: shown as `<assets>/…` so
/// the file is the same on every machine.
fn portable_default(value: &str) -> String {
    let assets = polybot_inference::model::default_assets_dir();
    let assets = assets.to_string_lossy();
    match value.strip_prefix(assets.as_ref()) {
        Some(rest) => format!("<assets>{rest}"),
        None => value.to_owned(),
    }
}

/// A help text on one table line: paragraphs kept apart by `<br>`, `|`
/// escaped so it stays in its cell.
fn cell(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("<br>")
        .replace('|', "\\|")
}

fn rows(cmd: &clap::Command) -> Vec<Row> {
    cmd.get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .map(|arg| {
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let flag = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => {
                    let names = arg.get_value_names().unwrap_or_default();
                    let name = names.first().map(ToString::to_string);
                    format!("<{}>", name.unwrap_or_else(|| arg.get_id().to_string()))
                }
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| portable_default(&v.to_string_lossy()))
                .collect();
            let default = (!defaults.is_empty() && !arg.is_hide_default_value_set())
                .then(|| defaults.join(","));
            let mut help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            let choices: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("`{}`", v.get_name()))
                .collect();
            // A boolean switch lists true/false; only real choices help.
            let switch = matches!(
                arg.get_action(),
                clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
            );
            if !choices.is_empty() && !switch {
                let _ = write!(help, "\n\nOne of {}.", choices.join(", "));
            }
            Row {
                env,
                flag,
                default,
                help: cell(&help),
            }
        })
        .collect()
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| environment variable | flag | default | description |\n|---|---|---|---|\n",
    );
    for row in rows {
        let code = |s: &str| format!("`{s}`");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.env.as_deref().map(code).unwrap_or_default(),
            code(&row.flag),
            row.default.as_deref().map(code).unwrap_or_default(),
            row.help
        );
    }
    out
}

/// A command's section: its description and settings, then each
/// subcommand's, depth first. `same_as` names commands whose settings
/// another section already lists, by their full name.
fn section(out: &mut String, path: &str, cmd: &clap::Command, same_as: &[(&str, &[Row], &str)]) {
    let level = if path.contains(' ') { "###" } else { "##" };
    let _ = writeln!(out, "\n{level} `{path}`\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{}\n", cell(&about.to_string()));
    }
    let rows = rows(cmd);
    let twin = same_as
        .iter()
        .find(|(name, theirs, _)| *name == path && *theirs == rows.as_slice());
    match twin {
        Some((_, _, original)) => {
            let _ = writeln!(out, "Exactly the settings of `{original}` above.");
        }
        // A command that only groups subcommands has nothing to list.
        None if rows.is_empty() && cmd.has_subcommands() => {}
        None if rows.is_empty() => {
            let _ = writeln!(out, "No settings.");
        }
        None => out.push_str(&table(&rows)),
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        section(out, &format!("{path} {}", sub.get_name()), sub, same_as);
    }
}

/// The four binaries, by the name they are run as.
fn binaries() -> [(&'static str, clap::Command); 4] {
    [
        ("gateway", polybot_gateway::cli::Cli::command()),
        ("detector", polybot_detector::cli::Cli::command()),
        ("reporter", polybot_reporter::cli::Args::command()),
        ("polybot", polybot::cli::Cli::command()),
    ]
}

/// The whole file.
fn render() -> String {
    let [gateway, detector, reporter, polybot] = binaries();
    let gateway_rows = rows(&gateway.1);
    let worker = detector
        .1
        .find_subcommand("worker")
        .expect("detector worker");
    let worker_rows = rows(worker);
    let same_as: [(&str, &[Row], &str); 2] = [
        ("polybot gateway", &gateway_rows, "gateway"),
        ("polybot detector", &worker_rows, "detector worker"),
    ];
    let fields = polybot_storage::aws::TELEGRAM_SECRET_FIELDS
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        "<!-- Generated by polybot/tests/settings_docs.rs; do not edit. Regenerate: {REGENERATE} -->\n\n{}",
        HEADER
            .replace("{fields}", &fields)
            .replace("{min}", &polybot_gateway::secret::MIN_LEN.to_string())
            .replace("{max}", &polybot_gateway::secret::MAX_LEN.to_string())
    );
    for (name, cmd) in [gateway, detector, reporter, polybot] {
        section(&mut out, name, &cmd, &same_as);
    }
    out
}

#[test]
fn the_configuration_reference_is_generated_from_the_command_lines() {
    let generated = render();
    let path = docs_path();
    let update = std::env::var("POLYBOT_UPDATE_DOCS").is_ok_and(|v| !v.is_empty() && v != "0");
    if update {
        std::fs::write(&path, &generated).expect("write docs/configuration.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/configuration.md is stale: run `{REGENERATE}` and commit the file.\n\
             First difference at line {}:\n  committed: {:?}\n  generated: {:?}",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// No binary takes a secret as a setting it could print (a flag, or a
/// default in this reference): secrets have only their environment
/// variable, a `…_FILE` and Secrets Manager.
#[test]
fn no_setting_carries_a_secret() {
    fn walk(path: &str, cmd: &clap::Command, found: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            let long = arg.get_long().unwrap_or_default();
            if carries_secret(&env) || carries_secret(long) {
                found.push(format!("{path}: --{long} ({env})"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(&format!("{path} {}", sub.get_name()), sub, found);
        }
    }
    let mut found = Vec::new();
    for (name, cmd) in binaries() {
        walk(name, &cmd, &mut found);
    }
    assert!(
        found.is_empty(),
        "settings that could carry a secret: {found:#?}"
    );
    // The check itself recognises what it must.
    assert!(carries_secret("TELEGRAM_TOKEN") && carries_secret("webhook-secret"));
    assert!(!carries_secret("TELEGRAM_TOKEN_FILE") && !carries_secret("results-secret-id"));
}

/// Every `…_FILE` setting points at a secret: the header's secrets table
/// must list that secret's environment variable, so a new secret cannot be
/// added without saying where else it may come from.
#[test]
fn every_secret_file_setting_names_a_secret_the_reference_lists() {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env().map(|e| e.to_string_lossy().into_owned())
                && let Some(secret) = env.strip_suffix("_FILE")
                && carries_secret(secret)
            {
                out.push(secret.to_owned());
            }
        }
        cmd.get_subcommands().for_each(|sub| walk(sub, out));
    }
    let mut secrets = Vec::new();
    for (_, cmd) in binaries() {
        walk(&cmd, &mut secrets);
    }
    assert!(secrets.len() >= 4, "{secrets:?}");
    let secrets_table: Vec<&str> = HEADER.lines().filter(|l| l.starts_with("| ")).collect();
    for secret in secrets {
        let row = secrets_table
            .iter()
            .find(|row| row.contains(&format!("| `{secret}` | `{secret}_FILE` |")));
        assert!(
            row.is_some(),
            "the secrets table in {} lacks `{secret}`",
            file!()
        );
    }
}
