//! Turning a user's message into a durable detection job, exactly once per
//! Telegram update, or into a friendly answer when there is nothing to detect.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{
    FailureKind, JOB_SCHEMA_VERSION, Job, ObjectKey, PredictionId, PredictionRecord,
    PredictionStatus, now_epoch,
};
use polybot_storage::{Attributes, Backends, Claim, ClaimKey, PutMode, StorageError};
use tracing::{Instrument, info, warn};

use crate::inbound::{Inbound, PhotoRef};
use crate::messenger::{Messenger, MessengerError};

pub const HELP_TEXT: &str = "Hi! Send me a photo and I'll tell you what's in it: \
I reply with the objects I can see, such as \u{201c}person \u{d7}2, car \u{d7}1\u{201d}, \
and the photo with a box drawn around each of them. You can also send a picture as a file.";

pub const PROCESSING_TEXT: &str = "Got it! Looking for objects in your photo\u{2026}";

/// How long one delivery may work on an update before another may take over.
const UPDATE_LEASE: Duration = Duration::from_secs(60);

/// What became of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Queued(PredictionId),
    Answered,
    Duplicate,
    Ignored,
}

impl Handled {
    /// Bounded label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued(_) => "queued",
            Self::Answered => "answered",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    #[error("another delivery of this update is being handled")]
    InProgress,
}

impl IntakeError {
    /// Whether Telegram should deliver the update again (we answer 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Messenger(e) => e.is_retryable(),
            Self::InProgress => true,
        }
    }
}

pub struct Intake {
    backends: Backends,
    messenger: Arc<dyn Messenger>,
    max_download: u64,
    messaging_system: &'static str,
}

impl Intake {
    pub fn new(backends: Backends, messenger: Arc<dyn Messenger>, max_download: u64) -> Self {
        Self {
            backends,
            messenger,
            max_download,
            messaging_system: "local",
        }
    }

    /// `messaging.system` on the enqueue span (`aws_sqs` or `local`).
    pub fn with_messaging_system(mut self, system: &'static str) -> Self {
        self.messaging_system = system;
        self
    }

