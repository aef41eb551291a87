//! The INT8 model: `detector/quantize/int8.py` (onnxruntime's static
//! quantization tool) run in the project's venv on the FP32 model and the
//! calibration photos.
//!
//! Cached by the sha256 of everything that goes in (the script, the model,
//! each calibration photo and the pinned tool versions), recorded in a stamp
//! file next to the output: setup rebuilds it only when one of them changes,
//! so CI pays the build (about half a minute on 2 cores) once.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::Workspace;
use crate::assets::{CALIBRATION_PHOTOS, INT8_MODEL, MODEL, sha256_file};
use crate::tools::{self, ToolSet};

/// The quantization tool and what the script imports.
pub const QUANTIZE_TOOLS: &ToolSet = &ToolSet {
    name: "quantize",
    requirements: &[
        "onnxruntime==1.32.0",
        "onnx==1.23.2",
        "numpy==2.4.6",
        "pillow==13.0.0",
    ],
};

const SCRIPT: &str = "detector/quantize/int8.py";

/// Builds `INT8_MODEL` in the assets folder unless it is up to date.
pub fn ensure(ws: &Workspace) -> Result<()> {
    let assets = ws.assets();
    let out = assets.join(INT8_MODEL);
    let stamp = assets.join(format!("{INT8_MODEL}.inputs-sha256"));
    let script = ws.root.join(SCRIPT);
    let key = input_key(&script, &assets)?;
    if out.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) {
        return Ok(());
    }
    tools::ensure(ws, QUANTIZE_TOOLS)?;
    eprintln!(
        "xtask: building {INT8_MODEL} (static INT8, calibrated on {} photos)",
        CALIBRATION_PHOTOS.len()
    );
    let started = Instant::now();
    // A per-process name, so two setups running at once never write one file.
    let partial = assets.join(format!("{INT8_MODEL}.{}.partial", std::process::id()));
    let output = Command::new(tools::venv_bin(ws).join("python"))
        .arg(&script)
        .arg("--model")
        .arg(assets.join(MODEL))
        .arg("--out")
        .arg(&partial)
        .args(CALIBRATION_PHOTOS.iter().map(|p| assets.join(p)))
        .output()
        .context("could not run the venv's python")?;
    if !output.status.success() {
        let _ = fs::remove_file(&partial);
        bail!(
            "{SCRIPT} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    fs::rename(&partial, &out).with_context(|| format!("renaming to {}", out.display()))?;
    fs::write(&stamp, &key).with_context(|| format!("writing {}", stamp.display()))?;
    eprintln!(
        "xtask: built {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// sha256 over the names and contents of every input and the tool pins.
fn input_key(script: &Path, assets: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"polybot int8 v1\n");
    for req in QUANTIZE_TOOLS.requirements {
        hasher.update(format!("requirement {req}\n"));
    }
    let mut add = |name: &str, path: &Path| -> Result<()> {
        let digest = sha256_file(path).with_context(|| format!("{} is missing", path.display()))?;
        hasher.update(format!("{name} {digest}\n"));
        Ok(())
    };
    add("script", script)?;
    add(MODEL, &assets.join(MODEL))?;
    for photo in CALIBRATION_PHOTOS {
        add(photo, &assets.join(photo))?;
    }
    Ok(hex::encode(hasher.finalize()))
}
