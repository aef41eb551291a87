//! The [`Windows`] contract.

use std::time::Duration;

use polybot_domain::ChatId;

use super::random_i64;
use crate::{WindowKey, Windows};

/// Counts go up by one per new member, per key, even when calls race; a
/// member counted again is not counted twice; a new window starts again
/// from one.
pub async fn windows(table: &dyn Windows) {
    // Long enough that the calls below fall in one window, unless they
    // straddle its end (retried once then).
    let window = Duration::from_secs(24 * 3600);
    let user = WindowKey::UserPhotos(random_i64());
    let chat = WindowKey::WaitNotices(ChatId(random_i64()));
    let mut counts = Vec::new();
    for member in ["a", "b", "b", "c"] {
        counts.push(count(table, &user, member, window).await);
    }
    if counts != [1, 2, 2, 3] {
        // The day turned between two calls: the new window starts again.
        counts = Vec::new();
        for member in ["a", "b", "b", "c"] {
            counts.push(count(table, &user, member, window).await);
        }
    }
    assert_eq!(
        counts,
        [1, 2, 2, 3],
        "table: each new member counts one more, a member counted again does not"
    );
    assert_eq!(
        count(table, &chat, "a", window).await,
        1,
        "table: each key has its own count"
    );
    let c = |member| count(table, &chat, member, window);
    let (a, b, d, e) = tokio::join!(c("w"), c("x"), c("y"), c("z"));
    let mut racing = vec![a, b, d, e];
    racing.sort_unstable();
    assert_eq!(
        racing,
        [2, 3, 4, 5],
        "table: racing calls each get a count of their own"
    );
    // A window of a millisecond is over by the next call.
    let short = Duration::from_millis(1);
    let fresh = WindowKey::UserPhotos(random_i64());
    assert_eq!(count(table, &fresh, "a", short).await, 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        count(table, &fresh, "b", short).await,
        1,
        "table: a new window counts from one"
    );
}

async fn count(table: &dyn Windows, key: &WindowKey, member: &str, window: Duration) -> u64 {
    table
        .count_in_window(key, member, window)
        .await
        .expect("table: count_in_window")
}
