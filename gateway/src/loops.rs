//! The gateway's background loops: answering jobs that reached the
//! dead-letter queue (with the stored result when the prediction succeeded
//! after all, see [`Replier`]), long polling Telegram when there is no
//! webhook, and deleting what is past the retention where no TTL or
//! lifecycle rule does (the embedded backend).

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{FailureKind, Job, JobInput};
use polybot_proto::{Outcome, Report};
use polybot_storage::JobQueue;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};

use crate::botapi::ErrorClass;
use crate::inbound;
use crate::intake::Intake;
use crate::messenger::TelegramControl;
use crate::replies::Replier;

/// How long a dead letter no retry can answer stays out of sight before it
/// is read again (SQS's longest visibility timeout): it stays in the queue,
/// so the DLQ alarm still tells operators, without being re-read and
/// logged every poll for the queue's 14 days.
const KEPT_FOR_OPERATORS: Duration = Duration::from_secs(12 * 3600);

/// How often what is past the retention is looked for (the embedded
/// backend; on AWS the table's TTL and the bucket's lifecycle do it).
const SWEEP_EXPIRED_EVERY: Duration = Duration::from_secs(3600);

/// Deletes the records and pictures past the retention every
/// [`SWEEP_EXPIRED_EVERY`], the first time at start-up. Returns only on
/// cancel.
pub async fn sweep_expired(backends: polybot_storage::Backends, cancel: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_EXPIRED_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        match backends.sweep_expired(std::time::SystemTime::now()).await {
            Ok(swept) if swept.records + swept.pictures > 0 => {
                info!(
                    records = swept.records,
                    pictures = swept.pictures,
                    "deleted what is past the retention"
                );
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "could not delete what is past the retention; will try again")
            }
        }
    }
}

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
                        let _ = dlq.set_visibility(&d.receipt, KEPT_FOR_OPERATORS).await;
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
                    language: job.language,
                };
                match replier.reply(&report).await {
                    Ok(replied) => {
                        info!(?replied, "answered a dead-lettered job");
                        crate::metrics::dead_letter("answered");
                        if matches!(job.input, JobInput::Video { .. }) {
                            // Its cost stops counting in the backlog now,
                            // not at its entry's expiry.
                            let table = &replier.backends().table;
                            if let Err(e) = table.remove_cost(job.prediction_id).await {
                                warn!(error = %e, "could not remove a dead clip's cost from the backlog");
                            }
                        }
                        if let Err(e) = dlq.delete(&d.receipt).await {
                            warn!(error = %e, "could not delete the dead letter; it will be read again and deduplicated");
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        crate::metrics::dead_letter("error");
                        warn!(error = %e, "could not answer a dead-lettered job yet");
                    }
                    Err(e) => {
                        // No retry can answer it (its record is gone, the
                        // table refuses): kept for operators like an
                        // unreadable one, not re-read every poll.
                        crate::metrics::dead_letter("unanswerable");
                        error!(error = %e, "a dead-lettered job that cannot be answered");
                        let _ = dlq.set_visibility(&d.receipt, KEPT_FOR_OPERATORS).await;
                    }
                }
            }
            .instrument(span)
            .await;
        }
    }
}

