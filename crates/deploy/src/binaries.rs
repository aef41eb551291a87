//! The workspace's service binaries (`gateway`, `detector`, `reporter`,
//! `polybot`), found next to the running test: Cargo puts test executables
//! in `target/<profile>/deps/` and binaries in `target/<profile>/`.
//! `cargo test --workspace` (what `cargo xtask test` runs) builds them all
//! before any test starts; a focused run needs
//! `cargo build -p polybot-gateway -p polybot-detector -p polybot-reporter -p polybot` first.

use std::path::PathBuf;

/// The binary `name` from this build, or an error that says how to build it.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe
        .parent()
        .ok_or_else(|| format!("{}: no parent folder", exe.display()))?;
    let profile = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    let path = profile.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built: run the tests with `cargo xtask test` (or `cargo test --workspace`), \
             or build it first with `cargo build -p {name}`",
            path.display()
        ))
    }
}
