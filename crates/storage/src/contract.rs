//! A conformance suite for the storage traits, shared by every backend.
//!
//! Each function drives one trait object through the behaviour the rest
//! of Polybot relies on and panics, with a message saying which promise was
//! broken, at the first deviation: it is test support, called from the
//! adapters' integration tests (`tests/local.rs` here; the AWS adapter's
//! tests against a moto server).
//!
//! Every key, id and message body carries a fresh random run id, so the
//! object store and table suites can run against a shared server, in
//! parallel, without cleaning up. Queues are different: [`job_queue`]
//! counts messages, so it needs a queue and dead-letter queue that start
//! empty and that nobody else uses while it runs (create them with unique
//! names).
//!
//! Only portable behaviour is asserted. For example, SQS documents that a
//! delete with a stale receipt "succeeds, but the message might not be
//! deleted", and moto does delete it, so the suite only checks that such a
//! call does not break the current receipt; the local adapter's stricter
//! promise is tested in its own tests.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use polybot_domain::{
    AlbumId, AlbumPhoto, BotId, ChatId, FailureKind, Filter, FilterSummary, JobKind, JobResult,
    Label, ObjectKey, PredictionId, PredictionRecord, PredictionStatus, PredictionSummary,
    QuarterTurns, UpdateId, now_epoch,
};
use tokio::time::Instant;

use crate::{
    AlbumClose, AlbumJoin, AlbumKey, Attributes, Claim, ClaimKey, Delivery, JobQueue, NoticeState,
    ObjectStore, Once, PredictionTable, PutMode, QueueStats, StorageError, run_once,
};

/// How long the suite waits for a message that should be there.
const ARRIVAL: Duration = Duration::from_secs(5);

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A random positive id, for chats and updates nobody else uses.
fn random_i64() -> i64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    (i64::from_le_bytes(first) & i64::MAX).max(1)
}

// ---------------------------------------------------------------- objects

/// The [`ObjectStore`] contract: round trips, create-only puts that never
/// overwrite, overwrites that do, and `NotFound` for missing keys.
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

    match store
        .put(
            &original,
            Bytes::from_static(b"other"),
            "image/jpeg",
            PutMode::CreateOnly,
        )
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
}

// ------------------------------------------------------------------ queue

