//! Replying to the user when a job ends, exactly once per prediction: a
//! lease in the prediction table makes a repeated report (a redelivered job,
//! a retried RPC) a no-op, and a failed send releases the lease so the
//! report can be retried.
//!
//! - The lease outlives the send: it is renewed while the send waits (a
//!   429, a slow upload), so a slow send is never repeated by a second
//!   report; a gateway that dies mid-send frees it within one lease term.
//! - The whole reply is bounded by [`REPLY_TIMEOUT`]; past it the lease is
//!   released and the caller told to retry.
//! - The stored outcome wins: a failure report (a dead letter, a job past
//!   its deadline) for a prediction whose summary is stored is answered
//!   with that result, not an apology, so the record's status is always
//!   what the user was told.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{
    AlbumSummary, FailureKind, Filter, FilterSummary, JobKind, JobResult, JoinedSummary, ObjectKey,
    PredictionId, PredictionStatus, PredictionSummary,
};
use polybot_proto::{Outcome, Report};
use polybot_storage::{Backends, ClaimKey, Once, StorageError, run_once};
use tracing::{info, warn};

use crate::messenger::{Messenger, MessengerError};
use crate::progress::Progress;

/// One term of a reply lease; renewed every third of it while the send runs.
pub const REPLY_LEASE: Duration = Duration::from_secs(30);
/// The longest one reply may take, rate-limit waits included.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The caption of the full-resolution copy of a large photo.
pub const FULL_RESOLUTION_CAPTION: &str = "The same, at full resolution";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replied {
    Sent,
    /// An earlier report already got its reply.
    Duplicate,
    /// Telegram refused for good (e.g. the user blocked the bot); nothing to retry.
    Undeliverable,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    #[error("another report for this prediction is being answered")]
    InProgress,
    #[error("the reply took longer than {0:?}; it will be retried")]
    TimedOut(Duration),
}

impl ReplyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Messenger(e) => e.is_retryable(),
            Self::InProgress | Self::TimedOut(_) => true,
        }
    }
}

#[derive(Clone)]
pub struct Replier {
    backends: Backends,
    messenger: Arc<dyn Messenger>,
    lease: Duration,
    timeout: Duration,
    progress: Option<Progress>,
}

impl Replier {
    pub fn new(backends: Backends, messenger: Arc<dyn Messenger>) -> Self {
        Self {
            backends,
            messenger,
            lease: REPLY_LEASE,
            timeout: REPLY_TIMEOUT,
            progress: None,
        }
    }

