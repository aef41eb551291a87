//! The photo path: a photo (or a picture sent as a file) is downloaded
//! within the size limit, stored under its update's key, recorded and
//! queued as one job; a photo it cannot take is answered instead.

use polybot_domain::{
    ChatId, FailureKind, Job, JobKind, Lang, ObjectKey, PredictionId, PredictionRecord,
    PredictionStatus, UpdateId,
};
use polybot_storage::{Attributes, PutMode, StorageError, Tenant};
use tracing::{Instrument, info, warn};

use super::{Handled, Intake, IntakeError};
use crate::inbound::PhotoRef;
use crate::messenger::MessengerError;

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
        let prediction_id = job.prediction_id;
        // The chat's settings as they are now travel with the job.
        let settings = self.backends.table.chat_settings(job.chat_id).await?;
        let job = job.with_settings(settings);
        let created = self
            .backends
            .table
            .create(&PredictionRecord::pending(&job))
            .instrument(tracing::info_span!("save prediction"))
            .await;
        match created {
            Ok(()) => {}
            Err(StorageError::AlreadyExists(_)) => {
                // An earlier delivery got this far; if its job already ran,
                // there is nothing left to do.
                let existing = self.backends.table.get(prediction_id).await?;
                if existing.is_some_and(|r| r.status != PredictionStatus::Pending) {
                    info!(%prediction_id, "an earlier delivery's job already ran");
                    return Ok(Handled::Duplicate);
                }
            }
            Err(e) => return Err(e.into()),
        }
        // The producer span: its context travels in the message attributes,
        // so the detector's job span continues this trace as its child.
        let publish = tracing::info_span!(
            "jobs.publish",
            otel.name = "jobs publish",
            otel.kind = "producer",
            messaging.system = self.backends.jobs.messaging_system(),
            messaging.operation.type = "send",
            messaging.destination.name = "jobs",
            prediction_id = %prediction_id,
        );
        async {
            let mut attributes = Attributes::new();
            attributes.insert("schema_version".into(), job.schema_version().to_string());
            polybot_telemetry::inject_context(&mut attributes);
            let tenant = Tenant::chat(job.chat_id);
            self.backends
                .jobs
                .send_for(Some(&tenant), &job.to_json(), &attributes)
                .await
        }
        .instrument(publish)
        .await?;
        info!(%prediction_id, kind = %job.input.action(), photos = job.input.photo_count(), "photo queued");
        Ok(Handled::Queued(prediction_id))
    }
}
