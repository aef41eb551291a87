//! Test support: the [`FakeMessenger`] (from `polybot-telegram`) and the
//! embedded storage backend, for this crate's unit tests and, with the
//! `test-util` feature, for other crates' tests.

pub use polybot_telegram::fake::{Call, FakeMessenger};

/// The embedded backend in `dir`, as `polybot up` opens it.
pub async fn local_backends(dir: &std::path::Path) -> polybot_storage::Backends {
    local_backends_with(dir, polybot_storage::local::LocalOptions::default()).await
}

/// The embedded backend in `dir` with other queue settings.
pub async fn local_backends_with(
    dir: &std::path::Path,
    options: polybot_storage::local::LocalOptions,
) -> polybot_storage::Backends {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || polybot_storage::local::open(&dir, options))
        .await
        .expect("the opening task ran")
        .expect("the local backend opens")
}