    /// Stops the progress this gateway shows for a job once it is answered.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Other lease term and reply deadline (tests use short ones).
    #[cfg(test)]
    pub fn with_limits(mut self, lease: Duration, timeout: Duration) -> Self {
        self.lease = lease;
        self.timeout = timeout;
        self
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    #[tracing::instrument(skip_all, fields(prediction_id = %report.prediction_id, chat_id = report.chat_id.0))]
    pub async fn reply(&self, report: &Report) -> Result<Replied, ReplyError> {
        let key = ClaimKey::Reply(report.prediction_id);
        let work = async {
            let sent = tokio::time::timeout(self.timeout, self.send(report))
                .await
                .unwrap_or(Err(ReplyError::TimedOut(self.timeout)));
            match sent {
                Ok(kept) => Ok((Replied::Sent, kept)),
                Err(ReplyError::Messenger(MessengerError::Rejected(reason))) => {
                    warn!(%reason, "Telegram refused the reply; giving up on this chat");
                    Ok((Replied::Undeliverable, None))
                }
                Err(e) => Err(e),
            }
        };
        match run_once(&*self.backends.table, key, self.lease, work).await? {
            Once::Ran((replied, kept)) => {
                self.tidy(report, kept).await;
                Ok(replied)
            }
            Once::Done => {
                info!("duplicate report; the reply was sent before");
                Ok(Replied::Duplicate)
            }
            Once::Busy => Err(ReplyError::InProgress),
        }
    }

    /// After the answer: progress stops, and the notice (unless it became
    /// the answer, `kept`) is removed. Best effort.
    async fn tidy(&self, report: &Report, kept: Option<i64>) {
        if let Some(progress) = &self.progress {
            progress.answered(report.prediction_id);
        }
        match self.backends.table.close_notice(report.prediction_id).await {
            Ok(Some(notice)) if Some(notice) != kept => {
                if let Err(e) = self.messenger.delete(report.chat_id, notice).await {
                    warn!(error = %e, notice, "could not remove the notice");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not close the notice; it may stay in the chat"),
        }
    }

    /// A failure's text: the notice, if one is in the chat, becomes it
    /// (returned, so it is kept); otherwise it is a new message.
    async fn send_failure(&self, report: &Report, text: &str) -> Result<Option<i64>, ReplyError> {
        let notice = match self.backends.table.notice(report.prediction_id).await {
            Ok(notice) => notice.message_id,
            Err(e) => {
                warn!(error = %e, "could not read the notice; answering with a new message");
                None
            }
        };
        if let Some(notice) = notice {
            match self.messenger.edit_text(report.chat_id, notice, text).await {
                Ok(()) => return Ok(Some(notice)),
                // The notice is gone (deleted by the user): answer anew.
                Err(MessengerError::Rejected(reason)) => {
                    info!(%reason, "the notice could not be edited; answering with a new message")
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.messenger
            .send_text(report.chat_id, text, report.reply_to_message_id)
            .await?;
        Ok(None)
    }

    async fn send(&self, report: &Report) -> Result<Option<i64>, ReplyError> {
        match &report.outcome {
            Outcome::Success(result) => self.send_result(report, result).await?,
            Outcome::Failure { kind, detail } => {
                let (success, job) = self.stored_success(report.prediction_id, *kind).await?;
                if let Some(summary) = success {
                    // The prediction succeeded (an earlier run stored it): that
                    // is the answer, not the failure.
                    info!(kind = kind.as_str(), %detail, "the prediction succeeded after all; replying with its result");
                    self.send_result(report, &summary).await?;
                    return Ok(None);
                }
                info!(kind = kind.as_str(), %detail, "replying with a failure");
                // The job's kind picks the fix to suggest (a picture too
                // small for blur: a smaller size; for contour: a larger photo).
                let text = kind.user_message_for(job.unwrap_or_default());
                return self.send_failure(report, &text).await;
            }
        }
        Ok(None)
    }

    /// A job's result, by its kind.
    async fn send_result(&self, report: &Report, result: &JobResult) -> Result<(), ReplyError> {
        match result {
            JobResult::Detected(summary) => {
                info!(objects = summary.labels.len(), "replying with detections");
                self.send_detection(report, summary).await
            }
            JobResult::Filtered(output) => {
                info!(filter = %output.filter, width = output.width, height = output.height,
                    "replying with the filtered picture");
                self.send_filtered(report, output).await
            }
            JobResult::Joined(output) => {
                info!(
                    photos = output.original_img_paths.len(),
                    width = output.width,
                    height = output.height,
                    "replying with the joined album"
                );
                self.send_joined(report, output).await
            }
            JobResult::Album(album) => {
                info!(photos = album.items.len(), "replying to an album");
                self.send_album(report, album).await
            }
        }
    }

    /// An album joined into one picture: one photo quoting the album.
    async fn send_joined(&self, report: &Report, output: &JoinedSummary) -> Result<(), ReplyError> {
        let picture = self.stored_image(&output.output_img_path).await?;
        let caption = polybot_domain::Action::Concat(output.direction).to_string();
        match self
            .messenger
            .send_photo(
                report.chat_id,
                picture.clone(),
                &caption,
                report.reply_to_message_id,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(MessengerError::MediaRejected(reason)) => {
                warn!(%reason, "Telegram refused the joined photo; sending it as a document");
                let document = crate::messenger::Document {
                    bytes: picture,
                    file_name: "concat.jpg",
                    mime: "image/jpeg",
                    caption,
                };
                self.send_document_or_text(report, document, FailureKind::TooLarge.user_message())
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An album's results as one album (`sendMediaGroup`), a line per
    /// photo in the caption of the first ("1: person ×2"); a photo that
    /// could not be used is named in its line. One result goes as a
    /// single photo (an album needs two), none as the failure.
    async fn send_album(&self, report: &Report, album: &AlbumSummary) -> Result<(), ReplyError> {
        let mut items = Vec::new();
        let mut lines = Vec::new();
        let mut first_failure = None;
        for (index, item) in album.items.iter().enumerate() {
            let number = index + 1;
            match (&item.result, item.failure) {
                (Some(JobResult::Detected(summary)), _) => {
                    lines.push(format!("{number}: {}", summary.counts_text()));
                    items.push(crate::messenger::MediaItem {
                        bytes: self.stored_image(&summary.predicted_img_path).await?,
                        file_name: "detections.jpg",
                        mime: "image/jpeg",
                        document: false,
                    });
                }
                (Some(JobResult::Filtered(output)), _) => {
                    lines.push(format!("{number}: {}", output.filter.answer_caption()));
                    let png = output.mime_type == "image/png";
                    items.push(crate::messenger::MediaItem {
                        bytes: self.stored_image(&output.output_img_path).await?,
                        file_name: if png { "filtered.png" } else { "filtered.jpg" },
                        mime: if png { "image/png" } else { "image/jpeg" },
                        // Exact black and white, as for one photo.
                        document: png && matches!(output.filter, Filter::Segment { .. }),
                    });
                }
                (_, failure) => {
                    let kind = failure.unwrap_or(FailureKind::Internal);
                    first_failure.get_or_insert(kind);
                    lines.push(format!("{number}: {}", kind.short_message()));
                }
            }
        }
        let caption = lines.join("\n");
        match items.len() {
            0 => {
                let kind = first_failure.unwrap_or(FailureKind::Internal);
                self.send_failure(report, kind.user_message())
                    .await
                    .map(drop)
            }
            1 => {
                let item = items.remove(0);
                let sent = if item.document {
                    let document = crate::messenger::Document {
                        bytes: item.bytes,
                        file_name: item.file_name,
                        mime: item.mime,
                        caption: caption.clone(),
                    };
                    self.messenger
                        .send_document(report.chat_id, document, report.reply_to_message_id)
                        .await
                } else {
                    self.messenger
                        .send_photo(
                            report.chat_id,
                            item.bytes,
                            &caption,
                            report.reply_to_message_id,
                        )
                        .await
                };
                match sent {
                    Err(MessengerError::MediaRejected(reason)) => {
                        warn!(%reason, "Telegram refused the picture; answering with text");
                        self.messenger
                            .send_text(report.chat_id, &caption, report.reply_to_message_id)
                            .await
                            .map_err(Into::into)
                    }
                    other => other.map_err(Into::into),
                }
            }
            _ => {
                // Telegram wants an album all photos or all documents.
                if items.iter().any(|i| i.document) {
                    for item in &mut items {
                        item.document = true;
                    }
                }
                match self
                    .messenger
                    .send_media_group(report.chat_id, items, &caption, report.reply_to_message_id)
                    .await
                {
                    Err(MessengerError::MediaRejected(reason)) => {
                        warn!(%reason, "Telegram refused the album; answering with its caption");
                        self.messenger
                            .send_text(report.chat_id, &caption, report.reply_to_message_id)
                            .await
                            .map_err(Into::into)
                    }
                    other => other.map_err(Into::into),
                }
            }
        }
    }

    /// A filter's picture, quoting the request, captioned with what was
    /// done ("blur 16", "rotated 90° clockwise"). A PNG whose every pixel
    /// matters (segment: only black and white) goes as a document, since
    /// Telegram re-compresses photos to JPEG; the rest go as photos, and as
    /// a document if Telegram refuses the photo.
    async fn send_filtered(
        &self,
        report: &Report,
        output: &FilterSummary,
    ) -> Result<(), ReplyError> {
        let chat = report.chat_id;
        let picture = self.stored_image(&output.output_img_path).await?;
        let caption = output.filter.answer_caption();
        let png = output.mime_type == "image/png";
        let exact = png && matches!(output.filter, Filter::Segment { .. });
        if !exact {
            match self
                .messenger
                .send_photo(chat, picture.clone(), &caption, report.reply_to_message_id)
                .await
            {
                Ok(()) => return Ok(()),
                Err(MessengerError::MediaRejected(reason)) => {
                    warn!(%reason, "Telegram refused the filtered photo; sending it as a document");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let document = crate::messenger::Document {
            bytes: picture,
            file_name: if png { "filtered.png" } else { "filtered.jpg" },
            mime: if png { "image/png" } else { "image/jpeg" },
            caption,
        };
        self.send_document_or_text(report, document, FailureKind::TooLarge.user_message())
            .await
    }

    /// A picture as a document; if Telegram refuses that too, `text`
    /// instead, so the user still gets one answer.
    async fn send_document_or_text(
        &self,
        report: &Report,
        document: crate::messenger::Document,
        text: &str,
    ) -> Result<(), ReplyError> {
        match self
            .messenger
            .send_document(report.chat_id, document, report.reply_to_message_id)
            .await
        {
            Ok(()) => Ok(()),
            Err(MessengerError::MediaRejected(reason)) => {
                warn!(%reason, "Telegram refused the document too; answering with text");
                self.messenger
                    .send_text(report.chat_id, text, report.reply_to_message_id)
                    .await
                    .map_err(Into::into)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The counts and the annotated photo. A photo Telegram refuses for
    /// what it is (dimensions past its limits, say) goes as a document
    /// instead, and if that is refused too, the counts go as text: the user
    /// always gets the answer, once.
    async fn send_detection(
        &self,
        report: &Report,
        summary: &PredictionSummary,
    ) -> Result<(), ReplyError> {
        let chat = report.chat_id;
        let annotated = self.stored_image(&summary.predicted_img_path).await?;
        let caption = summary.counts_text();
        let refused = match self
            .messenger
            .send_photo(
                chat,
                annotated.clone(),
                &caption,
                report.reply_to_message_id,
            )
            .await
        {
            Ok(()) => {
                self.send_full_resolution(report, summary).await;
                return Ok(());
            }
            Err(MessengerError::MediaRejected(reason)) => reason,
            Err(e) => return Err(e.into()),
        };
        warn!(%refused, "Telegram refused the annotated photo; sending it as a document");
        let document = crate::messenger::Document {
            bytes: annotated,
            file_name: "detections.jpg",
            mime: "image/jpeg",
            caption: caption.clone(),
        };
        // The counts are the answer even without the picture.
        self.send_document_or_text(report, document, &caption).await
    }

    /// The full-resolution annotated photo, as a document, when the user
    /// sent a file past Telegram's photo limits. Best effort: the answer
    /// (the photo) went out already, and retrying would send it twice.
    async fn send_full_resolution(&self, report: &Report, summary: &PredictionSummary) {
        let Some(path) = &summary.full_img_path else {
            return;
        };
        let send = async {
            let document = crate::messenger::Document {
                bytes: self.stored_image(path).await?,
                file_name: "detections-full-resolution.jpg",
                mime: "image/jpeg",
                caption: FULL_RESOLUTION_CAPTION.to_owned(),
            };
            self.messenger
                .send_document(report.chat_id, document, report.reply_to_message_id)
                .await
                .map_err(ReplyError::from)
        };
        if let Err(e) = send.await {
            warn!(error = %e, "could not send the full-resolution photo");
        }
    }

    /// Records the failure unless the prediction succeeded, and returns the
    /// stored summary when it did, with what the prediction asked for (if
    /// it is stored). Reads after the (conditional) write, so a summary
    /// stored at the same moment is seen.
    async fn stored_success(
        &self,
        id: PredictionId,
        kind: polybot_domain::FailureKind,
    ) -> Result<(Option<JobResult>, Option<JobKind>), ReplyError> {
        self.backends.table.save_failure(id, kind).await?;
        Ok(match self.backends.table.get(id).await? {
            Some(record) if record.status == PredictionStatus::Succeeded => {
                (record.result, Some(record.kind))
            }
            Some(record) => (None, Some(record.kind)),
            None => (None, None),
        })
    }

    /// An image the detector stored, by the key a summary names.
    async fn stored_image(&self, path: &str) -> Result<bytes::Bytes, ReplyError> {
        let key = ObjectKey::parse(path.to_owned())
            .map_err(|e| StorageError::invalid_from("a stored path", e))?;
        Ok(self.backends.objects.get(&key).await?)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use polybot_domain::{ChatId, FailureKind, PredictionRecord, now_epoch};
    use polybot_storage::PutMode;

    use super::*;
    use crate::fake::{Call, FakeMessenger, local_backends as backends};

    /// A pending prediction; with `succeeded`, its summary and annotated
    /// image are stored as a finished detector leaves them.
    async fn prediction(backends: &Backends, succeeded: bool) -> Report {
        let chat = ChatId(77);
        let id = PredictionId::new();
        let original_key = ObjectKey::original(chat, id, "jpg");
        backends
            .table
            .create(&PredictionRecord {
                prediction_id: id,
                chat_id: chat,
                status: PredictionStatus::Pending,
                original_key: original_key.clone(),
                kind: polybot_domain::JobKind::Detect,
                result: None,
                failure: None,
                created_at: now_epoch(),
                updated_at: now_epoch(),
            })
            .await
            .expect("create");
        let predicted = ObjectKey::predicted(chat, id);
        let summary = JobResult::Detected(PredictionSummary {
            prediction_id: id,
            original_img_path: original_key.to_string(),
            predicted_img_path: predicted.to_string(),
            full_img_path: None,
            labels: vec![polybot_domain::Label {
                class: "bus".into(),
                cx: 0.5,
                cy: 0.5,
                width: 0.5,
                height: 0.5,
                confidence: 0.9,
            }],
            time: now_epoch(),
        });
        if succeeded {
            backends
                .objects
                .put(
                    &predicted,
                    Bytes::from_static(b"jpeg"),
                    "image/jpeg",
                    PutMode::Overwrite,
                )
                .await
                .expect("put");
            backends.table.save_result(&summary).await.expect("summary");
        }
        Report {
            prediction_id: id,
            chat_id: chat,
            reply_to_message_id: Some(1),
            outcome: Outcome::Success(summary),
        }
    }

    fn gave_up(report: &Report) -> Report {
        Report {
            outcome: Outcome::Failure {
                kind: FailureKind::GaveUp,
                detail: "dead-lettered after 3 receives".into(),
            },
            ..report.clone()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_slow_send_keeps_its_lease_so_a_repeated_report_does_not_send_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, true).await;
        let messenger = FakeMessenger::gated(0);
        let replier = Replier::new(backends.clone(), messenger.clone())
            .with_limits(Duration::from_millis(300), Duration::from_secs(60));

        let first = {
            let replier = replier.clone();
            let report = report.clone();
            tokio::spawn(async move { replier.reply(&report).await })
        };
        messenger.until_started(1).await;
        // Several lease terms pass while the send waits (a 429, a slow upload).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let repeated = replier.reply(&report).await;
        assert!(
            matches!(repeated, Err(ReplyError::InProgress)),
            "the lease must still be held: {repeated:?}"
        );

        messenger.open(10);
        assert_eq!(first.await.expect("join").expect("sent"), Replied::Sent);
        assert_eq!(
            replier.reply(&report).await.expect("duplicate"),
            Replied::Duplicate
        );
        assert_eq!(messenger.sent(), vec!["photo: bus ×1".to_owned()]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_reply_past_its_deadline_releases_its_lease_for_the_retry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, true).await;
        let messenger = FakeMessenger::gated(0);
        let replier = Replier::new(backends.clone(), messenger.clone())
            .with_limits(Duration::from_secs(30), Duration::from_millis(300));
        let timed_out = replier.reply(&report).await;
        assert!(
            matches!(timed_out, Err(ReplyError::TimedOut(_))),
            "{timed_out:?}"
        );
        assert!(timed_out.expect_err("timed out").is_retryable());
        // The retry does not wait for the 30 s lease.
        messenger.open(10);
        assert_eq!(replier.reply(&report).await.expect("sent"), Replied::Sent);
        assert_eq!(messenger.sent().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_letter_for_a_prediction_that_succeeded_gets_its_result_not_an_apology() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, true).await;
        let messenger = FakeMessenger::new();
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(
            replier.reply(&gave_up(&report)).await.expect("sent"),
            Replied::Sent
        );
        assert_eq!(messenger.sent(), vec!["photo: bus ×1".to_owned()]);
        let record = backends
            .table
            .get(report.prediction_id)
            .await
            .expect("get")
            .expect("record");
        assert_eq!(record.status, PredictionStatus::Succeeded);
        assert_eq!(record.failure, None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn after_an_apology_the_record_says_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, false).await;
        let messenger = FakeMessenger::new();
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(
            replier.reply(&gave_up(&report)).await.expect("sent"),
            Replied::Sent
        );
        let sent = messenger.sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].starts_with("text: Sorry"), "{sent:?}");
        let record = backends
            .table
            .get(report.prediction_id)
            .await
            .expect("get")
            .expect("record");
        assert_eq!(record.status, PredictionStatus::Failed);
        assert_eq!(record.failure, Some(FailureKind::GaveUp));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_photo_telegram_refuses_goes_as_a_document_and_then_as_text_but_always_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        for (refused, answer) in [
            (&[Call::Photo][..], "document: bus ×1"),
            (&[Call::Photo, Call::Document][..], "text: bus ×1"),
        ] {
            let report = prediction(&backends, true).await;
            let messenger = FakeMessenger::new();
            for call in refused {
                messenger.fail_next(
                    *call,
                    MessengerError::MediaRejected("Bad Request: PHOTO_INVALID_DIMENSIONS".into()),
                );
            }
            let replier = Replier::new(backends.clone(), messenger.clone());
            assert_eq!(replier.reply(&report).await.expect("sent"), Replied::Sent);
            assert_eq!(messenger.sent(), vec![answer.to_owned()]);
            assert_eq!(
                replier.reply(&report).await.expect("repeat"),
                Replied::Duplicate
            );
        }
    }
}