/// The [`JobQueue`] contract, for a queue whose visibility timeout is
/// `visibility` and whose redrive policy moves messages to `dlq` after
/// `max_receives` receives.
///
/// Both queues must start empty and be used by nobody else meanwhile.
/// Keep `visibility` short (1-2 s) and, for SQS, in whole seconds;
/// `max_receives` must be at least 2. Takes roughly `4 × visibility` plus a
/// few seconds.
pub async fn job_queue(
    queue: &dyn JobQueue,
    dlq: &dyn JobQueue,
    visibility: Duration,
    max_receives: u32,
) {
    assert!(
        max_receives >= 2,
        "job queue contract: max_receives must be at least 2 to test redelivery before dead-lettering"
    );
    queue
        .check()
        .await
        .expect("queue: check() must succeed on a working queue");
    dlq.check()
        .await
        .expect("dead-letter queue: check() must succeed on a working queue");
    assert_stats(
        queue,
        0,
        0,
        "queue: must start empty (give the contract a fresh queue)",
    )
    .await;
    assert_stats(
        dlq,
        0,
        0,
        "dead-letter queue: must start empty (give the contract a fresh queue)",
    )
    .await;

    let run = run_id();
    let body = |name: &str| format!("{{\"contract_run\":\"{run}\",\"message\":\"{name}\"}}");
    let attributes: Attributes = [
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("schema_version", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    // Send, receive with attributes, invisibility while in flight, delete.
    let before = now_epoch();
    queue
        .send(&body("basic"), &attributes)
        .await
        .expect("queue: send must succeed");
    let basic = receive_one(queue, &run, ARRIVAL, "a sent message must be received").await;
    assert_eq!(
        basic.body,
        body("basic"),
        "queue: the body must arrive as sent"
    );
    assert_eq!(
        basic.attributes, attributes,
        "queue: the attributes must arrive as sent"
    );
    assert_eq!(
        basic.receive_count, 1,
        "queue: a first receive must have receive_count 1"
    );
    assert!(
        basic.sent_at >= before - 60.0 && basic.sent_at <= now_epoch() + 60.0,
        "queue: sent_at must be the send time in seconds since the epoch, got {} (sent at about {before})",
        basic.sent_at
    );
    assert_stats(
        queue,
        0,
        1,
        "queue: a received message must count as in flight",
    )
    .await;
    expect_nothing(
        queue,
        Duration::ZERO,
        "a received message must stay invisible until its visibility timeout",
    )
    .await;
    queue
        .delete(&basic.receipt)
        .await
        .expect("queue: delete with a current receipt must succeed");
    assert_stats(queue, 0, 0, "queue: a deleted message must be gone").await;

    // A heartbeat extends the timeout; ZERO releases at once; a stale
    // receipt does not break the current one.
    queue
        .send(&body("heartbeat"), &Attributes::new())
        .await
        .expect("queue: send must succeed");
    let first = receive_one(queue, &run, ARRIVAL, "a sent message must be received").await;
    queue
        .set_visibility(&first.receipt, visibility * 4)
        .await
        .expect("queue: set_visibility with a current receipt must succeed");
    tokio::time::sleep(visibility + Duration::from_millis(500)).await;
    expect_nothing(
        queue,
        Duration::ZERO,
        "a heartbeat must extend the visibility timeout past the original one",
    )
    .await;
    queue
        .set_visibility(&first.receipt, Duration::ZERO)
        .await
        .expect("queue: set_visibility(ZERO) with a current receipt must succeed");
    let second = receive_one(
        queue,
        &run,
        ARRIVAL,
        "a message released with set_visibility(ZERO) must be received again at once",
    )
    .await;
    assert_eq!(
        second.body,
        body("heartbeat"),
        "queue: the released message must come back"
    );
    assert_eq!(
        second.receive_count, 2,
        "queue: the second receive must have receive_count 2"
    );
    assert_ne!(
        second.receipt, first.receipt,
        "queue: each receive must hand out a new receipt"
    );
    // Stale receipt: SQS allows either outcome of the call itself.
    let _ = queue.delete(&first.receipt).await;
    queue
        .delete(&second.receipt)
        .await
        .expect("queue: delete with the current receipt must succeed after a stale delete");
    assert_stats(
        queue,
        0,
        0,
        "queue: the message must be gone after deleting it",
    )
    .await;

    // Redelivery after the visibility timeout.
    queue
        .send(&body("redeliver"), &Attributes::new())
        .await
        .expect("queue: send must succeed");
    let first = receive_one(queue, &run, ARRIVAL, "a sent message must be received").await;
    let received_at = Instant::now();
    let again = receive_one(
        queue,
        &run,
        visibility * 3 + ARRIVAL,
        "a message not deleted must be delivered again after its visibility timeout",
    )
    .await;
    assert!(
        received_at.elapsed() >= visibility / 2,
        "queue: a message came back after {:?}, before its visibility timeout of {visibility:?}",
        received_at.elapsed()
    );
    assert_eq!(
        again.body,
        body("redeliver"),
        "queue: the same message must be redelivered"
    );
    assert_eq!(
        again.receive_count, 2,
        "queue: a redelivery must count the receive"
    );
    assert_ne!(
        again.receipt, first.receipt,
        "queue: a redelivery must hand out a new receipt"
    );
    queue
        .delete(&again.receipt)
        .await
        .expect("queue: delete after redelivery must succeed");

    // Dead-lettering after max_receives receives.
    queue
        .send(&body("poison"), &attributes)
        .await
        .expect("queue: send must succeed");
    for count in 1..=max_receives {
        let d = receive_one(
            queue,
            &run,
            ARRIVAL,
            "a released message must be received again",
        )
        .await;
        assert_eq!(d.body, body("poison"), "queue: expected the poison message");
        assert_eq!(
            d.receive_count, count,
            "queue: receive_count must count every receive"
        );
        queue
            .set_visibility(&d.receipt, Duration::ZERO)
            .await
            .expect("queue: set_visibility(ZERO) must succeed");
    }
    expect_nothing(
        queue,
        Duration::from_secs(1),
        "a message received max_receives times must move to the dead-letter queue instead of being received again",
    )
    .await;
    let dead = receive_one(
        dlq,
        &run,
        ARRIVAL,
        "a message received max_receives times must arrive in the dead-letter queue",
    )
    .await;
    assert_eq!(
        dead.body,
        body("poison"),
        "dead-letter queue: the body must be kept"
    );
    assert_eq!(
        dead.attributes, attributes,
        "dead-letter queue: the attributes must be kept"
    );
    assert!(
        dead.receive_count >= 1,
        "dead-letter queue: receive_count must be at least 1"
    );
    dlq.delete(&dead.receipt)
        .await
        .expect("dead-letter queue: delete must succeed");
    assert_stats(queue, 0, 0, "queue: must be empty after dead-lettering").await;
    assert_stats(dlq, 0, 0, "dead-letter queue: must be empty after delete").await;

    // Batches: `max` is respected and every message arrives exactly once.
    let sent: BTreeSet<String> = (0..3).map(|i| body(&format!("batch-{i}"))).collect();
    for b in &sent {
        queue
            .send(b, &Attributes::new())
            .await
            .expect("queue: send must succeed");
    }
    assert_stats(queue, 3, 0, "queue: sent messages must count as visible").await;
    let mut got: Vec<Delivery> = Vec::new();
    let deadline = Instant::now() + ARRIVAL;
    while got.len() < sent.len() && Instant::now() < deadline {
        let batch = queue
            .receive(2, Duration::from_secs(1))
            .await
            .expect("queue: receive must succeed");
        assert!(
            batch.len() <= 2,
            "queue: receive(max = 2) returned {} messages",
            batch.len()
        );
        got.extend(batch);
    }
    let bodies: BTreeSet<String> = got.iter().map(|d| d.body.clone()).collect();
    assert_eq!(
        got.len(),
        sent.len(),
        "queue: each message must be received once, got {bodies:?}"
    );
    assert_eq!(bodies, sent, "queue: every sent message must be received");
    for d in &got {
        queue
            .delete(&d.receipt)
            .await
            .expect("queue: delete must succeed");
    }
    assert_stats(queue, 0, 0, "queue: must be empty after deleting the batch").await;
}

/// Receives exactly one message of this run within `wait`.
async fn receive_one(queue: &dyn JobQueue, run: &str, wait: Duration, what: &str) -> Delivery {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut batch = queue
            .receive(1, left.min(Duration::from_secs(20)))
            .await
            .unwrap_or_else(|e| panic!("queue: receive failed ({what}): {e}"));
        assert!(
            batch.len() <= 1,
            "queue: receive(max = 1) returned {} messages",
            batch.len()
        );
        if let Some(d) = batch.pop() {
            assert!(
                d.body.contains(run),
                "queue: received a message of another run ({:?}); the contract needs a queue of its own",
                d.body
            );
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "queue: nothing received within {wait:?}: {what}"
        );
    }
}

async fn expect_nothing(queue: &dyn JobQueue, wait: Duration, what: &str) {
    let batch = queue
        .receive(10, wait)
        .await
        .unwrap_or_else(|e| panic!("queue: receive failed ({what}): {e}"));
    let bodies: Vec<&str> = batch.iter().map(|d| d.body.as_str()).collect();
    assert!(batch.is_empty(), "queue: {what}, but received {bodies:?}");
}

async fn assert_stats(queue: &dyn JobQueue, visible: u64, in_flight: u64, what: &str) {
    let stats = queue
        .stats()
        .await
        .unwrap_or_else(|e| panic!("{what}: stats() failed: {e}"));
    assert_eq!(stats, QueueStats { visible, in_flight }, "{what}");
}

// ------------------------------------------------------------------ table

/// The [`PredictionTable`] contract: conditional create, a summary stored
/// once, failures that never override success, per-chat listing newest
/// first, and claims (acquire, in progress, done, release, expiry).
pub async fn prediction_table(table: &dyn PredictionTable) {
    table
        .check()
        .await
        .expect("table: check() must succeed on a working table");
    albums(table).await;
    let t0 = now_epoch();

    // Conditional create and get.
    let chat = ChatId(random_i64());
    let record = pending(chat, t0);
    let id = record.prediction_id;
    table
        .create(&record)
        .await
        .expect("table: creating a new prediction must succeed");
    match table.create(&record).await {
        Err(StorageError::AlreadyExists(_)) => {}
        other => {
            panic!("table: creating an existing prediction must be AlreadyExists, got {other:?}")
        }
    }
    let got = get(table, id).await;
    assert_eq!(
        got.prediction_id, id,
        "table: get must return the prediction asked for"
    );
    assert_eq!(got.chat_id, chat, "table: chat_id must round-trip");
    assert_eq!(
        got.status,
        PredictionStatus::Pending,
        "table: a new prediction is pending"
    );
    assert_eq!(
        got.original_key, record.original_key,
        "table: original_key must round-trip"
    );
    assert_eq!(got.result, None, "table: a new prediction has no result");
    assert_eq!(got.failure, None, "table: a new prediction has no failure");
    assert!(
        (got.created_at - t0).abs() < 1e-3,
        "table: created_at must round-trip, stored {t0}, got {}",
        got.created_at
    );
    assert!(
        table
            .get(PredictionId::new())
            .await
            .expect("table: get must succeed")
            .is_none(),
        "table: get of an unknown prediction must be None"
    );

    // The summary is stored once.
    let first = summary(id, &["person", "dog"]);
    assert!(
        table
            .save_result(&first)
            .await
            .expect("table: save_result must succeed"),
        "table: the first save_summary must store the summary"
    );
    let got = get(table, id).await;
    assert_eq!(
        got.status,
        PredictionStatus::Succeeded,
        "table: a summary marks the prediction succeeded"
    );
    assert_eq!(
        got.result.as_ref(),
        Some(&first),
        "table: the summary must round-trip"
    );
    let second = summary(id, &["cat"]);
    assert!(
        !table
            .save_result(&second)
            .await
            .expect("table: save_result must succeed"),
        "table: a second save_summary (a redelivered job) must not store"
    );
    assert_eq!(
        get(table, id).await.result.as_ref(),
        Some(&first),
        "table: a second save_summary must keep the first summary"
    );

    // A failure never overrides a success.
    table
        .save_failure(id, FailureKind::Internal)
        .await
        .expect("table: save_failure on a succeeded prediction must succeed (as a no-op)");
    let got = get(table, id).await;
    assert_eq!(
        got.status,
        PredictionStatus::Succeeded,
        "table: a failure must not override success"
    );
    assert_eq!(
        got.failure, None,
        "table: a failure must not be recorded on a success"
    );
    assert_eq!(
        got.result.as_ref(),
        Some(&first),
        "table: a failure must keep the summary"
    );

    // A failure is recorded; a later success (a retried job) still wins.
    let flaky = pending(chat, t0 + 0.5);
    table
        .create(&flaky)
        .await
        .expect("table: create must succeed");
    table
        .save_failure(flaky.prediction_id, FailureKind::TooLarge)
        .await
        .expect("table: save_failure must succeed");
    let got = get(table, flaky.prediction_id).await;
    assert_eq!(
        got.status,
        PredictionStatus::Failed,
        "table: save_failure marks the prediction failed"
    );
    assert_eq!(
        got.failure,
        Some(FailureKind::TooLarge),
        "table: the failure kind must round-trip"
    );
    let late = summary(flaky.prediction_id, &["bus"]);
    assert!(
        table
            .save_result(&late)
            .await
            .expect("table: save_result must succeed"),
        "table: a summary must be stored on a failed prediction that has none"
    );
    assert_eq!(
        get(table, flaky.prediction_id).await.status,
        PredictionStatus::Succeeded,
        "table: a stored summary marks the prediction succeeded"
    );

    // A filter request keeps its kind, and its output reads back as a
    // filter's, not a detection's.
    let mut filtered = pending(chat, t0 + 0.75);
    let filter = Filter::Rotate {
        quarter_turns: QuarterTurns::new(3).expect("in range"),
    };
    filtered.kind = JobKind::Filter(filter);
    table
        .create(&filtered)
        .await
        .expect("table: create must succeed");
    assert_eq!(
        get(table, filtered.prediction_id).await.kind,
        filtered.kind,
        "table: a request's kind must round-trip"
    );
    let output = JobResult::Filtered(FilterSummary {
        prediction_id: filtered.prediction_id,
        filter,
        original_img_path: filtered.original_key.to_string(),
        output_img_path: format!("1/filtered/{}.jpg", filtered.prediction_id),
        mime_type: "image/jpeg".into(),
        width: 480,
        height: 640,
        time: now_epoch(),
    });
    assert!(
        table
            .save_result(&output)
            .await
            .expect("table: save_result must succeed"),
        "table: a filter's output must be stored"
    );
    let got = get(table, filtered.prediction_id).await;
    assert_eq!(
        (got.status, got.result.as_ref()),
        (PredictionStatus::Succeeded, Some(&output)),
        "table: a filter's output must round-trip as a filter's"
    );

    // Listing by chat: newest first by created_at, not by insertion order.
    let other_chat = ChatId(random_i64());
    let middle = pending(other_chat, t0 + 1.0);
    let oldest = pending(other_chat, t0);
    let newest = pending(other_chat, t0 + 2.0);
    for r in [&middle, &oldest, &newest] {
        table.create(r).await.expect("table: create must succeed");
    }
    let ids = |records: Vec<PredictionRecord>| -> Vec<PredictionId> {
        records.into_iter().map(|r| r.prediction_id).collect()
    };
    let all = ids(table
        .list_by_chat(other_chat, 10)
        .await
        .expect("table: list_by_chat"));
    assert_eq!(
        all,
        vec![
            newest.prediction_id,
            middle.prediction_id,
            oldest.prediction_id
        ],
        "table: list_by_chat must list the chat's predictions, most recent first"
    );
    let two = ids(table
        .list_by_chat(other_chat, 2)
        .await
        .expect("table: list_by_chat"));
    assert_eq!(
        two,
        vec![newest.prediction_id, middle.prediction_id],
        "table: list_by_chat must return the `limit` most recent"
    );
    let none = table
        .list_by_chat(ChatId(random_i64()), 10)
        .await
        .expect("table: list_by_chat");
    assert!(
        none.is_empty(),
        "table: a chat without predictions lists nothing"
    );

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
    table
        .finish(update)
        .await
        .expect("table: finish must succeed");
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
    table
        .release(reply, first)
        .await
        .expect("table: release must succeed");
    let second = acquired(claim(table, reply, lease).await, "a claim after release");
    assert_ne!(first, second, "table: each claim must be a new lease");
    table
        .finish(reply)
        .await
        .expect("table: finish must succeed");
    table
        .release(reply, second)
        .await
        .expect("table: releasing a finished claim must succeed (as a no-op)");
    assert_eq!(
        claim(table, reply, lease).await,
        Claim::Done,
        "table: a claim after finish must be Done, even after a late release"
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
        table
            .renew(renewed, holder, lease)
            .await
            .expect("table: renew must succeed"),
        "table: the holder must be able to renew its lease"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        claim(table, renewed, lease).await,
        Claim::InProgress,
        "table: a renewed lease must still be held after its first term"
    );
    table
        .finish(renewed)
        .await
        .expect("table: finish must succeed");
    assert!(
        !table
            .renew(renewed, holder, lease)
            .await
            .expect("table: renew must succeed"),
        "table: a finished claim cannot be renewed"
    );
    let fresh = acquired(
        claim(table, abandoned, lease).await,
        "a claim after the lease expired",
    );
    assert!(
        !table
            .renew(abandoned, stale, lease)
            .await
            .expect("table: a stale renew must succeed"),
        "table: a stale holder must not renew the new holder's lease"
    );
    table
        .release(abandoned, stale)
        .await
        .expect("table: a stale release must succeed (as a no-op)");
    assert_eq!(
        claim(table, abandoned, lease).await,
        Claim::InProgress,
        "table: a stale holder's release must not free the new lease"
    );
    table
        .release(abandoned, fresh)
        .await
        .expect("table: release must succeed");
    acquired(
        claim(table, abandoned, lease).await,
        "a claim after the holder released",
    );

    notices(table).await;
    run_once_protocol(table).await;
}

/// [`run_once`]: the work runs once to completion, a failure lets the retry
/// run it, and a slow run keeps its lease past the first term.
async fn run_once_protocol(table: &dyn PredictionTable) {
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

/// The notice protocol: whichever of the notice and the answer comes second
/// cleans up, so a notice never outlives its answer.
async fn notices(table: &dyn PredictionTable) {
    let early = PredictionId::new();
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState::default(),
        "table: a prediction starts without a notice, unanswered"
    );
    assert!(
        table
            .attach_notice(early, 41)
            .await
            .expect("table: attach_notice"),
        "table: a notice attaches before the answer"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState {
            message_id: Some(41),
            answered: false
        }
    );
    assert_eq!(
        table
            .close_notice(early)
            .await
            .expect("table: close_notice"),
        Some(41),
        "table: closing returns the attached notice for removal"
    );
    assert_eq!(
        table.close_notice(early).await.expect("table: close again"),
        Some(41),
        "table: closing twice returns the same notice (a retried reply)"
    );
    assert!(
        !table
            .attach_notice(early, 42)
            .await
            .expect("table: late attach"),
        "table: a notice after the answer must not attach"
    );
    assert_eq!(
        table.notice(early).await.expect("table: notice"),
        NoticeState {
            message_id: Some(41),
            answered: true
        }
    );

    let fast = PredictionId::new();
    assert_eq!(
        table.close_notice(fast).await.expect("table: close_notice"),
        None,
        "table: an answer with no notice has nothing to remove"
    );
    assert!(
        !table
            .attach_notice(fast, 7)
            .await
            .expect("table: late attach"),
        "table: a notice sent after a fast answer must be removed by its sender"
    );
}

/// The album protocol: photos join while the album is open; it closes
/// only after a quiet window, once, with every photo in message order; a
/// photo after that is too late. Part of [`prediction_table`].
pub async fn albums(table: &dyn PredictionTable) {
    let key = AlbumKey {
        chat: ChatId(random_i64()),
        album: AlbumId::parse(format!("g{}", random_i64().unsigned_abs())).expect("album id"),
    };
    let photo = |message_id: i64, caption: Option<&str>| AlbumPhoto {
        message_id,
        original_key: ObjectKey::parse(format!("{}/original/m{message_id}.jpg", key.chat))
            .expect("key"),
        caption: caption.map(str::to_owned),
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
            photo(13, None)
        ]),
        "table: the closed album has each photo once, in message order"
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

fn pending(chat: ChatId, created_at: f64) -> PredictionRecord {
    let id = PredictionId::new();
    PredictionRecord {
        prediction_id: id,
        chat_id: chat,
        status: PredictionStatus::Pending,
        original_key: ObjectKey::original(chat, id, "jpg"),
        kind: JobKind::Detect,
        result: None,
        failure: None,
        created_at,
        updated_at: created_at,
    }
}

fn summary(id: PredictionId, classes: &[&str]) -> JobResult {
    JobResult::Detected(PredictionSummary {
        prediction_id: id,
        original_img_path: format!("1/original/{id}.jpg"),
        predicted_img_path: format!("1/predicted/{id}.jpg"),
        full_img_path: None,
        labels: classes
            .iter()
            .enumerate()
            .map(|(i, class)| Label {
                class: (*class).to_owned(),
                cx: 0.25 + 0.1 * i as f32,
                cy: 0.5,
                width: 0.125,
                height: 0.3,
                confidence: 0.87,
            })
            .collect(),
        time: now_epoch(),
    })
}

async fn get(table: &dyn PredictionTable, id: PredictionId) -> PredictionRecord {
    table
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("table: get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("table: prediction {id} must exist"))
}

async fn claim(table: &dyn PredictionTable, key: ClaimKey, lease: Duration) -> Claim {
    table
        .claim(key, lease)
        .await
        .unwrap_or_else(|e| panic!("table: claim({key:?}) failed: {e}"))
}
