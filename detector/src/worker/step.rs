//! The job step: a delivery in, a deleted message out. Parse the job, keep
//! its message invisible (the heartbeat), run it within its deadline
//! (`JobStep::handle` picks the handler for its input), report it, and
//! delete the message only once the report is acknowledged.
//!
//! A permanent failure (not an image) is reported and the job deleted;
//! storage that is down is waited for in place (`patience.rs`); any other
//! transient failure is left for redelivery, and after N receives the queue
//! dead-letters it (the gateway then tells the user). Past its deadline a
//! job ends as a failure the user is told about, and the heartbeat stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use polybot_domain::{AlbumAction, FailureKind, Job, JobInput, now_epoch};
use polybot_proto::{Outcome, Report};
use polybot_storage::Delivery;
use tracing::{Instrument, error, info, warn};

use super::config::{GAVE_UP_REPORT_WINDOW, WorkerConfig};
use super::heartbeat::keep_invisible;
use super::job::{Album, Done, JobStep, Photo, Place, RetryLater, report_for};
use super::ports::{Lane, ResultsSink};
use super::reporting::report_until;
use super::{album, concat, crops, photo, video};

/// What every job of a running worker shares.
pub(super) struct Ctx {
    pub step: JobStep,
    pub results: Arc<dyn ResultsSink>,
    pub config: WorkerConfig,
    /// What the heartbeat sets, checked against the queue at start-up.
    pub visibility: Duration,
}

impl JobStep {
    /// Runs `job` up to the report that answers it, on a lane it reserves:
    /// a success, or a failure the user is told about; `None` when its
    /// prediction is gone (the chat was erased meanwhile: nothing is
    /// stored and nobody answered). `Err` is transient: leave the message
    /// for redelivery.
    pub async fn run(&self, job: &Job) -> Result<Option<Report>, RetryLater> {
        let lane = self.engine.reserve().await.map_err(RetryLater::Engine)?;
        self.handle(job, lane).await
    }

    /// [`JobStep::run`] on a lane reserved before the job was received.
    pub(super) async fn handle(&self, job: &Job, lane: Lane) -> Result<Option<Report>, RetryLater> {
        let (done, started, hook) = match &job.input {
            JobInput::Photo { original_key, kind } => {
                let bytes = match self.fetch(original_key).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        // The photo is gone and will not come back: tell the user.
                        let detail = format!("fetching the photo: {e}");
                        return Ok(Some(report_for(
                            job,
                            failure(FailureKind::Internal, detail),
                        )));
                    }
                };
                let started = Instant::now();
                let one = Photo {
                    place: Place::Own,
                    original_key,
                    bytes,
                    lane,
                };
                let done = photo::run(self, job, one, *kind).await?;
                // The reporter's per-job time is a single photo's.
                (done, started, self.on_processed.as_ref())
            }
            JobInput::Album {
                photos,
                action,
                skipped,
            } => {
                let fetched = self.fetch_all(photos).await;
                let started = Instant::now();
                let album = Album {
                    photos,
                    skipped,
                    fetched,
                    lane,
                };
                let done = match *action {
                    AlbumAction::Each(kind) => album::each(self, job, album, kind).await?,
                    AlbumAction::Concat(direction) => {
                        concat::run(self, job, album, direction).await?
                    }
                };
                (done, started, None)
            }
            JobInput::Crops { original_key, of } => {
                let started = Instant::now();
                let done = crops::run(self, job, original_key, *of, lane).await?;
                (done, started, None)
            }
            JobInput::Video { original_key, clip } => {
                let started = Instant::now();
                let done = video::run(self, job, original_key, *clip, lane).await?;
                (done, started, None)
            }
        };
        match done {
            Done::Refused(kind, detail) => Ok(Some(report_for(job, failure(kind, detail)))),
            Done::Made(result) => {
                crate::metrics::processing(started.elapsed().as_secs_f64());
                if let Some(hook) = hook {
                    (hook.0)(started.elapsed());
                }
                self.save_success(job, result).await
            }
        }
    }
}

fn failure(kind: FailureKind, detail: String) -> Outcome {
    Outcome::Failure { kind, detail }
}

