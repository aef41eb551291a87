//! The [`DeferredUpdates`] contract.

use std::time::Duration;

use polybot_domain::{BotId, UpdateId};

use super::random_i64;
use crate::{DeferredUpdate, DeferredUpdates};

/// A kept update is due once its grace passed, is then hidden for another
/// grace, and is gone once finished; keeping it again changes nothing.
pub async fn deferred(table: &dyn DeferredUpdates) {
    let bot = BotId(random_i64());
    let (first, second) = (UpdateId(random_i64()), UpdateId(random_i64()));
    let grace = Duration::from_millis(400);
    table
        .defer_update(bot, first, "{\"update_id\":1}", grace)
        .await
        .expect("table: defer_update");
    table
        .defer_update(bot, first, "{\"changed\":true}", grace)
        .await
        .expect("table: defer_update again is fine");
    table
        .defer_update(bot, second, "{\"update_id\":2}", Duration::from_secs(3600))
        .await
        .expect("table: defer_update");
    assert!(
        ours(table, bot, grace).await.is_empty(),
        "table: an update within its grace is not due"
    );
    // The index read is eventually consistent: look for a while.
    let mut due = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        due = ours(table, bot, Duration::from_secs(3600)).await;
        if !due.is_empty() {
            break;
        }
    }
    assert_eq!(
        due,
        [DeferredUpdate {
            bot,
            update: first,
            body: "{\"update_id\":1}".into()
        }],
        "table: past its grace it is due, as first kept; the other is not"
    );
    assert!(
        ours(table, bot, grace).await.is_empty(),
        "table: once taken, it is hidden for another grace"
    );
    table
        .finish_deferred(bot, first)
        .await
        .expect("table: finish_deferred");
    table
        .finish_deferred(bot, UpdateId(random_i64()))
        .await
        .expect("table: finishing an update never kept is fine");
}

/// The due updates of `bot` (other runs share the table).
async fn ours(table: &dyn DeferredUpdates, bot: BotId, grace: Duration) -> Vec<DeferredUpdate> {
    let due = table
        .due_updates(grace, 100)
        .await
        .expect("table: due_updates");
    due.into_iter().filter(|d| d.bot == bot).collect()
}
