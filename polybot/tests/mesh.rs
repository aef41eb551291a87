//! Black-box tests of the whole mesh on the embedded backend: a Telegram
//! Bot API emulator over real HTTP delivers updates to the gateway's
//! webhook, the detector runs the real model, Results is real gRPC.
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos, grpcurl).

use std::path::Path;
use std::time::Duration;

use polybot::Mesh;
use polybot::stack::{StackOptions, start_mesh};
use polybot_domain::ChatId;
use polybot_testkit::{caption, jpeg, sample_photo as photo, text};
use secrecy::ExposeSecret;
use serde_json::json;
use tg_emulator::{
    Emulator, EmulatorClient, EmulatorHandle, SentKind, SentMessage, UserMessageOptions,
};

const WAIT: Duration = Duration::from_secs(90);

struct Stack {
    emulator: EmulatorHandle,
    client: EmulatorClient,
    mesh: Option<Mesh>,
    opts: StackOptions,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut StackOptions)) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = StackOptions::local(dir.path());
        opts.poll_wait = Duration::from_millis(500);
        opts.reporter_interval = None;
        opts.lanes = 1;
        // The notice at once, as a slow answer gets it: most tests here
        // check it is there, and then removed.
        opts.notice_after = Duration::ZERO;
        tweak(&mut opts);
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
            .await
            .expect("mesh starts");
        let client = emulator.client();
        Self {
            emulator,
            client,
            mesh: Some(mesh),
            opts,
            _dir: dir,
        }
    }

    fn mesh(&self) -> &Mesh {
        self.mesh.as_ref().expect("running")
    }

    async fn restart(&mut self, tweak: impl FnOnce(&mut StackOptions)) {
        if let Some(m) = self.mesh.take() {
            m.shutdown().await;
        }
        tweak(&mut self.opts);
        let mesh = start_mesh(&self.emulator.base_url(), self.emulator.token(), &self.opts)
            .await
            .expect("mesh restarts");
        self.mesh = Some(mesh);
    }

    async fn wait(&self, chat: i64, n: usize) -> Vec<SentMessage> {
        self.client
            .wait_for_messages(chat, n, WAIT)
            .await
            .expect("bot replies in time")
    }

    /// Asserts the chat still has exactly `n` messages after a quiet period.
    async fn assert_stays_at(&self, chat: i64, n: usize) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let messages = self.client.messages(chat).await.expect("messages");
        assert_eq!(messages.len(), n, "unexpected extra replies: {messages:#?}");
    }

    async fn stop(mut self) {
        if let Some(m) = self.mesh.take() {
            m.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_photo_gets_the_processing_reply_the_counts_and_the_annotated_photo() {
    let s = Stack::start().await;
    let sent = s
        .client
        .send_user_photo(7001, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(7001, 2).await;
    assert_eq!(m[0].kind, SentKind::Text);
    assert!(text(&m[0]).contains("Looking for objects"), "{m:#?}");
    assert_eq!(m[1].kind, SentKind::Photo);
    assert!(
        caption(&m[1]).contains("person ×4") && caption(&m[1]).contains("bus ×1"),
        "{m:#?}"
    );
    assert_eq!(
        m[1].reply_to_message_id, sent.message_id,
        "the reply quotes the user's photo"
    );
    let file = m[1].file.as_ref().expect("photo file");
    let bytes = s
        .client
        .file_bytes(&file.file_id)
        .await
        .expect("photo bytes");
    let img = image::load_from_memory(&bytes).expect("a decodable annotated photo");
    assert_eq!((img.width(), img.height()), (810, 1080));
    s.assert_stays_at(7001, 2).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_sent_as_a_document_is_analysed_too() {
    let s = Stack::start().await;
    let opts = UserMessageOptions {
        file_name: Some("zidane.jpg".into()),
        mime_type: Some("image/jpeg".into()),
        ..Default::default()
    };
    s.client
        .send_user_document(7002, photo("zidane.jpg"), &opts)
        .await
        .expect("send");
    let m = s.wait(7002, 2).await;
    assert_eq!(m[1].kind, SentKind::Photo);
    assert_eq!(caption(&m[1]), "person ×2, tie ×1");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_other_messages_get_the_help_reply() {
    let s = Stack::start().await;
    s.client.send_user_text(7003, "hello?").await.expect("send");
    let m = s.wait(7003, 1).await;
    assert!(text(&m[0]).contains("Send me a photo"), "{m:#?}");
    let opts = UserMessageOptions {
        file_name: Some("report.pdf".into()),
        mime_type: Some("application/pdf".into()),
        ..Default::default()
    };
    s.client
        .send_user_document(7003, b"%PDF-1.4 not a picture".to_vec(), &opts)
        .await
        .expect("send");
    let m = s.wait(7003, 2).await;
    assert!(text(&m[1]).contains("Send me a photo"), "{m:#?}");
    s.stop().await;
}

/// A 660×660 crop of the bus photo, so the largest size has something to find.
fn bus_crop_660() -> Vec<u8> {
    let bus = image::load_from_memory(&photo("bus.jpg"))
        .expect("decode")
        .to_rgb8();
    jpeg(image::imageops::crop_imm(&bus, 75, 230, 660, 660).to_image())
}

fn grey_jpeg(side: u32) -> Vec<u8> {
    jpeg(image::RgbImage::from_pixel(
        side,
        side,
        image::Rgb([128, 128, 128]),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_of_three_photo_sizes_is_used_and_answered_in_that_chat() {
    let s = Stack::start().await;
    let chat = 1243002838_i64;
    let mut sizes = Vec::new();
    for (side, bytes) in [
        (90, grey_jpeg(90)),
        (320, grey_jpeg(320)),
        (660, bus_crop_660()),
    ] {
        let f = s
            .client
            .register_file(bytes, Some("photo.jpg"))
            .await
            .expect("register");
        sizes.push(
            json!({"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                          "width": side, "height": side, "file_size": f.file_size}),
        );
    }
    let update = json!({
        "update_id": 424242,
        "message": {
            "message_id": 31, "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private", "first_name": "Course"},
            "from": {"id": chat, "is_bot": false, "first_name": "Course"},
            "photo": sizes,
        }
    });
    s.client.queue_update(&update).await.expect("queue");
    let m = s.wait(chat, 2).await;
    assert!(
        caption(&m[1]).contains("bus"),
        "the 660×660 photo was analysed: {m:#?}"
    );
    // The stored original is the 660×660 one.
    let records = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(chat), 1)
        .await
        .expect("list");
    let record = records.first().expect("a prediction");
    let original = s
        .mesh()
        .backends
        .objects
        .get(&record.original_key)
        .await
        .expect("original");
    let img = image::load_from_memory(&original).expect("decode original");
    assert_eq!((img.width(), img.height()), (660, 660));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_photo_gets_a_try_again_reply_and_the_service_stays_up() {
    // No notice: a fast failure would race it (and edit it into the answer).
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let bus = photo("bus.jpg");
    s.client
        .send_user_photo(
            7004,
            bus[..bus.len() / 2].to_vec(),
            &UserMessageOptions::default(),
        )
        .await
        .expect("send");
    let m = s.wait(7004, 1).await;
    assert!(text(&m[0]).contains("try again"), "{m:#?}");
    s.client
        .send_user_photo(
            7004,
            b"\xff\xd8\xff garbage".to_vec(),
            &UserMessageOptions::default(),
        )
        .await
        .expect("send");
    let m = s.wait(7004, 2).await;
    assert!(text(&m[1]).contains("try again"), "{m:#?}");
    // Still serving real photos.
    s.client
        .send_user_photo(7004, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(7004, 3).await;
    assert_eq!(caption(&m[2]), "person ×2, tie ×1");
    s.assert_stays_at(7004, 3).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_webhook_secret_gets_401_and_the_right_one_200() {
    let s = Stack::start().await;
    let url = format!("http://{}/telegram/webhook", s.mesh().gateway.http_addr());
    let body = json!({"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 7005, "type": "private"}, "text": "hi"}});
    let http = reqwest::Client::new();
    let wrong = http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "nope")
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);
    let missing = http.post(&url).json(&body).send().await.expect("post");
    assert_eq!(missing.status(), 401);
    let right = http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", &s.opts.webhook_secret)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(right.status(), 200);
    let garbage = http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", &s.opts.webhook_secret)
        .body("not json")
        .send()
        .await
        .expect("post");
    assert_eq!(garbage.status(), 400);
    assert!(
        s.client
            .messages(7005)
            .await
            .expect("messages")
            .iter()
            .all(|m| text(m).contains("Send me a photo"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_update_delivered_three_times_gets_one_answer() {
    let s = Stack::start().await;
    let sent = s
        .client
        .send_user_photo(7006, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    s.wait(7006, 2).await;
    s.client.redeliver(sent.update_id).await.expect("redeliver");
    s.client.redeliver(sent.update_id).await.expect("redeliver");
    let deliveries = s
        .client
        .wait_for_deliveries(WAIT, |d| {
            d.iter()
                .filter(|a| a.update_id == sent.update_id && a.delivered)
                .count()
                >= 3
        })
        .await
        .expect("three deliveries");
    assert!(
        deliveries
            .iter()
            .filter(|a| a.update_id == sent.update_id)
            .all(|a| a.status == Some(200) || !a.delivered)
    );
    s.assert_stays_at(7006, 2).await;
    let records = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(7006), 10)
        .await
        .expect("list");
    assert_eq!(records.len(), 1, "one job for three deliveries");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_from_the_bot_api_is_retried_after_retry_after_and_the_reply_arrives() {
    let s = Stack::start().await;
    s.client
        .rate_limit(Some("sendPhoto"), 1, 1)
        .await
        .expect("rate limit");
    s.client
        .send_user_photo(7007, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(7007, 2).await;
    assert_eq!(caption(&m[1]), "person ×2, tie ×1");
    let stats = s.client.requests().await.expect("requests");
    assert_eq!(
        stats.rate_limited_count("sendPhoto"),
        1,
        "the first sendPhoto got a 429"
    );
    assert!(stats.count("sendPhoto") >= 2, "and was retried");
    // Operators see it: the 429 is counted by method.
    let metrics = polybot_telemetry::metrics_text();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("polybot_telegram_rate_limited_total{method=\"sendPhoto\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    s.assert_stays_at(7007, 2).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_update_types_are_accepted_and_ignored() {
    let s = Stack::start().await;
    let q = s
        .client
        .queue_update(
            &json!({"update_id": 777001, "brand_new_update_kind": {"chat": {"id": 7008}}}),
        )
        .await
        .expect("queue");
    let d = s
        .client
        .wait_for_deliveries(WAIT, |d| {
            d.iter().any(|a| a.update_id == q.update_id && a.delivered)
        })
        .await
        .expect("delivered");
    assert!(
        d.iter()
            .any(|a| a.update_id == q.update_id && a.status == Some(200))
    );
    s.assert_stays_at(7008, 0).await;
    s.stop().await;
}

fn grpcurl() -> std::path::PathBuf {
    let bin = std::env::var_os("POLYBOT_TOOLS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin"));
    let path = bin.join("grpcurl");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask setup`",
        path.display()
    );
    path
}

/// The operator token the mesh was started with.
fn operator_token(s: &Stack) -> String {
    s.opts
        .results_credentials
        .operator
        .as_ref()
        .expect("an operator token")
        .expose_secret()
        .to_owned()
}

/// Calls `method` of the mesh's gRPC port with the operator's token, as
/// docs/grpc.md shows, and returns what grpcurl printed.
async fn grpcurl_as_operator(s: &Stack, method: &str, request: &str) -> serde_json::Value {
    let operator = operator_token(s);
    // The request on stdin (`-d @`): a photo's base64 is longer than one
    // command-line argument may be.
    let out = piped(
        tokio::process::Command::new(grpcurl()).args([
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {operator}"),
            "-d",
            "@",
            &s.mesh().gateway.grpc_addr().to_string(),
            method,
        ]),
        request,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("grpcurl prints JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_results_through_reflection_and_reads_a_stored_prediction() {
    let s = Stack::start().await;
    let addr = s.mesh().gateway.grpc_addr().to_string();
    let list = tokio::process::Command::new(grpcurl())
        .args(["-plaintext", &addr, "list"])
        .output()
        .await
        .expect("grpcurl");
    let services = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(services.contains("polybot.v1.Results"), "{services}");
    assert!(services.contains("grpc.health.v1.Health"), "{services}");

    s.client
        .send_user_photo(7009, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    s.wait(7009, 2).await;
    let records = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(7009), 1)
        .await
        .expect("list");
    let id = records
        .first()
        .expect("a prediction")
        .prediction_id
        .to_string();
    // Without the operator token the read RPCs are refused…
    let refused = tokio::process::Command::new(grpcurl())
        .args([
            "-plaintext",
            "-d",
            &format!(r#"{{"prediction_id":"{id}"}}"#),
            &addr,
            "polybot.v1.Results/GetPrediction",
        ])
        .output()
        .await
        .expect("grpcurl");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // …and answered with it, as docs/grpc.md shows.
    let v = grpcurl_as_operator(
        &s,
        "polybot.v1.Results/GetPrediction",
        &format!(r#"{{"prediction_id":"{id}"}}"#),
    )
    .await;
    let body = v.to_string();
    assert_eq!(v["predictionId"], id);
    assert_eq!(v["status"], "PREDICTION_STATUS_SUCCEEDED");
    let classes: Vec<&str> = v["summary"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["class"].as_str())
        .collect();
    assert_eq!(
        classes.iter().filter(|c| **c == "person").count(),
        2,
        "{body}"
    );
    assert!(classes.contains(&"tie"), "{body}");

    let health = tokio::process::Command::new(grpcurl())
        .args([
            "-plaintext",
            "-d",
            r#"{"service":"polybot.v1.Results"}"#,
            &addr,
            "grpc.health.v1.Health/Check",
        ])
        .output()
        .await
        .expect("grpcurl");
    assert!(String::from_utf8_lossy(&health.stdout).contains("SERVING"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_shows_the_chats_settings_a_detection_was_made_with() {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let chat = 7011;
    s.client
        .send_user_text(chat, "/only person")
        .await
        .expect("send");
    s.wait(chat, 1).await;
    s.client
        .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(chat, 2).await;
    assert_eq!(m[1].kind, SentKind::Photo, "{m:#?}");
    let records = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(chat), 1)
        .await
        .expect("list");
    let id = records.first().expect("a prediction").prediction_id;
    let v = grpcurl_as_operator(
        &s,
        "polybot.v1.Results/GetPrediction",
        &format!(r#"{{"prediction_id":"{id}"}}"#),
    )
    .await;
    let body = v.to_string();
    let settings = &v["summary"]["settings"];
    assert_eq!(settings["classes"], serde_json::json!(["person"]), "{body}");
    assert_eq!(settings["output"], "OUTPUT_MODE_PHOTO", "{body}");
    assert_eq!(settings["labels"], "LABEL_STYLE_SCORE", "{body}");
    let labels = v["summary"]["labels"].as_array().expect("labels");
    assert!(!labels.is_empty(), "{body}");
    assert!(
        labels.iter().all(|l| l["class"] == "person"),
        "only people, no tie: {body}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_queued_before_a_restart_is_finished_after_it() {
    // First run: no detector, so the job stays queued on disk.
    let mut s = Stack::start_with(|o| o.detector = false).await;
    s.client
        .send_user_photo(7010, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(7010, 1).await;
    assert!(text(&m[0]).contains("Looking for objects"));
    let stats = s.mesh().backends.jobs.stats().await.expect("stats");
    assert_eq!(stats.visible, 1, "the job waits in the queue");
    // Restart the whole process's mesh on the same data folder, now with a detector.
    s.restart(|o| o.detector = true).await;
    let m = s.wait(7010, 2).await;
    assert_eq!(caption(&m[1]), "person ×2, tie ×1");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_past_its_limit_ends_as_a_failure_the_user_is_told_about_once() {
    // A limit no detection can meet: every job runs past it.
    let s = Stack::start_with(|o| {
        o.job_timeout = Duration::from_millis(1);
        o.notice_after = Duration::from_secs(600);
    })
    .await;
    let chat = 7020;
    s.client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(chat, 1).await;
    assert!(
        text(&m[0]).starts_with("Sorry, something went wrong on my side"),
        "{m:#?}"
    );
    s.assert_stays_at(chat, 1).await;
    // The job is over: not left invisible by the heartbeat, not retried.
    let backends = &s.mesh().backends;
    let jobs = backends.jobs.stats().await.expect("stats");
    assert_eq!((jobs.visible, jobs.in_flight), (0, 0), "{jobs:?}");
    let dead = backends.dead_letters.stats().await.expect("stats");
    assert_eq!((dead.visible, dead.in_flight), (0, 0), "{dead:?}");
    let records = backends
        .table
        .list_by_chat(polybot_domain::ChatId(chat), 10)
        .await
        .expect("records");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, polybot_domain::PredictionStatus::Failed);
    assert_eq!(
        records[0].failure,
        Some(polybot_domain::FailureKind::GaveUp)
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Etiquette: progress, groups, commands.

/// The emulator's bot, as `getMe` names it.
const BOT: &str = "polybot_test_bot";

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_answer_comes_alone_after_the_sending_photo_status() {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let chat = 7101;
    let sent = s
        .client
        .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(chat, 1).await;
    assert_eq!(m[0].kind, SentKind::Photo, "{m:#?}");
    assert_eq!(caption(&m[0]), "person ×2, tie ×1");
    assert_eq!(m[0].reply_to_message_id, sent.message_id);
    let actions = s.client.chat_actions(chat).await.expect("actions");
    assert!(
        actions.iter().any(|a| a.action == "upload_photo"),
        "the chat showed the bot at work: {actions:?}"
    );
    s.assert_stays_at(chat, 1).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_is_removed_when_the_answer_arrives_even_from_a_restarted_gateway() {
    let mut s = Stack::start_with(|o| {
        o.detector = false;
        o.notice_after = Duration::from_millis(200);
    })
    .await;
    let chat = 7102;
    s.client
        .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(chat, 1).await;
    assert!(text(&m[0]).contains("Looking for objects"), "{m:#?}");
    assert!(!m[0].deleted);
    // The gateway that sent the notice is gone; the new one answers.
    s.restart(|o| o.detector = true).await;
    let m = s.wait(chat, 2).await;
    assert_eq!(caption(&m[1]), "person ×2, tie ×1");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = s.client.messages(chat).await.expect("messages");
        if m[0].deleted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notice stayed: {m:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.assert_stays_at(chat, 2).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_turns_its_notice_into_the_error_message() {
    let mut s = Stack::start_with(|o| o.detector = false).await;
    let chat = 7103;
    s.client
        .send_user_photo(chat, photo("bus.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    let m = s.wait(chat, 1).await;
    assert!(text(&m[0]).contains("Looking for objects"), "{m:#?}");
    // A limit no detection can meet: the job fails once a detector runs.
    s.restart(|o| {
        o.detector = true;
        o.job_timeout = Duration::from_millis(1);
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let m = loop {
        let m = s.client.messages(chat).await.expect("messages");
        if text(&m[0]).starts_with("Sorry") {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failure: {m:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(m.len(), 1, "one message, edited: {m:#?}");
    assert!(
        m[0].previous_versions
            .iter()
            .any(|v| v.contains("Looking for objects")),
        "{m:#?}"
    );
    s.assert_stays_at(chat, 1).await;
    s.stop().await;
}

/// Sends a text from a user, optionally as a reply.
async fn user_text(s: &Stack, chat: i64, text: &str, reply_to: Option<i64>) -> Option<i64> {
    let opts = UserMessageOptions {
        reply_to_message_id: reply_to,
        ..Default::default()
    };
    s.client
        .send_user_text_with(chat, text, &opts)
        .await
        .expect("send")
        .message_id
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_group_only_photos_addressed_to_the_bot_are_answered() {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let group = -5001;
    // Privacy mode off: the bot itself must tell what is meant for it.
    s.client
        .set_group_privacy(group, false)
        .await
        .expect("privacy off");
    // Chatter: a text, a photo, someone else's command. No answer at all.
    user_text(&s, group, "nice weather today", None).await;
    let plain = s
        .client
        .send_user_photo(group, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send")
        .message_id;
    user_text(&s, group, "/weather@other_bot", None).await;
    // Addressed: a captioned command, and a command replying to a photo.
    let captioned = s
        .client
        .send_user_photo(
            group,
            photo("bus.jpg"),
            &UserMessageOptions {
                caption: Some(format!("/detect@{BOT}")),
                ..Default::default()
            },
        )
        .await
        .expect("send")
        .message_id;
    let m = s.wait(group, 1).await;
    assert_eq!(m[0].reply_to_message_id, captioned, "{m:#?}");
    assert!(caption(&m[0]).contains("bus ×1"), "{m:#?}");
    let reply = user_text(&s, group, &format!("/detect@{BOT}"), plain).await;
    let m = s.wait(group, 2).await;
    assert_eq!(m[1].kind, SentKind::Photo, "{m:#?}");
    assert_eq!(m[1].reply_to_message_id, reply, "it quotes the request");
    assert_eq!(caption(&m[1]), "person ×2, tie ×1", "the replied-to photo");
    s.assert_stays_at(group, 2).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn start_greets_and_help_lists_the_actions_with_examples() {
    let s = Stack::start().await;
    let chat = 7104;
    user_text(&s, chat, "/start", None).await;
    let m = s.wait(chat, 1).await;
    assert!(text(&m[0]).starts_with("Hi!"), "{m:#?}");
    user_text(&s, chat, "/help", None).await;
    let m = s.wait(chat, 2).await;
    assert_ne!(text(&m[0]), text(&m[1]), "/start and /help differ");
    assert!(text(&m[1]).contains(&format!("/detect@{BOT}")), "{m:#?}");
    // In a group, /help is answered; a bare /detect without a photo gets a hint.
    let group = -5002;
    // Privacy mode off: a bare /detect reaches the bot whoever posted last.
    s.client
        .set_group_privacy(group, false)
        .await
        .expect("privacy off");
    // One at a time: text answers go out after the webhook returns, so two
    // updates in flight together may be answered in either order.
    user_text(&s, group, &format!("/help@{BOT}"), None).await;
    let m = s.wait(group, 1).await;
    assert!(text(&m[0]).contains("Send me a photo"), "{m:#?}");
    user_text(&s, group, "/detect", None).await;
    let m = s.wait(group, 2).await;
    assert!(text(&m[1]).contains("reply"), "{m:#?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_menu_is_set_for_private_chats_and_for_groups() {
    let s = Stack::start().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let lists = loop {
        let lists = s.client.commands().await.expect("commands");
        if lists.len() >= 2 {
            break lists;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no menus: {lists:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names = |scope: tg_emulator::BotCommandScope| -> Vec<String> {
        lists
            .iter()
            .find(|l| l.scope == scope && l.language_code.is_empty())
            .map(|l| l.commands.iter().map(|c| c.command.clone()).collect())
            .unwrap_or_default()
    };
    let settings = [
        "settings",
        "confidence",
        "only",
        "output",
        "labels",
        "language",
    ];
    let yours = ["history", "forget", "privacy"];
    assert_eq!(
        names(tg_emulator::BotCommandScope::AllPrivateChats),
        [["start", "help", "detect"].as_slice(), &settings, &yours].concat()
    );
    assert_eq!(
        names(tg_emulator::BotCommandScope::AllGroupChats),
        [["detect", "help"].as_slice(), &settings, &yours].concat()
    );
    s.stop().await;
}

/// The bus photo scaled to a camera's 6000×8000: past `sendPhoto`'s limits.
fn bus_at_48_megapixels() -> Vec<u8> {
    let bus = image::load_from_memory(&photo("bus.jpg")).expect("decode");
    let big = bus.resize_exact(6000, 8000, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    big.to_rgb8()
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_camera_sized_file_gets_one_photo_within_telegrams_limits_and_its_full_resolution_on_request()
 {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let chat = 7105;
    let sent = s
        .client
        .send_user_document(
            chat,
            bus_at_48_megapixels(),
            &UserMessageOptions {
                file_name: Some("IMG_0001.JPG".into()),
                mime_type: Some("image/jpeg".into()),
                ..Default::default()
            },
        )
        .await
        .expect("send");
    let m = s.wait(chat, 1).await;
    assert_eq!(m[0].kind, SentKind::Photo, "{m:#?}");
    assert!(caption(&m[0]).contains("bus ×1"), "{m:#?}");
    // The full-resolution copy waits behind the answer's Original button.
    let original = m[0]
        .callback_data("Original")
        .expect("an Original button")
        .to_owned();
    let pressed = s
        .client
        .press(chat, m[0].message_id, None, &original)
        .await
        .expect("press");
    s.client
        .wait_callback_answer(&pressed.callback_query_id, WAIT)
        .await
        .expect("the press is answered");
    let m = s.wait(chat, 2).await;
    assert_eq!(m[0].reply_to_message_id, sent.message_id);
    let photo_file = m[0].file.as_ref().expect("photo");
    let (w, h) = (
        photo_file.width.expect("width"),
        photo_file.height.expect("height"),
    );
    assert!(w + h <= 10_000 && w.max(h) <= 20 * w.min(h), "{w}×{h}");
    assert!(photo_file.file_size <= 10 * 1024 * 1024);
    assert_eq!(m[1].kind, SentKind::Document, "{m:#?}");
    assert_eq!(
        m[1].reply_to_message_id,
        Some(m[0].message_id),
        "it quotes the answer"
    );
    let full = s
        .client
        .file_bytes(&m[1].file.as_ref().expect("document").file_id)
        .await
        .expect("bytes");
    let dims = image::ImageReader::new(std::io::Cursor::new(&full))
        .with_guessed_format()
        .expect("format")
        .into_dimensions()
        .expect("dimensions");
    assert_eq!(dims, (6000, 8000), "the full resolution comes back");
    s.assert_stays_at(chat, 2).await;
    // Detected once: one prediction, one job, nothing left queued.
    let backends = &s.mesh().backends;
    let records = backends
        .table
        .list_by_chat(ChatId(chat), 10)
        .await
        .expect("records");
    assert_eq!(records.len(), 1, "{records:?}");
    let stats = s.client.requests().await.expect("requests");
    assert_eq!(stats.count("sendPhoto"), 1);
    s.stop().await;
}

/// A 640×480 colour gradient: not square (so a turn shows), not flat (so
/// contour and segment have edges), within every Telegram photo limit.
fn gradient_jpeg() -> Vec<u8> {
    jpeg(image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x * 255 / 639) as u8, (y * 255 / 479) as u8, 96])
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_caption_gets_exactly_one_reply_of_the_right_size_that_quotes_the_request() {
    // No notice: the one reply is the answer.
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    // (caption, chat, kind of reply, width × height of the picture)
    let cases = [
        ("Rotate", 7301, SentKind::Photo, Some((480, 640))),
        ("rotate 180", 7302, SentKind::Photo, Some((640, 480))),
        ("blur 16", 7303, SentKind::Photo, Some((625, 465))),
        ("contour", 7304, SentKind::Photo, Some((639, 480))),
        (
            "salt and pepper 0.1",
            7305,
            SentKind::Photo,
            Some((640, 480)),
        ),
        // Exact black and white: a PNG document, which Telegram keeps as sent.
        ("  SEGMENT 100 ", 7306, SentKind::Document, Some((640, 480))),
        ("predict", 7307, SentKind::Photo, Some((640, 480))),
        ("blur 65", 7308, SentKind::Text, None),
        ("/sharpen", 7309, SentKind::Text, None),
        ("concat", 7310, SentKind::Text, None),
    ];
    let mut requests = Vec::new();
    for (caption, chat, _, _) in &cases {
        let options = UserMessageOptions {
            caption: Some((*caption).to_owned()),
            ..Default::default()
        };
        let sent = s
            .client
            .send_user_photo(*chat, gradient_jpeg(), &options)
            .await
            .expect("send");
        requests.push(sent.message_id);
    }
    for ((caption, chat, kind, size), request) in cases.iter().zip(requests) {
        let m = s.wait(*chat, 1).await;
        let reply = &m[0];
        assert_eq!(&reply.kind, kind, "{caption:?}: {m:#?}");
        assert_eq!(
            reply.reply_to_message_id, request,
            "{caption:?}: the reply quotes the request"
        );
        match size {
            Some((w, h)) => {
                let file = reply.file.as_ref().expect("a picture");
                let bytes = s.client.file_bytes(&file.file_id).await.expect("bytes");
                let img = image::load_from_memory(&bytes).expect("decodable");
                assert_eq!((img.width(), img.height()), (*w, *h), "{caption:?}");
                if *kind == SentKind::Document {
                    let grey = img.to_luma8();
                    assert!(
                        grey.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255),
                        "{caption:?}: segment gives only black and white"
                    );
                    assert!(
                        grey.pixels().any(|p| p.0[0] == 0) && grey.pixels().any(|p| p.0[0] == 255)
                    );
                }
            }
            None => assert!(!text(reply).is_empty(), "{caption:?}: {m:#?}"),
        }
    }
    let mut texts = Vec::new();
    for chat in [7308, 7309, 7310] {
        let m = s.client.messages(chat).await.expect("messages");
        texts.push(text(&m[0]).to_owned());
    }
    assert!(texts[0].contains("1 to 64"), "the allowed range: {texts:?}");
    assert!(
        texts[1].contains("blur") && texts[1].contains("salt and pepper"),
        "the actions with examples: {texts:?}"
    );
    assert!(texts[2].contains("album"), "{texts:?}");
    // The table keeps each request's kind, and the filter's output.
    let rotated = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(7301), 1)
        .await
        .expect("list");
    assert_eq!(rotated[0].kind.to_string(), "rotate 90 clockwise");
    assert!(
        matches!(&rotated[0].result, Some(polybot_domain::JobResult::Filtered(f)) if (f.width, f.height) == (480, 640)),
        "{rotated:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (caption, chat, _, _) in &cases {
        let m = s.client.messages(*chat).await.expect("messages");
        assert_eq!(m.len(), 1, "{caption:?}: exactly one reply: {m:#?}");
    }
    s.stop().await;
}

/// Sends `n` photos as one album, the caption (if any) on photo
/// `caption_on`; the message ids of the album's photos.
async fn send_album(
    s: &Stack,
    chat: i64,
    photos: Vec<Vec<u8>>,
    caption: Option<(usize, &str)>,
) -> Vec<Option<i64>> {
    let group = format!("album-{chat}");
    let mut ids = Vec::new();
    for (i, bytes) in photos.into_iter().enumerate() {
        let options = UserMessageOptions {
            media_group_id: Some(group.clone()),
            caption: caption
                .filter(|(on, _)| *on == i)
                .map(|(_, text)| text.to_owned()),
            ..Default::default()
        };
        let sent = s
            .client
            .send_user_photo(chat, bytes, &options)
            .await
            .expect("send");
        ids.push(sent.message_id);
    }
    ids
}

/// Waits until the chat has an album from the bot, or `WAIT` passes.
async fn wait_for_album(s: &Stack, chat: i64) -> Vec<SentMessage> {
    let start = std::time::Instant::now();
    loop {
        let groups = s.client.media_groups(chat).await.expect("groups");
        if let Some(group) = groups.into_iter().next() {
            return group;
        }
        assert!(start.elapsed() < WAIT, "no album came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_of_three_gets_one_notice_and_one_album_back() {
    let s = Stack::start().await;
    let chat = 7401;
    let ids = send_album(
        &s,
        chat,
        vec![photo("bus.jpg"), photo("zidane.jpg"), gradient_jpeg()],
        None,
    )
    .await;
    let album = wait_for_album(&s, chat).await;
    assert_eq!(album.len(), 3, "one picture per photo: {album:#?}");
    assert_eq!(album[0].reply_to_message_id, ids[0], "quotes the album");
    let caption = caption(&album[0]);
    assert!(
        caption.contains("1: person ×4, bus ×1") && caption.contains("2: person ×2, tie ×1"),
        "the counts of each photo, in order: {caption}"
    );
    assert!(caption.contains("3: "), "{caption}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let messages = s.client.messages(chat).await.expect("messages");
    let notices: Vec<&SentMessage> = messages
        .iter()
        .filter(|m| m.media_group_id.is_none())
        .collect();
    assert_eq!(notices.len(), 1, "one notice for the album: {messages:#?}");
    assert!(
        text(notices[0]).contains("Looking for objects"),
        "{messages:#?}"
    );
    assert!(notices[0].deleted, "the notice went when the album came");
    assert_eq!(
        s.client.media_groups(chat).await.expect("groups").len(),
        1,
        "one answer"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_captioned_concat_gets_one_photo_twice_as_wide() {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let chat = 7402;
    let ids = send_album(
        &s,
        chat,
        vec![gradient_jpeg(), gradient_jpeg()],
        Some((1, "Concat")),
    )
    .await;
    let m = s.wait(chat, 1).await;
    assert_eq!(m[0].kind, SentKind::Photo, "{m:#?}");
    assert_eq!(m[0].reply_to_message_id, ids[0]);
    let file = m[0].file.as_ref().expect("photo");
    let bytes = s.client.file_bytes(&file.file_id).await.expect("bytes");
    let img = image::load_from_memory(&bytes).expect("decodable");
    assert_eq!((img.width(), img.height()), (1280, 480), "side by side");
    s.assert_stays_at(chat, 1).await;
    // An operator reads it back as the concat it was, not as a detection.
    let list = grpcurl_as_operator(
        &s,
        "polybot.v1.Results/ListPredictions",
        &format!(r#"{{"chat_id":{chat}}}"#),
    )
    .await;
    let record = &list["predictions"][0];
    assert_eq!(
        record["action"]["concat"]["direction"], "DIRECTION_HORIZONTAL",
        "{list}"
    );
    assert_eq!(record["joined"]["width"], 1280, "{list}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_albums_caption_on_any_photo_applies_to_every_photo() {
    let s = Stack::start_with(|o| o.notice_after = Duration::from_secs(600)).await;
    let chat = 7403;
    send_album(
        &s,
        chat,
        vec![gradient_jpeg(), gradient_jpeg()],
        Some((1, "rotate")),
    )
    .await;
    let album = wait_for_album(&s, chat).await;
    assert_eq!(album.len(), 2, "{album:#?}");
    for m in &album {
        let file = m.file.as_ref().expect("photo");
        let bytes = s.client.file_bytes(&file.file_id).await.expect("bytes");
        let img = image::load_from_memory(&bytes).expect("decodable");
        assert_eq!((img.width(), img.height()), (480, 640), "turned");
    }
    assert_eq!(
        caption(&album[0]),
        "1: rotated 90° clockwise\n2: rotated 90° clockwise"
    );
    s.assert_stays_at(chat, 2).await;
    s.stop().await;
}

/// Runs `cmd` with `input` on its stdin; what it did.
async fn piped(cmd: &mut tokio::process::Command, input: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("grpcurl starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    child.wait_with_output().await.expect("grpcurl")
}

/// Runs grpcurl with `request` (on stdin) and `args` (the address and
/// method), as the operator when `operator`; its exit, what it printed and
/// what it said on stderr.
async fn grpcurl_raw(
    s: &Stack,
    operator: bool,
    request: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(grpcurl());
    cmd.args(["-plaintext", "-max-time", "60", "-d", "@"]);
    if operator {
        let token = operator_token(s);
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    let out = piped(cmd.args(args), request).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_detect_names_the_bus_and_needs_the_operator_token() {
    let s = Stack::start().await;
    let addr = s.mesh().gateway.grpc_addr().to_string();
    let request = json!({ "data": base64(&photo("bus.jpg")) }).to_string();
    let method = "polybot.v1.Results/Detect";

    let (ok, _, err) = grpcurl_raw(&s, false, &request, &[&addr, method]).await;
    assert!(!ok && err.contains("Unauthenticated"), "{err}");

    let v = grpcurl_as_operator(&s, method, &request).await;
    let prediction = &v["prediction"];
    assert_eq!(prediction["status"], "PREDICTION_STATUS_SUCCEEDED", "{v}");
    assert_eq!(prediction["chatId"], ChatId::OPERATOR.0.to_string(), "{v}");
    let classes: Vec<&str> = prediction["summary"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["class"].as_str())
        .collect();
    assert!(classes.contains(&"bus"), "{v}");
    assert!(v["text"].as_str().expect("text").contains("bus ×1"), "{v}");
    let annotated = prediction["summary"]["predictedImgPath"]
        .as_str()
        .expect("the annotated picture's key");
    let stored = s
        .mesh()
        .backends
        .objects
        .get(&polybot_domain::ObjectKey::parse(annotated).expect("a key"))
        .await
        .expect("the annotated picture is stored");
    assert!(image::load_from_memory(&stored).is_ok());

    // The same photo by its key, blurred: the filter's output is stored.
    let original = prediction["originalKey"].as_str().expect("original key");
    let blur = json!({ "key": original, "action": { "blur": { "size": 8 } } }).to_string();
    let v = grpcurl_as_operator(&s, method, &blur).await;
    let output = v["prediction"]["filtered"]["outputImgPath"]
        .as_str()
        .unwrap_or_else(|| panic!("a filtered picture: {v}"));
    assert!(
        output.starts_with(&format!("{}/filtered/", ChatId::OPERATOR)),
        "{v}"
    );
    assert_eq!(v["text"], "blur 8", "{v}");

    // Not a picture: the detectors' verdict, as a status.
    let text = json!({ "data": base64(b"hello, not a photo") }).to_string();
    let (ok, _, err) = grpcurl_raw(&s, true, &text, &[&addr, method]).await;
    assert!(
        !ok && err.contains("InvalidArgument") && err.contains("not_an_image"),
        "{err}"
    );
    // No photo at all, and a key that names nothing.
    let (ok, _, err) = grpcurl_raw(&s, true, "{}", &[&addr, method]).await;
    assert!(!ok && err.contains("InvalidArgument"), "{err}");
    let missing = json!({ "key": "1/original/nothing.jpg" }).to_string();
    let (ok, _, err) = grpcurl_raw(&s, true, &missing, &[&addr, method]).await;
    assert!(!ok && err.contains("NotFound"), "{err}");

    // Nothing of it went to Telegram.
    let calls = s.client.requests().await.expect("the emulator's record");
    for method in [
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "editMessageText",
    ] {
        assert_eq!(
            calls.count(method),
            0,
            "an operator's request never answers a chat"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_pages_through_a_chats_predictions_each_exactly_once() {
    use polybot_domain::{
        Action, BlurSize, Filter, ObjectKey, PredictionId, PredictionRecord, PredictionStatus,
    };
    let s = Stack::start().await;
    let addr = s.mesh().gateway.grpc_addr().to_string();
    let chat = ChatId(7031);
    let mut made = std::collections::BTreeSet::new();
    let mut blurred = std::collections::BTreeSet::new();
    for i in 0..23u32 {
        let id = PredictionId::new();
        // Groups of three share a creation time, as a burst may.
        let at = 1_790_000_000.0 + f64::from(i / 3);
        let kind = if i % 4 == 1 {
            blurred.insert(id.to_string());
            Action::Filter(Filter::Blur {
                size: BlurSize::new(4).expect("size"),
            })
        } else {
            Action::Detect
        };
        let record = PredictionRecord {
            prediction_id: id,
            chat_id: chat,
            status: PredictionStatus::Pending,
            original_key: ObjectKey::original(chat, id, "jpg"),
            kind,
            result: None,
            failure: None,
            created_at: at,
            updated_at: at,
            answer_file_id: None,
        };
        s.mesh()
            .backends
            .table
            .create(&record)
            .await
            .expect("create");
        made.insert(id.to_string());
    }
    let pages = |filter: serde_json::Value| {
        let s = &s;
        async move {
            let mut seen = Vec::new();
            let mut token = String::new();
            let mut pages = 0;
            loop {
                let mut request = json!({ "chat_id": chat.0, "page_size": 5, "page_token": token });
                for (k, v) in filter.as_object().expect("an object") {
                    request[k] = v.clone();
                }
                let v = grpcurl_as_operator(
                    s,
                    "polybot.v1.Results/ListPredictions",
                    &request.to_string(),
                )
                .await;
                pages += 1;
                seen.extend(
                    v["predictions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|p| p["predictionId"].as_str().expect("id").to_owned()),
                );
                match v["nextPageToken"].as_str() {
                    Some(next) if !next.is_empty() => token = next.to_owned(),
                    _ => break,
                }
                assert!(pages < 50, "paging never ends");
            }
            (seen, pages)
        }
    };
    let (seen, count) = pages(json!({})).await;
    assert_eq!(seen.len(), 23, "{seen:?}");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        made
    );
    assert_eq!(count, 5, "23 in pages of 5");

    let (seen, _) = pages(json!({ "action": "blur" })).await;
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        blurred
    );
    assert_eq!(seen.len(), blurred.len());

    // A window: the first three seconds' nine predictions.
    let (seen, _) = pages(json!({
        "created_after": "2026-09-21T14:13:20Z",
        "created_before": "2026-09-21T14:13:23Z"
    }))
    .await;
    assert_eq!(seen.len(), 9, "{seen:?}");

    // A token for other filters is refused.
    let first = grpcurl_as_operator(
        &s,
        "polybot.v1.Results/ListPredictions",
        &json!({ "chat_id": chat.0, "page_size": 5 }).to_string(),
    )
    .await;
    let token = first["nextPageToken"].as_str().expect("a token");
    let other = json!({ "chat_id": chat.0, "action": "detect", "page_token": token }).to_string();
    let (ok, _, err) = grpcurl_raw(
        &s,
        true,
        &other,
        &[&addr, "polybot.v1.Results/ListPredictions"],
    )
    .await;
    assert!(!ok && err.contains("InvalidArgument"), "{err}");
    s.stop().await;
}

/// The `sh` blocks of docs/grpc.md that call `grpcurl`.
fn documented_grpcurl_commands() -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grpc.md"))
            .expect("docs/grpc.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                if block.contains("grpcurl ") {
                    blocks.push(block.clone());
                }
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_grpc_examples_run_against_a_real_gateway() {
    let s = Stack::start().await;
    let chat = 7032;
    s.client
        .send_user_photo(chat, photo("zidane.jpg"), &UserMessageOptions::default())
        .await
        .expect("send");
    s.wait(chat, 2).await;
    let record = s
        .mesh()
        .backends
        .table
        .list_by_chat(ChatId(chat), 1)
        .await
        .expect("list")
        .pop()
        .expect("the photo's prediction");
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("bus.jpg"), photo("bus.jpg")).expect("bus.jpg");
    let token = operator_token(&s);
    let path = format!(
        "{}:{}",
        grpcurl().parent().expect("a folder").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let commands = documented_grpcurl_commands();
    assert!(
        commands.len() >= 6,
        "docs/grpc.md lost its examples: {commands:?}"
    );
    for command in commands {
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(work.path())
            .env("PATH", &path)
            .env("GATEWAY", s.mesh().gateway.grpc_addr().to_string())
            .env("POLYBOT_OPERATOR_TOKEN", &token)
            .env("CHAT", chat.to_string())
            .env("PREDICTION", record.prediction_id.to_string())
            .env("ORIGINAL_KEY", record.original_key.to_string())
            .output()
            .await
            .expect("sh");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !printed.trim().is_empty(),
            "docs/grpc.md's example failed:\n{command}\n--- stdout\n{printed}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if command.contains("bus.jpg") {
            assert!(printed.contains("\"bus\""), "{command}\n{printed}");
        }
        if command.contains("$PREDICTION") {
            assert!(
                printed.contains(&record.prediction_id.to_string()),
                "{printed}"
            );
        }
    }
    s.stop().await;
}
