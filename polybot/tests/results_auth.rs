//! `polybot.v1.Results` as an attacker inside the network sees it: a real
//! gateway (embedded backend, real gRPC) and a Telegram Bot API emulator
//! that records everything the bot sends. Forged reports must be refused
//! and must not make the bot send anything; the read RPCs and `Detect` are
//! for operators.

use std::time::Duration;

use bytes::Bytes;
use polybot::Mesh;
use polybot::stack::{StackOptions, start_mesh};
use polybot_domain::{
    ChatId, Label, ObjectKey, PredictionId, PredictionRecord, PredictionStatus, PredictionSummary,
};
use polybot_proto::v1::results_client::ResultsClient;
use polybot_proto::v1::{
    DetectRequest, GetPredictionRequest, ListPredictionsRequest, ReportResultRequest,
};
use polybot_proto::{Outcome, Report};
use polybot_storage::PutMode;
use secrecy::ExposeSecret;
use tg_emulator::{Emulator, EmulatorClient, EmulatorHandle, SentKind};
use tonic::Code;
use tonic::transport::Channel;

const OWNER: i64 = 1243002838;
const VICTIM: i64 = 5550001;

struct Fixture {
    _emulator: EmulatorHandle,
    client: EmulatorClient,
    mesh: Mesh,
    opts: StackOptions,
    _dir: tempfile::TempDir,
}

/// How a call presents itself.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    WrongToken,
    Detector,
    Operator,
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut StackOptions)) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = StackOptions::local(dir.path());
        tune(&mut opts);
        opts.detector = false;
        opts.poll_wait = Duration::from_millis(300);
        opts.reporter_interval = None;
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
            .await
            .expect("mesh starts");
        Self {
            client: emulator.client(),
            _emulator: emulator,
            mesh,
            opts,
            _dir: dir,
        }
    }

    async fn results(&self) -> ResultsClient<Channel> {
        ResultsClient::connect(format!("http://{}", self.mesh.gateway.grpc_addr()))
            .await
            .expect("gRPC connects")
    }

    fn request<T>(&self, message: T, caller: Caller) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let token = match caller {
            Caller::Anonymous => return request,
            Caller::WrongToken => "not-the-token-0123456789abcdef0123456789".to_owned(),
            Caller::Detector => self
                .opts
                .results_credentials
                .results
                .expose_secret()
                .to_owned(),
            Caller::Operator => self
                .opts
                .results_credentials
                .operator
                .as_ref()
                .expect("an operator token")
                .expose_secret()
                .to_owned(),
        };
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        request
    }

    /// A stored prediction of `OWNER`'s, with its original photo and an
    /// annotated photo (of different sizes, so the test can tell them apart).
    async fn stored_prediction(&self) -> PredictionRecord {
        let id = PredictionId::new();
        let chat = ChatId(OWNER);
        let record = PredictionRecord {
            prediction_id: id,
            chat_id: chat,
            status: PredictionStatus::Pending,
            original_key: ObjectKey::original(chat, id, "jpg"),
            kind: polybot_domain::Action::Detect,
            result: None,
            failure: None,
            created_at: polybot_domain::now_epoch(),
            updated_at: polybot_domain::now_epoch(),
            answer_file_id: None,
        };
        let backends = &self.mesh.backends;
        backends.table.create(&record).await.expect("create");
        for (key, side) in [
            (record.original_key.clone(), 48),
            (ObjectKey::predicted(chat, id), 32),
        ] {
            backends
                .objects
                .put(
                    &key,
                    Bytes::from(jpeg(side)),
                    "image/jpeg",
                    PutMode::Overwrite,
                )
                .await
                .expect("put");
        }
        record
    }

    async fn sent_photos(&self) -> u64 {
        self.client
            .requests()
            .await
            .expect("requests")
            .count("sendPhoto")
    }
}

