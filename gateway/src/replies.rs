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
//!
//! What a result looks like in the chat is [`crate::answers`]' business;
//! failures are told here, since the progress notice may become them.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{Action, ChatId, JobResult, Lang, PredictionId, PredictionStatus};
use polybot_proto::{Outcome, Report};
use polybot_storage::{AnsweredPhoto, Backends, ClaimKey, Once, StorageError, run_once};
use tracing::{info, warn};

use crate::answers::{AnswerError, Answered, Answers, Recipient, ShownPhoto};
use crate::messenger::{Messenger, MessengerError};
use crate::progress::Progress;

/// One term of a reply lease; renewed every third of it while the send runs.
pub const REPLY_LEASE: Duration = Duration::from_secs(30);
/// The longest one reply may take, rate-limit waits included.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

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

impl From<AnswerError> for ReplyError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Storage(e) => Self::Storage(e),
            AnswerError::Messenger(e) => Self::Messenger(e),
        }
    }
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
    answers: Answers,
    lease: Duration,
    timeout: Duration,
    progress: Option<Progress>,
}

impl Replier {
    pub fn new(backends: Backends, messenger: Arc<dyn Messenger>) -> Self {
        Self {
            answers: Answers::new(Arc::clone(&messenger), Arc::clone(&backends.objects)),
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

    /// Shows how far a long job has got in its notice (best effort).
    pub async fn show_progress(
        &self,
        chat: ChatId,
        prediction: PredictionId,
        done: u32,
        total: u32,
        lang: Lang,
    ) -> Result<bool, StorageError> {
        crate::progress::show_clip_progress(
            self.backends.table.as_ref(),
            self.messenger.as_ref(),
            chat,
            prediction,
            (done, total),
            lang,
        )
        .await
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

    /// Sends the report's answer; returns the notice it kept (one that
    /// became the answer), if any.
    async fn send(&self, report: &Report) -> Result<Option<i64>, ReplyError> {
        if report.chat_id.is_operator() {
            // An operator's `Detect`: it reads the record; nobody is told.
            if let Outcome::Failure { kind, detail } = &report.outcome {
                info!(kind = kind.as_str(), %detail, "an operator's request failed");
                self.stored_success(report.prediction_id, *kind).await?;
            }
            return Ok(None);
        }
        match &report.outcome {
            Outcome::Success(result) => self.send_result(report, result).await,
            Outcome::Failure { kind, detail } => {
                let Some((success, job)) = self.stored_success(report.prediction_id, *kind).await?
                else {
                    // The chat erased everything (`/forget`) while the job
                    // ran: nothing is stored for it, and nothing is said.
                    info!(kind = kind.as_str(), "the prediction was erased; no answer");
                    return Ok(None);
                };
                if let Some(summary) = success {
                    // The prediction succeeded (an earlier run stored it): that
                    // is the answer, not the failure.
                    info!(kind = kind.as_str(), %detail, "the prediction succeeded after all; replying with its result");
                    return self.send_result(report, &summary).await;
                }
                info!(kind = kind.as_str(), %detail, "replying with a failure");
                // The job's kind picks the fix to suggest (a picture too
                // small for blur: a smaller size; for contour: a larger photo).
                let text = kind.user_message_for(job.unwrap_or_default(), report.language);
                self.send_failure(report, &text).await
            }
        }
    }

    /// A job's result, as [`Answers`] formats it; one with nothing to show
    /// is told as its failure.
    async fn send_result(
        &self,
        report: &Report,
        result: &JobResult,
    ) -> Result<Option<i64>, ReplyError> {
        let to = Recipient {
            chat: report.chat_id,
            reply_to: report.reply_to_message_id,
            lang: report.language,
        };
        match self.answers.send(to, result).await? {
            Answered::Sent(shown) => {
                if let Some(shown) = shown {
                    self.remember(report, shown).await;
                }
                Ok(None)
            }
            Answered::Nothing(kind) => {
                // As for a failed job, the request's action picks the fix
                // (a blur too large for every photo: a smaller blur).
                let action = match self.backends.table.get(report.prediction_id).await {
                    Ok(record) => record.map(|r| r.kind).unwrap_or_default(),
                    Err(e) => {
                        warn!(error = %e, "could not read what the album asked for");
                        Action::default()
                    }
                };
                self.send_failure(report, &kind.user_message_for(action, report.language))
                    .await
            }
        }
    }

    /// Records which photo the answer `shown` was made from, so a reply to
    /// it ("blur", "rotate left") is applied to that photo. Best effort:
    /// the answer went out, and failing now would send it again; without
    /// the record a reply to it is only chatter.
    async fn remember(&self, report: &Report, shown: ShownPhoto) {
        if let Some(file_id) = &shown.file_id
            && let Err(e) = self
                .backends
                .table
                .set_answer_file(report.prediction_id, file_id)
                .await
        {
            warn!(error = %e, "could not record the answer's picture; /history lists it without");
        }
        let photo = AnsweredPhoto {
            prediction_id: report.prediction_id,
            original_key: shown.original,
        };
        if let Err(e) = self
            .backends
            .table
            .record_answer(report.chat_id, shown.message_id, &photo)
            .await
        {
            warn!(error = %e, message_id = shown.message_id,
                "could not record the answer; a reply to it will not find its photo");
        }
    }

    /// Records the failure unless the prediction succeeded, and returns the
    /// stored summary when it did, with what the prediction asked for (if
    /// it is stored); `None` when the prediction is gone (its chat erased
    /// it). Reads after the (conditional) write, so a summary stored at the
    /// same moment is seen.
    async fn stored_success(
        &self,
        id: PredictionId,
        kind: polybot_domain::FailureKind,
    ) -> Result<Option<(Option<JobResult>, Option<Action>)>, ReplyError> {
        match self.backends.table.save_failure(id, kind).await {
            Ok(()) => {}
            // Erased by its chat (`/forget`), never re-created.
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(Some(match self.backends.table.get(id).await? {
            Some(record) if record.status == PredictionStatus::Succeeded => {
                (record.result, Some(record.kind))
            }
            Some(record) => (None, Some(record.kind)),
            None => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use polybot_domain::{
        ChatId, FailureKind, ObjectKey, PredictionRecord, PredictionSummary, now_epoch,
    };
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
                kind: polybot_domain::Action::Detect,
                result: None,
                failure: None,
                created_at: now_epoch(),
                updated_at: now_epoch(),
                answer_file_id: None,
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
            settings: Default::default(),
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
            language: Lang::En,
        }
    }

    #[tokio::test]
    async fn a_failure_of_a_prediction_its_chat_erased_is_not_answered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        let report = gave_up(&prediction(&backends, false).await);
        backends.erase_chat(report.chat_id).await.expect("erase");
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(replier.reply(&report).await.expect("done"), Replied::Sent);
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
        let record = backends.table.get(report.prediction_id).await.expect("get");
        assert!(record.is_none(), "not re-created: {record:?}");
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
        assert_eq!(
            messenger.sent(),
            vec!["photo: bus ×1 [Details|Crops]".to_owned()]
        );
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

    /// Answers a dead letter for a prediction that `succeeded` or not;
    /// what was sent, and the record afterwards.
    async fn answer_dead_letter(succeeded: bool) -> (Vec<String>, PredictionRecord) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, succeeded).await;
        let messenger = FakeMessenger::new();
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(
            replier.reply(&gave_up(&report)).await.expect("sent"),
            Replied::Sent
        );
        let record = backends
            .table
            .get(report.prediction_id)
            .await
            .expect("get")
            .expect("record");
        (messenger.sent(), record)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_album_too_small_for_its_blur_in_every_photo_is_told_the_smaller_blur() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, false).await;
        let blur = polybot_domain::Filter::Blur {
            size: polybot_domain::BlurSize::new(64).expect("in range"),
        };
        let mut record = backends
            .table
            .get(report.prediction_id)
            .await
            .expect("get")
            .expect("record");
        record.prediction_id = PredictionId::new();
        record.kind = Action::Filter(blur);
        backends.table.create(&record).await.expect("create");
        let failed = polybot_domain::AlbumItem {
            result: None,
            failure: Some(FailureKind::TooSmall),
        };
        let report = Report {
            prediction_id: record.prediction_id,
            outcome: Outcome::Success(JobResult::Album(polybot_domain::AlbumSummary {
                prediction_id: record.prediction_id,
                items: vec![failed.clone(), failed],
                skipped: Vec::new(),
            })),
            ..report
        };
        let messenger = FakeMessenger::new();
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(replier.reply(&report).await.expect("sent"), Replied::Sent);
        assert_eq!(
            messenger.sent(),
            vec![format!("text: {}", blur.too_small_message(Lang::En))]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_letter_for_a_prediction_that_succeeded_gets_its_result_not_an_apology() {
        let (sent, record) = answer_dead_letter(true).await;
        assert_eq!(sent, vec!["photo: bus ×1 [Details|Crops]".to_owned()]);
        assert_eq!(record.status, PredictionStatus::Succeeded);
        assert_eq!(record.failure, None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn after_an_apology_the_record_says_failed() {
        let (sent, record) = answer_dead_letter(false).await;
        assert_eq!(sent.len(), 1);
        assert!(sent[0].starts_with("text: Sorry"), "{sent:?}");
        assert_eq!(record.status, PredictionStatus::Failed);
        assert_eq!(record.failure, Some(FailureKind::GaveUp));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_answered_photo_is_recorded_under_the_answer_message_for_replies_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, true).await;
        let messenger = FakeMessenger::new();
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(replier.reply(&report).await.expect("sent"), Replied::Sent);
        // The fake numbers its messages from 1: the answer is message 1.
        let shown = backends
            .table
            .answered_photo(report.chat_id, 1)
            .await
            .expect("read")
            .expect("the answer is recorded");
        assert_eq!(shown.prediction_id, report.prediction_id);
        assert_eq!(
            shown.original_key,
            ObjectKey::original(report.chat_id, report.prediction_id, "jpg"),
            "the user's photo, not the annotated copy"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_answer_sent_as_text_records_no_photo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = backends(dir.path()).await;
        let report = prediction(&backends, true).await;
        let messenger = FakeMessenger::new();
        for call in [Call::Photo, Call::Document] {
            messenger.fail_next(
                call,
                MessengerError::MediaRejected("Bad Request: PHOTO_INVALID_DIMENSIONS".into()),
            );
        }
        let replier = Replier::new(backends.clone(), messenger.clone());
        assert_eq!(replier.reply(&report).await.expect("sent"), Replied::Sent);
        let shown = backends.table.answered_photo(report.chat_id, 1).await;
        assert_eq!(shown.expect("read"), None, "no picture to reply to");
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
