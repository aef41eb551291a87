//! Intake and sending under faults, black-box: a real gateway on the
//! embedded backend (no detector: jobs stay queued, where the tests read
//! them) behind the Telegram emulator, which delivers webhooks over real
//! HTTP and scripts the faults (429s, 5xx, 4xx, delays, dropped
//! connections). Storage faults come from wrappers around the real local
//! backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::Lang;
use polybot_domain::{
    BotId, ChatId, ChatSettings, FailureKind, Job, JobResult, PredictionId, PredictionRecord,
};
use polybot_gateway::Backoff;
use polybot_gateway::botapi::{BotApiError, Upload};
use polybot_gateway::messenger::{TelegramControl, TelegramMessenger};
use polybot_gateway::secret::WebhookSecret;
use polybot_gateway::{Gateway, GatewayConfig, TelegramMode};
use polybot_gateway::{Limit, Limits, RetryBudget};
use polybot_storage::config::BackendArgs;
use polybot_storage::{
    Albums, Attributes, Backends, Claim, ClaimKey, Delivery, JobQueue, LeaseId, Leases, Notices,
    PredictionTable, Predictions, QueueStats, Receipt, StorageError, Tenant,
};
use secrecy::SecretString;
use serde_json::json;
use tg_emulator::{
    Emulator, EmulatorClient, EmulatorConfig, EmulatorHandle, SentMessage, UserMessageOptions,
};

/// The notice a slow detection shows, as an English-speaking user reads it.
fn processing_text() -> String {
    polybot_gateway::progress::detect_notice_text(Lang::En)
}

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "intake-test-webhook-secret-0123456789abcdef";

fn emulator_config(token: &str) -> EmulatorConfig {
    EmulatorConfig {
        webhook_initial_backoff: Duration::from_millis(100),
        webhook_max_backoff: Duration::from_millis(500),
        webhook_timeout: Duration::from_secs(10),
        ..EmulatorConfig::with_token(token)
    }
}

struct Harness {
    emulator: EmulatorHandle,
    client: EmulatorClient,
    gateway: Option<Gateway>,
    backends: Backends,
    _dir: Option<tempfile::TempDir>,
}

struct Setup {
    token: String,
    mode: TelegramMode,
    retries: RetryBudget,
    wrap: Box<dyn FnOnce(Backends) -> Backends + Send>,
    /// Wraps the bot's control port (e.g. to make polling die).
    control: WrapControl,
    before_start: Option<BeforeStart>,
    limits: Limits,
}

type WrapControl = Box<dyn FnOnce(Arc<dyn TelegramControl>) -> Arc<dyn TelegramControl> + Send>;
type ScriptFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
/// Scripts the emulator before the gateway starts (e.g. faults on start-up calls).
type BeforeStart = Box<dyn FnOnce(&EmulatorClient) -> ScriptFuture + Send>;

impl Default for Setup {
    fn default() -> Self {
        Self {
            token: tg_emulator::DEFAULT_TOKEN.to_owned(),
            mode: TelegramMode::Webhook,
            retries: RetryBudget {
                max_attempts: 4,
                max_age: Duration::from_secs(60),
            },
            wrap: Box::new(|b| b),
            control: Box::new(|c| c),
            before_start: None,
            limits: Limits::default(),
        }
    }
}

async fn local_backends(dir: &std::path::Path) -> Backends {
    BackendArgs::local(dir.join("data"))
        .connect()
        .await
        .expect("local backend")
}

async fn start_gateway(emulator: &EmulatorHandle, backends: Backends, setup: Setup) -> Gateway {
    let Setup {
        mode,
        retries,
        control: wrap_control,
        limits,
        ..
    } = setup;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let public_url = format!("http://{}/", http.local_addr().expect("addr"))
        .parse()
        .expect("url");
    let telegram = TelegramMessenger::new(
        &SecretString::from(emulator.token().to_owned()),
        emulator.base_url().parse().expect("url"),
    );
    let config = GatewayConfig {
        mode,
        webhook_secret: Some(
            WebhookSecret::parse(SecretString::from(SECRET.to_owned())).expect("a valid secret"),
        ),
        public_url: Some(public_url),
        dead_letter_wait: Duration::from_millis(200),
        update_retries: retries,
        limits,
        startup_backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            reset_after: Duration::from_secs(60),
        },
        ..GatewayConfig::default()
    };
    let (messenger, control) = telegram.ports();
    Gateway::start(
        config,
        backends,
        messenger,
        wrap_control(control),
        http,
        grpc,
    )
    .await
    .expect("gateway starts")
}

