//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` one after the
//! other for a given time each, and prints what each run did (executions,
//! coverage, crashes).
//!
//! Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install
//! nightly`, `cargo install cargo-fuzz`). The corpus grows in
//! `fuzz/corpus/<target>` (git-ignored); the committed seeds in
//! `fuzz/seeds/<target>` are read alongside it. A crash leaves its input in
//! `fuzz/artifacts/<target>` and fails the command; turn it into a
//! regression test in the normal test suite.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::Workspace;

/// Every target, with the largest input libFuzzer may generate for it.
pub const TARGETS: &[(&str, u32)] = &[
    ("update_json", 16 * 1024),
    ("caption", 1024),
    ("image_decode", 64 * 1024),
    ("job_parse", 4 * 1024),
];

/// What one run reported.
#[derive(Debug, Default)]
struct RunFigures {
    target: String,
    seconds: f64,
    executions: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<String>,
    peak_rss_mb: Option<u64>,
    crashed: bool,
    /// Inputs libFuzzer reported as slow (kept in the artifacts folder; not failures).
    slow_units: usize,
}

pub fn fuzz(ws: &Workspace, seconds: u64, only: &[String]) -> Result<()> {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    for t in only {
        if !names.contains(&t.as_str()) {
            bail!("no fuzz target {t:?}; the targets are {names:?}");
        }
    }
    check_tools(ws)?;
    let mut figures = Vec::new();
    for (target, max_len) in TARGETS {
        if !only.is_empty() && !only.iter().any(|t| t == target) {
            continue;
        }
        figures.push(run_target(ws, target, *max_len, seconds)?);
    }
    eprintln!("\nxtask fuzz: summary");
    eprintln!(
        "  {:<14} {:>8} {:>12} {:>6} {:>7} {:>14} {:>8} {:>5}  crashed",
        "target", "seconds", "executions", "cov", "ft", "corpus", "rss MB", "slow"
    );
    let show = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    for f in &figures {
        eprintln!(
            "  {:<14} {:>8.0} {:>12} {:>6} {:>7} {:>14} {:>8} {:>5}  {}",
            f.target,
            f.seconds,
            show(f.executions),
            show(f.coverage),
            show(f.features),
            f.corpus.as_deref().unwrap_or("?"),
            show(f.peak_rss_mb),
            f.slow_units,
            if f.crashed { "YES" } else { "no" }
        );
    }
    let crashed: Vec<&str> = figures
        .iter()
        .filter(|f| f.crashed)
        .map(|f| f.target.as_str())
        .collect();
    if !crashed.is_empty() {
        bail!(
            "fuzzing found crashes in {crashed:?}: the inputs are in fuzz/artifacts/<target>; \
             reproduce with `cargo +nightly fuzz run <target> <file>`"
        );
    }
    Ok(())
}

fn check_tools(ws: &Workspace) -> Result<()> {
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .current_dir(&ws.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "`cargo +nightly fuzz` is not available: run `rustup toolchain install nightly` \
             and `cargo install cargo-fuzz`"
        );
    }
    Ok(())
}

fn run_target(ws: &Workspace, target: &str, max_len: u32, seconds: u64) -> Result<RunFigures> {
    let fuzz_dir = ws.root.join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    eprintln!("xtask fuzz: {target} for {seconds} s");
    let started = Instant::now();
    // The plain `cargo` (not the one running xtask): `+nightly` must reach rustup.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ws.root)
        .args(["+nightly", "fuzz", "run", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={max_len}"))
        // A single input taking longer than this is a hang worth reporting.
        .arg("-timeout=20")
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .context("could not start `cargo +nightly fuzz run`")?;
    let mut figures = RunFigures {
        target: target.to_owned(),
        ..Default::default()
    };
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading the fuzzer's output")?;
            eprintln!("{line}");
            read_figures(&line, &mut figures);
        }
    }
    let status = child.wait().context("waiting for the fuzzer")?;
    figures.seconds = started.elapsed().as_secs_f64();
    let artifacts = fuzz_dir.join("artifacts").join(target);
    figures.crashed = !status.success() || count_artifacts(&artifacts, FAILURES) > 0;
    figures.slow_units = count_artifacts(&artifacts, &["slow-unit-"]);
    Ok(figures)
}

/// Picks the figures out of libFuzzer's status lines, e.g.
/// `#123456 DONE cov: 812 ft: 2301 corp: 301/40Kb ...` and
/// `stat::number_of_executed_units: 123456`.
fn read_figures(line: &str, f: &mut RunFigures) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    if line.starts_with('#') && words.len() > 2 {
        if let Some(cov) = after("cov:").and_then(|v| v.parse().ok()) {
            f.coverage = Some(cov);
        }
        if let Some(ft) = after("ft:").and_then(|v| v.parse().ok()) {
            f.features = Some(ft);
        }
        if let Some(corp) = after("corp:") {
            f.corpus = Some(corp.to_owned());
        }
        if let Ok(n) = words[0].trim_start_matches('#').parse() {
            f.executions = Some(n);
        }
    }
    if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
        f.executions = n.trim().parse().ok().or(f.executions);
    }
    if let Some(n) = line.strip_prefix("stat::peak_rss_mb:") {
        f.peak_rss_mb = n.trim().parse().ok();
    }
}

/// Artifact prefixes libFuzzer uses for failures.
const FAILURES: &[&str] = &["crash-", "oom-", "timeout-", "leak-"];

fn count_artifacts(dir: &Path, prefixes: &[&str]) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    prefixes.iter().any(|p| name.starts_with(p))
                })
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_libfuzzer_status_lines() {
        let mut f = RunFigures::default();
        read_figures(
            "#65536\tpulse  cov: 700 ft: 2000 corp: 250/30Kb lim: 4096 exec/s: 2000 rss: 90Mb",
            &mut f,
        );
        read_figures(
            "#1200345\tDONE   cov: 812 ft: 2301 corp: 301/40Kb lim: 4096 exec/s: 2000 rss: 95Mb",
            &mut f,
        );
        read_figures("stat::number_of_executed_units: 1200346", &mut f);
        read_figures("stat::peak_rss_mb: 97", &mut f);
        assert_eq!(f.coverage, Some(812));
        assert_eq!(f.features, Some(2301));
        assert_eq!(f.corpus.as_deref(), Some("301/40Kb"));
        assert_eq!(f.executions, Some(1200346));
        assert_eq!(f.peak_rss_mb, Some(97));
    }
}
