//! The embedded adapters: the shared contract suite, then what only a local
//! data folder can show (restarts, several handles and processes on one
//! folder, races, and the local choices the traits leave open).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polybot_domain::{
    BotId, ChatId, ChatSettings, ClassChoice, ObjectKey, OutputMode, PredictionId,
    PredictionRecord, SettingsChange, UpdateId,
};
use polybot_storage::local::{self, LocalOptions, LocalQueue, QueueConfig, Redrive};
use polybot_storage::{
    Attributes, Backends, Claim, ClaimKey, Erased, JobQueue, PutMode, QueueStats, Receipt,
    Retention, Saved, StorageError, Swept, Tenant, contract,
};
use tokio::time::Instant;

/// Short timeouts keep the suite quick; the contract needs max_receives ≥ 2.
fn options() -> LocalOptions {
    LocalOptions {
        visibility_timeout: Duration::from_secs(1),
        max_receives: 3,
        ..LocalOptions::default()
    }
}

fn open(dir: &Path) -> Backends {
    local::open(dir, options()).expect("open the data folder")
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::parse(s).expect("valid key")
}

/// A new pending prediction of `chat`, at a fixed time.
fn record(chat: i64) -> PredictionRecord {
    contract::pending(ChatId(chat), 1_700_000_000.0)
}

// ------------------------------------------------------------ contract

/// Claims `key` for 60 s.
async fn claim(b: &Backends, key: ClaimKey) -> Claim {
    b.table
        .claim(key, Duration::from_secs(60))
        .await
        .expect("claim")
}

#[tokio::test]
async fn object_store_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract::object_store(&*open(dir.path()).objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queue_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let o = options();
    contract::job_queue(
        &*b.jobs,
        &*b.dead_letters,
        o.visibility_timeout,
        o.max_receives,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queue_meets_the_contract_with_the_smallest_redrive_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = local::open(
        dir.path(),
        LocalOptions {
            visibility_timeout: Duration::from_secs(1),
            max_receives: 2,
            ..LocalOptions::default()
        },
    )
    .expect("open");
    contract::job_queue(&*b.jobs, &*b.dead_letters, Duration::from_secs(1), 2).await;
}

/// Reads the expiries the embedded table stores (epoch milliseconds).
struct SqliteExpiry(std::sync::Mutex<rusqlite::Connection>);

impl SqliteExpiry {
    fn open(dir: &Path) -> Self {
        let db = rusqlite::Connection::open(dir.join(local::DATABASE_FILE)).expect("open db");
        Self(std::sync::Mutex::new(db))
    }
}

#[async_trait::async_trait]
impl contract::ExpiryProbe for SqliteExpiry {
    async fn expires_at(&self, item: &contract::Retained) -> Option<f64> {
        use contract::Retained;
        let (sql, key) = match *item {
            Retained::Prediction(id) => (
                "SELECT expires_at FROM predictions WHERE prediction_id = ?1",
                id.to_string(),
            ),
            Retained::Claim(ClaimKey::Reply(id)) => (
                "SELECT expires_at FROM claims WHERE claim_key = ?1",
                format!("reply:{id}"),
            ),
            Retained::Claim(ClaimKey::Extra(id, extra)) => (
                "SELECT expires_at FROM claims WHERE claim_key = ?1",
                format!("extra:{id}:{extra}"),
            ),
            Retained::Claim(ClaimKey::Update(..)) => return None,
            Retained::Notice(id) => (
                "SELECT expires_at FROM notices WHERE prediction_id = ?1",
                id.to_string(),
            ),
            Retained::Answer(chat, message_id) => (
                "SELECT expires_at FROM answers WHERE chat_id || ':' || message_id = ?1",
                format!("{chat}:{message_id}"),
            ),
        };
        let db = self.0.lock().expect("the connection");
        let ms: Option<i64> = db
            .query_row(sql, [key], |r| r.get(0))
            .map(Some)
            .unwrap_or(None);
        ms.map(|ms| ms as f64 / 1000.0)
    }
}

#[tokio::test]
async fn the_configured_retention_is_every_records_expiry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let week = Retention::days(7).expect("a week");
    let b = local::open(
        dir.path(),
        LocalOptions {
            retention: week,
            ..options()
        },
    )
    .expect("open");
    assert_eq!(b.retention(), week);
    contract::retention(&*b.table, week, &SqliteExpiry::open(dir.path())).await;
}

#[tokio::test]
async fn prediction_table_meets_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract::prediction_table(&*open(dir.path()).table).await;
}

// ------------------------------------------------------------ restarts