impl Harness {
    async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        Self::start_on(setup, backends, Some(dir)).await
    }

    async fn start_on(setup: Setup, backends: Backends, dir: Option<tempfile::TempDir>) -> Self {
        let emulator = Emulator::start_with_config("127.0.0.1:0", emulator_config(&setup.token))
            .await
            .expect("emulator");
        let client = emulator.client();
        let mut setup = setup;
        if let Some(script) = setup.before_start.take() {
            script(&client).await;
        }
        let wrap = std::mem::replace(&mut setup.wrap, Box::new(|b| b));
        let gateway = start_gateway(&emulator, wrap(backends.clone()), setup).await;
        Self {
            emulator,
            client,
            gateway: Some(gateway),
            backends,
            _dir: dir,
        }
    }

    async fn wait_messages(&self, chat: i64, n: usize) -> Vec<SentMessage> {
        self.client
            .wait_for_messages(chat, n, WAIT)
            .await
            .expect("the bot answers in time")
    }

    /// Jobs waiting in the queue (read and put back at once).
    async fn queued_jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        loop {
            let batch = self
                .backends
                .jobs
                .receive(10, Duration::ZERO)
                .await
                .expect("receive");
            if batch.is_empty() {
                break;
            }
            for d in batch {
                jobs.push(Job::parse(&d.body).expect("a job"));
            }
        }
        jobs
    }

    /// Jobs in the queue, received or not.
    async fn jobs(&self) -> u64 {
        let stats = self.backends.jobs.stats().await.expect("stats");
        stats.visible + stats.in_flight
    }

    async fn wait_jobs(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.backends.jobs.stats().await.expect("stats");
            if stats.visible >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} job(s) were not queued in time: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The chat keeps exactly `n` messages through a quiet period.
    async fn assert_stays_at(&self, chat: i64, n: usize) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let messages = self.client.messages(chat).await.expect("messages");
        assert_eq!(messages.len(), n, "unexpected messages: {messages:#?}");
    }

    async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        self.emulator.shutdown().await;
    }
}

fn photo() -> Vec<u8> {
    tg_emulator::test_jpeg(64, 48)
}

fn text(m: &SentMessage) -> &str {
    m.text.as_deref().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Storage wrappers that fail on demand.

/// A job queue whose `send` fails with the given error a number of times.
impl Setup {
    /// The jobs queue's next `failures` sends fail with `error`.
    fn sends_failing(failures: u32, error: fn() -> StorageError) -> Self {
        Self {
            wrap: Box::new(move |b| Backends {
                jobs: Arc::new(FailingSends {
                    inner: b.jobs.clone(),
                    failures: AtomicU32::new(failures),
                    error,
                }),
                ..b
            }),
            ..Self::default()
        }
    }
}

/// A queue that is down for a moment.
fn down_for_a_moment() -> StorageError {
    StorageError::unavailable(
        "test",
        "sending",
        std::io::Error::other("down for a moment"),
    )
}

struct FailingSends {
    inner: Arc<dyn JobQueue>,
    failures: AtomicU32,
    error: fn() -> StorageError,
}

#[async_trait]
impl JobQueue for FailingSends {
    fn messaging_system(&self) -> &'static str {
        self.inner.messaging_system()
    }
    async fn send_for(
        &self,
        tenant: Option<&Tenant>,
        body: &str,
        attributes: &Attributes,
    ) -> polybot_storage::Result<()> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err((self.error)());
        }
        self.inner.send_for(tenant, body, attributes).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> polybot_storage::Result<Vec<Delivery>> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &Receipt) -> polybot_storage::Result<()> {
        self.inner.delete(receipt).await
    }
    async fn set_visibility(
        &self,
        receipt: &Receipt,
        timeout: Duration,
    ) -> polybot_storage::Result<()> {
        self.inner.set_visibility(receipt, timeout).await
    }
    async fn stats(&self) -> polybot_storage::Result<QueueStats> {
        self.inner.stats().await
    }
    async fn check(&self) -> polybot_storage::Result<()> {
        self.inner.check().await
    }
}

/// A prediction table as a crashed gateway leaves it: the first `finish` of
/// an update claim is lost, and update leases are short, so the
/// redelivery takes the update over as it would after the lease expired.
struct LostFinish {
    inner: Arc<dyn PredictionTable>,
    lost: AtomicU32,
}

#[async_trait]
impl Predictions for LostFinish {
    async fn create(&self, record: &PredictionRecord) -> polybot_storage::Result<()> {
        self.inner.create(record).await
    }
    async fn save_result(
        &self,
        result: &JobResult,
    ) -> polybot_storage::Result<polybot_storage::Saved> {
        self.inner.save_result(result).await
    }
    async fn set_answer_file(
        &self,
        id: PredictionId,
        file_id: &str,
    ) -> polybot_storage::Result<()> {
        self.inner.set_answer_file(id, file_id).await
    }
    async fn save_failure(
        &self,
        id: PredictionId,
        kind: FailureKind,
    ) -> polybot_storage::Result<()> {
        self.inner.save_failure(id, kind).await
    }
    async fn get(&self, id: PredictionId) -> polybot_storage::Result<Option<PredictionRecord>> {
        self.inner.get(id).await
    }
    async fn chat_predictions(
        &self,
        chat: ChatId,
        window: polybot_storage::TimeWindow,
        after: Option<polybot_storage::ListCursor>,
        limit: usize,
    ) -> polybot_storage::Result<Vec<PredictionRecord>> {
        self.inner
            .chat_predictions(chat, window, after, limit)
            .await
    }
}

