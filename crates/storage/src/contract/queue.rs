//! The [`JobQueue`] contract.

use std::collections::BTreeSet;
use std::time::Duration;

use polybot_domain::now_epoch;
use tokio::time::Instant;

use super::run_id;
use crate::{Attributes, Delivery, JobQueue, QueueStats};

/// How long the suite waits for a message that should be there.
const ARRIVAL: Duration = Duration::from_secs(5);

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
