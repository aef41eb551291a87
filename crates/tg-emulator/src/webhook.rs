//! Webhook delivery: posts queued updates to the bot's URL, retrying each
//! with backoff until the bot answers 2xx.
//!
//! Like Telegram, the emulator keeps up to `max_connections` deliveries in
//! flight (default 40). Updates of one chat go one at a time and in order:
//! a failed update holds back the later ones of its chat (Telegram retries
//! for a long time; the emulator's backoff is short and configurable so
//! tests observe retries in milliseconds), while other chats go on.
//! Updates without a chat are not held back by anything.
//!
//! Fault rules (`/control/webhook_faults`) make a delivery hang up before
//! the bot answers, as Telegram or a load balancer dropping the connection.

use std::{collections::HashSet, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::time::Instant;

use crate::{model::DeliveryAttempt, state::Shared, state::Webhook};

/// Header Telegram sets when `setWebhook` got a `secret_token`.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// Telegram's default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 40;

struct Job {
    webhook: Webhook,
    seq: u64,
    update_id: i64,
    attempt: u32,
    body: Value,
    hang_up_after: Option<Duration>,
}

/// Which deliveries must go one at a time, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Chat(i64),
    Alone(u64),
}

/// The chat an update is about, if any: `message.chat.id` and the like.
fn lane(seq: u64, body: &Value) -> Lane {
    body.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "update_id")
        .find_map(|(_, v)| {
            v.pointer("/chat/id")
                .or_else(|| v.pointer("/message/chat/id"))
                .and_then(Value::as_i64)
        })
        .map_or(Lane::Alone(seq), Lane::Chat)
}

/// Runs until the emulator shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let (jobs, wake_at, mut changes) = {
            let mut state = shared.lock();
            let mut jobs = Vec::new();
            let mut wake_at: Option<Instant> = None;
            if let Some(webhook) = state.webhook.clone() {
                let limit = webhook
                    .max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                    .max(1) as usize;
                let now = Instant::now();
                let mut in_flight = state.pending.iter().filter(|p| p.in_flight).count();
                let mut held: HashSet<Lane> = HashSet::new();
                let mut picked = Vec::new();
                for (i, p) in state.pending.iter().enumerate() {
                    let lane = lane(p.seq, &p.body);
                    if p.in_flight || held.contains(&lane) {
                        held.insert(lane);
                        continue;
                    }
                    if let Some(at) = p.retry_at
                        && at > now
                    {
                        held.insert(lane);
                        wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                        continue;
                    }
                    if in_flight >= limit {
                        break;
                    }
                    held.insert(lane);
                    in_flight += 1;
                    picked.push(i);
                }
                for i in picked {
                    let hang_up = state.take_webhook_fault().map(Duration::from_millis);
                    let Some(p) = state.pending.get_mut(i) else {
                        continue;
                    };
                    p.in_flight = true;
                    p.attempts += 1;
                    jobs.push(Job {
                        webhook: webhook.clone(),
                        seq: p.seq,
                        update_id: p.update_id,
                        attempt: p.attempts,
                        body: p.body.clone(),
                        hang_up_after: hang_up,
                    });
                }
            }
            (jobs, wake_at, shared.subscribe())
        };
        for job in jobs {
            tokio::spawn(deliver(Arc::clone(&shared), job));
        }
        let wake_at = wake_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
}

/// One delivery attempt and its bookkeeping.
async fn deliver(shared: Arc<Shared>, job: Job) {
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
        attempt = job.attempt,
        ?status,
        ?error,
        "webhook delivery"
    );
    {
        let mut state = shared.lock();
        state.record_delivery(DeliveryAttempt {
            update_id: job.update_id,
            attempt: job.attempt,
            url: job.webhook.url.clone(),
            status,
            error,
            delivered,
            secret_token_sent: job.webhook.secret_token.is_some(),
            at_ms: shared.now_ms(),
        });
        // A webhook moved elsewhere meanwhile is tried at once.
        let moved = state.webhook.as_ref() != Some(&job.webhook);
        if let Some(pos) = state.pending.iter().position(|p| p.seq == job.seq) {
            if delivered {
                state.pending.remove(pos);
            } else if let Some(p) = state.pending.get_mut(pos) {
                p.in_flight = false;
                // Doubles from the initial backoff after each failure.
                let exp = job.attempt.saturating_sub(1).min(16);
                let backoff = shared
                    .config
                    .webhook_initial_backoff
                    .saturating_mul(1 << exp)
                    .min(shared.config.webhook_max_backoff);
                p.retry_at = (!moved).then(|| Instant::now() + backoff);
            }
        }
    }
    shared.notify();
}

/// One POST; `Ok(status)` when the webhook answered at all.
async fn post(shared: &Shared, job: &Job) -> Result<u16, String> {
    let client = shared
        .client_for(&job.webhook)
        .map_err(|e| root_cause(&e))?;
    let mut request = client.post(&job.webhook.url).json(&job.body);
    if let Some(secret) = &job.webhook.secret_token {
        request = request.header(SECRET_HEADER, secret);
    }
    let exchange = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        // Drain the body so the connection can be reused; what the bot
        // answers is ignored (answering with a method call is not emulated).
        let _ = response.bytes().await;
        Ok::<_, reqwest::Error>(status)
    };
    let result = match job.hang_up_after {
        Some(after) => match tokio::time::timeout(after, exchange).await {
            Ok(r) => r,
            Err(_) => return Err("Connection closed before the webhook answered".to_owned()),
        },
        None => exchange.await,
    };
    match result {
        Ok(status) => Ok(status),
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