#[async_trait]
impl Leases for LostFinish {
    async fn claim(&self, key: ClaimKey, lease: Duration) -> polybot_storage::Result<Claim> {
        let lease = match key {
            ClaimKey::Update(..) => Duration::from_millis(300),
            ClaimKey::Reply(_) | ClaimKey::Extra(..) => lease,
        };
        self.inner.claim(key, lease).await
    }
    async fn finish(&self, key: ClaimKey) -> polybot_storage::Result<()> {
        if matches!(key, ClaimKey::Update(..))
            && self
                .lost
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Ok(());
        }
        self.inner.finish(key).await
    }
    async fn release(&self, key: ClaimKey, lease: LeaseId) -> polybot_storage::Result<()> {
        self.inner.release(key, lease).await
    }
    async fn renew(
        &self,
        key: ClaimKey,
        lease: LeaseId,
        duration: Duration,
    ) -> polybot_storage::Result<bool> {
        self.inner.renew(key, lease, duration).await
    }
}

#[async_trait]
impl Notices for LostFinish {
    async fn attach_notice(
        &self,
        id: PredictionId,
        message_id: i64,
    ) -> polybot_storage::Result<bool> {
        self.inner.attach_notice(id, message_id).await
    }
    async fn notice(
        &self,
        id: PredictionId,
    ) -> polybot_storage::Result<polybot_storage::NoticeState> {
        self.inner.notice(id).await
    }
    async fn close_notice(&self, id: PredictionId) -> polybot_storage::Result<Option<i64>> {
        self.inner.close_notice(id).await
    }
}

#[async_trait]
impl Albums for LostFinish {
    async fn join_album(
        &self,
        key: &polybot_storage::AlbumKey,
        photo: &polybot_domain::AlbumMember,
    ) -> polybot_storage::Result<polybot_storage::AlbumJoin> {
        self.inner.join_album(key, photo).await
    }
    async fn close_album(
        &self,
        key: &polybot_storage::AlbumKey,
        quiet: std::time::Duration,
        lease: std::time::Duration,
    ) -> polybot_storage::Result<polybot_storage::AlbumClose> {
        self.inner.close_album(key, quiet, lease).await
    }
    async fn finish_album(&self, key: &polybot_storage::AlbumKey) -> polybot_storage::Result<()> {
        self.inner.finish_album(key).await
    }
    async fn pending_albums(
        &self,
        quiet: std::time::Duration,
        limit: usize,
    ) -> polybot_storage::Result<Vec<polybot_storage::AlbumKey>> {
        self.inner.pending_albums(quiet, limit).await
    }
}

#[async_trait]
impl polybot_storage::SentAnswers for LostFinish {
    async fn record_answer(
        &self,
        chat: ChatId,
        message_id: i64,
        photo: &polybot_storage::AnsweredPhoto,
    ) -> polybot_storage::Result<()> {
        self.inner.record_answer(chat, message_id, photo).await
    }
    async fn answered_photo(
        &self,
        chat: ChatId,
        message_id: i64,
    ) -> polybot_storage::Result<Option<polybot_storage::AnsweredPhoto>> {
        self.inner.answered_photo(chat, message_id).await
    }
}

#[async_trait]
impl polybot_storage::Windows for LostFinish {
    async fn count_in_window(
        &self,
        key: &polybot_storage::WindowKey,
        member: &str,
        window: Duration,
    ) -> polybot_storage::Result<u64> {
        self.inner.count_in_window(key, member, window).await
    }
}

#[async_trait]
impl polybot_storage::DeferredUpdates for LostFinish {
    async fn defer_update(
        &self,
        bot: BotId,
        update: polybot_domain::UpdateId,
        body: &str,
        grace: Duration,
    ) -> polybot_storage::Result<()> {
        self.inner.defer_update(bot, update, body, grace).await
    }
    async fn due_updates(
        &self,
        grace: Duration,
        limit: usize,
    ) -> polybot_storage::Result<Vec<polybot_storage::DeferredUpdate>> {
        self.inner.due_updates(grace, limit).await
    }
    async fn finish_deferred(
        &self,
        bot: BotId,
        update: polybot_domain::UpdateId,
    ) -> polybot_storage::Result<()> {
        self.inner.finish_deferred(bot, update).await
    }
}

#[async_trait]
impl polybot_storage::Preferences for LostFinish {
    async fn chat_settings(&self, chat: ChatId) -> polybot_storage::Result<ChatSettings> {
        self.inner.chat_settings(chat).await
    }
    async fn change_chat_settings(
        &self,
        chat: ChatId,
        change: polybot_domain::SettingsChange,
    ) -> polybot_storage::Result<ChatSettings> {
        self.inner.change_chat_settings(chat, change).await
    }
    async fn publish_model_classes(&self, classes: &[String]) -> polybot_storage::Result<()> {
        self.inner.publish_model_classes(classes).await
    }
    async fn model_classes(&self) -> polybot_storage::Result<Option<Vec<String>>> {
        self.inner.model_classes().await
    }
}