    /// Handles one update. `Ok` means Telegram may forget it; a retryable
    /// error means it must deliver it again, and nothing durable was left
    /// half-done that a retry would duplicate.
    #[tracing::instrument(
        name = "telegram.update",
        skip_all,
        fields(
            update_id = inbound.update_id().0,
            chat_id = inbound.chat().map(|c| c.0),
            prediction_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    )]
    pub async fn handle(&self, inbound: Inbound) -> Result<Handled, IntakeError> {
        if let Inbound::Ignored { kind, .. } = &inbound {
            info!(kind, "ignoring an update with nothing to answer");
            tracing::Span::current().record("outcome", "ignored");
            return Ok(Handled::Ignored);
        }
        let key = ClaimKey::Update(inbound.update_id());
        let lease = match self.backends.table.claim(key, UPDATE_LEASE).await? {
            Claim::Done => {
                info!("duplicate delivery of an update already handled");
                tracing::Span::current().record("outcome", "duplicate");
                return Ok(Handled::Duplicate);
            }
            Claim::InProgress => return Err(IntakeError::InProgress),
            Claim::Acquired(lease) => lease,
        };
        let result = self.process(&inbound).await;
        match &result {
            Ok(_) => {
                if let Err(e) = self.backends.table.finish(key).await {
                    // The job is durable; at worst a redelivery after the
                    // lease expires makes a second one.
                    warn!(error = %e, "could not mark the update handled");
                }
            }
            Err(e) => {
                if let Err(release) = self.backends.table.release(key, lease).await {
                    warn!(error = %release, "could not release the update lease; a retry waits for it to expire");
                }
                warn!(error = %e, retryable = e.is_retryable(), "could not handle the update");
            }
        }
        if let Ok(h) = &result {
            tracing::Span::current().record("outcome", h.as_str());
        }
        result
    }

    async fn process(&self, inbound: &Inbound) -> Result<Handled, IntakeError> {
        match inbound {
            Inbound::Ignored { .. } => Ok(Handled::Ignored),
            Inbound::Other {
                chat,
                message_id,
                what,
                ..
            } => {
                info!(what, "answering with help");
                self.messenger
                    .send_text(*chat, HELP_TEXT, Some(*message_id))
                    .await?;
                Ok(Handled::Answered)
            }
            Inbound::Photo {
                update_id,
                chat,
                message_id,
                photo,
            } => {
                self.accept_photo(*update_id, *chat, *message_id, photo)
                    .await
            }
        }
    }

    async fn accept_photo(
        &self,
        update_id: polybot_domain::UpdateId,
        chat: polybot_domain::ChatId,
        message_id: i64,
        photo: &PhotoRef,
    ) -> Result<Handled, IntakeError> {
        let refuse = |kind: FailureKind| async move {
            self.messenger
                .send_text(chat, kind.user_message(), Some(message_id))
                .await?;
            Ok::<_, IntakeError>(Handled::Answered)
        };
        if photo.size > self.max_download {
            info!(size = photo.size, "photo over the download limit");
            return refuse(FailureKind::TooLarge).await;
        }
        let bytes = match self
            .messenger
            .download(&photo.file_id, self.max_download)
            .await
        {
            Ok(b) => b,
            Err(MessengerError::TooLarge { .. }) => return refuse(FailureKind::TooLarge).await,
            Err(MessengerError::Rejected(reason)) => {
                warn!(%reason, "Telegram would not serve the file");
                return refuse(FailureKind::NotAnImage).await;
            }
            Err(e) => return Err(e.into()),
        };

        let prediction_id = PredictionId::new();
        let original_key = ObjectKey::original(chat, prediction_id, photo.extension);
        tracing::Span::current().record("prediction_id", tracing::field::display(prediction_id));
        let store = tracing::info_span!(
            "store original",
            key = %original_key,
            size = bytes.len(),
        );
        self.backends
            .objects
            .put(
                &original_key,
                bytes,
                &photo.content_type,
                PutMode::CreateOnly,
            )
            .instrument(store)
            .await?;
        let now = now_epoch();
        self.backends
            .table
            .create(&PredictionRecord {
                prediction_id,
                chat_id: chat,
                status: PredictionStatus::Pending,
                original_key: original_key.clone(),
                summary: None,
                failure: None,
                created_at: now,
                updated_at: now,
            })
            .instrument(tracing::info_span!("save prediction"))
            .await?;
        let job = Job {
            schema_version: JOB_SCHEMA_VERSION,
            prediction_id,
            chat_id: chat,
            message_id,
            update_id,
            original_key,
            submitted_at: now,
        };
        // The producer span: its context travels in the message attributes,
        // so the detector's job span continues this trace as its child.
        let publish = tracing::info_span!(
            "jobs.publish",
            otel.name = "jobs publish",
            otel.kind = "producer",
            messaging.system = self.messaging_system,
            messaging.operation.type = "send",
            messaging.destination.name = "jobs",
            prediction_id = %prediction_id,
        );
        async {
            let mut attributes = Attributes::new();
            attributes.insert("schema_version".into(), JOB_SCHEMA_VERSION.to_string());
            polybot_telemetry::inject_context(&mut attributes);
            self.backends.jobs.send(&job.to_json(), &attributes).await
        }
        .instrument(publish)
        .await?;
        info!(%prediction_id, "photo queued for detection");

        // The job is durable now: failing to say "processing" must not make
        // Telegram redeliver the update.
        if let Err(e) = self
            .messenger
            .send_text(chat, PROCESSING_TEXT, Some(message_id))
            .await
        {
            warn!(error = %e, "could not send the processing notice");
        }
        Ok(Handled::Queued(prediction_id))
    }
}
