//! Black-box tests of the whole mesh on the AWS backend: the Telegram Bot
//! API emulator plays the user, the gateway, the detector worker (real
//! model) and Results (real gRPC) run as in production, and S3, SQS and
//! DynamoDB are moto's, reached through the real AWS SDK. What the system
//! stored is then read back with the SDK directly, not through our adapters.
//!
//! Also here: the all-in-one runner's reporter on the embedded backend, and
//! the start-up errors for missing or wrong AWS settings.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos, moto); `cargo
//! xtask test` sets the environment. Every test provisions its own bucket,
//! queues and table on the one moto server this binary shares, so the tests
//! run in parallel.
//!
//! What happens to a photo that cannot be decoded (by design, see
//! `detector/src/worker/step.rs`): decoding errors are permanent, so the worker
//! reports the failure to Results at once, the user gets a "try again"
//! reply, and the job is deleted — it is *not* retried into the
//! dead-letter queue. Jobs that fail transiently (here: nobody finishes
//! them) are redelivered until the queue's redrive policy moves them to the
//! dead-letter queue, whose sweeper in the gateway answers the user.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use polybot::Mesh;
use polybot::stack::{StackOptions, start_mesh};
use polybot_domain::PredictionId;
use polybot_storage::StorageError;
use polybot_storage::aws::{AwsSettings, prediction_pk};
use polybot_storage::config::{Backend, BackendArgs};
use polybot_testkit::{MotoServer, REGION, install_crypto_provider, unique_name};
use polybot_testkit::{caption, sample_photo as photo, text};
use tg_emulator::{
    Emulator, EmulatorClient, EmulatorHandle, SentKind, SentMessage, UserMessageOptions,
};

/// Generous: a wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(120);

/// The AWS backend reads credentials from the SDK's default chain, as in
/// production. Point it at moto's dummy credentials, once per process and
/// before any test thread reads the environment (every test calls this
/// first, and `Once` makes the others wait until it is done).
fn aws_test_env() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        // SAFETY: runs once, before anything in this test binary reads the
        // environment concurrently (all tests block on this `Once` first).
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
    install_crypto_provider();
}

/// `BackendArgs` as the services build them from their flags and
/// environment: backend `aws`, region and endpoint from the moto server.
fn aws_backend_args(moto: &MotoServer, settings: &AwsSettings) -> BackendArgs {
    BackendArgs {
        backend: Backend::Aws,
        region: Some(REGION.to_owned()),
        endpoint_url: Some(moto.endpoint().to_owned()),
        bucket: Some(settings.bucket.clone()),
        queue_url: Some(settings.queue_url.clone()),
        dlq_url: Some(settings.dlq_url.clone()),
        table: Some(settings.table.clone()),
        ..BackendArgs::local("unused-by-the-aws-backend")
    }
}

/// The mesh on freshly provisioned moto resources, with the emulator.
struct AwsStack {
    sdk: SdkConfig,
    settings: AwsSettings,
    emulator: EmulatorHandle,
    client: EmulatorClient,
    mesh: Mesh,
}

impl AwsStack {
    /// `max_receives` and `queue_visibility` are the jobs queue's redrive
    /// policy and default visibility timeout.
    async fn start(
        max_receives: u32,
        queue_visibility: Duration,
        tweak: impl FnOnce(&mut StackOptions),
    ) -> Self {
        aws_test_env();
        let moto = MotoServer::shared();
        let sdk = moto.sdk_config().await;
        let settings = moto.provision(max_receives, queue_visibility).await;
        let mut opts = StackOptions::local("unused-by-the-aws-backend");
        opts.backend = aws_backend_args(moto, &settings);
        opts.lanes = 1;
        opts.poll_wait = Duration::from_secs(1);
        opts.visibility = Duration::from_secs(10);
        opts.shutdown_grace = Duration::from_secs(10);
        opts.reporter_interval = None;
        // The notice at once (as a slow answer gets it), to check it is
        // removed, or turned into the error, through DynamoDB.
        opts.notice_after = Duration::ZERO;
        tweak(&mut opts);
        let emulator = Emulator::start("127.0.0.1:0")
            .await
            .expect("the emulator starts");
        let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
            .await
            .expect("the mesh starts on the aws backend against moto");
        let client = emulator.client();
        Self {
            sdk,
            settings,
            emulator,
            client,
            mesh,
        }
    }

    async fn wait_for(&self, chat: i64, n: usize) -> Vec<SentMessage> {
        self.client
            .wait_for_messages(chat, n, WAIT)
            .await
            .expect("the bot replies in time")
    }

    async fn stop(self) {
        self.mesh.shutdown().await;
        self.emulator.shutdown().await;
    }
}

