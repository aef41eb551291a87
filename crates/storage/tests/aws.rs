//! The AWS adapters against a real moto server, through the real AWS SDK
//! (nothing of the SDK is mocked): the shared conformance suite, then what
//! is specific to AWS (content types, conditional writes under races, the
//! redrive policy, the TTL attribute, Secrets Manager, start-up errors).
//!
//! All tests share one moto server per run and create their own resources
//! under unique names, so they run in parallel. Needs `cargo xtask setup`
//! (which installs moto); `cargo xtask test` runs them.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use polybot_domain::{
    BotId, ChatId, ClassChoice, FailureKind, ObjectKey, OutputMode, PredictionId, PredictionRecord,
    SettingsChange, UpdateId, now_epoch,
};
use polybot_storage::aws::{self, AwsSettings};
use polybot_storage::{
    Attributes, Claim, ClaimKey, DEFAULT_RETENTION, Erased, PutMode, Retention, Saved,
    StorageError, Tenant, UPDATE_DEDUPE_TTL, contract,
};
use polybot_testkit::{MotoServer, install_crypto_provider, unique_name};
use secrecy::ExposeSecret;

/// The contract's queue timing: short, whole seconds (SQS's unit).
const VISIBILITY: Duration = Duration::from_secs(1);
const MAX_RECEIVES: u32 = 2;

async fn setup() -> (&'static MotoServer, aws_config::SdkConfig, AwsSettings) {
    install_crypto_provider();
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let settings = moto.provision(MAX_RECEIVES, VISIBILITY).await;
    (moto, sdk, settings)
}

async fn backends() -> (
    aws_config::SdkConfig,
    AwsSettings,
    polybot_storage::Backends,
) {
    let (_, sdk, settings) = setup().await;
    let b = aws::connect_with(&sdk, &settings)
        .await
        .expect("connect to provisioned resources");
    (sdk, settings, b)
}

/// A new pending prediction of `chat`, made now.
fn pending(chat: ChatId) -> PredictionRecord {
    contract::pending(chat, now_epoch())
}

fn config_message<T>(result: Result<T, StorageError>) -> String {
    match result {
        Err(e @ StorageError::Config { .. }) => e.to_string(),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("expected a configuration error, got success"),
    }
}

// ------------------------------------------------------------ conformance

/// Claims `key` for 30 s.
async fn claim(b: &polybot_storage::Backends, key: ClaimKey) -> Claim {
    b.table
        .claim(key, Duration::from_secs(30))
        .await
        .expect("claim")
}

/// Every adapter against the shared contract, side by side on one
/// connection's resources.
#[tokio::test]
async fn s3_sqs_and_dynamodb_adapters_pass_the_storage_contract() {
    let (_, _, b) = backends().await;
    tokio::join!(
        contract::object_store(b.objects.as_ref()),
        contract::job_queue(
            b.jobs.as_ref(),
            b.dead_letters.as_ref(),
            VISIBILITY,
            MAX_RECEIVES,
        ),
        contract::prediction_table(b.table.as_ref()),
    );
}

// --------------------------------------------------------------------- S3

#[tokio::test]
async fn s3_put_stores_the_content_type() {
    let (sdk, settings, b) = backends().await;
    let key = ObjectKey::original(ChatId(42), PredictionId::new(), "png");
    b.objects
        .put(
            &key,
            Bytes::from_static(b"\x89PNG"),
            "image/png",
            PutMode::CreateOnly,
        )
        .await
        .expect("put");
    let head = aws::s3_client(&sdk)
        .head_object()
        .bucket(&settings.bucket)
        .key(key.as_str())
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.content_length(), Some(4));
}

