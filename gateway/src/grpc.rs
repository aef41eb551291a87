//! The `polybot.v1.Results` gRPC service: detectors report finished jobs,
//! operators read predictions (e.g. with grpcurl through reflection).
//!
//! Every call is authenticated by [`polybot_proto::auth::Authenticator`]
//! (installed as the service's interceptor); each method then requires its
//! role. `ReportResult` is not a relay: the prediction must exist and belong
//! to the reported chat, the annotated image's key is derived here from the
//! prediction (never taken from the caller), and the labels that become the
//! caption must look like class names.

use std::time::Duration;

use polybot_domain::{
    Action, AnswerExtra, ChatId, CropsSummary, JobResult, Lang, ObjectKey, PredictionId,
    VideoSummary,
};
use polybot_proto::auth::{Role, require};
use polybot_proto::v1::results_server::Results;
use polybot_proto::v1::{
    DetectRequest, DetectResponse, GetPredictionRequest, ListPredictionsRequest,
    ListPredictionsResponse, Prediction, ReportProgressRequest, ReportProgressResponse,
    ReportResultRequest, ReportResultResponse,
};
use polybot_proto::{Outcome, Report};
use polybot_telemetry::tasks::Supervisor;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::detect::{DetectError, DetectInput, OperatorDetect};
use crate::listing::{PageQuery, QueryError};
use crate::replies::{Replied, Replier, ReplyError};

/// How long `ReportResult` waits for its reply before answering
/// `DEADLINE_EXCEEDED`; below the detector's RPC timeout, so the detector
/// hears a status rather than timing out itself.
pub const REPORT_WAIT: Duration = Duration::from_secs(45);

/// How long `Detect` waits for its job when the caller set no deadline,
/// and the most it waits whatever the deadline.
pub const DETECT_WAIT: Duration = Duration::from_secs(60);
pub const DETECT_WAIT_MAX: Duration = Duration::from_secs(300);

pub struct ResultsService {
    replier: Replier,
    /// Runs each report's reply as a task of its own.
    supervisor: Supervisor,
    detect: OperatorDetect,
}

/// A report of another kind than the request asked for is refused.
fn same_kind(asked: Action, reported: Action) -> Result<(), Status> {
    if asked == reported {
        Ok(())
    } else {
        Err(Status::failed_precondition(format!(
            "the request asked for {asked}, the report is of {reported}"
        )))
    }
}

fn checked_labels(summary: &polybot_domain::PredictionSummary) -> Result<(), Status> {
    match summary.labels.iter().find(|l| !is_class_name(&l.class)) {
        Some(bad) => Err(Status::invalid_argument(format!(
            "label class {:?} is not a class name",
            bad.class.chars().take(MAX_CLASS_LEN).collect::<String>()
        ))),
        None => Ok(()),
    }
}

/// The file extension of an output's format; only PNG and JPEG are made.
fn extension_of(mime: &str) -> Result<&'static str, Status> {
    match mime {
        "image/png" => Ok("png"),
        "image/jpeg" => Ok("jpg"),
        other => Err(Status::invalid_argument(format!(
            "mime_type {:?} is not image/png or image/jpeg",
            other.chars().take(MAX_CLASS_LEN).collect::<String>()
        ))),
    }
}

impl ResultsService {
    /// `max_download` bounds `Detect`'s photos as Telegram downloads are.
    pub fn new(replier: Replier, supervisor: Supervisor, max_download: u64) -> Self {
        let detect = OperatorDetect::new(replier.backends().clone(), max_download);
        Self {
            replier,
            supervisor,
            detect,
        }
    }
}

/// How long `Detect` may wait: a little under the caller's deadline (the
/// `grpc-timeout` header, e.g. grpcurl's `-max-time`), so the caller hears
/// our status, not its own timeout.
fn detect_wait<T>(request: &Request<T>) -> Duration {
    let header = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok());
    match header.and_then(parse_grpc_timeout) {
        Some(timeout) => timeout
            .saturating_sub(Duration::from_millis(500))
            .min(DETECT_WAIT_MAX),
        None => DETECT_WAIT,
    }
}

/// A `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn detect_status(e: DetectError) -> Status {
    match e {
        DetectError::TooLarge { .. } | DetectError::Empty => {
            Status::invalid_argument(e.to_string())
        }
        DetectError::NoSuchKey(_) => Status::not_found(e.to_string()),
        DetectError::Storage(e) => storage_status(e),
        DetectError::StillRunning(_) => Status::deadline_exceeded(e.to_string()),
    }
}

