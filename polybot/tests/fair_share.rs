//! One user cannot slow everyone, through the real binaries (`polybot
//! gateway`, `polybot detector`) on one embedded-backend data folder,
//! against the Telegram emulator:
//!
//! - with the limits production ships (3 waiting requests a chat), a chat
//!   that sends five photos while nothing works the queue gets three jobs
//!   and is told once to wait; the refusals are counted in `/metrics`;
//! - the queue serves chats fairly: with one inference lane, a chat's
//!   single photo sent after another chat's eight is answered second, not
//!   ninth.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use std::time::{Duration, Instant};

use polybot_testkit::process::{Proc, free_port};
use support::{
    GatewayPorts, Queue, WAIT, detector_command, open_backends, photo, start_gateway_with,
};
use tg_emulator::{Emulator, EmulatorClient, SentKind, UserMessageOptions};

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

/// An emulator, a data folder and the gateway's ports.
struct Ground {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    emulator: tg_emulator::EmulatorHandle,
    client: EmulatorClient,
    ports: GatewayPorts,
}

impl Ground {
    async fn new() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let client = emulator.client();
        let ports = GatewayPorts {
            http: free_port(),
            grpc: free_port(),
        };
        Self {
            dir,
            data,
            emulator,
            client,
            ports,
        }
    }

    async fn gateway(&self, settings: &[(&str, &str)]) -> Proc {
        let g = self;
        start_gateway_with(
            &g.emulator,
            &g.ports,
            &g.data,
            &QUEUE,
            g.dir.path(),
            settings,
        )
        .await
    }
}

async fn send_photos(client: &EmulatorClient, chat: i64, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let name = if i % 2 == 0 { "bus.jpg" } else { "zidane.jpg" };
        let sent = client
            .send_user_photo(chat, photo(name), &UserMessageOptions::default())
            .await
            .expect("send");
        client
            .wait_delivered(sent.update_id, WAIT)
            .await
            .expect("the webhook takes it");
        ids.push(sent.message_id.expect("a message id"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_past_its_waiting_requests_is_told_once_to_wait_and_gets_no_more_jobs() {
    let g = Ground::new().await;
    let (client, ports, data) = (&g.client, &g.ports, &g.data);
    // Production's limits: none set.
    let mut gateway = g.gateway(&[]).await;
    let chat = 7801;
    send_photos(client, chat, 5).await;
    let backends = open_backends(data.clone(), &QUEUE).await;
    let stats = backends.jobs.stats().await.expect("stats");
    assert_eq!(stats.visible, 3, "three waiting requests, no more");
    let messages = client.messages(chat).await.expect("messages");
    let told: Vec<_> = messages
        .iter()
        .filter(|m| {
            m.text
                .as_deref()
                .is_some_and(|t| t.contains("still working on 3 earlier requests"))
        })
        .collect();
    assert_eq!(told.len(), 1, "told once, not per photo: {messages:#?}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports.http))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("polybot_admission_refused_total{limit=\"chat_pending\"} 2"),
        "{metrics}"
    );
    gateway.terminate(WAIT).await;
    g.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_lane_a_chats_one_photo_is_answered_before_another_chats_backlog() {
    let g = Ground::new().await;
    let (client, ports, data) = (&g.client, &g.ports, &g.data);
    // The backlog is the point here, not the limits.
    let mut gateway = g
        .gateway(&[
            ("POLYBOT_CHAT_PENDING_LIMIT", "0"),
            ("POLYBOT_USER_PHOTOS_PER_MINUTE", "0"),
        ])
        .await;
    let (busy, quiet) = (7802, 7803);
    // Everything is queued before a worker starts, the busy chat's first.
    send_photos(client, busy, 8).await;
    let quiet_photo = send_photos(client, quiet, 1).await[0];

    let port = free_port();
    let mut cmd = detector_command(
        &format!("http://127.0.0.1:{}", ports.grpc),
        port,
        data,
        &QUEUE,
    );
    cmd.env("POLYBOT_LANES", "1");
    let mut detector = Proc::spawn("detector", cmd, g.dir.path());
    detector
        .wait_http_ok(&format!("http://127.0.0.1:{port}/readyz"), WAIT)
        .await;

    let started = Instant::now();
    let busy_answered_before = loop {
        let answered = client.messages(quiet).await.expect("messages");
        if answered
            .iter()
            .any(|m| m.kind == SentKind::Photo && m.reply_to_message_id == Some(quiet_photo))
        {
            let busy_messages = client.messages(busy).await.expect("messages");
            break busy_messages
                .iter()
                .filter(|m| m.kind == SentKind::Photo)
                .count();
        }
        assert!(started.elapsed() < WAIT, "the quiet chat was not answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        busy_answered_before <= 2,
        "the quiet chat waited for {busy_answered_before} of the busy chat's 8 photos"
    );
    detector.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    g.emulator.shutdown().await;
}