#[tokio::test]
async fn data_survives_closing_and_reopening_the_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = key("1/original/p.jpg");
    let rec = record(1);
    let update = ClaimKey::Update(BotId(1), UpdateId(77));
    {
        let b = open(dir.path());
        b.objects
            .put(
                &photo,
                Bytes::from_static(b"jpeg"),
                "image/jpeg",
                PutMode::CreateOnly,
            )
            .await
            .expect("put");
        b.table.create(&rec).await.expect("create");
        assert!(claim(&b, update).await.is_acquired());
        b.table.finish(update).await.expect("finish");
        b.jobs
            .send("in flight", &Attributes::new())
            .await
            .expect("send");
        let got = b.jobs.receive(1, Duration::ZERO).await.expect("receive");
        assert_eq!(
            got.len(),
            1,
            "the first message is taken before the restart"
        );
        b.jobs
            .send("waiting", &Attributes::new())
            .await
            .expect("send");
    }

    let b = open(dir.path());
    assert_eq!(
        b.objects.get(&photo).await.expect("get"),
        Bytes::from_static(b"jpeg")
    );
    assert_eq!(
        b.table.get(rec.prediction_id).await.expect("get"),
        Some(rec)
    );
    assert_eq!(
        claim(&b, update).await,
        Claim::Done,
        "a finished claim is remembered across restarts"
    );
    let waiting = b.jobs.receive(10, Duration::ZERO).await.expect("receive");
    assert_eq!(
        waiting.len(),
        1,
        "only the visible message is delivered at once"
    );
    assert_eq!(waiting[0].body, "waiting");
    assert_eq!(waiting[0].receive_count, 1);
    b.jobs.delete(&waiting[0].receipt).await.expect("delete");
    let redelivered = b
        .jobs
        .receive(10, Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(
        redelivered.len(),
        1,
        "the message in flight at the restart comes back after its timeout"
    );
    assert_eq!(redelivered[0].body, "in flight");
    assert_eq!(redelivered[0].receive_count, 2);
}

// ------------------------------------------------- sharing one folder

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_folder_see_each_others_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = open(dir.path());
    let b = open(dir.path());

    a.jobs
        .send("hello", &Attributes::new())
        .await
        .expect("send");
    let got = b
        .jobs
        .receive(1, Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(
        got.len(),
        1,
        "a message sent through one handle reaches the other"
    );
    assert_eq!(
        a.jobs.stats().await.expect("stats"),
        QueueStats {
            visible: 0,
            in_flight: 1
        }
    );
    b.jobs.delete(&got[0].receipt).await.expect("delete");
    assert_eq!(a.jobs.stats().await.expect("stats"), QueueStats::default());

    let k = key("2/predicted/x.jpg");
    a.objects
        .put(
            &k,
            Bytes::from_static(b"x"),
            "image/jpeg",
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    assert_eq!(
        b.objects.get(&k).await.expect("get"),
        Bytes::from_static(b"x")
    );

    let reply = ClaimKey::Reply(PredictionId::new());
    assert!(claim(&a, reply).await.is_acquired());
    assert_eq!(claim(&b, reply).await, Claim::InProgress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = open(dir.path());
    let sender = open(dir.path());
    let started = Instant::now();
    let waiting =
        tokio::spawn(async move { receiver.jobs.receive(1, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sender
        .jobs
        .send("wake up", &Attributes::new())
        .await
        .expect("send");
    let got = waiting.await.expect("join").expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "wake up");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the receive waited {:?}, as if the message had not woken it",
        started.elapsed()
    );
}

#[tokio::test]
async fn receive_on_an_empty_queue_waits_then_returns_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let started = Instant::now();
    let got = b
        .jobs
        .receive(10, Duration::from_millis(600))
        .await
        .expect("receive");
    assert!(got.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "a long poll must wait for messages, returned after {:?}",
        started.elapsed()
    );
}

/// Environment variable that turns [`child_process_sends_a_message`] from a
/// no-op into the other process of [`a_message_sent_by_another_process_is_received`].
const CHILD_DIR: &str = "POLYBOT_STORAGE_TEST_CHILD_DATA_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_by_another_process_is_received() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let jobs = Arc::clone(&b.jobs);
    let waiting = tokio::spawn(async move { jobs.receive(1, Duration::from_secs(30)).await });

    // The same test binary, running only the helper below, in the folder.
    let exe = std::env::current_exe().expect("test binary");
    let dir_path = dir.path().to_owned();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([
                "--exact",
                "child_process_sends_a_message",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir_path)
            .status()
    })
    .await
    .expect("join")
    .expect("run the child process");
    assert!(status.success(), "the child process failed: {status}");

    let got = waiting.await.expect("join").expect("receive");
    assert_eq!(
        got.len(),
        1,
        "the long poll must see the other process's message"
    );
    assert_eq!(got[0].body, "from another process");
    assert_eq!(
        got[0].attributes.get("sender").map(String::as_str),
        Some("child")
    );
}