fn query_status(e: QueryError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// A `Timestamp` as seconds since the Unix epoch, as records keep times.
fn epoch_seconds(t: &polybot_proto::Timestamp) -> f64 {
    t.seconds as f64 + f64::from(t.nanos) / 1e9
}

/// What a finished operator's request says in words: the counts, or what
/// the filter did; a failure as the status a chat's failure would map to.
fn detect_outcome(record: &polybot_domain::PredictionRecord) -> Result<String, Status> {
    use polybot_domain::{FailureKind, PredictionStatus};
    let lang = Lang::En;
    match (&record.status, &record.result, record.failure) {
        (PredictionStatus::Succeeded, Some(JobResult::Detected(summary)), _) => {
            Ok(summary.counts_text(lang))
        }
        (PredictionStatus::Succeeded, Some(JobResult::Filtered(output)), _) => {
            Ok(output.filter.answer_caption(lang))
        }
        (PredictionStatus::Succeeded, _, _) => Ok(String::new()),
        (_, _, Some(kind)) => {
            let message = format!(
                "{} ({}; prediction {})",
                kind.user_message(lang),
                kind.as_str(),
                record.prediction_id
            );
            Err(match kind {
                FailureKind::GaveUp | FailureKind::Internal => Status::internal(message),
                _ => Status::invalid_argument(message),
            })
        }
        (_, _, None) => Err(Status::internal(format!(
            "prediction {} ended without a result or a failure",
            record.prediction_id
        ))),
    }
}

/// Continues the caller's trace: the context travels in gRPC metadata.
fn rpc_span<T>(req: &Request<T>, method: &'static str) -> tracing::Span {
    let span = tracing::info_span!(
        "polybot.v1.Results",
        otel.name = format!("polybot.v1.Results/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = "polybot.v1.Results",
        rpc.method = method,
        prediction_id = tracing::field::Empty,
    );
    polybot_telemetry::grpc::set_parent_from_metadata(&span, req.metadata());
    span
}

fn storage_status(e: polybot_storage::StorageError) -> Status {
    if e.is_retryable() {
        Status::unavailable(e.to_string())
    } else {
        Status::internal(e.to_string())
    }
}

/// Longest class name accepted in a report (COCO's longest is 14).
const MAX_CLASS_LEN: usize = 40;

/// Whether a label can go into the caption: a short name of letters,
/// digits, spaces, `-` and `_` (no links, no line breaks, no markup).
fn is_class_name(class: &str) -> bool {
    !class.is_empty()
        && class.chars().count() <= MAX_CLASS_LEN
        && class
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
}

impl ResultsService {
    /// The stored record of prediction `id`, which a report says is
    /// `chat`'s: refused when there is none, or it is another chat's.
    async fn record_of(
        &self,
        id: PredictionId,
        chat: ChatId,
    ) -> Result<polybot_domain::PredictionRecord, Status> {
        let record = self
            .replier
            .backends()
            .table
            .get(id)
            .await
            .map_err(storage_status)?
            .ok_or_else(|| {
                tracing::warn!(prediction_id = %id, "report for an unknown prediction refused");
                Status::not_found(format!("no prediction {id}"))
            })?;
        if record.chat_id != chat {
            tracing::warn!(
                prediction_id = %id,
                reported_chat = chat.0,
                "report for another chat's prediction refused"
            );
            return Err(Status::permission_denied(
                "the prediction does not belong to that chat",
            ));
        }
        Ok(record)
    }

    /// Checks a report against what the gateway stored for the prediction,
    /// and fills in the image keys from the stored record.
    async fn owned(&self, mut report: Report) -> Result<Report, Status> {
        let record = self.record_of(report.prediction_id, report.chat_id).await?;
        if let Outcome::Success(result) = &mut report.outcome {
            let (chat, id) = (record.chat_id, record.prediction_id);
            match result {
                JobResult::Detected(summary) => {
                    same_kind(record.kind, Action::Detect)?;
                    checked_labels(summary)?;
                    summary.original_img_path = record.original_key.to_string();
                    summary.predicted_img_path = ObjectKey::predicted(chat, id).to_string();
                    // Only ever this prediction's own key, whatever the report said.
                    summary.full_img_path = summary
                        .full_img_path
                        .as_ref()
                        .map(|_| ObjectKey::predicted_full(chat, id).to_string());
                }
                JobResult::Filtered(output) => {
                    same_kind(record.kind, Action::Filter(output.filter))?;
                    // The output's key follows from its format; nothing else is trusted.
                    let extension = extension_of(&output.mime_type)?;
                    output.original_img_path = record.original_key.to_string();
                    output.output_img_path = ObjectKey::filtered(chat, id, extension).to_string();
                }
                JobResult::Joined(output) => {
                    // Records written before concat was recorded as such say `detect`.
                    if record.kind != Action::Detect {
                        same_kind(record.kind, Action::Concat(output.direction))?;
                    }
                    let extension = extension_of(&output.mime_type)?;
                    output.output_img_path = ObjectKey::filtered(chat, id, extension).to_string();
                }
                JobResult::Cropped(crops) => {
                    same_kind(record.kind, Action::Detect)?;
                    // A crops request's id is derived from its detection's,
                    // so `of` cannot name another chat's detection.
                    if PredictionId::derived(crops.of, AnswerExtra::Crops.as_str()) != id {
                        return Err(Status::invalid_argument(
                            "the crops are not of this request's detection",
                        ));
                    }
                    if crops.crops.len() > CropsSummary::MAX
                        || crops.crops.iter().any(|c| !is_class_name(&c.class))
                    {
                        return Err(Status::invalid_argument(
                            "at most 10 crops, each of a class name",
                        ));
                    }
                    for (index, crop) in crops.crops.iter_mut().enumerate() {
                        crop.path = ObjectKey::crop(chat, id, index).to_string();
                    }
                }
                JobResult::Video(video) => {
                    same_kind(record.kind, Action::Detect)?;
                    if video.key_frames.len() > VideoSummary::MAX_KEY_FRAMES
                        || video
                            .key_frames
                            .iter()
                            .flat_map(|f| &f.labels)
                            .any(|l| !is_class_name(&l.class))
                        || video.peaks.iter().any(|p| !is_class_name(&p.class))
                    {
                        return Err(Status::invalid_argument(
                            "at most 4 key frames, each label of a class name",
                        ));
                    }
                    video.original_img_path = record.original_key.to_string();
                    for (index, frame) in video.key_frames.iter_mut().enumerate() {
                        frame.path = ObjectKey::key_frame(chat, id, index).to_string();
                    }
                }
                JobResult::Album(album) => {
                    for (index, item) in album.items.iter_mut().enumerate() {
                        match &mut item.result {
                            None => {}
                            Some(JobResult::Detected(summary)) => {
                                same_kind(record.kind, Action::Detect)?;
                                checked_labels(summary)?;
                                summary.predicted_img_path =
                                    ObjectKey::album_item(chat, id, index, "jpg").to_string();
                                summary.full_img_path = None;
                            }
                            Some(JobResult::Filtered(output)) => {
                                same_kind(record.kind, Action::Filter(output.filter))?;
                                let extension = extension_of(&output.mime_type)?;
                                output.output_img_path =
                                    ObjectKey::album_item(chat, id, index, extension).to_string();
                            }
                            Some(_) => {
                                return Err(Status::invalid_argument(
                                    "an album item is a detection or a filter",
                                ));
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

#[tonic::async_trait]
impl Results for ResultsService {
    async fn report_result(
        &self,
        request: Request<ReportResultRequest>,
    ) -> Result<Response<ReportResultResponse>, Status> {
        let span = rpc_span(&request, "ReportResult");
        async move {
            require(&request, Role::Reporter)?;
            let report = Report::try_from(request.into_inner())
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let report = self.owned(report).await?;
            // On its own task: if the caller goes away mid-reply (a detector
            // stopping, a timeout), the reply still finishes and its lease is
            // finished or released, instead of being dropped half-sent with
            // the lease held (which could lose or repeat the reply later).
            let replier = self.replier.clone();
            let reply = self
                .supervisor
                .spawn_with("report_reply", async move { replier.reply(&report).await });
            // The caller waits a bounded time; the reply goes on (its lease
            // renewed) and a retried report finds it in progress or done.
            let Ok(joined) = tokio::time::timeout(REPORT_WAIT, reply).await else {
                crate::metrics::reply("error");
                return Err(Status::deadline_exceeded(format!(
                    "the reply is still being sent after {REPORT_WAIT:?}; report again later"
                )));
            };
            let result =
                joined.ok_or_else(|| Status::internal("the reply task failed: it panicked"))?;
            crate::metrics::reply(match &result {
                Ok(Replied::Sent) => "sent",
                Ok(Replied::Duplicate) => "duplicate",
                Ok(Replied::Undeliverable) => "undeliverable",
                Err(_) => "error",
            });
            match result {
                Ok(replied) => Ok(Response::new(ReportResultResponse {
                    duplicate: replied == Replied::Duplicate,
                })),
                Err(e @ ReplyError::InProgress) => Err(Status::unavailable(e.to_string())),
                Err(e) if e.is_retryable() => Err(Status::unavailable(e.to_string())),
                Err(e) => Err(Status::failed_precondition(e.to_string())),
            }
        }
        .instrument(span)
        .await
    }

    async fn get_prediction(
        &self,
        request: Request<GetPredictionRequest>,
    ) -> Result<Response<Prediction>, Status> {
        let span = rpc_span(&request, "GetPrediction");
        async move {
            require(&request, Role::Operator)?;
            let id: PredictionId = request.get_ref().prediction_id.parse().map_err(
                |e: polybot_domain::ParseIdError| Status::invalid_argument(e.to_string()),
            )?;
            match self
                .replier
                .backends()
                .table
                .get(id)
                .await
                .map_err(storage_status)?
            {
                Some(record) => Ok(Response::new(Prediction::from(&record))),
                None => Err(Status::not_found(format!("no prediction {id}"))),
            }
        }
        .instrument(span)
        .await
    }

    async fn report_progress(
        &self,
        request: Request<ReportProgressRequest>,
    ) -> Result<Response<ReportProgressResponse>, Status> {
        let span = rpc_span(&request, "ReportProgress");
        async move {
            require(&request, Role::Reporter)?;
            let req = request.into_inner();
            let id: PredictionId =
                req.prediction_id
                    .parse()
                    .map_err(|e: polybot_domain::ParseIdError| {
                        Status::invalid_argument(e.to_string())
                    })?;
            if req.total == 0 || req.done > req.total {
                return Err(Status::invalid_argument(
                    "done must be within 0..=total, total > 0",
                ));
            }
            let chat = ChatId(req.chat_id);
            self.record_of(id, chat).await?;
            let lang = Lang::from_code_or_default(Some(&req.language));
            let shown = self
                .replier
                .show_progress(chat, id, req.done, req.total, lang)
                .await
                .map_err(storage_status)?;
            Ok(Response::new(ReportProgressResponse { shown }))
        }
        .instrument(span)
        .await
    }

    async fn list_predictions(
        &self,
        request: Request<ListPredictionsRequest>,
    ) -> Result<Response<ListPredictionsResponse>, Status> {
        let span = rpc_span(&request, "ListPredictions");
        async move {
            require(&request, Role::Operator)?;
            let req = request.into_inner();
            #[allow(deprecated)] // `limit` is still read, as the first name of `page_size`.
            let size = if req.page_size == 0 {
                req.limit
            } else {
                req.page_size
            };
            let window = polybot_storage::TimeWindow {
                from: req.created_after.as_ref().map(epoch_seconds),
                until: req.created_before.as_ref().map(epoch_seconds),
            };
            let query = PageQuery::parse(req.chat_id, size, &req.page_token, &req.action, window)
                .map_err(query_status)?;
            let page = query
                .read(self.replier.backends().table.as_ref())
                .await
                .map_err(storage_status)?;
            Ok(Response::new(ListPredictionsResponse {
                predictions: page.records.iter().map(Prediction::from).collect(),
                next_page_token: page.next_token.unwrap_or_default(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn detect(
        &self,
        request: Request<DetectRequest>,
    ) -> Result<Response<DetectResponse>, Status> {
        let span = rpc_span(&request, "Detect");
        async move {
            require(&request, Role::Operator)?;
            let wait = detect_wait(&request);
            let req = request.into_inner();
            use polybot_proto::v1::detect_request::Image;
            let input = match req.image {
                Some(Image::Data(bytes)) => DetectInput::Bytes(bytes.into()),
                Some(Image::Key(key)) => DetectInput::Key(
                    ObjectKey::parse(key)
                        .map_err(|e| Status::invalid_argument(format!("key: {e}")))?,
                ),
                None => {
                    return Err(Status::invalid_argument(
                        "set the photo: `data` (its bytes) or `key` (an object-store key)",
                    ));
                }
            };
            let kind = match req.action {
                Some(action) => polybot_domain::JobKind::try_from(action)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
                None => polybot_domain::JobKind::Detect,
            };
            let id = self
                .detect
                .submit(input, kind)
                .await
                .map_err(detect_status)?;
            tracing::Span::current().record("prediction_id", tracing::field::display(id));
            let record = self.detect.wait(id, wait).await.map_err(detect_status)?;
            let text = detect_outcome(&record)?;
            Ok(Response::new(DetectResponse {
                prediction: Some(Prediction::from(&record)),
                text,
            }))
        }
        .instrument(span)
        .await
    }
}
