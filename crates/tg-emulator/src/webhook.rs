//! Webhook delivery: posts queued updates to the bot's URL, in order, retrying
//! with backoff until the bot answers 2xx.
//!
//! Telegram retries a failed update for a long time and holds back the later
//! ones meanwhile; the emulator does the same but with a short, configurable
//! backoff so tests observe retries in milliseconds. One update is in flight
//! at a time (Telegram may use up to `max_connections`), which keeps delivery
//! order deterministic for tests.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use crate::{model::DeliveryAttempt, state::Shared, state::Webhook};

/// Header Telegram sets when `setWebhook` got a `secret_token`.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

struct Job {
    webhook: Webhook,
    seq: u64,
    update_id: i64,
    body: Value,
}

/// Runs until the emulator shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let initial = shared.config.webhook_initial_backoff;
    let mut backoff = initial;
    // Attempt counter for the queue entry at the front.
    let mut attempts: (u64, u32) = (0, 0);
    loop {
        let (job, mut changes) = {
            let state = shared.lock();
            let job = match (&state.webhook, state.pending.front()) {
                (Some(webhook), Some(front)) => Some(Job {
                    webhook: webhook.clone(),
                    seq: front.seq,
                    update_id: front.update_id,
                    body: front.body.clone(),
                }),
                _ => None,
            };
            (job, shared.subscribe())
        };
        let Some(job) = job else {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = changes.changed() => continue,
            }
        };

        if attempts.0 != job.seq {
            attempts = (job.seq, 0);
        }
        attempts.1 += 1;
        let attempt = attempts.1;
        let outcome = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            outcome = post(&shared, &job) => outcome,
        };
        let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
        let (status, error) = match outcome {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        tracing::debug!(
            update_id = job.update_id,
            attempt,
            ?status,
            ?error,
            "webhook delivery"
        );
        {
            let mut state = shared.lock();
            state.record_delivery(DeliveryAttempt {
                update_id: job.update_id,
                attempt,
                url: job.webhook.url.clone(),
                status,
                error,
                delivered,
                secret_token_sent: job.webhook.secret_token.is_some(),
                at_ms: shared.now_ms(),
            });
            if delivered && state.pending.front().is_some_and(|p| p.seq == job.seq) {
                state.pending.pop_front();
            }
        }
        if delivered {
            backoff = initial;
            continue;
        }

        // Wait before retrying, but retry at once if the bot points the
        // webhook somewhere else (a test fixing its server expects prompt
        // delivery, not the remainder of a long backoff).
        let deadline = tokio::time::Instant::now() + backoff;
        backoff = (backoff * 2).min(shared.config.webhook_max_backoff);
        let mut changes = shared.subscribe();
        loop {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let current = shared.lock().webhook.clone();
                    if current.as_ref() != Some(&job.webhook) {
                        backoff = initial;
                        break;
                    }
                }
            }
        }
    }
}

/// One POST; `Ok(status)` when the webhook answered at all.
async fn post(shared: &Shared, job: &Job) -> Result<u16, String> {
    let mut request = shared.http.post(&job.webhook.url).json(&job.body);
    if let Some(secret) = &job.webhook.secret_token {
        request = request.header(SECRET_HEADER, secret);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Drain the body so the connection can be reused; what the bot
            // answers is ignored (answering with a method call is not emulated).
            let _ = response.bytes().await;
            Ok(status)
        }
        Err(e) if e.is_timeout() => Err("Read timeout expired".to_owned()),
        Err(e) if e.is_connect() => Err(format!("Connection refused: {}", root_cause(&e))),
        Err(e) => Err(root_cause(&e)),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Default pause before the first retry.
pub(crate) const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Default longest pause between retries.
pub(crate) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(3);