/// Only does something when started by the test above, as another process.
#[tokio::test]
async fn child_process_sends_a_message() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let b = open(Path::new(&dir));
    let attributes: Attributes = [("sender".to_owned(), "child".to_owned())].into();
    b.jobs
        .send("from another process", &attributes)
        .await
        .expect("send from the child");
}

// ---------------------------------------------------------------- races

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_only_puts_have_exactly_one_winner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = [open(dir.path()).objects, open(dir.path()).objects];
    let k = key("3/original/race.jpg");
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let store = Arc::clone(&stores[usize::from(i % 2)]);
            let k = k.clone();
            tokio::spawn(async move {
                let bytes = Bytes::from(vec![i; 64 * 1024]);
                (
                    i,
                    store
                        .put(&k, bytes, "image/jpeg", PutMode::CreateOnly)
                        .await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            (i, Ok(())) => winners.push(i),
            (_, Err(StorageError::AlreadyExists(_))) => {}
            (i, Err(e)) => panic!("put {i} failed unexpectedly: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one create-only put must win, winners: {winners:?}"
    );
    let stored = stores[0].get(&k).await.expect("get");
    assert_eq!(
        stored,
        Bytes::from(vec![winners[0]; 64 * 1024]),
        "the winner's bytes are stored"
    );
    assert_no_temporary_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_key_have_exactly_one_winner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tables = [open(dir.path()).table, open(dir.path()).table];
    let key = ClaimKey::Update(BotId(1), UpdateId(4242));
    let tasks: Vec<_> = (0..16usize)
        .map(|i| {
            let table = Arc::clone(&tables[i % 2]);
            tokio::spawn(async move { table.claim(key, Duration::from_secs(60)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("join").expect("claim"));
    }
    let acquired = outcomes.iter().filter(|c| c.is_acquired()).count();
    assert_eq!(acquired, 1, "exactly one claim must acquire: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|c| matches!(c, Claim::Acquired(_) | Claim::InProgress))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settings_changes_from_two_handles_all_take_effect() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Two handles: two connections, as two gateways on one folder have.
    let tables = [open(dir.path()).table, open(dir.path()).table];
    let chat = ChatId(31);
    let tasks: Vec<_> = (0..16usize)
        .map(|i| {
            let table = Arc::clone(&tables[i % 2]);
            tokio::spawn(async move {
                table
                    .change_chat_settings(
                        chat,
                        SettingsChange::ClassShown(format!("class{i}"), true),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("change_chat_settings");
    }
    let all: BTreeSet<String> = (0..16).map(|i| format!("class{i}")).collect();
    assert_eq!(
        tables[0]
            .chat_settings(chat)
            .await
            .expect("chat_settings")
            .classes,
        ClassChoice::Only(all),
        "no change is lost"
    );
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let version: i64 = db
        .query_row(
            "SELECT version FROM chat_settings WHERE chat_id = 31",
            [],
            |r| r.get(0),
        )
        .expect("version");
    assert_eq!(version, 16, "each change counts one version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_never_get_the_same_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handles = [open(dir.path()), open(dir.path())];
    for i in 0..40 {
        handles[0]
            .jobs
            .send(&format!("m{i}"), &Attributes::new())
            .await
            .expect("send");
    }
    let tasks: Vec<_> = (0..4usize)
        .map(|i| {
            let jobs = Arc::clone(&handles[i % 2].jobs);
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = jobs.receive(3, Duration::ZERO).await.expect("receive");
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|d| d.body));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("join"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        before,
        all.len(),
        "a message was delivered to two receivers"
    );
    assert_eq!(all.len(), 40, "every message is delivered");
}

// ------------------------------------------------------ local choices

#[tokio::test]
async fn a_stale_receipt_neither_deletes_nor_extends_the_redelivered_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    b.jobs
        .send("slow job", &Attributes::new())
        .await
        .expect("send");
    let first = b
        .jobs
        .receive(1, Duration::ZERO)
        .await
        .expect("receive")
        .remove(0);
    let second = b
        .jobs
        .receive(1, Duration::from_secs(5))
        .await
        .expect("receive")
        .remove(0);
    assert_eq!(second.receive_count, 2);

    b.jobs
        .delete(&first.receipt)
        .await
        .expect("a stale delete is a no-op, not an error");
    assert_eq!(
        b.jobs.stats().await.expect("stats"),
        QueueStats {
            visible: 0,
            in_flight: 1
        },
        "a stale receipt must not delete the message now held by someone else"
    );
    match b
        .jobs
        .set_visibility(&first.receipt, Duration::from_secs(60))
        .await
    {
        Err(StorageError::NotFound(_)) => {}
        other => panic!("a heartbeat with a stale receipt must be NotFound, got {other:?}"),
    }
    b.jobs.delete(&second.receipt).await.expect("delete");
    assert_eq!(b.jobs.stats().await.expect("stats"), QueueStats::default());
}

#[tokio::test]
async fn a_zero_visibility_timeout_never_returns_a_message_twice_in_one_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = QueueConfig {
        visibility_timeout: Duration::ZERO,
        redrive: None,
    };
    let queue = LocalQueue::open(dir.path(), "zero", config).expect("open");
    for body in ["a", "b"] {
        queue.send(body, &Attributes::new()).await.expect("send");
    }
    let got = queue.receive(10, Duration::ZERO).await.expect("receive");
    let bodies: Vec<&str> = got.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b"]);
    let again = queue.receive(10, Duration::ZERO).await.expect("receive");
    assert_eq!(
        again.len(),
        2,
        "with no visibility timeout, messages are visible at once"
    );
    assert!(again.iter().all(|d| d.receive_count == 2));
}

#[tokio::test]
async fn a_receipt_that_is_not_one_is_invalid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    for bad in ["", "nonsense", "x:y"] {
        match b.jobs.delete(&Receipt(bad.into())).await {
            Err(StorageError::Invalid { .. }) => {}
            other => panic!("delete({bad:?}) must be Invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_receipt_of_one_queue_does_not_act_on_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    b.jobs.send("job", &Attributes::new()).await.expect("send");
    let d = b
        .jobs
        .receive(1, Duration::ZERO)
        .await
        .expect("receive")
        .remove(0);
    b.dead_letters.delete(&d.receipt).await.expect("no-op");
    assert_eq!(
        b.jobs.stats().await.expect("stats"),
        QueueStats {
            visible: 0,
            in_flight: 1
        }
    );
}

#[tokio::test]
async fn dead_lettered_messages_keep_their_receive_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    b.jobs
        .send("poison", &Attributes::new())
        .await
        .expect("send");
    for _ in 0..options().max_receives {
        let d = b
            .jobs
            .receive(1, Duration::from_secs(5))
            .await
            .expect("receive")
            .remove(0);
        b.jobs
            .set_visibility(&d.receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(
        b.jobs
            .receive(1, Duration::ZERO)
            .await
            .expect("receive")
            .is_empty()
    );
    let dead = b
        .dead_letters
        .receive(1, Duration::ZERO)
        .await
        .expect("receive")
        .remove(0);
    assert_eq!(
        dead.receive_count,
        options().max_receives + 1,
        "as SQS: the count carries over"
    );
}

#[tokio::test]
async fn a_queue_opened_on_its_own_shares_the_database_with_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let dead = LocalQueue::open(dir.path(), local::DEAD_LETTER_QUEUE, QueueConfig::default())
        .expect("open the dead-letter queue");
    let file = dir
        .path()
        .join(local::DATABASE_FILE)
        .canonicalize()
        .expect("database file");
    assert_eq!(dead.database(), file);
    dead.send("by hand", &Attributes::new())
        .await
        .expect("send");
    assert_eq!(b.dead_letters.stats().await.expect("stats").visible, 1);
}

#[tokio::test]
async fn finished_update_claims_are_forgotten_after_a_day_and_reply_claims_after_the_records_30_days()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let update = ClaimKey::Update(BotId(1), UpdateId(9));
    let reply_id = PredictionId::new();
    let reply = ClaimKey::Reply(reply_id);
    for key in [update, reply] {
        assert!(claim(&b, key).await.is_acquired());
        b.table.finish(key).await.expect("finish");
    }

    // Read and age the stored expiry directly: the test cannot wait a day.
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let expiry = |k: &str| -> i64 {
        db.query_row(
            "SELECT expires_at FROM claims WHERE claim_key = ?1",
            [k],
            |r| r.get(0),
        )
        .expect("claim row")
    };
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("fits");
    let day_ms = 24 * 60 * 60 * 1000;
    let update_expiry = expiry("update:1:9");
    assert!(
        (update_expiry - (now_ms + day_ms)).abs() < 60_000,
        "an update claim is kept for 24 h, expires_at {update_expiry}, now {now_ms}"
    );
    let month_ms =
        i64::try_from(polybot_storage::DEFAULT_RETENTION.as_duration().as_millis()).expect("fits");
    let reply_expiry = expiry(&format!("reply:{reply_id}"));
    assert!(
        (reply_expiry - (now_ms + month_ms)).abs() < 60_000,
        "a reply claim is kept as long as the records and images, expires_at {reply_expiry}"
    );

    db.execute(
        "UPDATE claims SET expires_at = ?1 WHERE claim_key = 'update:1:9'",
        [now_ms - 1],
    )
    .expect("age the claim");
    assert!(
        claim(&b, update).await.is_acquired(),
        "an update finished more than 24 h ago can be claimed again"
    );
    assert_eq!(claim(&b, reply).await, Claim::Done);
}

#[tokio::test]
async fn release_never_undoes_a_finish() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let key = ClaimKey::Reply(PredictionId::new());
    let lease = claim(&b, key).await.lease().expect("acquired");
    b.table.finish(key).await.expect("finish");
    b.table.release(key, lease).await.expect("release");
    assert_eq!(claim(&b, key).await, Claim::Done);
}

#[tokio::test]
async fn summaries_of_unknown_predictions_are_gone_and_failures_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let id = PredictionId::new();
    assert!(matches!(
        b.table.save_result(&contract::summary(id, &[])).await,
        Ok(Saved::Gone)
    ));
    assert!(matches!(
        b.table
            .save_failure(id, polybot_domain::FailureKind::Internal)
            .await,
        Err(StorageError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_key_cannot_be_both_an_object_and_a_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let put = |k: &'static str| {
        let objects = Arc::clone(&b.objects);
        async move {
            objects
                .put(
                    &key(k),
                    Bytes::from_static(b"x"),
                    "image/jpeg",
                    PutMode::Overwrite,
                )
                .await
        }
    };
    put("a/b").await.expect("put a/b");
    assert!(
        matches!(put("a").await, Err(StorageError::Invalid { .. })),
        "a is a folder of a/b"
    );
    assert!(matches!(
        b.objects.get(&key("a")).await,
        Err(StorageError::NotFound(_))
    ));
    put("c").await.expect("put c");
    assert!(
        matches!(put("c/d").await, Err(StorageError::Invalid { .. })),
        "c is an object"
    );
    assert!(matches!(
        b.objects.get(&key("c/d")).await,
        Err(StorageError::NotFound(_))
    ));
    assert_no_temporary_files(dir.path());
}

#[test]
fn open_names_the_data_folder_it_cannot_create() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").expect("write");
    let data_dir = file.join("data");
    match local::open(&data_dir, LocalOptions::default()) {
        Err(e @ StorageError::Config { .. }) => assert!(
            e.to_string().contains(&data_dir.display().to_string()),
            "the error must name the folder: {e}"
        ),
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("opening a folder inside a file must fail"),
    }
}

#[test]
fn open_refuses_a_redrive_limit_of_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LocalOptions {
        max_receives: 0,
        ..LocalOptions::default()
    };
    assert!(matches!(
        local::open(dir.path(), options),
        Err(StorageError::Config { .. })
    ));
    let config = QueueConfig {
        redrive: Some(Redrive {
            dead_letter_queue: "q".into(),
            max_receives: 1,
        }),
        ..QueueConfig::default()
    };
    assert!(
        matches!(
            LocalQueue::open(dir.path(), "q", config),
            Err(StorageError::Config { .. })
        ),
        "a queue cannot be its own dead-letter queue"
    );
}

fn assert_no_temporary_files(data_dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(data_dir.join("objects.tmp"))
        .expect("temp folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[tokio::test]
async fn a_data_folder_from_schema_1_is_migrated_and_its_leases_still_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a schema-1 build left behind: claims without holders, one held.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(
            "CREATE TABLE claims (
                 claim_key  TEXT    PRIMARY KEY,
                 state      TEXT    NOT NULL,
                 expires_at INTEGER NOT NULL
             );
             INSERT INTO claims VALUES ('reply:00000000-0000-4000-8000-000000000001', 'leased', 9223372036854775807);
             PRAGMA user_version = 1;",
        )
        .expect("schema 1");
    }
    let b = open(dir.path());
    assert_eq!(
        claim(
            &b,
            ClaimKey::Reply(
                "00000000-0000-4000-8000-000000000001"
                    .parse()
                    .expect("a prediction id")
            )
        )
        .await,
        Claim::InProgress,
        "the old lease is still held"
    );
    let key = ClaimKey::Update(BotId(1), UpdateId(2));
    let lease = claim(&b, key).await.lease().expect("acquired");
    b.table.release(key, lease).await.expect("release");
    assert!(
        claim(&b, key).await.is_acquired(),
        "released, so claimable at once"
    );
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 6);
}

#[tokio::test]
async fn albums_an_older_build_closed_stay_answered_after_the_upgrade_and_open_ones_stay_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a schema-3 build left behind: an album it closed (and so had
    // answered: it marked albums closed as it queued them) and one still
    // gathering items.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(
            "CREATE TABLE albums (
                 album_key   TEXT    PRIMARY KEY,
                 last_joined INTEGER NOT NULL,
                 closed      INTEGER NOT NULL DEFAULT 0,
                 photos      TEXT    NOT NULL,
                 expires_at  INTEGER NOT NULL
             );
             INSERT INTO albums VALUES ('5:answered', 1, 1, '{}', 9223372036854775807);
             INSERT INTO albums VALUES ('5:gathering', 1, 0, '{}', 9223372036854775807);
             PRAGMA user_version = 3;",
        )
        .expect("schema 3");
    }
    let b = open(dir.path());
    let pending = b
        .table
        .pending_albums(Duration::from_millis(1), 10)
        .await
        .expect("pending_albums");
    let names: Vec<String> = pending.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        ["5:gathering"],
        "the answered album is not answered again"
    );
}

#[tokio::test]
async fn a_prediction_stored_before_job_kinds_reads_back_as_a_detection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = PredictionId::new();
    // What a schema-2 build left behind: a finished detection, no kind.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(&format!(
            "CREATE TABLE predictions (
                 prediction_id TEXT PRIMARY KEY, chat_id INTEGER NOT NULL,
                 status TEXT NOT NULL, original_key TEXT NOT NULL, summary TEXT,
                 failure TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
             );
             INSERT INTO predictions VALUES ('{id}', 5, 'succeeded', '5/original/{id}.jpg',
                 '{{\"prediction_id\":\"{id}\",\"original_img_path\":\"5/original/{id}.jpg\",\"predicted_img_path\":\"5/predicted/{id}.jpg\",\"labels\":[],\"time\":1.0}}',
                 NULL, 1.0, 1.0);
             PRAGMA user_version = 2;"
        ))
        .expect("schema 2");
    }
    let b = open(dir.path());
    let record = b.table.get(id).await.expect("get").expect("still there");
    assert_eq!(record.kind, polybot_domain::Action::Detect);
    assert!(
        matches!(record.result, Some(polybot_domain::JobResult::Detected(ref s)) if s.labels.is_empty()),
        "{record:?}"
    );
}

