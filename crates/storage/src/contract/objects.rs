//! The [`ObjectStore`] contract.

use bytes::Bytes;
use polybot_domain::ObjectKey;

use super::run_id;
use crate::{ObjectStore, PutMode, StorageError};

/// The [`ObjectStore`] contract: round trips, create-only puts that never
/// overwrite, overwrites that do, `NotFound` for missing keys, and erasure
/// ([`super::object_erasure`]).
pub async fn object_store(store: &dyn ObjectStore) {
    store
        .check()
        .await
        .expect("object store: check() must succeed on a working store");
    let run = run_id();
    let key = |name: &str| {
        ObjectKey::parse(format!("contract-{run}/{name}")).expect("contract keys are valid")
    };

    let missing = key("missing.jpg");
    match store.get(&missing).await {
        Err(StorageError::NotFound(_)) => {}
        other => panic!("object store: get of a missing key must be NotFound, got {other:?}"),
    }

    // A few hundred KiB with a pattern, so truncation or reordering shows.
    let photo: Bytes = (0..300 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let original = key("original/photo.jpg");
    store
        .put(&original, photo.clone(), "image/jpeg", PutMode::CreateOnly)
        .await
        .expect("object store: a create-only put of a new key must succeed");
    assert_eq!(
        store
            .get(&original)
            .await
            .expect("object store: get after put"),
        photo,
        "object store: get must return exactly the bytes put"
    );

    let other = Bytes::from_static(b"other");
    match store
        .put(&original, other, "image/jpeg", PutMode::CreateOnly)
        .await
    {
        Err(StorageError::AlreadyExists(_)) => {}
        other => panic!(
            "object store: a create-only put of an existing key must be AlreadyExists, got {other:?}"
        ),
    }
    assert_eq!(
        store
            .get(&original)
            .await
            .expect("object store: get after refused put"),
        photo,
        "object store: a refused create-only put must leave the object unchanged"
    );

    let predicted = key("predicted/photo.jpg");
    for content in [&b"first version"[..], &b"second, longer version"[..]] {
        store
            .put(
                &predicted,
                Bytes::copy_from_slice(content),
                "image/jpeg",
                PutMode::Overwrite,
            )
            .await
            .expect("object store: an overwrite put must succeed, whether or not the key exists");
    }
    assert_eq!(
        store
            .get(&predicted)
            .await
            .expect("object store: get after overwrite"),
        Bytes::from_static(b"second, longer version"),
        "object store: an overwrite put must replace the object"
    );

    let empty = key("empty");
    store
        .put(
            &empty,
            Bytes::new(),
            "application/octet-stream",
            PutMode::Overwrite,
        )
        .await
        .expect("object store: an empty object must be storable");
    assert!(
        store
            .get(&empty)
            .await
            .expect("object store: get of an empty object")
            .is_empty(),
        "object store: an empty object must read back empty"
    );

    assert_eq!(
        store
            .get(&original)
            .await
            .expect("object store: get of a sibling"),
        photo,
        "object store: writing other keys must not touch an object"
    );

    super::object_erasure(store).await;
}
