//! Where every request enters the mesh: recorded as a pending prediction,
//! then put on the queue with its trace context, for a chat's photo
//! (intake) and an operator's (`Detect`) alike.

use polybot_domain::{Job, PredictionId, PredictionRecord, PredictionStatus};
use polybot_storage::{Attributes, Backends, StorageError, Tenant};
use tracing::{Instrument, info};

/// What [`submit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// The job is on the queue (again, for a repeated request whose job
    /// had not run: the reply claim answers it once).
    Queued(PredictionId),
    /// An earlier submission's job already ran: nothing was queued.
    AlreadyRan,
}

/// Records the request and puts its job on the queue (idempotent on the
/// prediction id). The chat's settings as they are now travel with the
/// job.
pub async fn submit(backends: &Backends, job: Job) -> Result<Submitted, StorageError> {
    let prediction_id = job.prediction_id;
    let settings = backends.table.chat_settings(job.chat_id).await?;
    let job = job.with_settings(settings);
    let created = backends
        .table
        .create(&PredictionRecord::pending(&job))
        .instrument(tracing::info_span!("save prediction"))
        .await;
    match created {
        Ok(()) => {}
        Err(StorageError::AlreadyExists(_)) => {
            // An earlier delivery got this far; if its job already ran,
            // there is nothing left to do.
            let existing = backends.table.get(prediction_id).await?;
            if existing.is_some_and(|r| r.status != PredictionStatus::Pending) {
                info!(%prediction_id, "an earlier delivery's job already ran");
                return Ok(Submitted::AlreadyRan);
            }
        }
        Err(e) => return Err(e),
    }
    // The producer span: its context travels in the message attributes, so
    // the detector's job span continues this trace as its child.
    let publish = tracing::info_span!(
        "jobs.publish",
        otel.name = "jobs publish",
        otel.kind = "producer",
        messaging.system = backends.jobs.messaging_system(),
        messaging.operation.type = "send",
        messaging.destination.name = "jobs",
        prediction_id = %prediction_id,
    );
    async {
        let mut attributes = Attributes::new();
        attributes.insert("schema_version".into(), job.schema_version().to_string());
        polybot_telemetry::inject_context(&mut attributes);
        let tenant = Tenant::chat(job.chat_id);
        backends
            .jobs
            .send_for(Some(&tenant), &job.to_json(), &attributes)
            .await
    }
    .instrument(publish)
    .await?;
    info!(%prediction_id, kind = %job.input.action(), photos = job.input.photo_count(), "photo queued");
    Ok(Submitted::Queued(prediction_id))
}