async fn send_as(b: &Backends, tenant: Option<&Tenant>, body: &str) {
    b.jobs
        .send_for(tenant, body, &Attributes::new())
        .await
        .expect("send");
}

fn bodies(got: &[polybot_storage::Delivery]) -> Vec<&str> {
    got.iter().map(|d| d.body.as_str()).collect()
}

#[tokio::test]
async fn one_chats_backlog_does_not_hold_another_chats_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let (busy, quiet) = (Tenant::chat(ChatId(1)), Tenant::chat(ChatId(2)));
    for n in 0..100 {
        send_as(&b, Some(&busy), &format!("busy {n}")).await;
    }
    send_as(&b, Some(&quiet), "quiet").await;
    // One lane: it takes the busy chat's oldest job first (nobody is in
    // flight yet, and it is the oldest of all)…
    let first = b.jobs.receive(1, Duration::ZERO).await.expect("receive");
    assert_eq!(bodies(&first), ["busy 0"]);
    // …and, while that one runs, the quiet chat's job jumps the other 99.
    let second = b.jobs.receive(1, Duration::ZERO).await.expect("receive");
    assert_eq!(bodies(&second), ["quiet"]);
    let third = b.jobs.receive(1, Duration::ZERO).await.expect("receive");
    assert_eq!(bodies(&third), ["busy 1"], "then the backlog in its order");
}