#[tokio::test]
async fn s3_racing_create_only_puts_store_exactly_one_original() {
    let (_, _, b) = backends().await;
    let key = ObjectKey::original(ChatId(7), PredictionId::new(), "jpg");
    let puts = (0..8u8).map(|i| {
        let objects = Arc::clone(&b.objects);
        let key = key.clone();
        tokio::spawn(async move {
            objects
                .put(
                    &key,
                    Bytes::from(vec![i; 64]),
                    "image/jpeg",
                    PutMode::CreateOnly,
                )
                .await
                .map(|()| i)
        })
    });
    let mut winners = Vec::new();
    for put in puts {
        match put.await.expect("join") {
            Ok(i) => winners.push(i),
            Err(StorageError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected error from a racing create-only put: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one create-only put may win, got {winners:?}"
    );
    let stored = b.objects.get(&key).await.expect("get");
    assert_eq!(
        stored,
        Bytes::from(vec![winners[0]; 64]),
        "the winner's bytes are stored"
    );
}

#[tokio::test]
async fn s3_get_of_a_missing_key_is_not_found_and_not_retryable() {
    let (_, _, b) = backends().await;
    let err = b
        .objects
        .get(&ObjectKey::parse("1/original/nothing.jpg").expect("key"))
        .await
        .expect_err("missing key");
    assert!(matches!(err, StorageError::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
}

// -------------------------------------------------------------------- SQS

#[tokio::test]
async fn sqs_jobs_carry_their_chat_as_the_message_group_of_a_fair_queue() {
    let (sdk, settings, b) = backends().await;
    let tenant = Tenant::chat(ChatId(-10_042));
    b.jobs
        .send_for(Some(&tenant), "for a chat", &Attributes::new())
        .await
        .expect("send");
    // Read with the SDK itself: the adapter's deliveries do not expose it.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let got = sqs
        .receive_message()
        .queue_url(&settings.queue_url)
        .wait_time_seconds(5)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
        )
        .send()
        .await
        .expect("receive");
    let message = got.messages().first().expect("the message");
    assert_eq!(message.body(), Some("for a chat"));
    let group = message
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId));
    assert_eq!(group.map(String::as_str), Some("chat:-10042"));
}

#[tokio::test]
async fn sqs_message_lands_in_the_dlq_after_max_receives_expired_visibilities() {
    let (_, _, b) = backends().await;
    let body = format!("{{\"poison\":\"{}\"}}", unique_name("p"));
    let attrs: Attributes = [("schema_version".to_owned(), "1".to_owned())].into();
    b.jobs.send(&body, &attrs).await.expect("send");
    // A worker that keeps crashing: receives, never deletes, lets the
    // visibility timeout run out.
    for count in 1..=MAX_RECEIVES {
        let got = b
            .jobs
            .receive(10, Duration::from_secs(5))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1, "receive {count}");
        assert_eq!(got[0].receive_count, count);
        tokio::time::sleep(VISIBILITY + Duration::from_millis(300)).await;
    }
    let again = b
        .jobs
        .receive(10, Duration::from_secs(1))
        .await
        .expect("receive");
    assert!(
        again.is_empty(),
        "received {} times already; must be dead-lettered",
        MAX_RECEIVES
    );
    let dead = b
        .dead_letters
        .receive(10, Duration::from_secs(5))
        .await
        .expect("receive dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, body);
    assert_eq!(dead[0].attributes, attrs, "attributes survive the redrive");
    let stats = b.jobs.stats().await.expect("stats");
    assert_eq!((stats.visible, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn sqs_receive_caps_a_batch_at_ten_and_stats_count_visible_and_in_flight() {
    let (_, _, b) = backends().await;
    for i in 0..12 {
        b.jobs
            .send(&format!("m{i}"), &Attributes::new())
            .await
            .expect("send");
    }
    let stats = b.jobs.stats().await.expect("stats");
    assert_eq!((stats.visible, stats.in_flight), (12, 0));
    let got = b
        .jobs
        .receive(50, Duration::from_secs(2))
        .await
        .expect("receive");
    assert!(!got.is_empty() && got.len() <= 10, "got {}", got.len());
    let stats = b.jobs.stats().await.expect("stats");
    assert_eq!(stats.in_flight, got.len() as u64);
    assert_eq!(stats.visible, 12 - got.len() as u64);
}

#[tokio::test]
async fn sqs_leaves_out_empty_attribute_values_instead_of_refusing_the_message() {
    let (_, _, b) = backends().await;
    let attrs: Attributes = [
        (
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        ),
        ("tracestate".to_owned(), String::new()),
    ]
    .into();
    b.jobs
        .send("x", &attrs)
        .await
        .expect("an empty attribute is no reason to refuse");
    let got = b
        .jobs
        .receive(1, Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attributes.len(), 1, "{:?}", got[0].attributes);
    assert!(got[0].attributes.contains_key("traceparent"));
}

#[tokio::test]
async fn sqs_long_poll_returns_as_soon_as_a_message_arrives() {
    let (_, _, b) = backends().await;
    let jobs = Arc::clone(&b.jobs);
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        jobs.send("late", &Attributes::new()).await
    });
    let started = std::time::Instant::now();
    let got = b
        .jobs
        .receive(1, Duration::from_secs(20))
        .await
        .expect("receive");
    sender.await.expect("join").expect("send");
    assert_eq!(got.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

// --------------------------------------------------------------- DynamoDB

async fn raw_item(
    sdk: &aws_config::SdkConfig,
    table: &str,
    pk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the item exists")
}

#[tokio::test]
async fn dynamodb_an_expired_update_claim_not_yet_deleted_no_longer_counts_as_done() {
    let (sdk, settings, b) = backends().await;
    // What DynamoDB may keep for days after its TTL: a finished claim whose
    // `expires_at` has passed (its update id since reused by Telegram).
    let update = ClaimKey::Update(BotId(1), UpdateId(555_000_111));
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&settings.table)
        .item("pk", AttributeValue::S(aws::claim_pk(update)))
        .item("done", AttributeValue::Bool(true))
        .item(
            "expires_at",
            AttributeValue::N(format!("{}", now_epoch() - 60.0)),
        )
        .send()
        .await
        .expect("PutItem");
    assert!(
        claim(&b, update).await.is_acquired(),
        "the expired claim is forgotten"
    );
    // A claim that has not expired still dedupes.
    b.table.finish(update).await.expect("finish");
    assert_eq!(claim(&b, update).await, Claim::Done);
}

#[tokio::test]
async fn dynamodb_finished_update_claim_carries_a_24h_ttl_and_reply_claim_the_records_30_days() {
    let (sdk, settings, b) = backends().await;
    let ttl = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_time_to_live()
        .table_name(&settings.table)
        .send()
        .await
        .expect("DescribeTimeToLive");
    let desc = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(desc.attribute_name(), Some(aws::TTL_ATTRIBUTE));

    let update = ClaimKey::Update(BotId(1), UpdateId(987_654_321));
    assert!(claim(&b, update).await.is_acquired());
    b.table.finish(update).await.expect("finish");
    let finished_at = now_epoch();
    let item = raw_item(&sdk, &settings.table, &aws::claim_pk(update)).await;
    assert_eq!(
        item.get("pk"),
        Some(&AttributeValue::S("update#1#987654321".into())),
        "update ids are unique per bot, so the key names the bot"
    );
    let expires: f64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .expect("expires_at is a number")
        .parse()
        .expect("numeric");
    let expected = finished_at + UPDATE_DEDUPE_TTL.as_secs_f64();
    assert!(
        (expires - expected).abs() < 5.0,
        "expires_at {expires}, expected about {expected}"
    );
    assert_eq!(item.get("done"), Some(&AttributeValue::Bool(true)));

    let reply = ClaimKey::Reply(PredictionId::new());
    claim(&b, reply).await;
    b.table.finish(reply).await.expect("finish");
    let finished_at = now_epoch();
    let item = raw_item(&sdk, &settings.table, &aws::claim_pk(reply)).await;
    let expires: f64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .expect("a reply claim expires")
        .parse()
        .expect("numeric");
    let expected = finished_at + DEFAULT_RETENTION.as_duration().as_secs_f64();
    assert!(
        (expires - expected).abs() < 5.0,
        "a reply claim lives as long as the prediction and its images: {expires} vs {expected}"
    );
}

#[tokio::test]
async fn dynamodb_prediction_item_has_the_documented_layout() {
    let (sdk, settings, b) = backends().await;
    let record = pending(ChatId(1243002838));
    b.table.create(&record).await.expect("create");
    let summary = contract::summary(record.prediction_id, &[]);
    assert!(
        b.table
            .save_result(&summary)
            .await
            .expect("save_result")
            .is_stored()
    );
    let item = raw_item(
        &sdk,
        &settings.table,
        &aws::prediction_pk(record.prediction_id),
    )
    .await;
    assert_eq!(
        item.get("chat_id"),
        Some(&AttributeValue::N("1243002838".into()))
    );
    assert_eq!(
        item.get("status"),
        Some(&AttributeValue::S("succeeded".into()))
    );
    assert_eq!(
        item.get("prediction_id"),
        Some(&AttributeValue::S(record.prediction_id.to_string()))
    );
    assert!(
        item.get("time").is_some_and(|v| v.is_n()),
        "GSI sort key `time` is a number"
    );
    assert!(!item.contains_key("answer_file_id"), "none until recorded");
    b.table
        .set_answer_file(record.prediction_id, "AgACAgIAAxkBAAIBZ2layout")
        .await
        .expect("set_answer_file");
    let item = raw_item(
        &sdk,
        &settings.table,
        &aws::prediction_pk(record.prediction_id),
    )
    .await;
    assert_eq!(
        item.get("answer_file_id"),
        Some(&AttributeValue::S("AgACAgIAAxkBAAIBZ2layout".into()))
    );
    let json = item
        .get("summary")
        .and_then(|v| v.as_s().ok())
        .expect("summary is a string");
    let parsed: serde_json::Value = serde_json::from_str(json).expect("summary is JSON");
    assert_eq!(parsed["prediction_id"], record.prediction_id.to_string());
    assert!(parsed.get("labels").is_some() && parsed.get("time").is_some());
}

#[tokio::test]
async fn dynamodb_answer_item_keeps_the_photo_for_the_records_30_days_under_the_chats_side_key() {
    let (sdk, settings, b) = backends().await;
    let chat = ChatId(1243002838);
    let prediction_id = PredictionId::new();
    let photo = polybot_storage::AnsweredPhoto {
        prediction_id,
        original_key: ObjectKey::original(chat, prediction_id, "jpg"),
    };
    b.table
        .record_answer(chat, 77, &photo)
        .await
        .expect("record_answer");
    let recorded_at = now_epoch();
    let item = raw_item(&sdk, &settings.table, &aws::answer_pk(chat, 77)).await;
    assert_eq!(
        item.get("pk"),
        Some(&AttributeValue::S("answer#1243002838:77".into()))
    );
    assert_eq!(
        item.get("original_key"),
        Some(&AttributeValue::S(photo.original_key.to_string()))
    );
    assert_eq!(
        item.get("chat_id"),
        Some(&AttributeValue::N("1243002838.5".into())),
        "an answer is no prediction: it sits in {} under the chat's side key, where \
         list_by_chat never looks and erasing the chat finds it",
        aws::CHAT_INDEX
    );
    assert!(item.get("time").is_some_and(|v| v.is_n()));
    let expires: f64 = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .expect("an answer expires")
        .parse()
        .expect("numeric");
    let expected = recorded_at + DEFAULT_RETENTION.as_duration().as_secs_f64();
    assert!(
        (expires - expected).abs() < 5.0,
        "an answer lives as long as the prediction and its images: {expires} vs {expected}"
    );
}

#[tokio::test]
async fn dynamodb_racing_claims_and_summaries_let_exactly_one_writer_win() {
    let (_, _, b) = backends().await;
    let key = ClaimKey::Reply(PredictionId::new());
    let claims = (0..8).map(|_| {
        let table = Arc::clone(&b.table);
        tokio::spawn(async move { table.claim(key, Duration::from_secs(30)).await })
    });
    let mut outcomes = Vec::new();
    for c in claims {
        outcomes.push(c.await.expect("join").expect("claim"));
    }
    assert_eq!(
        outcomes.iter().filter(|c| c.is_acquired()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|c| matches!(c, Claim::Acquired(_) | Claim::InProgress))
    );

    let record = pending(ChatId(5));
    b.table.create(&record).await.expect("create");
    let saves = (0..8).map(|_| {
        let table = Arc::clone(&b.table);
        let s = contract::summary(record.prediction_id, &[]);
        tokio::spawn(async move { table.save_result(&s).await })
    });
    let mut stored = 0;
    for s in saves {
        stored += usize::from(s.await.expect("join").expect("save_result").is_stored());
    }
    assert_eq!(stored, 1, "a redelivered job's summary must be stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_racing_settings_changes_from_many_tasks_all_take_effect() {
    let (_, _, b) = backends().await;
    let chat = ChatId(424_242);
    // A warm client (credentials, connections) and a barrier, so that the
    // changes really overlap: otherwise each task tends to be done before
    // the next one reads, and the retry is never needed.
    b.table.chat_settings(chat).await.expect("chat_settings");
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let changes: Vec<_> = (0..8)
        .map(|i| {
            let table = Arc::clone(&b.table);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                table
                    .change_chat_settings(
                        chat,
                        SettingsChange::ClassShown(format!("class{i}"), true),
                    )
                    .await
            })
        })
        .collect();
    for c in changes {
        c.await.expect("join").expect("change_chat_settings");
    }
    let all: std::collections::BTreeSet<String> = (0..8).map(|i| format!("class{i}")).collect();
    assert_eq!(
        b.table
            .chat_settings(chat)
            .await
            .expect("chat_settings")
            .classes,
        ClassChoice::Only(all),
        "each racing change is reapplied on top of the winner's, none is lost"
    );
}

#[tokio::test]
async fn dynamodb_settings_items_have_the_documented_layout_outside_the_index_and_never_expire() {
    let (sdk, settings, b) = backends().await;
    let chat = ChatId(1243002838);
    b.table
        .change_chat_settings(chat, SettingsChange::Output(OutputMode::Counts))
        .await
        .expect("change_chat_settings");
    let item = raw_item(&sdk, &settings.table, &aws::settings_pk(chat)).await;
    assert_eq!(
        item.get("pk"),
        Some(&AttributeValue::S("settings#1243002838".into()))
    );
    assert_eq!(
        item.get("settings"),
        Some(&AttributeValue::S(r#"{"output":"counts"}"#.into()))
    );
    assert_eq!(item.get("version"), Some(&AttributeValue::N("1".into())));
    assert!(
        !item.contains_key("chat_id") && !item.contains_key("time"),
        "settings are no prediction: they stay out of {}",
        aws::CHAT_INDEX
    );
    assert!(
        !item.contains_key(aws::TTL_ATTRIBUTE),
        "settings are kept until changed"
    );
    b.table
        .change_chat_settings(chat, SettingsChange::Output(OutputMode::Photo))
        .await
        .expect("change_chat_settings");
    let item = raw_item(&sdk, &settings.table, &aws::settings_pk(chat)).await;
    assert_eq!(
        item.get("settings"),
        Some(&AttributeValue::S("{}".into())),
        "back to the defaults"
    );
    assert_eq!(item.get("version"), Some(&AttributeValue::N("2".into())));

    let classes = ["person", "bicycle"].map(String::from);
    b.table
        .publish_model_classes(&classes)
        .await
        .expect("publish_model_classes");
    let item = raw_item(&sdk, &settings.table, aws::MODEL_CLASSES_PK).await;
    assert_eq!(
        item.get("classes"),
        Some(&AttributeValue::S(r#"["person","bicycle"]"#.into()))
    );
    assert!(item.get("updated_at").is_some_and(|v| v.is_n()));
    assert!(
        !item.contains_key("chat_id")
            && !item.contains_key("time")
            && !item.contains_key(aws::TTL_ATTRIBUTE),
        "{item:?}"
    );
}

#[tokio::test]
async fn dynamodb_backlog_is_one_item_of_entries_pruned_on_add_outside_the_index() {
    let (sdk, settings, b) = backends().await;
    let (lost, fresh, renewed) = (
        PredictionId::new(),
        PredictionId::new(),
        PredictionId::new(),
    );
    let entry = |id: PredictionId| format!("c_{}", id.as_uuid().simple());
    let later = now_epoch() + 600.0;
    b.table
        .add_cost(lost, 29, now_epoch() + 1.0)
        .await
        .expect("add_cost");
    b.table
        .add_cost(renewed, 3, now_epoch() + 1.0)
        .await
        .expect("add_cost");
    let item = raw_item(&sdk, &settings.table, aws::BACKLOG_PK).await;
    let AttributeValue::M(costs) = &item[&entry(lost)] else {
        panic!("an entry is a map: {item:?}");
    };
    assert_eq!(costs.get("extra"), Some(&AttributeValue::N("29".into())));
    assert!(costs.get("until").is_some_and(|v| v.is_n()), "{costs:?}");
    assert!(
        !item.contains_key("chat_id")
            && !item.contains_key("time")
            && !item.contains_key(aws::TTL_ATTRIBUTE),
        "the backlog item stays out of the index and never expires: {item:?}"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    // `renewed` is added again before anything prunes it: its new entry
    // stays; `lost` never ended and is pruned by the next add.
    b.table.add_cost(renewed, 4, later).await.expect("add_cost");
    b.table.add_cost(fresh, 5, later).await.expect("add_cost");
    let item = raw_item(&sdk, &settings.table, aws::BACKLOG_PK).await;
    assert!(
        !item.contains_key(&entry(lost)),
        "an expired entry is pruned on add: {item:?}"
    );
    assert!(item.contains_key(&entry(renewed)) && item.contains_key(&entry(fresh)));
    assert_eq!(b.table.extra_cost().await.expect("extra_cost"), 9);

    b.table.remove_cost(fresh).await.expect("remove_cost");
    let item = raw_item(&sdk, &settings.table, aws::BACKLOG_PK).await;
    assert!(!item.contains_key(&entry(fresh)), "{item:?}");
}

#[tokio::test]
async fn dynamodb_writes_to_an_unknown_prediction_are_gone_or_not_found_and_create_nothing() {
    let (sdk, settings, b) = backends().await;
    let id = PredictionId::new();
    let saved = b.table.save_result(&contract::summary(id, &[])).await;
    assert_eq!(saved.expect("save_result"), Saved::Gone);
    b.table
        .set_answer_file(id, "AgACAgIAAxkBAAIBZ2none")
        .await
        .expect("a no-op");
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&settings.table)
        .key("pk", AttributeValue::S(aws::prediction_pk(id)))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item;
    assert_eq!(item, None, "no item is created for a missing prediction");
    let err = b
        .table
        .save_failure(id, FailureKind::Internal)
        .await
        .expect_err("no such prediction");
    assert!(matches!(err, StorageError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn dynamodb_release_keeps_a_finished_claim_finished() {
    let (_, _, b) = backends().await;
    let key = ClaimKey::Update(BotId(1), UpdateId(31337));
    let lease = claim(&b, key).await.lease().expect("acquired");
    b.table.finish(key).await.expect("finish");
    b.table
        .release(key, lease)
        .await
        .expect("release of a finished claim is a no-op");
    assert_eq!(claim(&b, key).await, Claim::Done);
}

/// Reads the `expires_at` DynamoDB stores, the TTL attribute.
struct DynamoExpiry {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[async_trait::async_trait]
impl contract::ExpiryProbe for DynamoExpiry {
    async fn expires_at(&self, item: &contract::Retained) -> Option<f64> {
        use contract::Retained;
        let pk = match *item {
            Retained::Prediction(id) => aws::prediction_pk(id),
            Retained::Claim(key) => aws::claim_pk(key),
            Retained::Notice(id) => aws::notice_pk(id),
            Retained::Answer(chat, message_id) => aws::answer_pk(chat, message_id),
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        out.item?
            .get(aws::TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
    }
}

#[tokio::test]
async fn dynamodb_items_expire_after_the_configured_retention() {
    let (_, sdk, settings) = setup().await;
    let week = Retention::days(7).expect("a week");
    let settings = AwsSettings {
        retention: week,
        ..settings
    };
    let b = aws::connect_with(&sdk, &settings).await.expect("connect");
    assert_eq!(b.retention(), week);
    let probe = DynamoExpiry {
        client: aws_sdk_dynamodb::Client::new(&sdk),
        table: settings.table.clone(),
    };
    contract::retention(b.table.as_ref(), week, &probe).await;
}

/// Every version and delete marker under `prefix`, as (key, is a marker).
async fn versions_under(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, bool)> {
    let out = aws::s3_client(sdk)
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectVersions");
    let versions = out
        .versions()
        .iter()
        .map(|v| (v.key().unwrap_or_default().to_owned(), false));
    let markers = out
        .delete_markers()
        .iter()
        .map(|m| (m.key().unwrap_or_default().to_owned(), true));
    versions.chain(markers).collect()
}

#[tokio::test]
async fn s3_erasing_a_chat_leaves_no_version_and_no_delete_marker_under_its_prefix() {
    let (sdk, settings, b) = backends().await;
    let s3 = aws::s3_client(&sdk);
    let chat = ChatId(4_242_000 + i64::from(rand_u16()));
    let id = PredictionId::new();
    let (original, predicted, deleted) = (
        ObjectKey::original(chat, id, "jpg"),
        ObjectKey::predicted(chat, id),
        ObjectKey::filtered(chat, id, "png"),
    );
    for (key, body) in [
        (&original, "photo"),
        (&predicted, "first"),
        (&predicted, "second"),
        (&deleted, "gone"),
    ] {
        b.objects
            .put(key, Bytes::from(body), "image/jpeg", PutMode::Overwrite)
            .await
            .expect("put");
    }
    // Deleted before: a delete marker over a noncurrent version.
    s3.delete_object()
        .bucket(&settings.bucket)
        .key(deleted.as_str())
        .send()
        .await
        .expect("DeleteObject");
    let prefix = format!("{chat}/");
    // The provisioned bucket is versioned, as Terraform's is: the
    // overwrite and the delete kept the older versions. (moto answers
    // GetBucketVersioning with a body the SDK cannot read, so this is
    // how the test knows.)
    let before = versions_under(&sdk, &settings.bucket, &prefix).await;
    assert_eq!(before.len(), 5, "four versions and a marker: {before:?}");

    assert_eq!(
        b.objects.erase_chat(chat).await.expect("erase_chat"),
        2,
        "two pictures existed (the deleted one did not)"
    );
    assert_eq!(
        versions_under(&sdk, &settings.bucket, &prefix).await,
        [],
        "no version and no delete marker is left under the chat's prefix"
    );
    assert_eq!(b.objects.erase_chat(chat).await.expect("again"), 0);
}

/// A number for names nobody else uses in this run.
fn rand_u16() -> u16 {
    let bytes = PredictionId::new().as_uuid().into_bytes();
    u16::from_le_bytes([bytes[0], bytes[1]])
}

#[tokio::test]
async fn dynamodb_erasing_a_chat_empties_its_keys_in_the_chat_index() {
    let (sdk, settings, b) = backends().await;
    let chat = ChatId(5_151_000 + i64::from(rand_u16()));
    let record = pending(chat);
    b.table.create(&record).await.expect("create");
    b.objects
        .put(
            &record.original_key,
            Bytes::from_static(b"jpeg"),
            "image/jpeg",
            PutMode::CreateOnly,
        )
        .await
        .expect("put");
    let photo = polybot_storage::AnsweredPhoto {
        prediction_id: record.prediction_id,
        original_key: record.original_key.clone(),
    };
    b.table
        .record_answer(chat, 3, &photo)
        .await
        .expect("record_answer");
    let index = async |key: &str| {
        aws_sdk_dynamodb::Client::new(&sdk)
            .query()
            .table_name(&settings.table)
            .index_name(aws::CHAT_INDEX)
            .key_condition_expression("chat_id = :c")
            .expression_attribute_values(":c", AttributeValue::N(key.to_owned()))
            .send()
            .await
            .expect("Query")
            .items
            .unwrap_or_default()
            .len()
    };
    let (own, side) = (chat.to_string(), format!("{chat}.5"));
    assert_eq!((index(&own).await, index(&side).await), (1, 1));
    assert_eq!(
        b.erase_chat(chat).await.expect("erase_chat"),
        Erased {
            results: 1,
            pictures: 1
        }
    );
    assert_eq!((index(&own).await, index(&side).await), (0, 0));
}

// -------------------------------------------------------- Secrets Manager

#[tokio::test]
async fn secrets_manager_telegram_secrets_are_read_from_json() {
    let (_, sdk, _) = setup().await;
    let name = unique_name("polybot/telegram");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string(r#"{"telegram_token":"123:abc","webhook_secret":"s3cret-hook"}"#)
        .send()
        .await
        .expect("CreateSecret");
    let secrets = aws::telegram_secrets(&sdk, &name)
        .await
        .expect("read secret");
    assert_eq!(secrets.telegram_token.expose_secret(), "123:abc");
    assert_eq!(secrets.webhook_secret.expose_secret(), "s3cret-hook");
    let debug = format!("{secrets:?}");
    assert!(
        !debug.contains("123:abc") && !debug.contains("s3cret-hook"),
        "Debug leaks: {debug}"
    );
}

#[tokio::test]
async fn secrets_manager_errors_name_the_secret_but_never_print_its_value() {
    let (_, sdk, _) = setup().await;
    let missing = unique_name("polybot/missing");
    let message = config_message(aws::telegram_secrets(&sdk, &missing).await);
    assert!(
        message.contains(&format!("POLYBOT_TELEGRAM_SECRET_ID={missing}")),
        "{message}"
    );

    let name = unique_name("polybot/malformed");
    // A wrong type: serde's own message would quote the value.
    let value = r#"{"telegram_token":123456789,"webhook_secret":"hush-hush-value"}"#;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("CreateSecret");
    let message = config_message(aws::telegram_secrets(&sdk, &name).await);
    assert!(message.contains(&name), "{message}");
    assert!(
        !message.contains("123456789") && !message.contains("hush-hush"),
        "the error quotes the secret: {message}"
    );
}

// ---------------------------------------------------------- start-up errors

#[tokio::test]
async fn connect_succeeds_on_provisioned_resources_and_checks_pass() {
    let (_, _, b) = backends().await;
    b.objects.check().await.expect("s3 check");
    b.jobs.check().await.expect("queue check");
    b.dead_letters.check().await.expect("dlq check");
    b.table.check().await.expect("table check");
}

#[tokio::test]
async fn connect_names_the_bucket_setting_when_the_bucket_is_missing() {
    let (_, sdk, mut settings) = setup().await;
    settings.bucket = unique_name("no-such-bucket");
    let message = config_message(aws::connect_with(&sdk, &settings).await);
    assert!(
        message.contains(&format!("POLYBOT_BUCKET={}", settings.bucket)),
        "{message}"
    );
}

#[tokio::test]
async fn connect_names_the_queue_settings_when_a_queue_is_missing() {
    let (moto, sdk, settings) = setup().await;
    let missing = format!("{}/123456789012/{}", moto.endpoint(), unique_name("nope"));
    let mut wrong = settings.clone();
    wrong.queue_url = missing.clone();
    let message = config_message(aws::connect_with(&sdk, &wrong).await);
    assert!(
        message.contains(&format!("POLYBOT_QUEUE_URL={missing}")),
        "{message}"
    );

    let mut wrong = settings;
    wrong.dlq_url = missing.clone();
    let message = config_message(aws::connect_with(&sdk, &wrong).await);
    assert!(
        message.contains(&format!("POLYBOT_DLQ_URL={missing}")),
        "{message}"
    );
}

#[tokio::test]
async fn connect_names_the_table_setting_when_the_table_is_missing_or_lacks_the_index() {
    let (_, sdk, mut settings) = setup().await;
    settings.table = unique_name("no-such-table");
    let message = config_message(aws::connect_with(&sdk, &settings).await);
    assert!(
        message.contains(&format!("POLYBOT_TABLE={}", settings.table)),
        "{message}"
    );

    // A table with the right key but no GSI.
    let bare = unique_name("bare");
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&bare)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("def"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("CreateTable");
    settings.table = bare.clone();
    let message = config_message(aws::connect_with(&sdk, &settings).await);
    assert!(
        message.contains(&format!("POLYBOT_TABLE={bare}")) && message.contains(aws::CHAT_INDEX),
        "{message}"
    );
}

#[tokio::test]
async fn connect_names_empty_settings() {
    let (_, sdk, settings) = setup().await;
    for (setting, clear) in [
        (
            "POLYBOT_BUCKET",
            (|s: &mut AwsSettings| s.bucket.clear()) as fn(&mut AwsSettings),
        ),
        ("POLYBOT_QUEUE_URL", |s| s.queue_url.clear()),
        ("POLYBOT_DLQ_URL", |s| s.dlq_url.clear()),
        ("POLYBOT_TABLE", |s| s.table.clear()),
    ] {
        let mut wrong = settings.clone();
        clear(&mut wrong);
        let message = config_message(aws::connect_with(&sdk, &wrong).await);
        assert!(
            message.contains(setting) && message.contains("not set"),
            "{setting}: {message}"
        );
    }
}

#[tokio::test]
async fn load_sdk_config_without_a_region_names_aws_region() {
    install_crypto_provider();
    let settings = AwsSettings {
        region: None,
        ..AwsSettings::default()
    };
    let message = config_message(aws::load_sdk_config(&settings).await);
    assert!(message.contains("AWS_REGION"), "{message}");
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some("localhost:4566".into()),
        ..AwsSettings::default()
    };
    let message = config_message(aws::connect(&settings).await);
    assert!(
        message.contains("AWS_ENDPOINT_URL=localhost:4566"),
        "{message}"
    );
}

#[tokio::test]
async fn connect_to_an_unreachable_endpoint_is_retryable_and_names_the_setting() {
    let (_, _, settings) = setup().await;
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    match aws::connect_with(&sdk, &settings).await {
        Err(e @ StorageError::Unavailable { .. }) => {
            assert!(e.is_retryable());
            assert!(e.to_string().contains("POLYBOT_BUCKET="), "{e}");
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("expected Unavailable, got a connection"),
    }
}

#[tokio::test]
async fn a_call_to_an_endpoint_that_never_answers_ends_at_the_operation_timeout_as_retryable() {
    let (_, _, settings) = setup().await;
    // Accepts connections and reads requests, but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    let settings = AwsSettings {
        operation_timeout: Some(Duration::from_secs(1)),
        ..settings
    };
    // Without a deadline the SDK would wait for ever; the guard only
    // turns such a hang into a failure instead of a stuck test.
    let result = tokio::time::timeout(Duration::from_secs(60), aws::connect_with(&sdk, &settings))
        .await
        .expect("the start-up checks end by themselves");
    match result {
        Err(e @ StorageError::Unavailable { .. }) => assert!(e.is_retryable(), "{e}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("a server that never answers cannot pass the checks"),
    }
    server.abort();
}
