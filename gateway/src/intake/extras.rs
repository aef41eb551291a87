//! The buttons under a detection's answer: `Details` (a text listing each
//! object with its score and box), `Crops` (a picture of each object, cut
//! by a detector: a job of its own, answered through Results like any
//! other) and `Original` (the full-resolution annotated copy, as a
//! document). Every press is answered once (`answerCallbackQuery`); each
//! extra is sent once per answer, however often and on whichever gateway
//! its button is pressed: a claim in the table ([`ClaimKey::Extra`]), so a
//! second press gets a short toast and no new message. A button under a
//! prediction past retention (its record gone) says so.

use polybot_domain::{
    AnswerButton, AnswerExtra, ChatId, Job, JobResult, Lang, ObjectKey, PredictionId,
    PredictionSummary, t,
};
use polybot_storage::{ClaimKey, Once, StorageError, run_once};
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::messenger::{CallbackQueryId, Document, MessengerError};

/// How long one press may work on its extra before another may.
const EXTRA_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

impl Intake {
    /// A pressed `Details`, `Crops` or `Original` under the answer
    /// `message_id`.
    pub(super) async fn send_extra(
        &self,
        chat: ChatId,
        message_id: i64,
        query: &CallbackQueryId,
        button: AnswerButton,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let extra = button.extra;
        let Some(summary) = self.detection(chat, button.prediction).await? else {
            info!(%extra, "a button under an expired answer");
            return self.toast(query, &t!(lang, "toast-expired")).await;
        };
        if extra == AnswerExtra::Original && summary.full_img_path.is_none() {
            return self.toast(query, &t!(lang, "toast-no-original")).await;
        }
        let key = ClaimKey::Extra(button.prediction, extra);
        let work = async {
            // Answered first: the button spins until it is, and cutting
            // crops takes a while. A retry finds the query answered.
            let toast = match extra {
                AnswerExtra::Details => t!(lang, "toast-details"),
                AnswerExtra::Crops => t!(lang, "toast-crops"),
                AnswerExtra::Original => t!(lang, "toast-original"),
            };
            self.toast(query, &toast).await?;
            match extra {
                AnswerExtra::Details => {
                    let text = summary.details_text(crate::answers::DETAILS_MAX_CHARS, lang);
                    self.answer(chat, message_id, &text).await
                }
                AnswerExtra::Original => self.send_original(chat, message_id, &summary, lang).await,
                AnswerExtra::Crops => self.ask_for_crops(chat, message_id, &summary, lang).await,
            }
        };
        match run_once(&*self.backends.table, key, EXTRA_LEASE, work).await? {
            Once::Ran(handled) => {
                info!(%extra, "sent an answer's extra");
                Ok(handled)
            }
            Once::Done => {
                info!(%extra, "a second press of a button");
                self.toast(query, &t!(lang, "toast-already-sent")).await
            }
            Once::Busy => self.toast(query, &t!(lang, "toast-on-its-way")).await,
        }
    }

    /// The detection of `prediction`, if it is this chat's and still kept.
    async fn detection(
        &self,
        chat: ChatId,
        prediction: PredictionId,
    ) -> Result<Option<PredictionSummary>, IntakeError> {
        let record = self.backends.table.get(prediction).await?;
        Ok(match record {
            Some(r) if r.chat_id == chat => match r.result {
                Some(JobResult::Detected(summary)) => Some(summary),
                _ => None,
            },
            _ => None,
        })
    }

    /// Answers a press with `toast`; a press Telegram no longer lets us
    /// answer (too old, answered) needs nothing more.
    pub(super) async fn toast(
        &self,
        query: &CallbackQueryId,
        toast: &str,
    ) -> Result<Handled, IntakeError> {
        match self.messenger.answer_button(query, Some(toast)).await {
            Ok(()) | Err(MessengerError::Rejected(_)) => Ok(Handled::Answered),
            Err(e) => Err(e.into()),
        }
    }

    async fn send_original(
        &self,
        chat: ChatId,
        message_id: i64,
        summary: &PredictionSummary,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let Some(path) = &summary.full_img_path else {
            return Ok(Handled::Answered);
        };
        let key = ObjectKey::parse(path.clone())
            .map_err(|e| StorageError::invalid_from("a stored path", e))?;
        let document = Document {
            bytes: self.backends.objects.get(&key).await?,
            file_name: "detections-full-resolution.jpg",
            mime: "image/jpeg",
            caption: crate::answers::full_resolution_caption(lang),
        };
        match self
            .messenger
            .send_document(chat, document, Some(message_id))
            .await
        {
            Ok(_) => Ok(Handled::Answered),
            Err(MessengerError::Rejected(reason)) => {
                info!(%reason, "Telegram refused the full-resolution photo");
                Ok(Handled::Answered)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Queues a detector's job that cuts the objects out of the original
    /// photo; its answer quotes the detection's answer.
    async fn ask_for_crops(
        &self,
        chat: ChatId,
        message_id: i64,
        summary: &PredictionSummary,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let original = ObjectKey::parse(summary.original_img_path.clone())
            .map_err(|e| StorageError::invalid_from("a stored path", e))?;
        let of = summary.prediction_id;
        let id = PredictionId::derived(of, AnswerExtra::Crops.as_str());
        self.submit(Job::crops(id, chat, message_id, original, of).in_language(lang))
            .await
    }
}