#[tokio::test]
async fn with_one_lane_the_chat_served_longest_ago_goes_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let (busy, quiet) = (Tenant::chat(ChatId(1)), Tenant::chat(ChatId(2)));
    for n in 0..3 {
        send_as(&b, Some(&busy), &format!("busy {n}")).await;
    }
    send_as(&b, Some(&quiet), "quiet").await;
    // One lane: a job is done (deleted) before the next is received, so
    // nothing is ever in flight at a receive.
    let mut order = Vec::new();
    for _ in 0..4 {
        let got = b.jobs.receive(1, Duration::ZERO).await.expect("receive");
        order.push(got[0].body.clone());
        b.jobs.delete(&got[0].receipt).await.expect("delete");
    }
    assert_eq!(order, ["busy 0", "quiet", "busy 1", "busy 2"]);
}

#[tokio::test]
async fn a_batch_takes_each_waiting_chat_in_turn_and_untenanted_messages_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let (a, c) = (Tenant::chat(ChatId(1)), Tenant::chat(ChatId(3)));
    for (tenant, body) in [
        (Some(&a), "a0"),
        (Some(&a), "a1"),
        (Some(&a), "a2"),
        (None, "x0"),
        (Some(&c), "c0"),
        (None, "x1"),
        (Some(&c), "c1"),
    ] {
        send_as(&b, tenant, body).await;
    }
    let got = b.jobs.receive(10, Duration::ZERO).await.expect("receive");
    assert_eq!(
        bodies(&got),
        ["a0", "x0", "c0", "x1", "a1", "c1", "a2"],
        "a message with no tenant is a tenant of its own; the others take turns"
    );
}

