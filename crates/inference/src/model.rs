//! Loading ONNX Runtime and a YOLO model: the runtime library is loaded
//! dynamically once per process, and each inference lane gets its own
//! session (`Session::run` needs `&mut`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::LoadError;

/// Where `cargo xtask setup` puts the runtime assets, unless overridden.
pub fn default_assets_dir() -> PathBuf {
    std::env::var_os("POLYBOT_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(workspace_assets_dir)
}

/// `.cache/assets` at the workspace root (this crate is `crates/inference`).
fn workspace_assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/assets")
}

pub fn default_model_path() -> PathBuf {
    default_assets_dir().join("yolo11n.onnx")
}

/// The INT8 model `cargo xtask setup` builds from the FP32 one
/// (`detector/quantize/int8.py`).
pub fn default_int8_model_path() -> PathBuf {
    default_assets_dir().join("yolo11n-int8.onnx")
}

pub fn default_ort_library() -> PathBuf {
    default_assets_dir().join("libonnxruntime.so.1.32.0")
}

/// Numeric precision of the model's weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// The exported float model.
    #[default]
    Fp32,
    /// Static-quantized INT8 (QDQ), its Detect head's decoding kept in float.
    Int8,
}

impl Precision {
    /// A fixed name, fit for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `--precision` setting: a precision, or `auto`, which picks one for
/// the CPU the process runs on ([`PrecisionSetting::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum PrecisionSetting {
    /// INT8 where the CPU multiplies 8-bit integers natively (AVX-512 VNNI
    /// or AMX), FP32 elsewhere.
    #[default]
    Auto,
    /// Always the exported float model.
    Fp32,
    /// Always the INT8 model.
    Int8,
}

/// What a [`PrecisionSetting`] came to on this CPU, and why: said at
/// start-up and on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecisionChoice {
    pub precision: Precision,
    /// A fixed word, fit for a metric label: `amx_int8`, `avx512_vnni`,
    /// `no_int8_units` (auto's three outcomes) or `set` (forced).
    pub reason: &'static str,
}

impl PrecisionChoice {
    /// Shows the choice on `/metrics` (`polybot_detector_precision_choice`),
    /// with the setting it came from.
    pub fn record(self, setting: PrecisionSetting) {
        crate::metrics::precision_chosen(setting, self);
    }
}

impl From<Precision> for PrecisionSetting {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Fp32 => Self::Fp32,
            Precision::Int8 => Self::Int8,
        }
    }
}

impl PrecisionSetting {
    /// The precision for this process's CPU.
    pub fn resolve(self) -> PrecisionChoice {
        self.resolve_for(cpu_flags())
    }

    /// The precision for a CPU with `flags` (as `/proc/cpuinfo` lists
    /// them). INT8 pays where the CPU has 8-bit dot-product units: 1.6×
    /// FP32's speed on VNNI/AMX, only 1.2–1.3× on AVX2, where it also
    /// differed more from FP32 (BENCHMARKS.md), so FP32 stays the choice
    /// there.
    pub fn resolve_for(self, flags: &str) -> PrecisionChoice {
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        let (precision, reason) = match self {
            Self::Fp32 => (Precision::Fp32, "set"),
            Self::Int8 => (Precision::Int8, "set"),
            Self::Auto if has("amx_int8") => (Precision::Int8, "amx_int8"),
            Self::Auto if has("avx512_vnni") => (Precision::Int8, "avx512_vnni"),
            Self::Auto => (Precision::Fp32, "no_int8_units"),
        };
        PrecisionChoice { precision, reason }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for PrecisionSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// This CPU's feature flags, as the kernel lists them (`flags` in
/// `/proc/cpuinfo`); empty where that cannot be read, which makes `auto`
/// choose FP32.
fn cpu_flags() -> &'static str {
    static FLAGS: OnceLock<String> = OnceLock::new();
    FLAGS.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("flags"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, flags)| flags.trim().to_owned())
            })
            .unwrap_or_default()
    })
}