#[async_trait]
impl polybot_storage::Backlog for LostFinish {
    async fn add_cost(
        &self,
        id: PredictionId,
        extra: u32,
        until: f64,
    ) -> polybot_storage::Result<()> {
        self.inner.add_cost(id, extra, until).await
    }
    async fn remove_cost(&self, id: PredictionId) -> polybot_storage::Result<()> {
        self.inner.remove_cost(id).await
    }
    async fn extra_cost(&self) -> polybot_storage::Result<u64> {
        self.inner.extra_cost().await
    }
}

#[async_trait]
impl polybot_storage::Erasure for LostFinish {
    async fn erase_chat(&self, chat: ChatId) -> polybot_storage::Result<u64> {
        self.inner.erase_chat(chat).await
    }
    async fn sweep_expired(&self, now: std::time::SystemTime) -> polybot_storage::Result<u64> {
        self.inner.sweep_expired(now).await
    }
}

#[async_trait]
impl PredictionTable for LostFinish {
    async fn check(&self) -> polybot_storage::Result<()> {
        self.inner.check().await
    }
}

// ---------------------------------------------------------------------------
// Point 2: no silent 200.

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_storage_error_during_intake_is_told_to_the_user_not_swallowed() {
    let h = Harness::start(Setup::sends_failing(u32::MAX, || {
        StorageError::invalid("SQS refuses this message")
    }))
    .await;
    let chat = 9101;
    h.client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = h.wait_messages(chat, 1).await;
    assert_eq!(
        text(&m[0]),
        FailureKind::Internal.user_message(Lang::En),
        "{m:#?}"
    );
    h.assert_stays_at(chat, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_outage_during_intake_answers_503_and_the_redelivery_queues_one_job() {
    let h = Harness::start(Setup::sends_failing(2, down_for_a_moment)).await;
    let chat = 9102;
    let sent = h
        .client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = h.wait_messages(chat, 1).await;
    assert_eq!(text(&m[0]), processing_text());
    let deliveries = h.client.deliveries().await.expect("deliveries");
    let statuses: Vec<Option<u16>> = deliveries
        .iter()
        .filter(|d| d.update_id == sent.update_id)
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);
    let jobs = h.queued_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    h.assert_stays_at(chat, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_whose_queueing_fails_for_a_while_is_queued_once_not_marked_done() {
    let h = Harness::start(Setup::sends_failing(2, down_for_a_moment)).await;
    let chat = 9104;
    for _ in 0..2 {
        let options = UserMessageOptions {
            media_group_id: Some("queue-down".into()),
            ..Default::default()
        };
        h.client
            .send_user_photo(chat, photo(), &options)
            .await
            .expect("send");
    }
    h.wait_jobs(1).await;
    // Retried past the failures: one job, for the whole album.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let jobs = h.queued_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].input.photo_count(), 2, "{jobs:?}");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Point 3: idempotent intake.

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_connection_dropped_mid_intake_still_queues_exactly_one_job() {
    let h = Harness::start(Setup::default()).await;
    // The download takes 600 ms; the delivery hangs up after 150 ms, in the
    // middle of it, as Telegram or a load balancer dropping the connection.
    h.client
        .delay_next("getFile", 1, Duration::from_millis(600))
        .await
        .expect("fault");
    h.client
        .hang_up_webhook(1, Duration::from_millis(150))
        .await
        .expect("hang up");
    let chat = 9103;
    let sent = h
        .client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    h.wait_jobs(1).await;
    h.client
        .wait_delivered(sent.update_id, WAIT)
        .await
        .expect("delivered in the end");
    let deliveries = h.client.deliveries().await.expect("deliveries");
    assert!(
        deliveries[0].error.is_some() && !deliveries[0].delivered,
        "the first delivery hung up: {deliveries:?}"
    );
    let m = h.wait_messages(chat, 1).await;
    assert_eq!(text(&m[0]), processing_text());
    h.assert_stays_at(chat, 1).await;
    assert_eq!(h.queued_jobs().await.len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_after_a_lost_claim_finds_the_same_prediction() {
    let h = Harness::start(Setup {
        wrap: Box::new(|b| Backends {
            table: Arc::new(LostFinish {
                inner: b.table.clone(),
                lost: AtomicU32::new(1),
            }),
            ..b
        }),
        ..Setup::default()
    })
    .await;
    let chat = 9104;
    let sent = h
        .client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    h.wait_jobs(1).await;
    // The lease has expired (300 ms) and the claim was never finished: the
    // redelivery does the intake again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    h.client.redeliver(sent.update_id).await.expect("redeliver");
    h.wait_jobs(2).await;
    let jobs = h.queued_jobs().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(
        jobs[0].prediction_id, jobs[1].prediction_id,
        "both deliveries made the same prediction"
    );
    let records = h
        .backends
        .table
        .list_by_chat(ChatId(chat), 10)
        .await
        .expect("list");
    assert_eq!(records.len(), 1, "{records:?}");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Point 8: dedupe by bot and update.

#[tokio::test(flavor = "multi_thread")]
async fn a_new_bot_token_on_the_same_storage_is_not_taken_for_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backends = local_backends(dir.path()).await;
    let chat = 9105;
    let first = Harness::start_on(
        Setup {
            token: "111111:FIRST-TOKEN".into(),
            ..Setup::default()
        },
        backends.clone(),
        None,
    )
    .await;
    let sent = first
        .client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    first.wait_jobs(1).await;
    first.stop().await;

    // Another bot on the same table: its update ids start again at 1.
    let second = Harness::start_on(
        Setup {
            token: "222222:SECOND-TOKEN".into(),
            ..Setup::default()
        },
        backends,
        None,
    )
    .await;
    let again = second
        .client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    assert_eq!(again.update_id, sent.update_id, "the same update id");
    second.wait_jobs(2).await;
    let m = second.wait_messages(chat, 1).await;
    assert_eq!(text(&m[0]), processing_text());
    second.stop().await;
    drop(dir);
}

// ---------------------------------------------------------------------------
// Point 5: error classes from the real API, bounded retries.

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_file_id_is_answered_once_and_does_not_hold_back_the_chat() {
    let h = Harness::start(Setup::default()).await;
    let chat = 9106;
    // getFile answers 400 "Bad Request: invalid file_id": a refusal text
    // no allow-list needs to know to count as final.
    let bad = json!({
        "message": {"message_id": 1, "date": 1_700_000_000,
                    "chat": {"id": chat, "type": "private", "first_name": "A"},
                    "from": {"id": chat, "is_bot": false, "first_name": "A"},
                    "photo": [{"file_id": "no-such-file", "file_unique_id": "x",
                               "width": 90, "height": 90, "file_size": 1000}]}
    });
    let sent = h.client.queue_update(&bad).await.expect("queue");
    h.client.send_user_text(chat, "hello?").await.expect("send");
    let m = h.wait_messages(chat, 2).await;
    assert_eq!(
        text(&m[0]),
        FailureKind::NotAnImage.user_message(Lang::En),
        "{m:#?}"
    );
    assert!(text(&m[1]).contains("Send me a photo"), "{m:#?}");
    let deliveries = h.client.deliveries().await.expect("deliveries");
    let statuses: Vec<Option<u16>> = deliveries
        .iter()
        .filter(|d| d.update_id == sent.update_id)
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, [Some(200)], "answered on the first delivery");
    h.assert_stays_at(chat, 2).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_5xx_on_the_download_is_retried_and_the_photo_is_queued() {
    let h = Harness::start(Setup::default()).await;
    h.client.fail_next("getFile", 2, 500).await.expect("fault");
    let chat = 9107;
    h.client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    h.wait_jobs(1).await;
    let m = h.wait_messages(chat, 1).await;
    assert_eq!(text(&m[0]), processing_text());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_update_in_polling_mode_is_given_up_and_later_updates_are_answered() {
    let h = Harness::start(Setup {
        mode: TelegramMode::Polling,
        retries: RetryBudget {
            max_attempts: 3,
            max_age: Duration::from_secs(60),
        },
        ..Setup::default()
    })
    .await;
    // Every download fails for now: the photo can never be taken.
    h.client
        .fail_next("getFile", 1000, 502)
        .await
        .expect("fault");
    let chat = 9108;
    h.client
        .send_user_photo(chat, photo(), &UserMessageOptions::default())
        .await
        .expect("send");
    h.client.send_user_text(chat, "hello?").await.expect("send");
    let m = h.wait_messages(chat, 2).await;
    assert_eq!(
        text(&m[0]),
        FailureKind::Internal.user_message(Lang::En),
        "the user hears the photo failed: {m:#?}"
    );
    assert!(
        text(&m[1]).contains("Send me a photo"),
        "and the next update is answered: {m:#?}"
    );
    let stats = h.client.requests().await.expect("requests");
    assert_eq!(stats.count("getFile"), 3, "three attempts in all");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Points 6 and 12: polling survives what used to kill it.

#[tokio::test(flavor = "multi_thread")]
async fn polling_goes_on_past_an_update_id_beyond_i32() {
    let h = Harness::start(Setup {
        mode: TelegramMode::Polling,
        ..Setup::default()
    })
    .await;
    let chat = 9109;
    let update = json!({
        "update_id": i64::from(i32::MAX),
        "message": {"message_id": 1, "date": 1_700_000_000,
                    "chat": {"id": chat, "type": "private", "first_name": "A"},
                    "from": {"id": chat, "is_bot": false, "first_name": "A"},
                    "text": "first"}
    });
    h.client.queue_update(&update).await.expect("queue");
    h.wait_messages(chat, 1).await;
    // The next update id is past i32::MAX.
    let next = h.client.send_user_text(chat, "second").await.expect("send");
    assert!(next.update_id > i64::from(i32::MAX));
    let m = h.wait_messages(chat, 2).await;
    assert!(text(&m[1]).contains("Send me a photo"), "{m:#?}");
    h.assert_stays_at(chat, 2).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_telegram_types_cannot_read_is_answered_with_help() {
    let h = Harness::start(Setup::default()).await;
    let chat = 9110;
    let update = json!({
        "message": {"message_id": 1, "date": "not a date",
                    "chat": {"id": chat, "type": "private", "first_name": "A"},
                    "text": "hi"}
    });
    h.client.queue_update(&update).await.expect("queue");
    let m = h.wait_messages(chat, 1).await;
    assert!(text(&m[0]).contains("Send me a photo"), "{m:#?}");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Point 10: start-up waits instead of dying.

#[tokio::test(flavor = "multi_thread")]
async fn a_429_on_set_webhook_at_start_up_is_waited_out_and_readiness_follows() {
    let h = Harness::start(Setup {
        before_start: Some(Box::new(|client: &EmulatorClient| {
            let client = client.clone();
            Box::pin(async move {
                client
                    .rate_limit(Some("setWebhook"), 2, 1)
                    .await
                    .expect("rate limit");
            })
        })),
        ..Setup::default()
    })
    .await;
    let gateway = h.gateway.as_ref().expect("running");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !gateway.is_ready() {
        assert!(tokio::time::Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let webhook = h.client.webhook().await.expect("webhook");
    assert!(webhook.url.is_some(), "ready only once registered");
    let stats = h.client.requests().await.expect("requests");
    assert_eq!(stats.rate_limited_count("setWebhook"), 2);
    assert_eq!(stats.count("setWebhook"), 3);
    let chat = 9111;
    h.client.send_user_text(chat, "hi").await.expect("send");
    h.wait_messages(chat, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_is_not_ready_while_set_webhook_keeps_failing() {
    let h = Harness::start(Setup {
        before_start: Some(Box::new(|client: &EmulatorClient| {
            let client = client.clone();
            Box::pin(async move {
                client
                    .fail_next("setWebhook", 1000, 502)
                    .await
                    .expect("fault");
            })
        })),
        ..Setup::default()
    })
    .await;
    let gateway = h.gateway.as_ref().expect("running");
    // Several attempts, none accepted: still not ready, still running.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h
        .client
        .requests()
        .await
        .expect("requests")
        .count("setWebhook")
        < 3
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!gateway.is_ready());
    h.client.clear_faults().await.expect("clear");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !gateway.is_ready() {
        assert!(tokio::time::Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Every background task is supervised: one that dies is restarted, and
// readiness shows it meanwhile.

/// The bot's control port, whose `getUpdates` panics while `dying` is set:
/// the polling loop dies with it, as often as it is restarted.
struct DyingPolls {
    inner: Arc<dyn TelegramControl>,
    dying: Arc<AtomicBool>,
}

#[async_trait]
impl TelegramControl for DyingPolls {
    fn bot_id(&self) -> Option<BotId> {
        self.inner.bot_id()
    }

    async fn call(
        &self,
        method: &'static str,
        params: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError> {
        if method == "getUpdates" && self.dying.load(Ordering::SeqCst) {
            panic!("getUpdates dies (as the test asks)");
        }
        self.inner.call(method, params, timeout).await
    }

    fn report_token_to(&self, components: polybot_telemetry::tasks::Components) {
        self.inner.report_token_to(components);
    }

    async fn call_with_file(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        file: Upload,
        timeout: Duration,
    ) -> Result<serde_json::Value, BotApiError> {
        self.inner
            .call_with_file(method, params, file, timeout)
            .await
    }
}

/// Polls `/readyz` until it answers `status`.
async fn wait_readyz(gateway: &Gateway, status: u16) {
    let url = format!("http://{}/readyz", gateway.http_addr());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answered = reqwest::get(&url).await.map(|r| r.status().as_u16());
        if answered.as_ref().ok() == Some(&status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {status}: {answered:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_polling_loop_that_keeps_dying_turns_readyz_503_and_is_restarted_until_it_lives() {
    let dying = Arc::new(AtomicBool::new(false));
    let h = Harness::start(Setup {
        mode: TelegramMode::Polling,
        control: Box::new({
            let dying = Arc::clone(&dying);
            move |inner| Arc::new(DyingPolls { inner, dying })
        }),
        ..Setup::default()
    })
    .await;
    let gateway = h.gateway.as_ref().expect("running");
    wait_readyz(gateway, 200).await;
    let chat = 9120;
    h.client.send_user_text(chat, "hi").await.expect("send");
    h.wait_messages(chat, 1).await;

    // The next poll panics, and so does every restarted loop's.
    dying.store(true, Ordering::SeqCst);
    h.client
        .send_user_text(chat, "are you there?")
        .await
        .expect("send");
    wait_readyz(gateway, 503).await;

    // It lives again: restarted, ready, and answering.
    dying.store(false, Ordering::SeqCst);
    wait_readyz(gateway, 200).await;
    h.client
        .send_user_text(chat, "and now?")
        .await
        .expect("send");
    let m = h.wait_messages(chat, 3).await;
    assert!(text(&m[2]).contains("Send me a photo"), "{m:#?}");
    let metrics = reqwest::get(format!("http://{}/metrics", gateway.http_addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("polybot_task_restarts_total{task=\"polling\"}")),
        "the restarts are counted: {metrics}"
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Points 7 and 11: the outbox.

#[tokio::test(flavor = "multi_thread")]
async fn a_429_for_one_chat_does_not_hold_back_another_chats_answer() {
    let h = Harness::start(Setup::default()).await;
    let telegram = TelegramMessenger::new(
        &SecretString::from(h.emulator.token().to_owned()),
        h.emulator.base_url().parse().expect("url"),
    );
    let messenger = telegram.clone().shared();
    // The first send (chat A's) answers 429 with a long retry_after.
    h.client
        .rate_limit(Some("sendMessage"), 1, 3)
        .await
        .expect("rate limit");
    let (a, b) = (9112_i64, 9113_i64);
    let flood = {
        let messenger = Arc::clone(&messenger);
        tokio::spawn(async move {
            let mut sends = Vec::new();
            for i in 0..5 {
                let messenger = Arc::clone(&messenger);
                sends.push(tokio::spawn(async move {
                    messenger
                        .send_text(ChatId(a), &format!("flood {i}"), None)
                        .await
                }));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for s in sends {
                s.await.expect("join").expect("sent in the end");
            }
        })
    };
    // Wait until chat A got its 429, then answer chat B.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h
        .client
        .requests()
        .await
        .expect("requests")
        .rate_limited_count("sendMessage")
        == 0
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    messenger
        .send_text(ChatId(b), "your answer", None)
        .await
        .expect("B's answer is sent");
    let a_sent_before_b = h.client.messages(a).await.expect("messages").len();
    assert_eq!(
        a_sent_before_b, 0,
        "B's answer went out while A waited out its 429"
    );
    flood.await.expect("flood");
    let flooded = h.client.messages(a).await.expect("messages");
    let texts: Vec<&str> = flooded.iter().map(text).collect();
    assert_eq!(
        texts,
        ["flood 0", "flood 1", "flood 2", "flood 3", "flood 4"],
        "A's messages keep their order"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_back_pressure_notices_are_dropped_and_answers_are_not() {
    let h = Harness::start(Setup::default()).await;
    let telegram = TelegramMessenger::new(
        &SecretString::from(h.emulator.token().to_owned()),
        h.emulator.base_url().parse().expect("url"),
    );
    let messenger = telegram.clone().shared();
    let chat = ChatId(9114);
    // Telegram slows this chat down: every send waits 300 ms.
    h.client
        .delay_next("sendMessage", 100, Duration::from_millis(300))
        .await
        .expect("fault");
    let mut answers = Vec::new();
    for i in 0..4 {
        let messenger = Arc::clone(&messenger);
        answers.push(tokio::spawn(async move {
            messenger
                .send_text(chat, &format!("answer {i}"), None)
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..5 {
        messenger
            .send_notice(chat, &processing_text(), None, Default::default())
            .await;
    }
    for a in answers {
        a.await.expect("join").expect("every answer is sent");
    }
    let sent = h.client.messages(chat.0).await.expect("messages");
    let answers_sent = sent
        .iter()
        .filter(|m| text(m).starts_with("answer"))
        .count();
    assert_eq!(answers_sent, 4, "{sent:#?}");
    assert!(
        sent.iter().all(|m| text(m) != processing_text()),
        "the notices gave way: {sent:#?}"
    );
    h.stop().await;
}

/// Intake throughput: photos per second the gateway takes from the
/// emulator (webhook, download, store, queue), no detector. A measurement,
/// not a test: `cargo test -p polybot-gateway --test intake -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: prints photos/s"]
async fn bench_intake_photos_per_second() {
    let photos: u64 = std::env::var("POLYBOT_BENCH_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let h = Harness::start(Setup::default()).await;
    let bytes = tg_emulator::test_jpeg(640, 480);
    // Register the files first, so the measurement is the gateway's work.
    let file = h
        .client
        .register_file(bytes, Some("photo.jpg"))
        .await
        .expect("register");
    let start = tokio::time::Instant::now();
    for i in 0..photos {
        let chat = 20_000 + (i % 50) as i64;
        let update = json!({
            "message": {"message_id": i + 1, "date": 1_700_000_000,
                        "chat": {"id": chat, "type": "private", "first_name": "B"},
                        "from": {"id": chat, "is_bot": false, "first_name": "B"},
                        "photo": [{"file_id": file.file_id, "file_unique_id": file.file_unique_id,
                                   "width": 640, "height": 480, "file_size": file.file_size}]}
        });
        h.client.queue_update(&update).await.expect("queue");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let stats = h.backends.jobs.stats().await.expect("stats");
        if stats.visible >= photos {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "intake: {photos} photos from 50 chats queued in {:.2} s = {:.1} photos/s",
        elapsed.as_secs_f64(),
        photos as f64 / elapsed.as_secs_f64()
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Admission control: one user cannot slow everyone.

/// The photos of `chat` (from `from`) each answered, in turn: queued or
/// told to wait.
async fn send_photos(h: &Harness, chat: i64, from: Option<i64>, n: usize) {
    for _ in 0..n {
        let sent = h
            .client
            .send_user_photo(
                chat,
                photo(),
                &UserMessageOptions {
                    from_id: from,
                    // In a group the bot acts only when addressed.
                    caption: (chat < 0).then(|| "/detect@polybot_test_bot".to_owned()),
                    ..UserMessageOptions::default()
                },
            )
            .await
            .expect("send");
        h.client
            .wait_delivered(sent.update_id, WAIT)
            .await
            .expect("delivered");
    }
}

fn wait_messages_of(messages: &[SentMessage], limit: Limit) -> usize {
    let told = limit.user_message(Lang::En);
    messages.iter().filter(|m| text(m) == told).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_with_three_requests_waiting_is_told_once_to_wait_and_nothing_more_is_queued() {
    let h = Harness::start(Setup::default()).await;
    let chat = 9301;
    // Nobody works the queue: the first three stay waiting.
    send_photos(&h, chat, None, 5).await;
    h.wait_jobs(3).await;
    let messages = h.client.messages(chat).await.expect("messages");
    assert_eq!(
        wait_messages_of(&messages, Limit::ChatPending(3)),
        1,
        "told once, not per photo: {messages:#?}"
    );
    assert_eq!(h.jobs().await, 3, "the 4th and 5th are not queued");
    // Another chat is not held by this one.
    send_photos(&h, 9302, None, 1).await;
    assert_eq!(h.jobs().await, 4);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_photos_a_minute_are_limited_across_gateways_sharing_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backends = local_backends(dir.path()).await;
    let limits = Limits {
        user_photos_per_minute: 2,
        chat_pending: 0,
    };
    let first = Harness::start_on(
        Setup {
            limits,
            ..Setup::default()
        },
        backends.clone(),
        None,
    )
    .await;
    // Its emulator numbers updates from 1 too: another bot's token keeps
    // them apart in the shared table, as Telegram's own numbering would.
    let second = Harness::start_on(
        Setup {
            limits,
            token: "222222:SECOND-TOKEN".into(),
            ..Setup::default()
        },
        backends,
        None,
    )
    .await;
    let (user, group) = (5150, -1_009_303);
    // Two photos through one gateway, in a private chat and a group…
    send_photos(&first, user, None, 1).await;
    send_photos(&first, group, Some(user), 1).await;
    first.wait_jobs(2).await;
    // …and the third, through the other gateway, is one too many.
    send_photos(&second, user, None, 1).await;
    let messages = second.wait_messages(user, 1).await;
    assert_eq!(
        wait_messages_of(&messages, Limit::UserRate(2)),
        1,
        "{messages:#?}"
    );
    assert_eq!(first.jobs().await, 2);
    // Someone else in the group is not limited by that user.
    send_photos(&second, group, Some(user + 1), 1).await;
    assert_eq!(first.jobs().await, 3);
    first.stop().await;
    second.stop().await;
}

// ---------------------------------------------------------------------------
// Text answers off the webhook path.

#[tokio::test(flavor = "multi_thread")]
async fn a_text_answer_waiting_its_turn_does_not_hold_the_webhook_and_is_sent_once() {
    let h = Harness::start(Setup::default()).await;
    h.client
        .delay_next("sendMessage", 1, Duration::from_millis(3000))
        .await
        .expect("fault");
    let chat = 9401;
    let sent = h.client.send_user_text(chat, "/start").await.expect("send");
    h.client
        .wait_delivered(sent.update_id, WAIT)
        .await
        .expect("delivered");
    // The webhook returned while the answer's send still hangs.
    assert!(
        h.client.messages(chat).await.expect("messages").is_empty(),
        "the webhook waited for the answer"
    );
    let m = h.wait_messages(chat, 1).await;
    assert!(text(&m[0]).starts_with("Hi! I find the objects"), "{m:#?}");
    assert_eq!(m[0].reply_to_message_id, sent.message_id);
    // Answered, so forgotten: nothing is left for a sweep.
    let due = polybot_storage::DeferredUpdates::due_updates(
        h.backends.table.as_ref(),
        Duration::ZERO,
        10,
    )
    .await
    .expect("due");
    assert!(due.is_empty(), "{due:?}");
    h.assert_stays_at(chat, 1).await;
    h.stop().await;
}
