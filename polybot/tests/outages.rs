//! Reports that survive outages, and deadlines, with the services as
//! separate processes (`polybot gateway`, `polybot detector`) sharing one
//! embedded-backend data folder, against the Telegram emulator.
//!
//! - Results down (the gateway stopped) while a detector finishes a job:
//!   the detector keeps the job (heartbeat) and retries the report, so the
//!   outage uses up no receive, nothing is dead-lettered, and once the
//!   gateway is back the user gets the result, not an apology.
//! - Telegram's sendPhoto failing with 500 for 20 s: the report is retried
//!   under the heartbeat, no receive is used up, and the user gets one result.
//! - A revoked token (401/404 from every method, or from sendPhoto): an
//!   outage, not a refusal: `/readyz` turns 503 and a metric counts it, an
//!   incoming photo waits past its retry budget, a finished result is not
//!   marked done, and once the token works each photo is answered once.
//! - A heartbeat that cannot keep jobs (its interval not comfortably below
//!   the queue's visibility timeout) stops the detector at start-up with a
//!   message naming the settings.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use polybot_testkit::process::{Proc, free_port};
use support::{
    GatewayPorts, Queue, WAIT, detector_command, open_backends, photo, start_gateway,
    start_gateway_with,
};
use tg_emulator::{Emulator, EmulatorClient, SentKind, UserMessageOptions};

fn count_logs(proc: &Proc, needle: &str) -> usize {
    proc.json_logs()
        .iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(needle)))
        .count()
}

async fn depth(queue: &dyn polybot_storage::JobQueue) -> (u64, u64) {
    let s = queue.stats().await.expect("stats");
    (s.visible, s.in_flight)
}