/// What is needed to open sessions on a model.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// The model file, of the given precision.
    pub model: PathBuf,
    pub ort_library: PathBuf,
    /// ORT intra-op threads per session (per lane).
    pub intra_threads: usize,
    /// What the model file is; reported in logs and metrics.
    pub precision: Precision,
}

/// What we learned about the model from its metadata and signature.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The precision the model was loaded as.
    pub precision: Precision,
    pub classes: Vec<String>,
    pub input_name: String,
    /// Side of the square the model was exported at (e.g. 640).
    pub size: u32,
    /// Whether the input accepts any height and width (enables rect letterbox).
    pub dynamic: bool,
    pub stride: u32,
}

static ENVIRONMENT: OnceLock<Mutex<Option<Environment>>> = OnceLock::new();

/// Loads the ONNX Runtime library once per process and returns its environment.
fn environment(library: &Path) -> Result<Environment, LoadError> {
    let cell = ENVIRONMENT.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    if !library.is_file() {
        return Err(LoadError::Missing {
            what: "the ONNX Runtime library",
            path: library.to_path_buf(),
            env: "ORT_DYLIB_PATH",
        });
    }
    let env = ort::init_from(library)
        .map_err(|source| LoadError::RuntimeLibrary {
            path: library.to_path_buf(),
            source,
        })?
        .with_name("polybot")
        .build()
        .map_err(|source| LoadError::Runtime {
            path: library.to_path_buf(),
            source,
        })?;
    *guard = Some(env.clone());
    Ok(env)
}

/// Opens one session on the model.
pub fn open_session(src: &ModelSource) -> Result<(Session, ModelInfo), LoadError> {
    if !src.model.is_file() {
        return Err(LoadError::Missing {
            what: match src.precision {
                Precision::Fp32 => "the model",
                Precision::Int8 => "the INT8 model (built by `cargo xtask setup`)",
            },
            path: src.model.clone(),
            env: match src.precision {
                Precision::Fp32 => "POLYBOT_MODEL",
                Precision::Int8 => "POLYBOT_MODEL_INT8",
            },
        });
    }
    let env = environment(&src.ort_library)?;
    let model_err = |source: ort::Error| LoadError::Model {
        path: src.model.clone(),
        source,
    };
    let session = Session::builder(&env)
        .map_err(model_err)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| model_err(e.into()))?
        .with_intra_threads(src.intra_threads.max(1))
        .map_err(|e| model_err(e.into()))?
        // Lanes are the unit of parallelism; ORT's inter-op pool only adds
        // threads that compete with the other lanes for the same cores.
        .with_inter_threads(1)
        .map_err(|e| model_err(e.into()))?
        .commit_from_file(&src.model)
        .map_err(model_err)?;
    let info = inspect(&session, src.precision).map_err(|reason| LoadError::Unsupported {
        path: src.model.clone(),
        reason,
    })?;
    Ok((session, info))
}

fn inspect(session: &Session, precision: Precision) -> Result<ModelInfo, String> {
    let input = session.inputs().first().ok_or("the model has no inputs")?;
    if session.outputs().is_empty() {
        return Err("the model has no outputs".into());
    }
    let shape = input
        .dtype()
        .tensor_shape()
        .ok_or("the model's input is not a tensor")?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    let [_, channels, h, w] = dims[..] else {
        return Err(format!(
            "expected an input of shape [batch, 3, height, width], got {dims:?}"
        ));
    };
    if channels != 3 && channels != -1 {
        return Err(format!("expected 3 input channels, got {channels}"));
    }
    let metadata = session.metadata().map_err(|e| e.to_string())?;
    let classes = metadata
        .custom("names")
        .map(|names| parse_names(&names))
        .unwrap_or_default();
    let stride = metadata
        .custom("stride")
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(32);
    let dynamic = h <= 0 || w <= 0;
    let size = if dynamic {
        metadata
            .custom("imgsz")
            .and_then(|s| parse_imgsz(&s))
            .unwrap_or(640)
    } else if h == w {
        h as u32
    } else {
        return Err(format!(
            "fixed non-square inputs ({w}×{h}) are not supported"
        ));
    };
    Ok(ModelInfo {
        precision,
        classes,
        input_name: input.name().to_owned(),
        size,
        dynamic,
        stride,
    })
}

