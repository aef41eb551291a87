//! The gateway's background loops: answering jobs that reached the
//! dead-letter queue (with the stored result when the prediction succeeded
//! after all, see [`Replier`]), and long polling Telegram when there is no
//! webhook.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{FailureKind, Job};
use polybot_proto::{Outcome, Report};
use polybot_storage::JobQueue;
use teloxide::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};

use crate::inbound;
use crate::intake::Intake;
use crate::replies::Replier;

/// Takes jobs off the dead-letter queue and tells their users, so that no
/// accepted photo goes unanswered even when every retry failed.
pub async fn dead_letters(
    dlq: Arc<dyn JobQueue>,
    replier: Replier,
    wait: Duration,
    cancel: CancellationToken,
) {
    // The jobs queue's receive limit, for the log and the record: the dead
    // letter's own receive count also counts the receives from this queue.
    let max_receives = match replier.backends().jobs.settings().await {
        Ok(settings) => settings.max_receives,
        Err(e) => {
            warn!(error = %e, "could not read the jobs queue's receive limit");
            None
        }
    };
    loop {
        let deliveries = tokio::select! {
            _ = cancel.cancelled() => return,
            r = dlq.receive(10, wait) => r,
        };
        let deliveries = match deliveries {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "could not read the dead-letter queue");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        for d in deliveries {
            let span = tracing::info_span!("dead_letter", prediction_id = tracing::field::Empty);
            polybot_telemetry::set_parent_from(&span, &d.attributes);
            async {
                let job = match Job::parse(&d.body) {
                    Ok(job) => job,
                    Err(e) => {
                        // No chat to answer. Keep it for operators (the DLQ
                        // alarm fires) but stop re-reading it every poll.
                        error!(error = %e, body = %d.body, "unreadable job in the dead-letter queue");
                        crate::metrics::dead_letter("unreadable");
                        let _ = dlq.set_visibility(&d.receipt, Duration::from_secs(12 * 3600)).await;
                        return;
                    }
                };
                tracing::Span::current().record("prediction_id", tracing::field::display(job.prediction_id));
                let report = Report {
                    prediction_id: job.prediction_id,
                    chat_id: job.chat_id,
                    reply_to_message_id: Some(job.message_id),
                    outcome: Outcome::Failure {
                        kind: FailureKind::GaveUp,
                        detail: match max_receives {
                            Some(n) => format!("dead-lettered after {n} receives"),
                            None => "dead-lettered after the jobs queue's receive limit".to_owned(),
                        },
                    },
                };
                match replier.reply(&report).await {
                    Ok(replied) => {
                        info!(?replied, "answered a dead-lettered job");
                        crate::metrics::dead_letter("answered");
                        if let Err(e) = dlq.delete(&d.receipt).await {
                            warn!(error = %e, "could not delete the dead letter; it will be read again and deduplicated");
                        }
                    }
                    Err(e) => {
                        crate::metrics::dead_letter("error");
                        warn!(error = %e, "could not answer a dead-lettered job yet");
                    }
                }
            }
            .instrument(span)
            .await;
        }
    }
}

/// Long polling: for running with a real token without a public URL. Each
/// update goes through the same intake as a webhook delivery, and the offset
/// only moves past an update once it was handled, so nothing is lost.
pub async fn long_poll(bot: Bot, intake: Arc<Intake>, cancel: CancellationToken) {
    if let Err(e) = bot.delete_webhook().await {
        warn!(error = %e, "could not remove the webhook before polling");
    }
    let mut offset: i32 = 0;
    loop {
        let mut request = bot.get_updates().offset(offset).timeout(25);
        request.allowed_updates = None;
        let updates = tokio::select! {
            _ = cancel.cancelled() => return,
            r = request.send() => r,
        };
        let updates = match updates {
            Ok(u) => u,
            Err(e) => {
                warn!(error = %e, "getUpdates failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        for update in updates {
            let parsed = inbound::parse(&update);
            let span = tracing::info_span!("telegram.update", update_id = update.id.0);
            loop {
                match intake.handle(parsed.clone()).instrument(span.clone()).await {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() => {
                        warn!(error = %e, "will retry this update");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "update failed for good");
                        break;
                    }
                }
            }
            offset = offset.max(update.id.0 as i32 + 1);
        }
    }
}