#[tokio::test]
async fn messages_queued_before_tenants_are_received_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a schema-4 build left behind: a queued message without a tenant.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(
            "CREATE TABLE messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL,
                 attributes TEXT NOT NULL, sent_at REAL NOT NULL, visible_at INTEGER NOT NULL,
                 receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT
             );
             INSERT INTO messages (queue, body, attributes, sent_at, visible_at)
                 VALUES ('jobs', 'from before', '{}', 1.0, 0);
             PRAGMA user_version = 4;",
        )
        .expect("schema 4");
    }
    let b = open(dir.path());
    b.jobs
        .send_for(Some(&Tenant::chat(ChatId(1))), "after", &Attributes::new())
        .await
        .expect("send");
    let got = b.jobs.receive(10, Duration::ZERO).await.expect("receive");
    assert_eq!(bodies(&got), ["from before", "after"]);
}

#[tokio::test]
async fn a_data_folder_from_before_settings_gets_them_and_keeps_its_schema_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a schema-5 build before settings left behind: its tables (one
    // is enough here), no settings tables.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(
            "CREATE TABLE claims (
                 claim_key TEXT PRIMARY KEY, state TEXT NOT NULL,
                 expires_at INTEGER NOT NULL, holder TEXT
             );
             PRAGMA user_version = 5;",
        )
        .expect("schema 5");
    }
    let b = open(dir.path());
    let chat = ChatId(12);
    assert_eq!(
        b.table.chat_settings(chat).await.expect("chat_settings"),
        ChatSettings::default()
    );
    let changed = b
        .table
        .change_chat_settings(chat, SettingsChange::Output(OutputMode::Counts))
        .await
        .expect("change_chat_settings");
    assert_eq!(changed.output, OutputMode::Counts);
    assert_eq!(b.table.model_classes().await.expect("model_classes"), None);
    drop(b);
    // Settings are kept across restarts.
    let b = open(dir.path());
    assert_eq!(
        b.table.chat_settings(chat).await.expect("chat_settings"),
        changed
    );
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(
        version, 6,
        "the settings tables raise no version (6 is the predictions' new columns)"
    );
    let stored: String = db
        .query_row(
            "SELECT settings FROM chat_settings WHERE chat_id = 12",
            [],
            |r| r.get(0),
        )
        .expect("the chat's row");
    assert_eq!(
        stored, r#"{"output":"counts"}"#,
        "compact JSON of what was chosen"
    );
}

