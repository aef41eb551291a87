//! The [`Albums`] contract.

use std::time::Duration;

use polybot_domain::{AlbumId, AlbumMember, AlbumPhoto, ChatId, ObjectKey, SkippedItem};

use super::random_i64;
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums};

/// The album protocol: items (photos, and others such as a video) join
/// while the album is open; it closes only after a quiet window, once,
/// with every item in message order; an item after that is too late.
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
    assert_eq!(
        table.close_album(&key, quiet).await.expect("close"),
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
    match table.close_album(&key, quiet).await.expect("close") {
        AlbumClose::Open { wait } => assert!(
            wait <= quiet,
            "table: an album is not closed within its quiet window (wait {wait:?})"
        ),
        other => panic!("table: an album that just got a photo must stay open, got {other:?}"),
    }
    tokio::time::sleep(quiet + Duration::from_millis(100)).await;
    let (first, second) = tokio::join!(
        table.close_album(&key, quiet),
        table.close_album(&key, quiet)
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
    assert_eq!(
        closed[0],
        &AlbumClose::Closed(vec![
            photo(11, Some("rotate")),
            photo(12, None),
            photo(13, None),
            video(15)
        ]),
        "table: the closed album has each item once, in message order"
    );
    assert_eq!(
        table
            .join_album(&key, &photo(14, None))
            .await
            .expect("join"),
        AlbumJoin::TooLate,
        "table: a photo after the album closed is on its own"
    );
}
