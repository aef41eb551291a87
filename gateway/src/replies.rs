//! Replying to the user when a job ends, exactly once per prediction: a
//! lease in the prediction table makes a repeated report (a redelivered job,
//! a retried RPC) a no-op, and a failed send releases the lease so the
//! report can be retried.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{ObjectKey, PredictionSummary};
use polybot_proto::{Outcome, Report};
use polybot_storage::{Backends, Claim, ClaimKey, StorageError};
use tracing::{info, warn};

use crate::messenger::{Messenger, MessengerError};

const REPLY_LEASE: Duration = Duration::from_secs(60);

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
}

impl ReplyError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_retryable(),
            Self::Messenger(e) => e.is_retryable(),
            Self::InProgress => true,
        }
    }
}

#[derive(Clone)]
pub struct Replier {
    backends: Backends,
    messenger: Arc<dyn Messenger>,
}

impl Replier {
    pub fn new(backends: Backends, messenger: Arc<dyn Messenger>) -> Self {
        Self {
            backends,
            messenger,
        }
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    #[tracing::instrument(skip_all, fields(prediction_id = %report.prediction_id, chat_id = report.chat_id.0))]
    pub async fn reply(&self, report: &Report) -> Result<Replied, ReplyError> {
        let key = ClaimKey::Reply(report.prediction_id);
        let lease = match self.backends.table.claim(key, REPLY_LEASE).await? {
            Claim::Done => {
                info!("duplicate report; the reply was sent before");
                return Ok(Replied::Duplicate);
            }
            Claim::InProgress => return Err(ReplyError::InProgress),
            Claim::Acquired(lease) => lease,
        };
        match self.send(report).await {
            Ok(()) => {
                self.finish(key).await;
                Ok(Replied::Sent)
            }
            Err(ReplyError::Messenger(MessengerError::Rejected(reason))) => {
                warn!(%reason, "Telegram refused the reply; giving up on this chat");
                self.finish(key).await;
                Ok(Replied::Undeliverable)
            }
            Err(e) => {
                if let Err(release) = self.backends.table.release(key, lease).await {
                    warn!(error = %release, "could not release the reply lease");
                }
                Err(e)
            }
        }
    }

    async fn finish(&self, key: ClaimKey) {
        if let Err(e) = self.backends.table.finish(key).await {
            // The reply went out; a repeat report within the lease is still
            // refused, so the worst case is a duplicate much later.
            warn!(error = %e, "could not record that the reply was sent");
        }
    }

    async fn send(&self, report: &Report) -> Result<(), ReplyError> {
        let chat = report.chat_id;
        match &report.outcome {
            Outcome::Success(summary) => {
                let annotated = self.annotated_image(summary).await?;
                let caption = summary.counts_text();
                info!(objects = summary.labels.len(), %caption, "replying with detections");
                self.messenger
                    .send_photo(chat, annotated, &caption, report.reply_to_message_id)
                    .await?;
            }
            Outcome::Failure { kind, detail } => {
                info!(kind = kind.as_str(), %detail, "replying with a failure");
                self.backends
                    .table
                    .save_failure(report.prediction_id, *kind)
                    .await?;
                self.messenger
                    .send_text(chat, kind.user_message(), report.reply_to_message_id)
                    .await?;
            }
        }
        Ok(())
    }

    async fn annotated_image(
        &self,
        summary: &PredictionSummary,
    ) -> Result<bytes::Bytes, ReplyError> {
        let key = ObjectKey::parse(summary.predicted_img_path.clone())
            .map_err(|e| StorageError::Invalid(e.to_string()))?;
        Ok(self.backends.objects.get(&key).await?)
    }
}