/// One delivery, from parsing to the deleted message (or the message left
/// for redelivery), on `lane`.
pub(super) async fn process(ctx: &Ctx, delivery: Delivery, lane: Lane) {
    let span = tracing::info_span!(
        "detector.job",
        otel.name = "jobs process",
        otel.kind = "consumer",
        messaging.system = ctx.step.backends.jobs.messaging_system(),
        messaging.operation.type = "process",
        messaging.destination.name = "jobs",
        messaging.message.delivery_count = delivery.receive_count,
        prediction_id = tracing::field::Empty,
        chat_id = tracing::field::Empty,
        update_id = tracing::field::Empty,
    );
    // Before the span is entered: the parent is the gateway's publish span.
    polybot_telemetry::set_parent_from(&span, &delivery.attributes);
    async move {
        crate::metrics::job_received();
        crate::metrics::queue_wait(now_epoch() - delivery.sent_at);
        let job = match Job::parse(&delivery.body) {
            Ok(j) => j,
            Err(e) => {
                // Nobody to tell; after N receives the queue dead-letters it
                // and the DLQ alarm tells operators.
                error!(error = %e, "unreadable job left for the dead-letter queue");
                crate::metrics::job_failed("unreadable");
                return;
            }
        };
        let span = tracing::Span::current();
        span.record("prediction_id", tracing::field::display(job.prediction_id));
        span.record("chat_id", job.chat_id.0);
        span.record("update_id", job.update_id.0);

        // The heartbeat runs until the job is reported or given up, and
        // the job is bounded by its deadline, so no message stays
        // invisible for ever.
        let deadline = tokio::time::Instant::now() + ctx.config.deadline_for(&job);
        let queue = ctx.step.backends.jobs.as_ref();
        tokio::select! {
            () = run_job(ctx, &job, &delivery, lane, deadline) => {}
            () = keep_invisible(queue, &delivery.receipt, ctx.visibility) => {}
        }
    }
    .instrument(span)
    .await
}

/// Runs and reports one job within its deadline; deletes the message once
/// the report is acknowledged.
async fn run_job(
    ctx: &Ctx,
    job: &Job,
    delivery: &Delivery,
    lane: Lane,
    deadline: tokio::time::Instant,
) {
    let mut report_deadline = deadline;
    let report = match tokio::time::timeout_at(deadline, ctx.step.handle(job, lane)).await {
        Ok(Ok(Some(report))) => report,
        Ok(Ok(None)) => {
            // The chat was erased while the job ran: nobody to answer.
            end_unreported(ctx, job, delivery).await;
            return;
        }
        Ok(Err(e)) => {
            warn!(error = %chain(&e), "transient failure; the job will be delivered again");
            crate::metrics::job_failed("transient");
            return;
        }
        Err(_) => {
            let limit = ctx.config.deadline_for(job);
            warn!(?limit, "the job ran past its limit; it ends as a failure");
            let detail = format!("the job took longer than its {}s limit", limit.as_secs());
            report_deadline = tokio::time::Instant::now() + GAVE_UP_REPORT_WINDOW;
            report_for(job, failure(FailureKind::GaveUp, detail))
        }
    };
    let failed = matches!(report.outcome, Outcome::Failure { .. });
    match report_until(ctx.results.as_ref(), &report, report_deadline).await {
        Ok(duplicate) => {
            if let Err(e) = ctx.step.backends.jobs.delete(&delivery.receipt).await {
                warn!(error = %e, "could not delete the finished job; a redelivery will be deduplicated");
            }
            if let Outcome::Failure { kind, .. } = &report.outcome {
                crate::metrics::job_failed(kind.as_str());
            } else {
                crate::metrics::job_succeeded();
            }
            crate::metrics::end_to_end(now_epoch() - job.submitted_at);
            remove_cost(ctx, job).await;
            info!(duplicate, failed, "job done and reported");
        }
        Err(e) => {
            warn!(
                error = %chain(&e),
                "Results did not acknowledge within the job's limit; the job will be delivered again"
            );
            crate::metrics::job_failed("report");
        }
    }
}

/// Ends a job whose prediction is gone without a report: its message is
/// deleted (a redelivery would find it gone again) and its cost removed.
async fn end_unreported(ctx: &Ctx, job: &Job, delivery: &Delivery) {
    if let Err(e) = ctx.step.backends.jobs.delete(&delivery.receipt).await {
        warn!(error = %e, "could not delete the job of an erased chat; a redelivery ends the same way");
    }
    crate::metrics::job_failed("erased");
    remove_cost(ctx, job).await;
}

/// A clip's cost stops counting in the scaling backlog once its job ends.
async fn remove_cost(ctx: &Ctx, job: &Job) {
    if let JobInput::Video { .. } = job.input {
        let table = &ctx.step.backends.table;
        if let Err(e) = table.remove_cost(job.prediction_id).await {
            warn!(error = %e, "could not remove the clip's cost from the backlog; it expires");
        }
    }
}

/// An error and its causes on one line, for a log field.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
