//! The photo path: a photo (or a picture sent as a file) is downloaded
//! within the size limit, stored under its update's key, recorded and
//! queued as one job; a photo it cannot take is answered instead.

use polybot_domain::{ChatId, FailureKind, Job, JobKind, Lang, ObjectKey, PredictionId, UpdateId};
use polybot_storage::{PutMode, StorageError};
use tracing::{Instrument, info, warn};

use super::{Handled, Intake, IntakeError};
use crate::inbound::PhotoRef;
use crate::messenger::MessengerError;
use crate::submit::Submitted;

impl Intake {
    /// Downloads the photo and stores it under this update's key; `None`
    /// when the photo was answered instead (too large, not an image).
    pub(super) async fn store_original(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
        lang: Lang,
    ) -> Result<Option<ObjectKey>, IntakeError> {
        match self.fetch_original(update_id, chat, photo).await? {
            Ok(key) => Ok(Some(key)),
            Err(kind) => self
                .answer(chat, message_id, &kind.user_message(lang))
                .await
                .map(|_| None),
        }
    }

    /// Downloads the photo and stores it under this update's key, or says
    /// why it cannot be taken (too large, not an image).
    pub(super) async fn fetch_original(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        photo: &PhotoRef,
    ) -> Result<Result<ObjectKey, FailureKind>, IntakeError> {
        if photo.size > self.max_download {
            info!(size = photo.size, "photo over the download limit");
            return Ok(Err(FailureKind::TooLarge));
        }
        let bytes = match self
            .messenger
            .download(&photo.file_id, self.max_download)
            .await
        {
            Ok(b) => b,
            Err(MessengerError::TooLarge { .. }) => {
                return Ok(Err(FailureKind::TooLarge));
            }
            Err(MessengerError::Rejected(reason)) => {
                warn!(%reason, "Telegram would not serve the file");
                return Ok(Err(FailureKind::NotAnImage));
            }
            Err(e) => return Err(e.into()),
        };
        let original_key = ObjectKey::original(
            chat,
            PredictionId::for_update(self.bot, update_id),
            photo.extension,
        );
        let store = tracing::info_span!(
            "store original",
            key = %original_key,
            size = bytes.len(),
        );
        match self
            .backends
            .objects
            .put(
                &original_key,
                bytes,
                &photo.content_type,
                PutMode::CreateOnly,
            )
            .instrument(store)
            .await
        {
            // An earlier delivery stored this very photo.
            Ok(()) | Err(StorageError::AlreadyExists(_)) => Ok(Ok(original_key)),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn accept_photo(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
        kind: JobKind,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let stored = self.store_original(update_id, chat, message_id, photo, lang);
        let Some(original_key) = stored.await? else {
            return Ok(Handled::Answered);
        };
        let prediction_id = PredictionId::for_update(self.bot, update_id);
        tracing::Span::current().record("prediction_id", tracing::field::display(prediction_id));
        let job = Job::photo(
            prediction_id,
            chat,
            message_id,
            update_id,
            original_key,
            kind,
        )
        .in_language(lang);
        // Once the job is durable the update is done (run_once finishes
        // it): a job sent twice by two deliveries has one prediction id,
        // and the reply claim answers it once.
        self.submit(job).await
    }

    /// Records the request and puts its job on the queue (idempotent on
    /// the prediction id).
    pub(super) async fn submit(&self, job: Job) -> Result<Handled, IntakeError> {
        Ok(match crate::submit::submit(&self.backends, job).await? {
            Submitted::Queued(id) => Handled::Queued(id),
            Submitted::AlreadyRan => Handled::Duplicate,
        })
    }
}
