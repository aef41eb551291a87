//! The [`Predictions`] contract.

use polybot_domain::{
    Action, ChatId, Direction, FailureKind, Filter, FilterSummary, JobResult, Label, ObjectKey,
    PredictionId, PredictionRecord, PredictionStatus, PredictionSummary, QuarterTurns, now_epoch,
};

use super::random_i64;
use crate::{ListCursor, Predictions, Saved, StorageError, TimeWindow};

/// The [`Predictions`] contract: conditional create, a result stored once,
/// failures that never override success, a request's kind kept, the
/// answer's file kept, writes that never create a missing prediction, and
/// per-chat listing newest first.
pub async fn predictions(table: &dyn Predictions) {
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
    assert_eq!(
        table
            .save_result(&first)
            .await
            .expect("table: save_result must succeed"),
        Saved::Stored,
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
    assert_eq!(
        table
            .save_result(&second)
            .await
            .expect("table: save_result must succeed"),
        Saved::Unchanged,
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
    // The user was told it failed: a late success (a redelivery that
    // finished after the apology) must not turn the record against that.
    let late = summary(flaky.prediction_id, &["bus"]);
    assert_eq!(
        table
            .save_result(&late)
            .await
            .expect("table: save_result must succeed"),
        Saved::Unchanged,
        "table: no summary is stored on a failed prediction"
    );
    let got = get(table, flaky.prediction_id).await;
    assert_eq!(
        (got.status, got.failure, got.result),
        (PredictionStatus::Failed, Some(FailureKind::TooLarge), None),
        "table: a late success leaves a failed prediction failed"
    );

    // A filter request keeps its kind, and its output reads back as a
    // filter's, not a detection's.
    let mut filtered = pending(chat, t0 + 0.75);
    let filter = Filter::Rotate {
        quarter_turns: QuarterTurns::new(3).expect("in range"),
    };
    filtered.kind = Action::Filter(filter);
    table
        .create(&filtered)
        .await
        .expect("table: create must succeed");
    assert_eq!(
        get(table, filtered.prediction_id).await.kind,
        filtered.kind,
        "table: a request's kind must round-trip"
    );
    // An album's concat is recorded as a concat (it once read as `detect`).
    let mut joined = pending(chat, t0 + 0.8);
    joined.kind = Action::Concat(Direction::Vertical);
    table
        .create(&joined)
        .await
        .expect("table: create must succeed");
    assert_eq!(
        get(table, joined.prediction_id).await.kind,
        Action::Concat(Direction::Vertical),
        "table: a concat request must be recorded as a concat"
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
            .expect("table: save_result must succeed")
            .is_stored(),
        "table: a filter's output must be stored"
    );
    let got = get(table, filtered.prediction_id).await;
    assert_eq!(
        (got.status, got.result.as_ref()),
        (PredictionStatus::Succeeded, Some(&output)),
        "table: a filter's output must round-trip as a filter's"
    );

    // The answer's file: none until recorded, then kept beside the result.
    assert_eq!(
        get(table, id).await.answer_file_id,
        None,
        "table: a prediction has no answer file until one is recorded"
    );
    for file_id in ["AgACAgIAAxkBAAIBZ2first", "AgACAgIAAxkBAAIBZ2second"] {
        table
            .set_answer_file(id, file_id)
            .await
            .expect("table: set_answer_file");
        let got = get(table, id).await;
        assert_eq!(
            (got.answer_file_id.as_deref(), got.result.as_ref()),
            (Some(file_id), Some(&first)),
            "table: the answer's file id must round-trip (the latest wins) and keep the result"
        );
    }
    let listed_file = table
        .list_by_chat(chat, 10)
        .await
        .expect("table: list_by_chat")
        .into_iter()
        .find(|r| r.prediction_id == id)
        .and_then(|r| r.answer_file_id);
    assert_eq!(
        listed_file.as_deref(),
        Some("AgACAgIAAxkBAAIBZ2second"),
        "table: list_by_chat must return the answer's file id"
    );

    // Writes to a prediction that is not there never create it.
    let missing = summary(PredictionId::new(), &["dog"]);
    assert_eq!(
        table
            .save_result(&missing)
            .await
            .expect("table: save_result of a missing prediction must succeed"),
        Saved::Gone,
        "table: a result for a missing prediction is Gone"
    );
    match table
        .save_failure(missing.prediction_id(), FailureKind::Internal)
        .await
    {
        Err(StorageError::NotFound(_)) => {}
        other => {
            panic!("table: save_failure of a missing prediction must be NotFound, got {other:?}")
        }
    }
    table
        .set_answer_file(missing.prediction_id(), "AgACAgIAAxkBAAIBZ2gone")
        .await
        .expect("table: set_answer_file of a missing prediction must succeed (as a no-op)");
    assert!(
        table
            .get(missing.prediction_id())
            .await
            .expect("table: get must succeed")
            .is_none(),
        "table: writes to a missing prediction must not create it"
    );

    // Listing by chat: newest first by created_at, not by insertion order.
    let other_chat = ChatId(random_i64());
    let middle = pending(other_chat, t0 + 1.0);
    let oldest = pending(other_chat, t0);
    let newest = pending(other_chat, t0 + 2.0);
    for r in [&middle, &oldest, &newest] {
        table.create(r).await.expect("table: create must succeed");
    }
    let listed = |chat: ChatId, limit: usize| async move {
        let records = table
            .list_by_chat(chat, limit)
            .await
            .expect("table: list_by_chat");
        records
            .into_iter()
            .map(|r| r.prediction_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(other_chat, 10).await,
        vec![
            newest.prediction_id,
            middle.prediction_id,
            oldest.prediction_id
        ],
        "table: list_by_chat must list the chat's predictions, most recent first"
    );
    assert_eq!(
        listed(other_chat, 2).await,
        vec![newest.prediction_id, middle.prediction_id],
        "table: list_by_chat must return the `limit` most recent"
    );
    assert!(
        listed(ChatId(random_i64()), 10).await.is_empty(),
        "table: a chat without predictions lists nothing"
    );

    // Resuming from cursors: every prediction exactly once, equal creation
    // times included, and a time window kept.
    let paged_chat = ChatId(random_i64());
    let mut made = Vec::new();
    for offset in [0.0, 1.0, 1.0, 1.0, 2.5, 3.0, 4.0] {
        let r = pending(paged_chat, t0 + offset);
        table.create(&r).await.expect("table: create must succeed");
        made.push(r);
    }
    let pages = |window: TimeWindow, size: usize| async move {
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..20 {
            let page = table
                .chat_predictions(paged_chat, window, after, size)
                .await
                .expect("table: chat_predictions");
            assert!(page.len() <= size, "table: a page holds at most `limit`");
            let Some(last) = page.last() else { break };
            after = Some(ListCursor::after(last));
            seen.extend(page.iter().map(|r| (r.created_at, r.prediction_id)));
        }
        seen
    };
    for size in [1, 2, 3, 10] {
        let seen = pages(TimeWindow::ALL, size).await;
        let mut ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
        ids.sort();
        let mut expected: Vec<_> = made.iter().map(|r| r.prediction_id).collect();
        expected.sort();
        assert_eq!(
            ids, expected,
            "table: pages of {size} must list every prediction exactly once"
        );
        assert!(
            seen.windows(2).all(|w| w[0].0 >= w[1].0),
            "table: pages must go from the most recent to the oldest: {seen:?}"
        );
    }
    let window = TimeWindow {
        from: Some(t0 + 1.0),
        until: Some(t0 + 3.0),
    };
    let seen = pages(window, 2).await;
    let mut ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
    ids.sort();
    let mut expected: Vec<_> = made
        .iter()
        .filter(|r| window.contains(r.created_at))
        .map(|r| r.prediction_id)
        .collect();
    expected.sort();
    assert_eq!(
        expected.len(),
        4,
        "the window holds the three at t0+1 and the one at t0+2.5"
    );
    assert_eq!(
        ids, expected,
        "table: a window keeps its start (inclusive) and drops its end (exclusive)"
    );
}

/// A new pending detection request of `chat`, made at `created_at`.
pub fn pending(chat: ChatId, created_at: f64) -> PredictionRecord {
    let id = PredictionId::new();
    PredictionRecord {
        prediction_id: id,
        chat_id: chat,
        status: PredictionStatus::Pending,
        original_key: ObjectKey::original(chat, id, "jpg"),
        kind: Action::Detect,
        result: None,
        failure: None,
        created_at,
        updated_at: created_at,
        answer_file_id: None,
    }
}

/// A detection's result for `id`, one label of each class.
pub fn summary(id: PredictionId, classes: &[&str]) -> JobResult {
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
        settings: Default::default(),
    })
}

async fn get(table: &dyn Predictions, id: PredictionId) -> PredictionRecord {
    table
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("table: get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("table: prediction {id} must exist"))
}