/// (visible, in flight) messages of a queue, read with the SDK.
async fn queue_depth(sdk: &SdkConfig, url: &str) -> (u64, u64) {
    let out = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes.unwrap_or_default();
    let count = |name: QueueAttributeName| -> u64 {
        attrs
            .get(&name)
            .map(|v| v.parse().expect("a count"))
            .unwrap_or_else(|| panic!("{name:?} missing from GetQueueAttributes"))
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Waits until the queue holds no message, visible or in flight.
async fn wait_until_empty(sdk: &SdkConfig, url: &str, what: &str) {
    let start = Instant::now();
    loop {
        let depth = queue_depth(sdk, url).await;
        if depth == (0, 0) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{what} still holds (visible, in flight) = {depth:?} after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The prediction's item, read with the SDK.
async fn prediction_item(
    sdk: &SdkConfig,
    table: &str,
    id: PredictionId,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(prediction_pk(id)))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .unwrap_or_else(|| panic!("no item for prediction {id} in {table}"))
}

fn string_attr<'a>(
    item: &'a std::collections::HashMap<String, AttributeValue>,
    name: &str,
) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("attribute {name} is missing or not a string: {item:?}"))
}

/// The keys of every object under `prefix`, read with the SDK.
async fn object_keys(sdk: &SdkConfig, bucket: &str, prefix: &str) -> Vec<String> {
    polybot_storage::aws::s3_client(sdk)
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// The prediction id in `<chat>/original/<id>.<ext>`.
fn prediction_id_of(original_key: &str) -> PredictionId {
    let file = original_key.rsplit('/').next().expect("a file name");
    let stem = file.split('.').next().expect("a stem");
    stem.parse()
        .unwrap_or_else(|_| panic!("{original_key}: the file name is not a prediction id"))
}

// ------------------------------------------------------------ end to end

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_on_the_aws_backend_is_answered_and_its_images_and_summary_are_stored_in_s3_and_dynamodb()
 {
    let s = AwsStack::start(3, Duration::from_secs(30), |_| {}).await;
    let chat = 1243002838;
    let sent = s
        .client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("the user sends a photo");

    let m = s.wait_for(chat, 2).await;
    assert_eq!(m[0].kind, SentKind::Text, "{m:#?}");
    assert!(text(&m[0]).contains("Looking for objects"), "{m:#?}");
    assert_eq!(m[1].kind, SentKind::Photo, "{m:#?}");
    assert!(
        caption(&m[1]).contains("bus ×1") && caption(&m[1]).contains("person ×4"),
        "{m:#?}"
    );
    assert_eq!(
        m[1].reply_to_message_id, sent.message_id,
        "the reply quotes the photo"
    );
    // The notice does not outlive the answer.
    let start = Instant::now();
    while !s.client.messages(chat).await.expect("messages")[0].deleted {
        assert!(start.elapsed() < WAIT, "the notice stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The original, under <chat>/original/<prediction id>.jpg, as sent.
    let s3 = polybot_storage::aws::s3_client(&s.sdk);
    let originals = object_keys(&s.sdk, &s.settings.bucket, &format!("{chat}/original/")).await;
    assert_eq!(originals.len(), 1, "one original: {originals:?}");
    let original_key = &originals[0];
    assert!(original_key.ends_with(".jpg"), "{original_key}");
    let id = prediction_id_of(original_key);
    let original = s3
        .get_object()
        .bucket(&s.settings.bucket)
        .key(original_key)
        .send()
        .await
        .expect("GetObject original");
    assert_eq!(original.content_type(), Some("image/jpeg"));
    let original_bytes = original
        .body
        .collect()
        .await
        .expect("original body")
        .into_bytes();
    assert_eq!(
        original_bytes.as_ref(),
        photo("bus.jpg").as_slice(),
        "the photo as the user sent it"
    );

    // The annotated photo, under <chat>/predicted/<prediction id>.jpg: the one the user got.
    let predicted_key = format!("{chat}/predicted/{id}.jpg");
    let predicted = s3
        .get_object()
        .bucket(&s.settings.bucket)
        .key(&predicted_key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {predicted_key}: {e:?}"));
    assert_eq!(predicted.content_type(), Some("image/jpeg"));
    let predicted_bytes = predicted
        .body
        .collect()
        .await
        .expect("predicted body")
        .into_bytes();
    let file = m[1].file.as_ref().expect("the reply carries a photo");
    let sent_back = s
        .client
        .file_bytes(&file.file_id)
        .await
        .expect("the photo the bot sent");
    assert_eq!(
        predicted_bytes.as_ref(),
        sent_back.as_slice(),
        "the bot sent the stored annotated photo"
    );
    image::load_from_memory(&predicted_bytes).expect("the annotated photo decodes");

    // The prediction's item: succeeded, with the summary in the course's format.
    let item = prediction_item(&s.sdk, &s.settings.table, id).await;
    assert_eq!(string_attr(&item, "status"), "succeeded", "{item:?}");
    assert_eq!(
        item.get("chat_id"),
        Some(&AttributeValue::N(chat.to_string()))
    );
    let summary: serde_json::Value =
        serde_json::from_str(string_attr(&item, "summary")).expect("the summary is JSON");
    assert_eq!(summary["prediction_id"], id.to_string());
    assert_eq!(summary["original_img_path"], original_key.as_str());
    assert_eq!(summary["predicted_img_path"], predicted_key.as_str());
    let labels = summary["labels"].as_array().expect("labels");
    let count = |class: &str| labels.iter().filter(|l| l["class"] == class).count();
    assert_eq!((count("bus"), count("person")), (1, 4), "{summary:#}");

    // The job was deleted once Results acknowledged; nothing was dead-lettered.
    wait_until_empty(&s.sdk, &s.settings.queue_url, "the jobs queue").await;
    assert_eq!(
        queue_depth(&s.sdk, &s.settings.dlq_url).await,
        (0, 0),
        "the DLQ"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captioned_photo_on_the_aws_backend_is_filtered_and_its_kind_and_output_are_stored() {
    let s = AwsStack::start(3, Duration::from_secs(30), |o| {
        o.notice_after = Duration::from_secs(600);
    })
    .await;
    let chat = 1243002839;
    let options = UserMessageOptions {
        caption: Some("Segment 100".into()),
        ..Default::default()
    };
    let sent = s
        .client
        .send_user_photo(chat, photo("bus.jpg"), &options)
        .await
        .expect("the user sends a photo");
    let m = s.wait_for(chat, 1).await;
    assert_eq!(
        m[0].kind,
        SentKind::Document,
        "exact black and white: {m:#?}"
    );
    assert_eq!(m[0].reply_to_message_id, sent.message_id);
    assert_eq!(caption(&m[0]), "segment 100");

    let originals = object_keys(&s.sdk, &s.settings.bucket, &format!("{chat}/original/")).await;
    assert_eq!(originals.len(), 1, "one original: {originals:?}");
    let id = prediction_id_of(&originals[0]);
    let output_key = format!("{chat}/filtered/{id}.png");
    let output = polybot_storage::aws::s3_client(&s.sdk)
        .get_object()
        .bucket(&s.settings.bucket)
        .key(&output_key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {output_key}: {e:?}"));
    assert_eq!(output.content_type(), Some("image/png"));
    let bytes = output.body.collect().await.expect("body").into_bytes();
    let file = m[0].file.as_ref().expect("the reply carries the picture");
    let sent_back = s.client.file_bytes(&file.file_id).await.expect("file");
    assert_eq!(
        bytes.as_ref(),
        sent_back.as_slice(),
        "the stored picture was sent"
    );
    let grey = image::load_from_memory(&bytes).expect("decodes").to_luma8();
    assert_eq!((grey.width(), grey.height()), (810, 1080));
    assert!(grey.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));

    let item = prediction_item(&s.sdk, &s.settings.table, id).await;
    assert_eq!(string_attr(&item, "status"), "succeeded", "{item:?}");
    let kind: serde_json::Value =
        serde_json::from_str(string_attr(&item, "kind")).expect("the kind is JSON");
    assert_eq!(
        kind,
        serde_json::json!({"action": "filter", "filter": "segment", "threshold": 100})
    );
    let result: serde_json::Value =
        serde_json::from_str(string_attr(&item, "summary")).expect("the result is JSON");
    assert_eq!(result["output_img_path"], output_key.as_str());
    assert_eq!(result["mime_type"], "image/png");
    wait_until_empty(&s.sdk, &s.settings.queue_url, "the jobs queue").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_image_is_failed_at_once_with_a_try_again_reply_and_not_dead_lettered() {
    // No notice: this failure is fast enough to race it.
    let s = AwsStack::start(3, Duration::from_secs(30), |o| {
        o.notice_after = Duration::from_secs(600)
    })
    .await;
    let chat = 5551001;
    let opts = UserMessageOptions {
        file_name: Some("holiday.jpg".into()),
        mime_type: Some("image/jpeg".into()),
        ..Default::default()
    };
    s.client
        .send_user_document(
            chat,
            b"this file only pretends to be a photo".to_vec(),
            &opts,
        )
        .await
        .expect("the user sends a document");

    let m = s.wait_for(chat, 1).await;
    assert_eq!(m[0].kind, SentKind::Text, "{m:#?}");
    assert!(text(&m[0]).contains("try again"), "{m:#?}");

    // Failed permanently at once: the job is deleted, not retried into the DLQ.
    wait_until_empty(&s.sdk, &s.settings.queue_url, "the jobs queue").await;
    assert_eq!(
        queue_depth(&s.sdk, &s.settings.dlq_url).await,
        (0, 0),
        "the DLQ"
    );
    let originals = object_keys(&s.sdk, &s.settings.bucket, &format!("{chat}/original/")).await;
    assert_eq!(originals.len(), 1, "{originals:?}");
    let item = prediction_item(&s.sdk, &s.settings.table, prediction_id_of(&originals[0])).await;
    assert_eq!(string_attr(&item, "status"), "failed", "{item:?}");
    assert_eq!(string_attr(&item, "failure"), "not_an_image", "{item:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_is_never_finished_is_dead_lettered_after_max_receives_and_the_user_gets_a_try_again_reply()
 {
    const MAX_RECEIVES: u32 = 2;
    // No detector: nobody finishes the job. The test receives it in the
    // detector's place and never deletes it, as a detector that keeps
    // crashing would.
    let s = AwsStack::start(MAX_RECEIVES, Duration::from_secs(1), |o| o.detector = false).await;
    let chat = 5551002;
    s.client
        .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("the user sends a photo");
    let m = s.wait_for(chat, 1).await;
    assert!(text(&m[0]).contains("Looking for objects"), "{m:#?}");

    let sqs = aws_sdk_sqs::Client::new(&s.sdk);
    let start = Instant::now();
    let mut receives = 0;
    loop {
        let m = s.client.messages(chat).await.expect("messages");
        if text(&m[0]).contains("try again") {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no dead-letter reply after {WAIT:?} ({receives} receives)"
        );
        let out = sqs
            .receive_message()
            .queue_url(&s.settings.queue_url)
            .max_number_of_messages(1)
            .visibility_timeout(1)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        receives += out.messages().len();
    }
    assert_eq!(
        receives, MAX_RECEIVES as usize,
        "received until the redrive policy moved it"
    );

    // The notice became the answer: one message, edited, quoting the photo.
    let m = s.client.messages(chat).await.expect("messages");
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0].previous_versions
            .iter()
            .any(|v| v.contains("Looking for objects")),
        "{m:#?}"
    );
    assert!(m[0].reply_to_message_id.is_some(), "it quotes the photo");

    // The sweeper deletes the dead letter once the user was told.
    wait_until_empty(&s.sdk, &s.settings.dlq_url, "the DLQ").await;
    assert_eq!(
        queue_depth(&s.sdk, &s.settings.queue_url).await,
        (0, 0),
        "the jobs queue"
    );
    let originals = object_keys(&s.sdk, &s.settings.bucket, &format!("{chat}/original/")).await;
    let item = prediction_item(&s.sdk, &s.settings.table, prediction_id_of(&originals[0])).await;
    assert_eq!(string_attr(&item, "status"), "failed", "{item:?}");
    assert_eq!(string_attr(&item, "failure"), "gave_up", "{item:?}");
    s.stop().await;
}

// -------------------------------------------- the all-in-one reporter

/// Keeps the fields of the reporter crate's events.
#[derive(Clone, Default)]
struct ReporterEvents(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ReporterEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !event.metadata().target().starts_with("polybot_reporter") {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().expect("events lock").push(fields);
    }
}

impl ReporterEvents {
    /// Waits until an event has all of `expected` (numbers compared as numbers).
    async fn wait_for(&self, expected: &[(&str, &str)]) {
        let matches = |e: &BTreeMap<String, String>| {
            expected
                .iter()
                .all(|(k, v)| match (e.get(*k), v.parse::<f64>()) {
                    (Some(got), Ok(want)) => got.parse::<f64>().is_ok_and(|g| g == want),
                    (Some(got), Err(_)) => got == v,
                    (None, _) => false,
                })
        };
        let start = Instant::now();
        loop {
            if self.0.lock().expect("events lock").iter().any(matches) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "no reporter event with {expected:?} after {WAIT:?}; got {:#?}",
                self.0.lock().expect("events lock")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// A current-thread runtime, so the mesh's tasks run on this thread and
// log to the subscriber set for it.
#[tokio::test]
async fn the_all_in_one_runners_reporter_publishes_backlog_per_instance_from_the_embedded_queue() {
    use tracing_subscriber::layer::SubscriberExt;
    aws_test_env();
    let events = ReporterEvents::default();
    let _log =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = StackOptions::local(dir.path());
    // No detector: the photos stay queued, and no instance is in service.
    opts.detector = false;
    opts.poll_wait = Duration::from_millis(500);
    opts.reporter_interval = Some(Duration::from_millis(200));
    let emulator = Emulator::start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
        .await
        .expect("the mesh starts");
    let client = emulator.client();

    // Empty queue: 0.
    events
        .wait_for(&[
            ("message", "metric"),
            ("metric", "BacklogPerInstance"),
            ("value", "0"),
        ])
        .await;

    let chat = 5551003;
    for _ in 0..3 {
        client
            .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
            .await
            .expect("the user sends a photo");
    }
    client
        .wait_for_messages(chat, 3, WAIT)
        .await
        .expect("three processing replies");

    // Three queued jobs and no detector: the reporter sees them in the
    // embedded queue and publishes the scale-out value.
    events
        .wait_for(&[
            ("visible", "3"),
            ("instances", "0"),
            ("backlog_per_instance", "99"),
        ])
        .await;
    events
        .wait_for(&[
            ("message", "metric"),
            ("metric", "BacklogPerInstance"),
            ("value", "99"),
        ])
        .await;
    assert_eq!(
        mesh.backends.jobs.stats().await.expect("stats").visible,
        3,
        "the jobs are still queued"
    );
    mesh.shutdown().await;
    emulator.shutdown().await;
}

// ------------------------------------------------------ start-up errors

fn config_error(result: Result<polybot_storage::Backends, StorageError>) -> String {
    match result {
        Err(e @ StorageError::Config { .. }) => e.to_string(),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("expected a configuration error, got a connection"),
    }
}

#[tokio::test]
async fn backend_args_name_each_missing_aws_setting() {
    aws_test_env();
    let complete = BackendArgs {
        backend: Backend::Aws,
        region: Some(REGION.to_owned()),
        endpoint_url: Some("http://127.0.0.1:9".to_owned()),
        bucket: Some("bucket".to_owned()),
        queue_url: Some("http://127.0.0.1:9/123456789012/jobs".to_owned()),
        dlq_url: Some("http://127.0.0.1:9/123456789012/jobs-dlq".to_owned()),
        table: Some("table".to_owned()),
        ..BackendArgs::local("unused-by-the-aws-backend")
    };
    type Clear = fn(&mut BackendArgs, Option<String>);
    let settings: [(&str, Clear); 5] = [
        ("POLYBOT_BUCKET", |a, v| a.bucket = v),
        ("POLYBOT_QUEUE_URL", |a, v| a.queue_url = v),
        ("POLYBOT_DLQ_URL", |a, v| a.dlq_url = v),
        ("POLYBOT_TABLE", |a, v| a.table = v),
        ("AWS_REGION", |a, v| a.region = v),
    ];
    for (setting, set) in settings {
        for value in [None, Some(" ".to_owned())] {
            let mut args = complete.clone();
            set(&mut args, value.clone());
            let message = config_error(args.connect().await);
            assert!(
                message.contains(setting),
                "{setting}={value:?}: the error should name the setting: {message}"
            );
        }
    }
}

#[tokio::test]
async fn backend_args_name_the_setting_of_a_wrong_aws_value() {
    aws_test_env();
    let moto = MotoServer::shared();
    let settings = moto.provision(3, Duration::from_secs(30)).await;
    let right = aws_backend_args(moto, &settings);
    right
        .connect()
        .await
        .expect("the provisioned settings connect");

    let mut wrong = right.clone();
    let bucket = unique_name("no-such-bucket");
    wrong.bucket = Some(bucket.clone());
    let message = config_error(wrong.connect().await);
    assert!(
        message.contains(&format!("POLYBOT_BUCKET={bucket}")),
        "{message}"
    );

    let mut wrong = right.clone();
    let queue = format!(
        "{}/123456789012/{}",
        moto.endpoint(),
        unique_name("no-such-queue")
    );
    wrong.queue_url = Some(queue.clone());
    let message = config_error(wrong.connect().await);
    assert!(
        message.contains(&format!("POLYBOT_QUEUE_URL={queue}")),
        "{message}"
    );

    let mut wrong = right.clone();
    let table = unique_name("no-such-table");
    wrong.table = Some(table.clone());
    let message = config_error(wrong.connect().await);
    assert!(
        message.contains(&format!("POLYBOT_TABLE={table}")),
        "{message}"
    );

    // Resources that exist, but in another region than the one configured.
    let mut wrong = right.clone();
    wrong.region = Some("eu-west-3".to_owned());
    let message = config_error(wrong.connect().await);
    assert!(message.contains("AWS_REGION=eu-west-3"), "{message}");

    let mut wrong = right;
    wrong.endpoint_url = Some("127.0.0.1:4566".to_owned());
    let message = config_error(wrong.connect().await);
    assert!(
        message.contains("AWS_ENDPOINT_URL=127.0.0.1:4566"),
        "{message}"
    );
}

// ------------------------------------- the production configuration

/// The all-in-one binary of this build; `polybot gateway` and `polybot
/// detector` run exactly what the `gateway` and `detector` binaries run.
const POLYBOT: &str = env!("CARGO_BIN_EXE_polybot");

/// The environment both services get in production on AWS: the backend,
/// the resources, credentials from the SDK's default chain (moto's dummy
/// ones here), JSON logs and OTLP export to `otlp`.
fn aws_process(
    role: &str,
    moto: &MotoServer,
    settings: &AwsSettings,
    otlp: &str,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(POLYBOT);
    cmd.arg(role)
        .args(["--backend", "aws"])
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("POLYBOT_BUCKET", &settings.bucket)
        .env("POLYBOT_QUEUE_URL", &settings.queue_url)
        .env("POLYBOT_DLQ_URL", &settings.dlq_url)
        .env("POLYBOT_TABLE", &settings.table)
        .env("POLYBOT_LOG_FORMAT", "json")
        // Metrics reach CloudWatch as EMF lines on stdout (Terraform sets it).
        .env("POLYBOT_METRICS_EMF", "true")
        // Production gives both roles the same token from Secrets Manager.
        .env(
            "POLYBOT_RESULTS_TOKEN",
            "aws-process-results-token-0123456789abcdef",
        )
        .env("RUST_LOG", "info");
    polybot_testkit::process::otlp_env(&mut cmd, Some(otlp));
    cmd
}

/// The gateway as Terraform runs it, on `http` (webhook, health) and
/// `grpc` (Results), with the emulator as Telegram.
fn gateway_process(
    moto: &MotoServer,
    settings: &AwsSettings,
    otlp: &str,
    emulator: &EmulatorHandle,
    http: u16,
    grpc: u16,
) -> tokio::process::Command {
    let mut cmd = aws_process("gateway", moto, settings, otlp);
    cmd.env("TELEGRAM_TOKEN", emulator.token())
        .env(
            "TELEGRAM_WEBHOOK_SECRET",
            "aws-process-webhook-secret-0123456789abcdef",
        )
        .env("TELEGRAM_API_URL", emulator.base_url())
        .env("POLYBOT_TELEGRAM_MODE", "webhook")
        .env("POLYBOT_PUBLIC_URL", format!("http://127.0.0.1:{http}/"))
        .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{http}"))
        .env("POLYBOT_GRPC_LISTEN", format!("127.0.0.1:{grpc}"));
    cmd
}

/// The gateway and a detector as separate processes on AWS, as Terraform
/// runs them; the detector reaches AWS through `detector_endpoint` (moto's,
/// or a proxy in front of it).
struct AwsProcesses {
    emulator: EmulatorHandle,
    client: EmulatorClient,
    gateway: polybot_testkit::process::Proc,
    detector: polybot_testkit::process::Proc,
    detector_http: String,
}

impl AwsProcesses {
    async fn start(
        dir: &std::path::Path,
        moto: &MotoServer,
        settings: &AwsSettings,
        otlp: &str,
        detector_endpoint: &str,
    ) -> Self {
        use polybot_testkit::process::{Proc, free_port};
        let emulator = Emulator::start("127.0.0.1:0")
            .await
            .expect("the emulator starts");
        let client = emulator.client();
        let (http, grpc, det) = (free_port(), free_port(), free_port());

        let cmd = gateway_process(moto, settings, otlp, &emulator, http, grpc);
        let mut gateway = Proc::spawn("gateway", cmd, dir);
        gateway
            .wait_http_ok(&format!("http://127.0.0.1:{http}/readyz"), WAIT)
            .await;

        let mut cmd = aws_process("detector", moto, settings, otlp);
        cmd.env("AWS_ENDPOINT_URL", detector_endpoint)
            .env("POLYBOT_RESULTS_URL", format!("http://127.0.0.1:{grpc}"))
            .env("POLYBOT_HTTP_LISTEN", format!("127.0.0.1:{det}"))
            .env(
                "POLYBOT_MODEL",
                polybot_detector::model::default_model_path(),
            )
            .env(
                "ORT_DYLIB_PATH",
                polybot_detector::model::default_ort_library(),
            )
            .env("POLYBOT_LANES", "1");
        let mut detector = Proc::spawn("detector", cmd, dir);
        let detector_http = format!("http://127.0.0.1:{det}");
        detector
            .wait_http_ok(&format!("{detector_http}/readyz"), WAIT)
            .await;
        Self {
            emulator,
            client,
            gateway,
            detector,
            detector_http,
        }
    }

    async fn detector_metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.detector_http))
            .await
            .expect("the detector's metrics")
            .text()
            .await
            .expect("their text")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_and_detector_binaries_on_aws_with_telemetry_on_answer_a_photo_in_one_trace() {
    use polybot_testkit::process::OtlpReceiver;
    aws_test_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let settings = moto.provision(3, Duration::from_secs(30)).await;
    let receiver = OtlpReceiver::start().await;
    let AwsProcesses {
        emulator,
        client,
        mut gateway,
        mut detector,
        ..
    } = AwsProcesses::start(
        dir.path(),
        moto,
        &settings,
        &receiver.endpoint(),
        moto.endpoint(),
    )
    .await;

    let chat = 5551004;
    let sent = client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("the user sends a photo");
    // The answer, with a notice before it only if it took a while (the
    // shipped setting); one that was sent is removed.
    let start = Instant::now();
    let m = loop {
        let m = client.messages(chat).await.expect("messages");
        if m.iter().any(|m| m.kind == SentKind::Photo)
            && m.iter().all(|m| m.kind == SentKind::Photo || m.deleted)
        {
            break m;
        }
        assert!(
            start.elapsed() < WAIT,
            "no answer: {m:#?}\n--- gateway:\n{}\n--- detector:\n{}",
            gateway.logs(),
            detector.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let answers: Vec<_> = m.iter().filter(|m| m.kind == SentKind::Photo).collect();
    assert_eq!(answers.len(), 1, "{m:#?}");
    assert!(caption(answers[0]).contains("bus ×1"), "{m:#?}");
    assert_eq!(answers[0].reply_to_message_id, sent.message_id);

    // Stored as succeeded, and the job left the queue.
    let originals = object_keys(&sdk, &settings.bucket, &format!("{chat}/original/")).await;
    assert_eq!(originals.len(), 1, "{originals:?}");
    let item = prediction_item(&sdk, &settings.table, prediction_id_of(&originals[0])).await;
    assert_eq!(string_attr(&item, "status"), "succeeded", "{item:?}");
    wait_until_empty(&sdk, &settings.queue_url, "the jobs queue").await;

    // The trace context went through SQS: the detector's job span is a
    // child of the gateway's publish span, in the gateway's trace.
    detector.terminate(Duration::from_secs(30)).await;
    gateway.terminate(Duration::from_secs(30)).await;

    // The metrics CloudWatch gets: at shutdown each process wrote its last
    // EMF line on stdout (the log group's stream), with the job counted.
    let emf = |out: String| -> Vec<serde_json::Value> {
        out.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Polybot")
            .collect()
    };
    let detector_lines = emf(detector.stdout());
    assert!(
        detector_lines
            .iter()
            .any(|v| v["Service"] == "detector" && v["JobsSucceeded"] == 1.0),
        "{detector_lines:#?}"
    );
    assert!(
        detector_lines
            .iter()
            .any(|v| v["InferenceSeconds"]["Counts"].is_array()),
        "{detector_lines:#?}"
    );
    let gateway_lines = emf(gateway.stdout());
    assert!(
        gateway_lines.iter().any(|v| v["Service"] == "gateway"),
        "{gateway_lines:#?}"
    );

    let start = Instant::now();
    loop {
        let publish = receiver
            .spans_of("gateway")
            .into_iter()
            .find(|s| s["name"] == "jobs publish");
        let process = receiver
            .spans_of("detector")
            .into_iter()
            .find(|s| s["name"] == "jobs process");
        if let (Some(publish), Some(process)) = (publish, process) {
            assert_eq!(process["trace_id"], publish["trace_id"], "one trace");
            assert_eq!(
                process["parent_span_id"], publish["span_id"],
                "job ← publish"
            );
            // Both ends name the queue the same way: the adapter says it.
            for span in [&publish, &process] {
                assert_eq!(
                    span["attributes"]["messaging.system"], "aws_sqs",
                    "{span:#}"
                );
            }
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no publish/process spans: {:#?}",
            receiver.records()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_and_dynamodb_outage_on_the_detector_side_uses_no_receive_and_every_photo_is_answered()
 {
    use polybot_testkit::fault_proxy::{AwsService, FaultProxy};
    use polybot_testkit::process::OtlpReceiver;
    const PHOTOS: i64 = 3;
    const MAX_RECEIVES: u32 = 2;
    const VISIBILITY: Duration = Duration::from_secs(4);
    aws_test_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let settings = moto.provision(MAX_RECEIVES, VISIBILITY).await;
    let receiver = OtlpReceiver::start().await;
    // The detector reaches AWS through the proxy; the gateway directly, so
    // the photos are stored and queued while the detector's side is down.
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let mut p = AwsProcesses::start(
        dir.path(),
        moto,
        &settings,
        &receiver.endpoint(),
        proxy.endpoint(),
    )
    .await;

    // S3 and DynamoDB go down for the detector, its queue stays up: longer
    // than the visibility timeout times the receives, which used to
    // dead-letter every queued photo with an apology.
    proxy.take_down(&[AwsService::S3, AwsService::DynamoDb]);
    let chats: Vec<i64> = (0..PHOTOS).map(|i| 5551100 + i).collect();
    for &chat in &chats {
        p.client
            .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
            .await
            .expect("the user sends a photo");
    }
    let outage = VISIBILITY * (MAX_RECEIVES + 2);
    tokio::time::sleep(outage).await;
    assert!(proxy.refused() > 0, "the detector tried the storage");
    proxy.restore();

    // Each user gets the result once, and no apology.
    let start = Instant::now();
    for &chat in &chats {
        let m = loop {
            let m = p.client.messages(chat).await.expect("messages");
            if m.iter().any(|m| m.kind == SentKind::Photo) {
                break m;
            }
            assert!(
                start.elapsed() < WAIT,
                "chat {chat} got no answer: {m:#?}\n--- detector:\n{}",
                p.detector.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let photos = m.iter().filter(|m| m.kind == SentKind::Photo).count();
        assert_eq!(photos, 1, "{m:#?}");
        assert!(
            m.iter()
                .filter(|m| !m.deleted && m.kind != SentKind::Photo)
                .all(|m| !text(m).contains("try again") && !text(m).contains("Sorry")),
            "an apology: {m:#?}"
        );
    }
    wait_until_empty(&sdk, &settings.queue_url, "the jobs queue").await;
    assert_eq!(
        queue_depth(&sdk, &settings.dlq_url).await,
        (0, 0),
        "nothing was dead-lettered"
    );
    // Every job was received once: the outage cost no receive.
    let after = p.detector_metrics().await;
    assert!(
        after.contains(&format!("polybot_jobs_received_total {PHOTOS}")),
        "{after}"
    );
    assert!(
        after.contains(&format!("polybot_jobs_succeeded_total {PHOTOS}")),
        "{after}"
    );
    assert!(
        after.contains("polybot_storage_retries_total{call=\"fetch\"}"),
        "it waited in place: {after}"
    );
    p.detector.terminate(Duration::from_secs(30)).await;
    p.gateway.terminate(Duration::from_secs(30)).await;
    p.emulator.shutdown().await;
}

/// What the load balancers see (terraform: both target groups check
/// `/readyz`, the deployment test asserts it): a gateway that cannot reach
/// its table answers 503 there and leaves the target group, while the
/// process and its liveness (`/healthz`) stay up, so it is not replaced
/// for a passing outage, and it takes traffic again once the table is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_loses_its_table_turns_unready_for_the_load_balancer_but_stays_up() {
    use polybot_testkit::fault_proxy::{AwsService, FaultProxy};
    use polybot_testkit::process::{OtlpReceiver, Proc, free_port};
    aws_test_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = MotoServer::shared();
    let settings = moto.provision(3, Duration::from_secs(30)).await;
    let receiver = OtlpReceiver::start().await;
    let proxy = FaultProxy::start(moto.endpoint()).await;
    let emulator = Emulator::start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let (http, grpc) = (free_port(), free_port());
    let mut cmd = gateway_process(moto, &settings, &receiver.endpoint(), &emulator, http, grpc);
    cmd.env("AWS_ENDPOINT_URL", proxy.endpoint());
    let mut gateway = Proc::spawn("gateway", cmd, dir.path());
    let ready = format!("http://127.0.0.1:{http}/readyz");
    let live = format!("http://127.0.0.1:{http}/healthz");
    gateway.wait_http_ok(&ready, WAIT).await;

    let status = |url: String| async move {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    proxy.take_down(&[AwsService::DynamoDb]);
    let start = Instant::now();
    while status(ready.clone()).await != 503 {
        assert!(
            start.elapsed() < WAIT,
            "/readyz stayed ready without the table:\n{}",
            gateway.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status(live.clone()).await, 200, "liveness stays up");
    // It stays out (not flapping) while the table is gone.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(status(ready.clone()).await, 503);
        assert_eq!(status(live.clone()).await, 200);
    }

    proxy.restore();
    gateway.wait_http_ok(&ready, WAIT).await;
    // It was the same process all along: it stops cleanly on SIGTERM.
    gateway.terminate(Duration::from_secs(30)).await;
    emulator.shutdown().await;
}