/// Long polling: for running with a real token without a public URL. Each
/// update is parsed on its own (a malformed one cannot take the loop down)
/// and goes through the same intake as a webhook delivery; the offset only
/// moves past an update once it was handled or given up on (the intake
/// bounds its retries), so nothing is lost and nothing stalls the bot.
/// Run it as a supervised loop: it returns only on cancel.
pub async fn long_poll(
    api: Arc<dyn TelegramControl>,
    intake: Arc<Intake>,
    cancel: CancellationToken,
) {
    let no_params = serde_json::json!({});
    if let Err(e) = api
        .call("deleteWebhook", &no_params, crate::botapi::CALL_TIMEOUT)
        .await
    {
        warn!(error = %e, "could not remove the webhook before polling");
    }
    let mut offset: i64 = 0;
    let mut failures: u32 = 0;
    loop {
        let params = serde_json::json!({"offset": offset, "timeout": POLL_SECONDS});
        let updates = tokio::select! {
            _ = cancel.cancelled() => return,
            r = api.call("getUpdates", &params, Duration::from_secs(POLL_SECONDS + 15)) => {
                r.and_then(|v| crate::botapi::decode::<Vec<serde_json::Value>>("getUpdates", v))
            }
        };
        let updates = match updates {
            Ok(u) => {
                failures = 0;
                u
            }
            Err(e) => {
                failures += 1;
                let pause = match e.class() {
                    ErrorClass::RateLimited(after) => after,
                    _ => backoff(failures),
                };
                warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "getUpdates failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        for raw in updates {
            let Some(update_id) = inbound::update_id_of(&raw) else {
                // Its shape only: the update is a user's message, names and all.
                warn!(keys = %shape(&raw), "an update without an update_id; skipped");
                crate::intake::given_up("unreadable");
                continue;
            };
            let body = serde_json::to_vec(&raw).unwrap_or_default();
            let parsed = match inbound::parse_bytes(&body, intake.me()) {
                Ok(p) => p,
                Err(e) => {
                    warn!(error = %e, update_id = update_id.0, "an unreadable update; skipped");
                    crate::intake::given_up("unreadable");
                    offset = offset.max(update_id.0 + 1);
                    continue;
                }
            };
            let sender = inbound::sender_language(&body);
            let mut attempt = 0;
            loop {
                attempt += 1;
                match intake.handle_in(parsed.clone(), sender).await {
                    Ok(_) => break,
                    // The intake answers or skips once its retry budget
                    // for this update is spent, so this loop ends.
                    Err(e) => {
                        let pause = backoff(attempt);
                        warn!(error = %e, update_id = update_id.0, retry_in_ms = pause.as_millis() as u64, "will retry this update");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            }
            offset = offset.max(update_id.0 + 1);
        }
    }
}

/// Seconds one getUpdates long poll waits.
const POLL_SECONDS: u64 = 25;

/// 1 s, 2 s, 4 s … up to 30 s.
fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << exp).min(Duration::from_secs(30))
}

/// What an unreadable update looks like, for the logs without what it
/// says: its kind and its first few field names (Telegram's own names,
/// never the values, which are users' messages and names).
fn shape(raw: &serde_json::Value) -> String {
    const FIELDS: usize = 8;
    const LONGEST: usize = 32;
    match raw {
        serde_json::Value::Object(fields) => {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            let names: Vec<String> = names
                .into_iter()
                .take(FIELDS)
                .map(|k| k.chars().take(LONGEST).collect())
                .collect();
            let more = fields.len().saturating_sub(FIELDS);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("an object with {}{more}", names.join(", "))
        }
        serde_json::Value::Array(items) => format!("an array of {}", items.len()),
        serde_json::Value::String(_) => "a string".to_owned(),
        serde_json::Value::Number(_) => "a number".to_owned(),
        serde_json::Value::Bool(_) => "a boolean".to_owned(),
        serde_json::Value::Null => "null".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    //! The dead-letter loop against the embedded queues and a fake
    //! messenger: every dead letter is answered once and leaves the queue;
    //! one without a chat stays for operators.
    use polybot_domain::{ChatId, JobKind, Lang, PredictionRecord, PredictionStatus};
    use polybot_storage::{Attributes, Backends, QueueStats};

    use super::*;
    use crate::fake::{FakeMessenger, local_backends};

    async fn dead_job(backends: &Backends) -> Job {
        let job = Job::stored_photo(ChatId(42), 5, JobKind::Detect);
        backends
            .table
            .create(&PredictionRecord::pending(&job))
            .await
            .expect("create");
        job
    }

    /// `job` put on the dead-letter queue, as the redrive policy does.
    async fn dead_letter(backends: &Backends, job: &Job) {
        backends
            .dead_letters
            .send(&job.to_json(), &Attributes::new())
            .await
            .expect("send");
    }

    /// Runs the loop until the dead-letter queue looks like `until`.
    async fn drain(backends: &Backends, messenger: Arc<FakeMessenger>, until: QueueStats) {
        drain_until(backends, messenger, until, || true).await
    }

    /// [`drain`], and until `done` (the loop may receive a letter well
    /// before it has finished handling it).
    async fn drain_until(
        backends: &Backends,
        messenger: Arc<FakeMessenger>,
        until: QueueStats,
        done: impl Fn() -> bool,
    ) {
        let cancel = CancellationToken::new();
        let replier = Replier::new(backends.clone(), messenger);
        let task = tokio::spawn(dead_letters(
            backends.dead_letters.clone(),
            replier,
            Duration::from_millis(100),
            cancel.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stats = backends.dead_letters.stats().await.expect("stats");
            if stats == until && done() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dead-letter queue never reached {until:?}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        task.await.expect("the loop stops on cancel");
    }

    #[test]
    fn an_unreadable_update_is_logged_by_its_shape_not_by_what_the_user_wrote() {
        let raw = serde_json::json!({
            "message": {"text": "my address is 1 Main St", "from": {"first_name": "Ada"}},
            "edited": "call me on 555-0100",
        });
        let logged = shape(&raw);
        assert_eq!(logged, "an object with edited, message");
        for private in ["Main St", "Ada", "555-0100", "first_name"] {
            assert!(!logged.contains(private), "{logged}");
        }
        assert_eq!(shape(&serde_json::json!("Ada's secret")), "a string");
        let many: serde_json::Map<String, serde_json::Value> = (0..20)
            .map(|i| (format!("k{i:02}"), serde_json::Value::Null))
            .collect();
        assert!(shape(&serde_json::Value::Object(many)).ends_with("and 12 more"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_letter_gets_one_apology_even_when_delivered_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        let job = dead_job(&backends).await;
        for _ in 0..2 {
            dead_letter(&backends, &job).await;
        }
        let empty = QueueStats {
            visible: 0,
            in_flight: 0,
        };
        drain(&backends, messenger.clone(), empty).await;
        assert_eq!(
            messenger.sent(),
            vec![format!(
                "text: {}",
                FailureKind::GaveUp.user_message(Lang::En)
            )]
        );
        let record = backends
            .table
            .get(job.prediction_id)
            .await
            .expect("get")
            .expect("the record");
        assert_eq!(record.status, PredictionStatus::Failed);
        assert_eq!(record.failure, Some(FailureKind::GaveUp));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_letter_of_a_prediction_its_chat_erased_is_deleted_without_an_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        // Its prediction's record is gone: the chat erased it (`/forget`)
        // while the job was retried. Nothing is said, nothing re-created,
        // and the letter (which names the chat's photo) is not kept.
        let job = Job::stored_photo(ChatId(43), 6, JobKind::Detect);
        dead_letter(&backends, &job).await;
        let empty = QueueStats {
            visible: 0,
            in_flight: 0,
        };
        drain(&backends, messenger.clone(), empty).await;
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
        let record = backends.table.get(job.prediction_id).await.expect("get");
        assert!(record.is_none(), "not re-created: {record:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreadable_dead_letter_is_kept_for_operators() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        backends
            .dead_letters
            .send("not a job", &Attributes::new())
            .await
            .expect("send");
        let hidden = QueueStats {
            visible: 0,
            in_flight: 1,
        };
        drain(&backends, messenger.clone(), hidden).await;
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
    }
}
