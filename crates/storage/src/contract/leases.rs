//! The [`Leases`] contract, and [`run_once`] over it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use polybot_domain::{AnswerExtra, BotId, PredictionId, UpdateId};

use super::random_i64;
use crate::{Claim, ClaimKey, LeaseId, Leases, Once, StorageError, run_once};

/// The [`Leases`] contract: claims (acquire, in progress, done, release,
/// renewal, expiry), and the [`run_once`] protocol over them.
pub async fn leases(table: &dyn Leases) {
    // Claims: acquire, in progress, done.
    let lease = Duration::from_secs(30);
    let acquired = |c: Claim, what: &str| {
        c.lease()
            .unwrap_or_else(|| panic!("table: {what} must acquire, got {c:?}"))
    };
    let update_id = UpdateId(random_i64());
    let update = ClaimKey::Update(BotId(1), update_id);
    acquired(claim(table, update, lease).await, "a first claim");
    assert_eq!(
        claim(table, update, lease).await,
        Claim::InProgress,
        "table: a claim under an unexpired lease must be InProgress"
    );
    finish(table, update).await;
    assert_eq!(
        claim(table, update, lease).await,
        Claim::Done,
        "table: a claim after finish must be Done"
    );
    // The same update id of another bot (a new token, a second bot on this
    // table) is another update.
    acquired(
        claim(table, ClaimKey::Update(BotId(2), update_id), lease).await,
        "another bot's update with the same id",
    );

    // Release lets a retry acquire at once; each claim is a new lease.
    let reply = ClaimKey::Reply(PredictionId::new());
    let first = acquired(claim(table, reply, lease).await, "a first claim");
    release(table, reply, first, "release").await;
    let second = acquired(claim(table, reply, lease).await, "a claim after release");
    assert_ne!(first, second, "table: each claim must be a new lease");
    finish(table, reply).await;
    release(table, reply, second, "releasing a finished claim (a no-op)").await;
    assert_eq!(
        claim(table, reply, lease).await,
        Claim::Done,
        "table: a claim after finish must be Done, even after a late release"
    );

    // An answer's extras are claimed each on its own: details sent is not
    // crops sent.
    let prediction = PredictionId::new();
    let details = ClaimKey::Extra(prediction, AnswerExtra::Details);
    acquired(claim(table, details, lease).await, "a first press");
    finish(table, details).await;
    assert_eq!(
        claim(table, details, lease).await,
        Claim::Done,
        "table: a second press of a sent extra must be Done"
    );
    acquired(
        claim(
            table,
            ClaimKey::Extra(prediction, AnswerExtra::Crops),
            lease,
        )
        .await,
        "another extra of the same answer",
    );

    // An expired lease (its holder died or stalled) can be claimed again,
    // and the stale holder's late release must not free the new lease.
    // Sleep well past the lease: some backends keep times in whole seconds.
    let abandoned = ClaimKey::Reply(PredictionId::new());
    let stale = acquired(
        claim(table, abandoned, Duration::from_secs(1)).await,
        "a first claim",
    );
    // A lease renewed while its work runs outlives its first term.
    let renewed = ClaimKey::Reply(PredictionId::new());
    let holder = acquired(
        claim(table, renewed, Duration::from_secs(1)).await,
        "a first claim",
    );
    assert!(
        renew(table, renewed, holder, lease).await,
        "table: the holder must be able to renew its lease"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        claim(table, renewed, lease).await,
        Claim::InProgress,
        "table: a renewed lease must still be held after its first term"
    );
    finish(table, renewed).await;
    assert!(
        !renew(table, renewed, holder, lease).await,
        "table: a finished claim cannot be renewed"
    );
    let fresh = acquired(
        claim(table, abandoned, lease).await,
        "a claim after the lease expired",
    );
    assert!(
        !renew(table, abandoned, stale, lease).await,
        "table: a stale holder must not renew the new holder's lease"
    );
    release(table, abandoned, stale, "a stale release (a no-op)").await;
    assert_eq!(
        claim(table, abandoned, lease).await,
        Claim::InProgress,
        "table: a stale holder's release must not free the new lease"
    );
    release(table, abandoned, fresh, "release").await;
    acquired(
        claim(table, abandoned, lease).await,
        "a claim after the holder released",
    );

    run_once_protocol(table).await;
}

/// [`run_once`]: the work runs once to completion, a failure lets the retry
/// run it, and a slow run keeps its lease past the first term.
async fn run_once_protocol(table: &dyn Leases) {
    let runs = AtomicUsize::new(0);
    let work = |result: Result<u32, StorageError>| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move { result }
    };
    let lease = Duration::from_secs(30);

    let key = ClaimKey::Reply(PredictionId::new());
    let failed = run_once(
        table,
        key,
        lease,
        work(Err(StorageError::NotFound("x".into()))),
    )
    .await;
    assert!(
        matches!(failed, Err(StorageError::NotFound(_))),
        "run_once: the work's error must be returned, got {failed:?}"
    );
    let ran = run_once(table, key, lease, work(Ok(7))).await;
    assert_eq!(
        ran.expect("run_once after a failure"),
        Once::Ran(7),
        "run_once: a failed run must release its lease so the retry runs at once"
    );
    let again = run_once(table, key, lease, work(Ok(8))).await;
    assert_eq!(
        again.expect("run_once after success"),
        Once::Done,
        "run_once: work that ran to completion must not run again"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "run_once: each call builds its work"
    );

    // A run slower than its lease renews it: a second caller meanwhile is
    // told Busy, not let in to repeat the work. Two seconds, because some
    // backends keep times in whole seconds.
    let slow = ClaimKey::Reply(PredictionId::new());
    let short = Duration::from_secs(2);
    let first = run_once(table, slow, short, async {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        Ok::<_, StorageError>("first")
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        run_once(table, slow, short, async {
            Ok::<_, StorageError>("second")
        })
        .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.expect("the slow run"), Once::Ran("first"));
    assert_eq!(
        second.expect("the concurrent run"),
        Once::Busy,
        "run_once: a run past its first lease term must keep the lease"
    );
}

async fn claim(table: &dyn Leases, key: ClaimKey, lease: Duration) -> Claim {
    table
        .claim(key, lease)
        .await
        .unwrap_or_else(|e| panic!("table: claim({key:?}) failed: {e}"))
}

async fn finish(table: &dyn Leases, key: ClaimKey) {
    table.finish(key).await.expect("table: finish must succeed");
}

async fn release(table: &dyn Leases, key: ClaimKey, lease: LeaseId, what: &str) {
    table
        .release(key, lease)
        .await
        .unwrap_or_else(|e| panic!("table: {what} must succeed: {e}"));
}

async fn renew(table: &dyn Leases, key: ClaimKey, lease: LeaseId, duration: Duration) -> bool {
    table
        .renew(key, lease, duration)
        .await
        .unwrap_or_else(|e| panic!("table: renew({key:?}) failed: {e}"))
}