/// Waits until the chat holds a photo, then, after a pause for anything
/// extra, checks that it holds exactly one photo and besides it only the
/// "taking longer" notice. The notice depends on timing: it goes out when
/// no answer came within two seconds and the chat is not busy with the
/// answer's own (failing, retried) send, so it may or may not be there.
async fn settled_on_one_photo(client: &EmulatorClient, chat: i64) -> Vec<tg_emulator::SentMessage> {
    let deadline = Instant::now() + WAIT;
    loop {
        let messages = client.messages(chat).await.expect("messages");
        if messages.iter().any(|m| m.kind == SentKind::Photo) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no photo within {WAIT:?}: {messages:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = client.messages(chat).await.expect("messages");
    let photos = messages
        .iter()
        .filter(|m| m.kind == SentKind::Photo)
        .count();
    assert_eq!(photos, 1, "exactly one photo: {messages:#?}");
    for m in messages.iter().filter(|m| m.kind != SentKind::Photo) {
        assert!(
            m.kind == SentKind::Text
                && m.text
                    .as_deref()
                    .is_some_and(|t| t.contains("taking a little longer")),
            "besides the photo only the notice: {messages:#?}"
        );
    }
    messages
}

/// The end of an outage: the chat holds one annotated photo of the bus
/// (and perhaps the notice), both queues are empty, and the detector ran
/// the job once.
async fn assert_one_result_from_one_run(
    client: &EmulatorClient,
    chat: i64,
    backends: &polybot_storage::Backends,
    detector: &Proc,
) {
    let messages = settled_on_one_photo(client, chat).await;
    let photo = messages
        .iter()
        .find(|m| m.kind == SentKind::Photo)
        .expect("a photo");
    assert!(
        photo
            .caption
            .as_deref()
            .is_some_and(|c| c.contains("bus ×1")),
        "{messages:#?}"
    );
    assert_eq!(depth(backends.jobs.as_ref()).await, (0, 0));
    assert_eq!(depth(backends.dead_letters.as_ref()).await, (0, 0));
    let runs = detector
        .json_logs()
        .iter()
        .filter(|l| l["message"] == "job done and reported")
        .count();
    assert_eq!(runs, 1, "one run of the job:\n{}", detector.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_results_outage_while_a_job_finishes_uses_no_receive_and_the_user_gets_the_result_not_an_apology()
 {
    // Short visibility and two receives: without the heartbeat through the
    // outage, the job would be dead-lettered within seconds.
    let Ground {
        dir,
        data,
        queue,
        emulator,
        client,
        ports,
        backends,
    } = Ground::new().await;

    // The photo is accepted and queued; then Results goes away.
    let mut gateway = start_gateway(&emulator, &ports, &data, &queue, dir.path()).await;
    let chat = 7101;
    client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let notice = client
        .wait_for_messages(chat, 1, WAIT)
        .await
        .expect("the processing notice");
    assert!(
        notice[0]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("Looking for objects")),
        "{notice:#?}"
    );
    gateway.terminate(Duration::from_secs(30)).await;

    // A detector finishes the job while Results is down.
    let mut detector = start_detector(&ports, &data, &queue, dir.path()).await;
    // Long enough for the queue to have redelivered and dead-lettered the
    // job twice over had the detector let it go.
    let start = Instant::now();
    loop {
        let refused = count_logs(&detector, "Results did not acknowledge");
        let (dead_visible, dead_in_flight) = depth(backends.dead_letters.as_ref()).await;
        if refused >= 4 || dead_visible + dead_in_flight > 0 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the detector never tried to report:\n{}",
            detector.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        depth(backends.dead_letters.as_ref()).await,
        (0, 0),
        "the outage dead-lettered the job:\n{}",
        detector.logs()
    );
    assert_eq!(
        depth(backends.jobs.as_ref()).await,
        (0, 1),
        "the detector keeps the job through the outage"
    );

    // Results is back: the retried report gets the user the result.
    let mut gateway = start_gateway(&emulator, &ports, &data, &queue, dir.path()).await;
    assert_one_result_from_one_run(&client, chat, &backends, &detector).await;

    detector.terminate(Duration::from_secs(30)).await;
    gateway.terminate(Duration::from_secs(30)).await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detector_whose_heartbeat_is_not_well_within_the_queues_visibility_stops_at_start_up_naming_the_settings()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let queue = Queue {
        visibility: 10,
        max_receives: 3,
    };
    let mut cmd = detector_command("http://127.0.0.1:9", free_port(), &data, &queue);
    // A beat every 20 s against a 10 s visibility: every job would be
    // delivered again before its first heartbeat.
    cmd.env("POLYBOT_VISIBILITY", "60");
    let mut detector = Proc::spawn("detector", cmd, dir.path());
    let status = detector.exit_status(WAIT).await;
    assert!(!status.success(), "it must not start:\n{}", detector.logs());
    let logs = detector.logs();
    assert!(
        logs.contains("POLYBOT_VISIBILITY=60s") && logs.contains("visibility timeout of 10s"),
        "{logs}"
    );

    // Left unset, the heartbeat follows the queue's own visibility.
    let det = free_port();
    let mut detector = Proc::spawn(
        "detector",
        detector_command("http://127.0.0.1:9", det, &data, &queue),
        dir.path(),
    );
    detector
        .wait_http_ok(&format!("http://127.0.0.1:{det}/readyz"), WAIT)
        .await;
    let started = detector
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "detector worker started")
        .unwrap_or_else(|| panic!("no start line:\n{}", detector.logs()));
    assert_eq!(started["visibility"], "10s", "{started}");
    detector.terminate(Duration::from_secs(30)).await;
}

/// A detector process reporting to the gateway at `ports`, once ready.
async fn start_detector(ports: &GatewayPorts, data: &Path, queue: &Queue, dir: &Path) -> Proc {
    let det = free_port();
    let mut detector = Proc::spawn(
        "detector",
        detector_command(
            &format!("http://127.0.0.1:{}", ports.grpc),
            det,
            data,
            queue,
        ),
        dir,
    );
    detector
        .wait_http_ok(&format!("http://127.0.0.1:{det}/readyz"), WAIT)
        .await;
    detector
}

/// What each test stands on: a data folder, an embedded-backend queue with
/// a short visibility (3 s) and two receives, the emulator, free ports.
struct Ground {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    queue: Queue,
    emulator: tg_emulator::EmulatorHandle,
    client: EmulatorClient,
    ports: GatewayPorts,
    backends: polybot_storage::Backends,
}

impl Ground {
    async fn new() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let queue = Queue {
            visibility: 3,
            max_receives: 2,
        };
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let client = emulator.client();
        let ports = GatewayPorts {
            http: free_port(),
            grpc: free_port(),
        };
        let backends = open_backends(data.clone(), &queue).await;
        Self {
            dir,
            data,
            queue,
            emulator,
            client,
            ports,
            backends,
        }
    }
}

/// A gateway and a detector as separate processes on one data folder,
/// against the emulator, both ready. Short visibility and two receives:
/// were failed sends to use up receives, a job would be dead-lettered (and
/// apologised for) well within an outage.
struct Services {
    _dir: tempfile::TempDir,
    emulator: tg_emulator::EmulatorHandle,
    client: EmulatorClient,
    ports: GatewayPorts,
    backends: polybot_storage::Backends,
    gateway: Proc,
    detector: Proc,
}

impl Services {
    async fn start() -> Self {
        let Ground {
            dir,
            data,
            queue,
            emulator,
            client,
            ports,
            backends,
        } = Ground::new().await;
        let gateway = start_gateway(&emulator, &ports, &data, &queue, dir.path()).await;
        let detector = start_detector(&ports, &data, &queue, dir.path()).await;
        Self {
            _dir: dir,
            emulator,
            client,
            ports,
            backends,
            gateway,
            detector,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_photo_failing_with_500_for_a_while_costs_no_receive_and_the_user_gets_one_result() {
    let Services {
        _dir,
        emulator,
        client,
        ports: _,
        backends,
        mut gateway,
        mut detector,
    } = Services::start().await;

    // Telegram's sendPhoto answers 500 to everything for 20 s.
    client
        .fail_next("sendPhoto", 10_000, 500)
        .await
        .expect("script the outage");
    let chat = 7102;
    client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        depth(backends.dead_letters.as_ref()).await,
        (0, 0),
        "the outage dead-lettered the job:\ngateway:\n{}\ndetector:\n{}",
        gateway.logs(),
        detector.logs()
    );
    let during = client.messages(chat).await.expect("messages");
    assert!(
        during.iter().all(|m| m.kind == SentKind::Text
            && !m.text.as_deref().unwrap_or_default().contains("Sorry")),
        "only the notice while sendPhoto fails: {during:#?}"
    );
    client.clear_faults().await.expect("end the outage");

    // sendPhoto works again: exactly one annotated photo, no apology.
    assert_one_result_from_one_run(&client, chat, &backends, &detector).await;

    detector.terminate(Duration::from_secs(30)).await;
    gateway.terminate(Duration::from_secs(30)).await;
    emulator.shutdown().await;
}

/// The gateway's `/readyz` status and `/metrics` text.
async fn readyz_and_metrics(http_port: u16) -> (u16, String) {
    let base = format!("http://127.0.0.1:{http_port}");
    let readyz = reqwest::get(format!("{base}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    let metrics = match reqwest::get(format!("{base}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    (readyz, metrics)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_an_outage_nothing_is_dropped_and_each_photo_is_answered_once_after_it()
{
    let Services {
        _dir,
        emulator,
        client,
        ports,
        backends,
        mut gateway,
        mut detector,
    } = Services::start().await;

    // 1. Every Bot API method answers 401 Unauthorized (the token was
    // revoked) while a photo comes in: its download fails for longer than
    // the update's retry budget (8 deliveries), and it must not be given up.
    client
        .fault(&tg_emulator::ApiFault {
            method: None,
            count: 100_000,
            error_code: Some(401),
            description: Some("Unauthorized".into()),
            retry_after: None,
            delay_ms: None,
        })
        .await
        .expect("script the outage");
    let first = 7121;
    client
        .send_user_photo(first, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let (readyz, metrics) = readyz_and_metrics(ports.http).await;
        if readyz == 503 {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stays {readyz} while Telegram refuses the token:\n{}",
            gateway.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metrics.contains("polybot_telegram_token_refused_total"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let deliveries = client.deliveries().await.expect("deliveries");
    assert!(
        deliveries.len() > 8,
        "the update was delivered past its budget: {}",
        deliveries.len()
    );
    assert!(
        client.messages(first).await.expect("messages").is_empty(),
        "nothing can be sent while the token is refused"
    );
    client.clear_faults().await.expect("the token works again");
    assert_one_result_from_one_run(&client, first, &backends, &detector).await;
    let (readyz, _) = readyz_and_metrics(ports.http).await;
    assert_eq!(readyz, 200, "ready again once the token is accepted");

    // 2. A finished result whose send is refused for the token: the report
    // is retried under the heartbeat, nothing is marked done, one answer.
    client
        .fault(&tg_emulator::ApiFault {
            method: Some("sendPhoto".into()),
            count: 100_000,
            error_code: Some(404),
            description: Some("Not Found".into()),
            retry_after: None,
            delay_ms: None,
        })
        .await
        .expect("script the outage");
    let second = 7122;
    client
        .send_user_photo(second, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(depth(backends.dead_letters.as_ref()).await, (0, 0));
    client.clear_faults().await.expect("the token works again");
    let messages = settled_on_one_photo(&client, second).await;
    assert!(
        messages
            .iter()
            .all(|m| !m.text.as_deref().unwrap_or_default().contains("Sorry")),
        "{messages:#?}"
    );
    assert_eq!(count_logs(&gateway, "Telegram refused the reply"), 0);

    detector.terminate(Duration::from_secs(30)).await;
    gateway.terminate(Duration::from_secs(30)).await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_during_an_albums_quiet_window_leaves_it_to_the_next_which_answers_it_once()
 {
    let Ground {
        dir,
        data,
        queue,
        emulator,
        client,
        ports,
        backends: _,
    } = Ground::new().await;
    // A quiet window long enough to kill the gateway inside it.
    let quiet = [("POLYBOT_ALBUM_QUIET_MS", "4000")];
    let mut gateway =
        start_gateway_with(&emulator, &ports, &data, &queue, dir.path(), &quiet).await;
    let mut detector = start_detector(&ports, &data, &queue, dir.path()).await;

    let chat = 7701;
    let mut ids = Vec::new();
    for bytes in [photo("bus.jpg"), photo("zidane.jpg")] {
        let options = UserMessageOptions {
            media_group_id: Some("crash-album".into()),
            ..Default::default()
        };
        let sent = client
            .send_user_photo(chat, bytes, &options)
            .await
            .expect("the user sends an album");
        ids.push(sent.message_id);
    }
    // Both items joined (the webhook answered), the album is not quiet yet:
    // its close lives in this gateway's memory, and the gateway dies.
    let joined = Instant::now();
    loop {
        let (_, metrics) = readyz_and_metrics(ports.http).await;
        if metrics.contains("polybot_webhook_requests_total{status=\"200\"} 2") {
            break;
        }
        assert!(
            joined.elapsed() < WAIT,
            "the webhook did not take the album: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.kill().await;
    assert!(
        joined.elapsed() < Duration::from_millis(3500),
        "killed inside the quiet window"
    );

    let mut gateway =
        start_gateway_with(&emulator, &ports, &data, &queue, dir.path(), &quiet).await;
    let start = Instant::now();
    let album = loop {
        let groups = client.media_groups(chat).await.expect("groups");
        if let Some(group) = groups.into_iter().next() {
            break group;
        }
        assert!(
            start.elapsed() < WAIT,
            "the album was lost with the gateway\n--- gateway:\n{}",
            gateway.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(album.len(), 2, "one picture per photo: {album:#?}");
    assert_eq!(album[0].reply_to_message_id, ids[0], "it quotes the album");
    // And only once.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let groups = client.media_groups(chat).await.expect("groups");
    assert_eq!(groups.len(), 1, "one answer: {groups:#?}");
    detector.terminate(WAIT).await;
    gateway.terminate(WAIT).await;
    emulator.shutdown().await;
}

/// A text answer is sent after the webhook returned; the gateway is
/// SIGKILLed after Telegram got its 200 and before the answer went out.
/// The update was kept in the table, so the next gateway answers it, once,
/// after the grace the dead one had (60 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_text_answer_whose_gateway_died_after_the_webhook_returned_is_sent_once_by_the_next() {
    let g = Ground::new().await;
    let start = || start_gateway(&g.emulator, &g.ports, &g.data, &g.queue, g.dir.path());
    let client = &g.client;
    let mut gateway = start().await;
    // The answer's send hangs long enough to kill the gateway inside it.
    client
        .delay_next("sendMessage", 1, Duration::from_millis(20_000))
        .await
        .expect("fault");
    let chat = 7702;
    let sent = client.send_user_text(chat, "/help").await.expect("send");
    client
        .wait_delivered(sent.update_id, WAIT)
        .await
        .expect("the webhook answers 200 without waiting for the answer");
    assert!(
        client.messages(chat).await.expect("messages").is_empty(),
        "the answer is still on its way"
    );
    gateway.kill().await;
    let gateway_started = Instant::now();
    let mut gateway = start().await;
    let answered = loop {
        let messages = client.messages(chat).await.expect("messages");
        if !messages.is_empty() {
            break messages;
        }
        assert!(
            gateway_started.elapsed() < Duration::from_secs(120),
            "the text answer was lost with the gateway\n--- gateway:\n{}",
            gateway.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        answered[0]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("/detect")),
        "the help: {answered:#?}"
    );
    assert_eq!(answered[0].reply_to_message_id, sent.message_id);
    // Once: another sweep finds it answered.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(client.messages(chat).await.expect("messages").len(), 1);
    gateway.terminate(WAIT).await;
    g.emulator.shutdown().await;
}
