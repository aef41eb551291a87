//! The soak: `cargo xtask soak` (not part of `cargo xtask test`; it takes
//! several minutes). A gateway and two detector processes on the embedded
//! backend with the production queue settings (60 s visibility, 3
//! receives), against the Telegram emulator, take photos from 50 chats in
//! bursts while faults are injected:
//!
//! - a detector SIGKILLed and restarted, a gateway restarted, a 30 s
//!   Results outage (the gateway stopped), and the gateway SIGKILLed in the
//!   middle of a burst (webhooks, reports and closes under way) and
//!   restarted;
//! - 429 bursts, some with a `retry_after` longer than the webhook delivery
//!   timeout (10 s);
//! - duplicate webhook deliveries, and a few files that are not photos;
//! - albums of three photos from five chats, once while all is well and
//!   once just before the gateway SIGKILL (inside their quiet window);
//! - a flooding chat that sends 40 photos at once, during the second burst;
//! - a burst of 401s from the Bot API on every method (token trouble);
//! - on the moto backend, S3 and DynamoDB down for the detectors for 45 s
//!   (an HTTP proxy in front of moto answers 503; SQS passes).
//!
//! It then prints: photos accepted, answered exactly once, lost,
//! duplicated, apologies for photos whose prediction succeeded, p50/p95
//! latency and photos per second; the albums answered; the flooding chat's
//! photos taken and told to wait; the other chats' median latency while
//! idle and during the flood. The test fails unless nothing was lost or
//! duplicated (albums included), no succeeded photo got an apology, the
//! flood was held to its chat's limits and told so, and the other chats'
//! median latency during the flood stayed near idle.
//!
//! The gateway runs with `POLYBOT_CHAT_PENDING_LIMIT=10` and
//! `POLYBOT_USER_PHOTOS_PER_MINUTE=30`: each soak chat stands for many
//! users, sending a photo every few seconds through outages that leave
//! several waiting, which production's defaults (3 and 10) would refuse.
//!
//! Tunable by environment: `SOAK_BURSTS` (default 10) bursts of one photo
//! per chat from `SOAK_CHATS` (default 50) chats. `SOAK_BACKEND=moto`
//! (`cargo xtask soak --moto`) runs the processes on the AWS backend
//! against a moto server (S3, SQS with its redrive policy, DynamoDB)
//! instead of the embedded one.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use polybot_domain::{ChatId, PredictionStatus};
use polybot_testkit::fault_proxy::{AwsService, FaultProxy};
use polybot_testkit::process::{Proc, free_port};
use support::{GatewayPorts, Queue, detector_command, open_backends, photo, start_gateway_with};
use tg_emulator::{
    ApiFault, Emulator, EmulatorClient, EmulatorHandle, SentKind, UserMessageOptions,
};

/// Production's queue: 60 s visibility, dead-lettered after 3 receives.
const QUEUE: Queue = Queue {
    visibility: 60,
    max_receives: 3,
};
const FIRST_CHAT: i64 = 880_000;
/// Chats that send albums, and the one that floods.
const FIRST_ALBUM_CHAT: i64 = 881_000;
const ALBUM_CHATS: i64 = 5;
const FLOOD_CHAT: i64 = 882_000;
const FLOOD_PHOTOS: usize = 40;
/// How long S3 and DynamoDB are down for the detectors (moto backend).
const STORAGE_OUTAGE: Duration = Duration::from_secs(45);
/// The gateway's limits in the soak (see the module doc).
const PENDING_LIMIT: usize = 10;
const LIMITS: [(&str, &str); 2] = [
    ("POLYBOT_CHAT_PENDING_LIMIT", "10"),
    ("POLYBOT_USER_PHOTOS_PER_MINUTE", "30"),
];
/// How long the end waits for the last answers once no progress is seen.
const QUIET: Duration = Duration::from_secs(180);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// One thing a user sent and expects exactly one answer to.
struct Sent {
    chat: i64,
    message_id: i64,
    update_id: i64,
    /// A valid photo (else a file that is not a picture).
    photo: bool,
    at: f64,
    burst: usize,
}