fn jpeg(side: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb([200, 30, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

fn success(
    record: &PredictionRecord,
    chat: i64,
    predicted: &str,
    class: &str,
) -> ReportResultRequest {
    let report = Report {
        prediction_id: record.prediction_id,
        chat_id: ChatId(chat),
        reply_to_message_id: None,
        language: polybot_domain::Lang::En,
        outcome: Outcome::Success(polybot_domain::JobResult::Detected(PredictionSummary {
            prediction_id: record.prediction_id,
            original_img_path: record.original_key.to_string(),
            predicted_img_path: predicted.to_owned(),
            full_img_path: None,
            labels: vec![Label {
                class: class.to_owned(),
                cx: 0.5,
                cy: 0.5,
                width: 0.2,
                height: 0.2,
                confidence: 0.9,
            }],
            time: 1.0,
            settings: Default::default(),
        })),
    };
    ReportResultRequest::from(&report)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_without_valid_credentials_is_unauthenticated_and_sends_nothing() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    let forged = success(&record, VICTIM, record.original_key.as_str(), "person");
    for caller in [Caller::Anonymous, Caller::WrongToken] {
        let status = results
            .report_result(f.request(forged.clone(), caller))
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{caller:?}: {status:?}"
        );
    }
    // The operator's token is for reading, not for reporting.
    let status = results
        .report_result(f.request(forged, Caller::Operator))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(f.sent_photos().await, 0);
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_for_another_chats_prediction_is_refused_and_sends_nothing() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    // The attack from the issue: user A's original photo to chat B with a caption.
    let forged = success(&record, VICTIM, record.original_key.as_str(), "person");
    let status = results
        .report_result(f.request(forged, Caller::Detector))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let failure = ReportResultRequest::from(&Report {
        prediction_id: record.prediction_id,
        chat_id: ChatId(VICTIM),
        reply_to_message_id: None,
        language: polybot_domain::Lang::En,
        outcome: Outcome::Failure {
            kind: polybot_domain::FailureKind::Internal,
            detail: String::new(),
        },
    });
    let status = results
        .report_result(f.request(failure, Caller::Detector))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        f.client
            .messages(VICTIM)
            .await
            .expect("messages")
            .is_empty()
    );
    assert_eq!(f.sent_photos().await, 0);
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_the_results_token_is_rotated_a_detector_with_the_previous_one_still_reports() {
    let previous = polybot_proto::auth::generate_token();
    let old = previous.expose_secret().to_owned();
    let f = Fixture::start_with(|opts| {
        opts.results_credentials.previous_results = Some(previous);
    })
    .await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    let mut report = tonic::Request::new(success(
        &record,
        OWNER,
        record.original_key.as_str(),
        "person",
    ));
    report.metadata_mut().insert(
        "authorization",
        format!("Bearer {old}").parse().expect("ascii"),
    );
    results
        .report_result(report)
        .await
        .expect("the previous token is still accepted");
    assert_eq!(f.sent_photos().await, 1, "and the user is answered");
    let metrics = reqwest::get(format!("http://{}/metrics", f.mesh.gateway.http_addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("polybot_results_previous_token_total 1"),
        "operators see the old token is still in use: {metrics}"
    );
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_for_an_unknown_prediction_is_refused() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut unknown = record.clone();
    unknown.prediction_id = PredictionId::new();
    let mut results = f.results().await;
    let status = results
        .report_result(f.request(
            success(&unknown, OWNER, record.original_key.as_str(), "person"),
            Caller::Detector,
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(f.sent_photos().await, 0);
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_photo_sent_is_the_predictions_annotated_image_whatever_key_the_caller_names() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    // The caller names the original (48×48) as the annotated image; the
    // gateway derives the key itself and sends the 32×32 annotated one.
    let report = success(&record, OWNER, record.original_key.as_str(), "person");
    let reply = results
        .report_result(f.request(report, Caller::Detector))
        .await
        .expect("accepted");
    assert!(!reply.into_inner().duplicate);
    let sent = f.client.messages(OWNER).await.expect("messages");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].kind, SentKind::Photo);
    assert_eq!(sent[0].caption.as_deref(), Some("person ×1"));
    let file = sent[0].file.as_ref().expect("a photo");
    let bytes = f.client.file_bytes(&file.file_id).await.expect("bytes");
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!((img.width(), img.height()), (32, 32));
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_label_that_is_not_a_class_name_cannot_become_a_caption() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    let report = success(
        &record,
        OWNER,
        "",
        "Your account is locked, log in at https://evil.example",
    );
    let status = results
        .report_result(f.request(report, Caller::Detector))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(f.sent_photos().await, 0);
    f.mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_rpcs_answer_only_the_operator() {
    let f = Fixture::start().await;
    let record = f.stored_prediction().await;
    let mut results = f.results().await;
    let get = GetPredictionRequest {
        prediction_id: record.prediction_id.to_string(),
    };
    // `limit`, the first name of `page_size`, still works.
    #[allow(deprecated)]
    let list = ListPredictionsRequest {
        chat_id: OWNER,
        limit: 5,
        ..Default::default()
    };
    let detect = DetectRequest {
        image: Some(polybot_proto::v1::detect_request::Image::Data(vec![
            0xFF, 0xD8, 0xFF,
        ])),
        action: None,
    };
    for (caller, code) in [
        (Caller::Anonymous, Code::Unauthenticated),
        (Caller::WrongToken, Code::Unauthenticated),
        (Caller::Detector, Code::PermissionDenied),
    ] {
        let status = results
            .get_prediction(f.request(get.clone(), caller))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "GetPrediction as {caller:?}");
        let status = results
            .list_predictions(f.request(list.clone(), caller))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "ListPredictions as {caller:?}");
        let status = results
            .detect(f.request(detect.clone(), caller))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "Detect as {caller:?}");
    }
    let got = results
        .get_prediction(f.request(get, Caller::Operator))
        .await
        .expect("the operator reads")
        .into_inner();
    assert_eq!(got.chat_id, OWNER);
    let listed = results
        .list_predictions(f.request(list, Caller::Operator))
        .await
        .expect("the operator lists")
        .into_inner();
    assert_eq!(listed.predictions.len(), 1);
    f.mesh.shutdown().await;
}