#[tokio::test]
async fn unreadable_stored_settings_are_invalid_and_not_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let chat = ChatId(13);
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    db.execute(
        "INSERT INTO chat_settings (chat_id, settings, version) VALUES (13, '{\"confidence\":3}', 1)",
        [],
    )
    .expect("insert");
    assert!(matches!(
        b.table.chat_settings(chat).await,
        Err(StorageError::Invalid { .. })
    ));
    let change = b
        .table
        .change_chat_settings(chat, SettingsChange::Output(OutputMode::Counts))
        .await;
    assert!(
        matches!(change, Err(StorageError::Invalid { .. })),
        "{change:?}"
    );
    let stored: String = db
        .query_row(
            "SELECT settings FROM chat_settings WHERE chat_id = 13",
            [],
            |r| r.get(0),
        )
        .expect("the chat's row");
    assert_eq!(
        stored, r#"{"confidence":3}"#,
        "the failed change wrote nothing"
    );
}

#[tokio::test]
async fn backlog_costs_are_shared_kept_across_restarts_and_expired_rows_deleted_on_add() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gateway, reporter) = (open(dir.path()), open(dir.path()));
    let later = polybot_domain::now_epoch() + 600.0;
    let (clip, lost) = (PredictionId::new(), PredictionId::new());
    gateway
        .table
        .add_cost(clip, 29, later)
        .await
        .expect("add_cost");
    gateway
        .table
        .add_cost(lost, 58, polybot_domain::now_epoch() - 1.0)
        .await
        .expect("add_cost");
    assert_eq!(
        reporter.table.extra_cost().await.expect("extra_cost"),
        29,
        "another handle on the folder (the reporter) sees the gateway's costs"
    );
    drop((gateway, reporter));
    let b = open(dir.path());
    assert_eq!(b.table.extra_cost().await.expect("extra_cost"), 29);
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let rows: Vec<(String, i64)> = db
        .prepare("SELECT prediction_id, extra FROM backlog")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("rows");
    assert_eq!(
        rows,
        [(clip.to_string(), 29)],
        "a row past its until is deleted by the next add"
    );
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(
        version, 6,
        "the backlog table raises no version (6 is the predictions' new columns)"
    );
}

