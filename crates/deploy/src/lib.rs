//! Deployment checks shared by the deployment tests (`tests/`):
//!
//! - [`iam`]: the IAM table, the single source of truth for which AWS calls
//!   each service makes and which IAM actions on which resources each call
//!   needs, and a small evaluator of IAM policy documents to check the
//!   Terraform roles against it;
//! - [`terraform`]: finding Terraform and the AWS provider, and running
//!   `init`, `plan` and `apply` on a copy of `terraform/` pointed at moto;
//! - [`files`]: reading the launch templates' rendered user data (the
//!   environment and command each container gets) and the Dockerfiles
//!   (entry point, environment, HEALTHCHECK);
//! - [`binaries`]: the workspace's service binaries, built next to the tests;
//! - [`runbook`]: the anchors of `docs/RUNBOOK.md` that alarms link to.

pub mod binaries;
pub mod files;
pub mod iam;
pub mod runbook;
pub mod terraform;

/// The workspace root (this crate lives in `crates/deploy`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}