/// Where the processes keep their state.
enum Store {
    Local,
    /// The AWS backend on a moto server of its own.
    Moto {
        moto: polybot_testkit::MotoServer,
        settings: Box<polybot_storage::aws::AwsSettings>,
        /// The detectors reach AWS through it, for their storage outage.
        proxy: std::sync::Arc<FaultProxy>,
    },
}

impl Store {
    async fn from_env() -> Self {
        match std::env::var("SOAK_BACKEND").as_deref() {
            Ok("moto") => {
                polybot_testkit::install_crypto_provider();
                let moto = polybot_testkit::MotoServer::start();
                let settings = moto
                    .provision(QUEUE.max_receives, Duration::from_secs(QUEUE.visibility))
                    .await;
                let proxy = std::sync::Arc::new(FaultProxy::start(moto.endpoint()).await);
                Self::Moto {
                    moto,
                    settings: Box::new(settings),
                    proxy,
                }
            }
            _ => Self::Local,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Local => "embedded",
            Self::Moto { .. } => "moto",
        }
    }

    /// The processes' environment for this backend, over the embedded
    /// one's that `support` sets; a detector's goes through the proxy.
    fn env(&self, detector: bool) -> Vec<(String, String)> {
        let Self::Moto {
            moto,
            settings,
            proxy,
        } = self
        else {
            return Vec::new();
        };
        let endpoint = if detector {
            proxy.endpoint()
        } else {
            moto.endpoint()
        };
        [
            ("POLYBOT_BACKEND", "aws"),
            ("AWS_REGION", polybot_testkit::REGION),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("POLYBOT_BUCKET", &settings.bucket),
            ("POLYBOT_QUEUE_URL", &settings.queue_url),
            ("POLYBOT_DLQ_URL", &settings.dlq_url),
            ("POLYBOT_TABLE", &settings.table),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    async fn backends(&self, data: std::path::PathBuf) -> polybot_storage::Backends {
        match self {
            Self::Local => open_backends(data, &QUEUE).await,
            Self::Moto { moto, settings, .. } => {
                let sdk = moto.sdk_config().await;
                polybot_storage::aws::connect_with(&sdk, settings)
                    .await
                    .expect("moto's resources")
            }
        }
    }
}

struct Rig {
    store: Store,
    dir: tempfile::TempDir,
    emulator: EmulatorHandle,
    client: EmulatorClient,
    ports: GatewayPorts,
    gateway: Option<Proc>,
    detectors: Vec<Option<(Proc, u16)>>,
}

impl Rig {
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    async fn start_gateway(&mut self) {
        let store = self.store.env(false);
        let settings: Vec<(&str, &str)> = LIMITS
            .iter()
            .copied()
            .chain(store.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let gateway = start_gateway_with(
            &self.emulator,
            &self.ports,
            &self.data(),
            &QUEUE,
            self.dir.path(),
            &settings,
        )
        .await;
        self.gateway = Some(gateway);
    }

    async fn start_detector(&mut self, i: usize) {
        let port = free_port();
        let mut cmd = detector_command(
            &format!("http://127.0.0.1:{}", self.ports.grpc),
            port,
            &self.data(),
            &QUEUE,
        );
        cmd.envs(self.store.env(true));
        let mut p = Proc::spawn(&format!("detector{i}"), cmd, self.dir.path());
        p.wait_http_ok(&format!("http://127.0.0.1:{port}/readyz"), support::WAIT)
            .await;
        self.detectors[i] = Some((p, port));
    }

    async fn send(&self, chat: i64, good: bool, n: usize) -> Sent {
        let at = now();
        let queued = if good {
            let name = if n.is_multiple_of(2) {
                "bus.jpg"
            } else {
                "zidane.jpg"
            };
            self.client
                .send_user_photo(chat, photo(name), &UserMessageOptions::default())
                .await
        } else {
            let opts = UserMessageOptions {
                file_name: Some("holiday.jpg".into()),
                mime_type: Some("image/jpeg".into()),
                ..Default::default()
            };
            self.client
                .send_user_document(chat, b"not a picture at all".to_vec(), &opts)
                .await
        }
        .expect("the emulator takes the message");
        Sent {
            chat,
            message_id: queued.message_id.expect("a message id"),
            update_id: queued.update_id,
            photo: good,
            at,
            burst: 0,
        }
    }
}

impl Rig {
    /// An album of three photos in `chat`; the ids of its messages.
    async fn send_album(&self, chat: i64, album: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        for name in ["bus.jpg", "zidane.jpg", "bus.jpg"] {
            let options = UserMessageOptions {
                media_group_id: Some(album.to_owned()),
                ..Default::default()
            };
            let sent = self
                .client
                .send_user_photo(chat, photo(name), &options)
                .await
                .expect("the emulator takes the album");
            ids.push(sent.message_id.expect("a message id"));
        }
        ids
    }

    async fn send_albums(&self, albums: &mut Vec<(i64, Vec<i64>)>, tag: &str) {
        for chat in FIRST_ALBUM_CHAT..FIRST_ALBUM_CHAT + ALBUM_CHATS {
            let ids = self.send_album(chat, &format!("{tag}-{chat}")).await;
            albums.push((chat, ids));
        }
    }
}

fn is_notice(m: &tg_emulator::SentMessage) -> bool {
    m.text
        .as_deref()
        .is_some_and(|t| t.contains("Looking for objects"))
}

fn is_apology(m: &tg_emulator::SentMessage) -> bool {
    m.kind == SentKind::Text && m.text.as_deref().is_some_and(|t| t.starts_with("Sorry"))
}

/// Answers (not notices) per (chat, message id).
async fn answers(
    client: &EmulatorClient,
    chats: &[i64],
) -> HashMap<(i64, i64), Vec<tg_emulator::SentMessage>> {
    let mut out: HashMap<(i64, i64), Vec<tg_emulator::SentMessage>> = HashMap::new();
    for &chat in chats {
        for m in client.messages(chat).await.expect("messages") {
            if is_notice(&m) {
                continue;
            }
            if let Some(to) = m.reply_to_message_id {
                out.entry((chat, to)).or_default().push(m);
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a soak of several minutes: run it with `cargo xtask soak`"]
async fn soak_every_photo_is_answered_exactly_once_through_restarts_outages_and_rate_limits() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let chats_n = env_or("SOAK_CHATS", 50) as i64;
    let bursts = env_or("SOAK_BURSTS", 10);
    let chats: Vec<i64> = (FIRST_CHAT..FIRST_CHAT + chats_n).collect();

    let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
    let client = emulator.client();
    let mut rig = Rig {
        store: Store::from_env().await,
        dir: tempfile::tempdir().expect("tempdir"),
        emulator,
        client,
        ports: GatewayPorts {
            http: free_port(),
            grpc: free_port(),
        },
        gateway: None,
        detectors: vec![None, None],
    };
    rig.start_gateway().await;
    rig.start_detector(0).await;
    rig.start_detector(1).await;
    let backends = rig.store.backends(rig.data()).await;
    println!("soak: on the {} backend", rig.store.name());

    let started = Instant::now();
    let t0 = now();
    let mut sent: Vec<Sent> = Vec::new();
    let mut albums: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut flood: Vec<Sent> = Vec::new();
    for burst in 0..bursts {
        if burst == 1 {
            // The flood starts with the burst: the other chats' photos
            // are queued behind (or among) it.
            println!("soak: chat {FLOOD_CHAT} floods the bot with {FLOOD_PHOTOS} photos");
            for n in 0..FLOOD_PHOTOS {
                flood.push(rig.send(FLOOD_CHAT, true, n).await);
            }
        }
        for (i, &chat) in chats.iter().enumerate() {
            let one = rig.send(chat, true, burst + i).await;
            sent.push(Sent { burst, ..one });
        }
        println!(
            "soak: burst {burst}: {} sent so far, {:.0} s in",
            sent.len(),
            started.elapsed().as_secs_f64()
        );
        match burst {
            1 => {
                // A few files that are not pictures, and a 429 burst on replies.
                for &chat in chats.iter().take(3) {
                    sent.push(rig.send(chat, false, 0).await);
                }
                rig.client
                    .rate_limit(Some("sendPhoto"), 5, 3)
                    .await
                    .expect("rate limit");
            }
            2 => {
                rig.send_albums(&mut albums, "calm").await;
                // Telegram delivers some updates twice.
                let again: Vec<i64> = sent.iter().rev().take(10).map(|s| s.update_id).collect();
                for update in again {
                    rig.client.redeliver(update).await.expect("redeliver");
                }
            }
            3 => {
                println!("soak: SIGKILL detector 0 and restart it");
                if let Some((mut p, _)) = rig.detectors[0].take() {
                    p.kill().await;
                }
                rig.start_detector(0).await;
            }
            4 => {
                // Longer than the emulator's 10 s webhook delivery timeout.
                rig.client
                    .rate_limit(Some("sendMessage"), 3, 15)
                    .await
                    .expect("rate limit");
            }
            5 => {
                println!("soak: restart the gateway");
                if let Some(mut g) = rig.gateway.take() {
                    g.terminate(Duration::from_secs(60)).await;
                }
                rig.start_gateway().await;
            }
            6 => {
                println!("soak: a 30 s Results outage (gateway stopped)");
                if let Some(mut g) = rig.gateway.take() {
                    g.terminate(Duration::from_secs(60)).await;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                rig.start_gateway().await;
            }
            7 => {
                rig.client.rate_limit(None, 5, 2).await.expect("rate limit");
                if let Store::Moto { proxy, .. } = &rig.store {
                    println!("soak: S3 and DynamoDB down for the detectors for {STORAGE_OUTAGE:?}");
                    proxy.take_down(&[AwsService::S3, AwsService::DynamoDb]);
                    let proxy = std::sync::Arc::clone(proxy);
                    tokio::spawn(async move {
                        tokio::time::sleep(STORAGE_OUTAGE).await;
                        proxy.restore();
                    });
                }
            }
            8 => {
                // Albums in their quiet window, the burst just sent: its
                // webhooks, reports and closes are under way when the
                // gateway dies.
                rig.send_albums(&mut albums, "killed").await;
                println!("soak: SIGKILL the gateway mid-burst and restart it");
                if let Some(mut g) = rig.gateway.take() {
                    g.kill().await;
                }
                rig.start_gateway().await;
            }
            9 => {
                // The token is refused for a while, on every method.
                println!("soak: a burst of 401s from the Bot API");
                rig.client
                    .fault(&ApiFault {
                        method: None,
                        count: 40,
                        error_code: Some(401),
                        description: Some("Unauthorized".into()),
                        retry_after: None,
                        delay_ms: None,
                    })
                    .await
                    .expect("fault");
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let sending_done = started.elapsed();

    // Wait for every answer, as long as answers keep coming.
    let expected = sent.len();
    let mut last_progress = Instant::now();
    let mut answered = 0;
    loop {
        let got = answers(&rig.client, &chats).await;
        let now_answered = sent
            .iter()
            .filter(|s| got.contains_key(&(s.chat, s.message_id)))
            .count();
        if now_answered > answered {
            answered = now_answered;
            last_progress = Instant::now();
        }
        if answered >= expected {
            break;
        }
        if last_progress.elapsed() > QUIET {
            println!("soak: no progress for {QUIET:?}; {answered}/{expected} answered");
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // The albums' answers: one picture group each.
    let album_answers = |groups: &[Vec<tg_emulator::SentMessage>], ids: &[i64]| {
        groups
            .iter()
            .filter(|g| {
                g.first()
                    .and_then(|m| m.reply_to_message_id)
                    .is_some_and(|to| ids.contains(&to))
            })
            .map(Vec::len)
            .collect::<Vec<usize>>()
    };
    let album_wait = Instant::now();
    loop {
        let mut missing = 0;
        for (chat, ids) in &albums {
            let groups = rig.client.media_groups(*chat).await.expect("groups");
            if album_answers(&groups, ids).is_empty() {
                missing += 1;
            }
        }
        if missing == 0 || album_wait.elapsed() > QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let all_answered = started.elapsed();
    // Let late duplicates show up.
    tokio::time::sleep(Duration::from_secs(10)).await;

    let (mut albums_once, mut albums_lost, mut albums_duplicated) = (0, 0, 0);
    for (chat, ids) in &albums {
        let groups = rig.client.media_groups(*chat).await.expect("groups");
        match album_answers(&groups, ids).as_slice() {
            [] => albums_lost += 1,
            [3] => albums_once += 1,
            other => {
                println!("soak: album {ids:?} in chat {chat} answered as {other:?}");
                albums_duplicated += 1;
            }
        }
    }
    let flood_messages = rig.client.messages(FLOOD_CHAT).await.expect("messages");
    let told_to_wait = flood_messages
        .iter()
        .filter(|m| {
            m.text.as_deref().is_some_and(|t| {
                t == polybot_gateway::Limit::ChatPending(PENDING_LIMIT as u32)
                    .user_message(polybot_domain::Lang::En)
                    || t == polybot_gateway::Limit::UserRate(30)
                        .user_message(polybot_domain::Lang::En)
            })
        })
        .count();
    let (mut flood_taken, mut flood_doubled) = (0, 0);
    for f in &flood {
        let pictures = flood_messages
            .iter()
            .filter(|m| m.kind == SentKind::Photo && m.reply_to_message_id == Some(f.message_id))
            .count();
        match pictures {
            0 => {}
            1 => flood_taken += 1,
            _ => flood_doubled += 1,
        }
    }

    let got = answers(&rig.client, &chats).await;
    let mut records = HashMap::new();
    for &chat in &chats {
        for r in backends
            .table
            .list_by_chat(ChatId(chat), 1000)
            .await
            .expect("records")
        {
            records.insert(r.prediction_id, r.status);
        }
    }
    let succeeded_records = records
        .values()
        .filter(|s| **s == PredictionStatus::Succeeded)
        .count();

    let (mut once, mut lost, mut duplicated, mut wrong_apologies) = (0, 0, 0, 0);
    let mut latencies = Vec::new();
    for s in &sent {
        let answers = got
            .get(&(s.chat, s.message_id))
            .cloned()
            .unwrap_or_default();
        match answers.len() {
            0 => lost += 1,
            1 => once += 1,
            _ => duplicated += 1,
        }
        // Every valid photo here can be detected: an apology for one is an
        // apology for a prediction that succeeded (or should have).
        if s.photo && answers.iter().any(is_apology) {
            wrong_apologies += 1;
        }
        if let Some(first) = answers.first() {
            latencies.push((first.date as f64 - s.at).max(0.0));
        }
    }
    latencies.sort_by(f64::total_cmp);
    // The other chats' latency without and during the flood.
    let burst_p50 = |burst: usize| {
        let mut l: Vec<f64> = sent
            .iter()
            .filter(|s| s.burst == burst && s.photo)
            .filter_map(|s| {
                let first = got.get(&(s.chat, s.message_id))?.first()?;
                Some((first.date as f64 - s.at).max(0.0))
            })
            .collect();
        l.sort_by(f64::total_cmp);
        percentile(&l, 0.5)
    };
    let (calm_p50, flood_p50) = (burst_p50(0), burst_p50(1));
    let photos = sent.iter().filter(|s| s.photo).count();
    let bad = sent.len() - photos;
    let span = all_answered.as_secs_f64().max(1.0);
    println!("soak: ------------------------------------------------------------");
    println!(
        "soak: photos accepted {photos} (+{bad} files that are not pictures) from {} chats in {bursts} bursts",
        chats.len()
    );
    println!("soak: answered exactly once  {once}");
    println!("soak: lost                   {lost}");
    println!("soak: duplicated             {duplicated}");
    println!("soak: apologies for succeeded jobs {wrong_apologies}");
    println!(
        "soak: latency p50 {:.1} s, p95 {:.1} s, max {:.1} s (send → answer, 1 s resolution)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "soak: throughput {:.2} photos/s ({} answers in {:.0} s; sending took {:.0} s, faults included)",
        once as f64 / span,
        once,
        span,
        sending_done.as_secs_f64()
    );
    println!(
        "soak: records succeeded {succeeded_records} of {}; started at {t0:.0}",
        records.len()
    );
    println!(
        "soak: albums answered once {albums_once} of {}, lost {albums_lost}, duplicated {albums_duplicated}",
        albums.len()
    );
    println!(
        "soak: flood of {FLOOD_PHOTOS} photos: {flood_taken} answered, {flood_doubled} answered twice, told to wait {told_to_wait} time(s)"
    );
    println!(
        "soak: other chats' median latency: {calm_p50:.1} s without the flood, {flood_p50:.1} s during it"
    );
    if let Store::Moto { proxy, .. } = &rig.store {
        println!(
            "soak: detectors' S3 and DynamoDB calls refused during the outage: {}",
            proxy.refused()
        );
    }
    let jobs = backends.jobs.stats().await.expect("stats");
    let dead = backends.dead_letters.stats().await.expect("stats");
    println!(
        "soak: queues at the end: jobs {}+{} in flight, dead letters {}+{}",
        jobs.visible, jobs.in_flight, dead.visible, dead.in_flight
    );

    for d in rig.detectors.iter_mut() {
        if let Some((p, _)) = d.as_mut() {
            p.terminate(Duration::from_secs(60)).await;
        }
    }
    if let Some(mut g) = rig.gateway.take() {
        g.terminate(Duration::from_secs(60)).await;
    }
    assert_eq!(
        (lost, duplicated, wrong_apologies),
        (0, 0, 0),
        "target: 0 lost, 0 duplicated, 0 wrong apologies"
    );
    assert_eq!(
        (albums_lost, albums_duplicated),
        (0, 0),
        "target: every album answered once"
    );
    assert!(
        flood_doubled == 0 && told_to_wait >= 1 && flood_taken < FLOOD_PHOTOS,
        "the flood is held to its limits and told so"
    );
    // Dates have a resolution of one second.
    assert!(
        flood_p50 <= calm_p50 * 2.0 + 2.0,
        "another chat's median latency during the flood stays near idle"
    );
}

/// Not a test: `cargo xtask latency`. The whole mesh in one process, as
/// `polybot up` runs it, on an idle bot, one photo at a time: prints the
/// median and spread of the time from the bot's `getFile` to its answer
/// (`sendPhoto`), as the emulator saw the two calls arrive. With
/// `LATENCY_EMULATOR_URL` it measures a bot already running against that
/// emulator instead (e.g. a release `polybot up`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it with `cargo xtask latency`"]
async fn answer_latency_from_get_file_to_send_photo_on_an_idle_bot() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let photos = env_or("LATENCY_PHOTOS", 30);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = polybot::stack::StackOptions::local(dir.path().join("data"));
    opts.lanes = 1;
    opts.reporter_interval = None;
    let external = std::env::var("LATENCY_EMULATOR_URL").ok();
    let (client, running) = match &external {
        Some(url) => (EmulatorClient::new(url.clone()), None),
        None => {
            let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
            let mesh = polybot::stack::start_mesh(&emulator.base_url(), emulator.token(), &opts)
                .await
                .expect("the mesh starts");
            (emulator.client(), Some((emulator, mesh)))
        }
    };
    let chat = 990_001 + i64::from(std::process::id() % 1000);
    let warm_up = 2;
    let mut latencies = Vec::new();
    let mut notices = 0;
    for n in 0..warm_up + photos {
        let name = if n.is_multiple_of(2) {
            "bus.jpg"
        } else {
            "zidane.jpg"
        };
        let seen = client.requests().await.expect("requests").log.len();
        client
            .send_user_photo(chat, photo(name), &UserMessageOptions::default())
            .await
            .expect("send");
        // Not polled while the bot works: the emulator's answers to the
        // bot would wait behind ours and inflate the figure. An idle bot
        // answers well within this pause.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let answers = client
            .wait_for_messages(chat, n + 1, support::WAIT)
            .await
            .expect("an answer");
        notices += answers.iter().filter(|m| is_notice(m)).count();
        let log = client.requests().await.expect("requests").log;
        let at = |method: &str| {
            log.iter()
                .skip(seen)
                .find(|e| e.method == method)
                .map(|e| e.at_ms)
        };
        if let (Some(get_file), Some(send_photo)) = (at("getFile"), at("sendPhoto"))
            && n >= warm_up
        {
            latencies.push(send_photo.saturating_sub(get_file) as f64);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "latency: {} photos, getFile → sendPhoto: median {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms; notices sent {notices}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies.first().copied().unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    assert_eq!(
        latencies.len(),
        photos,
        "every photo was answered with a photo"
    );
    if let Some((emulator, mesh)) = running {
        mesh.shutdown().await;
        emulator.shutdown().await;
    }
}