#[tokio::test]
async fn a_prediction_stored_by_schema_5_gets_an_expiry_of_30_days_and_takes_an_answer_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = PredictionId::new();
    // What a schema-5 build left behind: a prediction without the answer
    // file or expiry columns.
    {
        let db =
            rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("create db");
        db.execute_batch(&format!(
            "CREATE TABLE predictions (
                 prediction_id TEXT PRIMARY KEY, chat_id INTEGER NOT NULL,
                 status TEXT NOT NULL, original_key TEXT NOT NULL, summary TEXT,
                 failure TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, kind TEXT
             );
             INSERT INTO predictions VALUES ('{id}', 5, 'pending', '5/original/{id}.jpg',
                 NULL, NULL, 1700000000.0, 1700000000.0, NULL);
             PRAGMA user_version = 5;"
        ))
        .expect("schema 5");
    }
    let b = open(dir.path());
    let record = b.table.get(id).await.expect("get").expect("still there");
    assert_eq!(record.answer_file_id, None);
    b.table
        .set_answer_file(id, "AgACAgIAAxkBAAIBZ2old")
        .await
        .expect("set_answer_file");
    let listed = b.table.list_by_chat(ChatId(5), 5).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].answer_file_id.as_deref(),
        Some("AgACAgIAAxkBAAIBZ2old")
    );
    let db = rusqlite::Connection::open(dir.path().join(local::DATABASE_FILE)).expect("open db");
    let (expires_at, version): (i64, i64) = db
        .query_row(
            "SELECT expires_at, (SELECT user_version FROM pragma_user_version) FROM predictions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the row");
    assert_eq!(
        expires_at,
        1_700_000_000_000 + 30 * 24 * 60 * 60 * 1000,
        "kept the 30 days it was written for"
    );
    assert_eq!(version, 6);
}

/// Sets `path`'s modification time to `age` ago.
fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open the object's file");
    let then = std::time::SystemTime::now() - age;
    file.set_modified(then).expect("set the modification time");
}

#[tokio::test]
async fn the_sweep_deletes_records_and_pictures_past_the_retention_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let week = Retention::days(7).expect("a week");
    let b = local::open(
        dir.path(),
        LocalOptions {
            retention: week,
            ..options()
        },
    )
    .expect("open");
    let day = 24.0 * 60.0 * 60.0;
    let now = polybot_domain::now_epoch();
    let old = contract::pending(ChatId(8), now - 8.0 * day);
    let recent = contract::pending(ChatId(8), now - 6.0 * day);
    for r in [&old, &recent] {
        b.table.create(r).await.expect("create");
        b.objects
            .put(
                &r.original_key,
                Bytes::from_static(b"jpeg"),
                "image/jpeg",
                PutMode::CreateOnly,
            )
            .await
            .expect("put");
    }
    let objects = dir.path().join(local::OBJECTS_DIR);
    age_file(
        &objects.join(old.original_key.as_str()),
        Duration::from_secs(8 * 86_400),
    );
    age_file(
        &objects.join(recent.original_key.as_str()),
        Duration::from_secs(6 * 86_400),
    );

    let swept = b.sweep_expired(std::time::SystemTime::now()).await;
    assert_eq!(
        swept.expect("sweep"),
        Swept {
            records: 1,
            pictures: 1
        }
    );
    assert_eq!(b.table.get(old.prediction_id).await.expect("get"), None);
    assert!(
        b.table
            .get(recent.prediction_id)
            .await
            .expect("get")
            .is_some()
    );
    assert!(matches!(
        b.objects.get(&old.original_key).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(b.objects.get(&recent.original_key).await.is_ok());
    let again = b.sweep_expired(std::time::SystemTime::now()).await;
    assert_eq!(
        again.expect("sweep"),
        Swept::default(),
        "nothing more to sweep"
    );
}

#[tokio::test]
async fn erasing_a_chat_takes_its_records_then_its_pictures_and_its_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = open(dir.path());
    let (chat, other) = (ChatId(-100_123), ChatId(-100_1234));
    let mut records = Vec::new();
    for chat in [chat, other] {
        let r = contract::pending(chat, polybot_domain::now_epoch());
        b.table.create(&r).await.expect("create");
        for key in [
            r.original_key.clone(),
            ObjectKey::predicted(chat, r.prediction_id),
        ] {
            b.objects
                .put(
                    &key,
                    Bytes::from_static(b"jpeg"),
                    "image/jpeg",
                    PutMode::Overwrite,
                )
                .await
                .expect("put");
        }
        records.push(r);
    }
    let erased = b.erase_chat(chat).await.expect("erase_chat");
    assert_eq!(
        erased,
        Erased {
            results: 1,
            pictures: 2
        }
    );
    assert_eq!(b.erase_chat(chat).await.expect("again"), Erased::default());
    let objects = dir.path().join(local::OBJECTS_DIR);
    assert!(
        !objects.join(chat.to_string()).exists(),
        "no folder is left that names the chat"
    );
    assert!(
        b.table
            .get(records[1].prediction_id)
            .await
            .expect("get")
            .is_some()
    );
    assert!(b.objects.get(&records[1].original_key).await.is_ok());
}
