//! The [`Backlog`] contract.

use std::time::Duration;

use polybot_domain::{PredictionId, now_epoch};

use crate::Backlog;

/// How many adds race in the contract.
const RACING: u32 = 8;

/// Added costs are summed; a removal takes one out, and removing again (or
/// what was never added) is no error; an entry past its `until` does not
/// count; adding a job again replaces its entry; racing adds all count.
///
/// The backlog is one per table, so the sums are checked as changes from
/// what the table held when the suite began: run it on a table nobody
/// else adds costs to meanwhile (a fresh one).
pub async fn backlog(table: &dyn Backlog) {
    let base = sum(table).await;
    let later = now_epoch() + 3600.0;
    let (a, b) = (PredictionId::new(), PredictionId::new());
    add(table, a, 29, later).await;
    add(table, b, 13, later).await;
    assert_eq!(
        sum(table).await,
        base + 42,
        "table: extra_cost is the sum of the added costs"
    );

    remove(table, a).await;
    assert_eq!(
        sum(table).await,
        base + 13,
        "table: a removed cost stops counting"
    );
    remove(table, a).await;
    remove(table, PredictionId::new()).await;
    assert_eq!(
        sum(table).await,
        base + 13,
        "table: removing again, or what was never added, changes nothing"
    );

    add(table, b, 5, later).await;
    assert_eq!(
        sum(table).await,
        base + 5,
        "table: adding a job again replaces its cost"
    );

    let past = PredictionId::new();
    add(table, past, 100, now_epoch() - 1.0).await;
    assert_eq!(
        sum(table).await,
        base + 5,
        "table: a cost whose until has passed does not count"
    );
    // Replaced by one that ends soon: counts until then, not after.
    let soon = now_epoch() + 2.0;
    add(table, past, 7, soon).await;
    assert_eq!(
        sum(table).await,
        base + 12,
        "table: a cost counts until its until"
    );
    let left = soon - now_epoch();
    tokio::time::sleep(Duration::from_secs_f64(left.max(0.0) + 0.2)).await;
    assert_eq!(
        sum(table).await,
        base + 5,
        "table: a cost stops counting once its until passes"
    );
    // An add prunes expired entries; whatever it keeps or drops, the sum
    // is the same.
    add(table, a, 1, later).await;
    assert_eq!(sum(table).await, base + 6);

    let ids: Vec<PredictionId> = (0..RACING).map(|_| PredictionId::new()).collect();
    let racer = |i: u32| add(table, ids[i as usize], i + 1, later);
    tokio::join!(
        racer(0),
        racer(1),
        racer(2),
        racer(3),
        racer(4),
        racer(5),
        racer(6),
        racer(7)
    );
    let racing_sum = u64::from(RACING * (RACING + 1) / 2);
    assert_eq!(
        sum(table).await,
        base + 6 + racing_sum,
        "table: racing adds all count"
    );

    for id in ids.into_iter().chain([a, b, past]) {
        remove(table, id).await;
    }
    assert_eq!(
        sum(table).await,
        base,
        "table: every cost removed, the sum is what it was"
    );
    assert!(
        table
            .add_cost(PredictionId::new(), 1, f64::NAN)
            .await
            .is_err(),
        "table: an until that is not a time is refused"
    );
}

async fn add(table: &dyn Backlog, id: PredictionId, extra: u32, until: f64) {
    table
        .add_cost(id, extra, until)
        .await
        .expect("table: add_cost");
}

async fn remove(table: &dyn Backlog, id: PredictionId) {
    table.remove_cost(id).await.expect("table: remove_cost");
}

async fn sum(table: &dyn Backlog) -> u64 {
    table.extra_cost().await.expect("table: extra_cost")
}
