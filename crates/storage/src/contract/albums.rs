//! The [`Albums`] contract.

use std::time::Duration;

use polybot_domain::{AlbumId, AlbumMember, AlbumPhoto, ChatId, ObjectKey, SkippedItem};

use super::random_i64;
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums};

/// The album protocol: items (photos, and others such as a video) join
/// while the album is open; it closes only after a quiet window, held by
/// one closer at a time, with every item in message order; an item after
/// that is too late. A closer that dies leaves it pending: once its claim
/// lapses another closer gets the same items; a finished album is done.
pub async fn albums(table: &dyn Albums) {
    let key = AlbumKey {
        chat: ChatId(random_i64()),
        album: AlbumId::parse(format!("g{}", random_i64().unsigned_abs())).expect("album id"),
    };
    let photo = |message_id: i64, caption: Option<&str>| {
        AlbumMember::Photo(AlbumPhoto {
            message_id,
            original_key: ObjectKey::parse(format!("{}/original/m{message_id}.jpg", key.chat))
                .expect("key"),
            caption: caption.map(str::to_owned),
        })
    };
    let video = |message_id: i64| {
        AlbumMember::Skipped(SkippedItem {
            message_id,
            what: "a video".into(),
            caption: None,
        })
    };
    let quiet = Duration::from_millis(600);
    let lease = Duration::from_millis(900);
    let pending = async |what: &str| {
        table
            .pending_albums(quiet, 10_000)
            .await
            .unwrap_or_else(|e| panic!("table: pending_albums ({what}): {e}"))
            .contains(&key)
    };
    assert_eq!(
        table.close_album(&key, quiet, lease).await.expect("close"),
        AlbumClose::AlreadyClosed,
        "table: an unknown album has nothing to close"
    );
    // Out of order, and one redelivered.
    for p in [
        photo(12, None),
        photo(11, Some("rotate")),
        photo(12, None),
        photo(13, None),
        video(15),
        video(15),
    ] {
        assert_eq!(
            table.join_album(&key, &p).await.expect("join_album"),
            AlbumJoin::Joined,
            "table: a photo joins an open album"
        );
    }
    match table.close_album(&key, quiet, lease).await.expect("close") {
        AlbumClose::Open { wait } => assert!(
            wait <= quiet,
            "table: an album is not closed within its quiet window (wait {wait:?})"
        ),
        other => panic!("table: an album that just got a photo must stay open, got {other:?}"),
    }
    assert!(
        !pending("open").await,
        "table: an open album is not pending yet"
    );
    tokio::time::sleep(quiet + Duration::from_millis(100)).await;
    assert!(
        pending("quiet").await,
        "table: a quiet album nobody closed is pending"
    );
    let (first, second) = tokio::join!(
        table.close_album(&key, quiet, lease),
        table.close_album(&key, quiet, lease)
    );
    let outcomes = [first.expect("close"), second.expect("close")];
    let closed: Vec<&AlbumClose> = outcomes
        .iter()
        .filter(|c| matches!(c, AlbumClose::Closed(_)))
        .collect();
    assert_eq!(
        closed.len(),
        1,
        "table: exactly one caller closes an album: {outcomes:?}"
    );
    let items = AlbumClose::Closed(vec![
        photo(11, Some("rotate")),
        photo(12, None),
        photo(13, None),
        video(15),
    ]);
    assert_eq!(
        closed[0], &items,
        "table: the closed album has each item once, in message order"
    );
    assert!(
        outcomes
            .iter()
            .any(|c| matches!(c, AlbumClose::Held { wait } if *wait <= lease)),
        "table: the other caller is told the album is held, until when: {outcomes:?}"
    );
    assert!(!pending("held").await, "table: a held album is not pending");
    assert_eq!(
        table
            .join_album(&key, &photo(14, None))
            .await
            .expect("join"),
        AlbumJoin::TooLate,
        "table: a photo after the album closed is on its own"
    );

    // The closer dies without finishing: its claim lapses, and the album
    // is pending again, with the same items for the next closer.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(
        pending("lapsed").await,
        "table: an album whose claim lapsed is pending"
    );
    assert_eq!(
        table.close_album(&key, quiet, lease).await.expect("close"),
        items,
        "table: the next closer gets the same items"
    );
    table.finish_album(&key).await.expect("finish_album");
    assert_eq!(
        table.close_album(&key, quiet, lease).await.expect("close"),
        AlbumClose::AlreadyClosed,
        "table: a finished album is closed for good"
    );
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(
        !pending("finished").await,
        "table: a finished album is not pending"
    );
    let unknown = AlbumKey {
        chat: key.chat,
        album: AlbumId::parse("never-sent").expect("album id"),
    };
    table
        .finish_album(&unknown)
        .await
        .expect("table: finishing an album that is gone is not an error");
    assert_eq!(AlbumKey::parse(&key.to_string()), Some(key.clone()));
}