/// Parses the Ultralytics `names` metadata, a Python dict literal such as
/// `{0: 'person', 1: 'bicycle'}`, into names ordered by index.
pub fn parse_names(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut entries: Vec<(usize, String)> = Vec::new();
    let mut rest = inner;
    while let Some(colon) = rest.find(':') {
        let Ok(index) = rest[..colon]
            .trim()
            .trim_start_matches(',')
            .trim()
            .parse::<usize>()
        else {
            break;
        };
        let after = rest[colon + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            break;
        };
        let body = &after[1..];
        let Some(end) = body.find(quote) else { break };
        entries.push((index, body[..end].to_owned()));
        rest = &body[end + 1..];
    }
    entries.sort_by_key(|(i, _)| *i);
    let ordered = entries.iter().enumerate().all(|(pos, (i, _))| pos == *i);
    if ordered {
        entries.into_iter().map(|(_, n)| n).collect()
    } else {
        Vec::new()
    }
}

fn parse_imgsz(text: &str) -> Option<u32> {
    text.trim_matches(|c| c == '[' || c == ']' || c == ' ')
        .split(',')
        .filter_map(|s| s.trim().parse::<u32>().ok())
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_variable_the_assets_are_in_the_workspaces_cache() {
        let root = workspace_assets_dir().join("../..");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("root manifest");
        assert!(manifest.contains("[workspace]"), "{}", root.display());
    }

    #[test]
    fn auto_takes_int8_only_where_the_cpu_has_int8_dot_product_units() {
        let auto = |flags| PrecisionSetting::Auto.resolve_for(flags);
        // This machine kind's Zen 4 flags, a Sapphire Rapids' (AMX) and an
        // AVX2-only Zen 3's.
        let zen4 = "fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni avx512_bitalg";
        let spr = "avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8";
        let zen3 = "fpu sse2 avx2 fma bmi2";
        assert_eq!(
            (auto(zen4).precision, auto(zen4).reason),
            (Precision::Int8, "avx512_vnni")
        );
        assert_eq!(
            (auto(spr).precision, auto(spr).reason),
            (Precision::Int8, "amx_int8")
        );
        assert_eq!(
            (auto(zen3).precision, auto(zen3).reason),
            (Precision::Fp32, "no_int8_units")
        );
        assert_eq!(auto("").precision, Precision::Fp32, "flags unknown");
        // A flag's name must match whole, not as a prefix.
        assert_eq!(auto("avx512_vnnix").precision, Precision::Fp32);
        // Forced settings ignore the CPU.
        assert_eq!(
            PrecisionSetting::Fp32.resolve_for(spr),
            PrecisionChoice {
                precision: Precision::Fp32,
                reason: "set"
            }
        );
        assert_eq!(
            PrecisionSetting::Int8.resolve_for(zen3).precision,
            Precision::Int8
        );
    }

    #[test]
    fn names_metadata_parses_in_index_order() {
        let names = parse_names("{0: 'person', 1: \"bicycle\", 2: 'traffic light'}");
        assert_eq!(names, vec!["person", "bicycle", "traffic light"]);
    }

    #[test]
    fn names_metadata_with_gaps_is_ignored_rather_than_mislabelled() {
        assert!(parse_names("{0: 'a', 2: 'c'}").is_empty());
        assert!(parse_names("not a dict").is_empty());
    }

    #[test]
    fn imgsz_metadata_gives_the_larger_side() {
        assert_eq!(parse_imgsz("[640, 640]"), Some(640));
        assert_eq!(parse_imgsz("[480, 640]"), Some(640));
        assert_eq!(parse_imgsz("x"), None);
    }
}
