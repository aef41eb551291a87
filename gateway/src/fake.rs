//! Test support: the [`FakeMessenger`] (from `polybot-telegram`) and the
//! embedded storage backend, for this crate's unit tests and, with the
//! `test-util` feature, for other crates' tests.

pub use polybot_telegram::fake::{Call, FakeMessenger};

/// The embedded backend in `dir`, as `polybot up` opens it.
pub async fn local_backends(dir: &std::path::Path) -> polybot_storage::Backends {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        polybot_storage::local::open(&dir, polybot_storage::local::LocalOptions::default())
    })
    .await
    .expect("the opening task ran")
    .expect("the local backend opens")
}
