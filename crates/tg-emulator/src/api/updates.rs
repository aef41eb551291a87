//! The bot itself and how it hears of updates: `getMe`, `getUpdates` and
//! the webhook methods.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use crate::{
    error::{ApiError, ApiOk, ApiResult},
    params::Params,
    state::{Shared, Webhook},
};

/// Longest long poll honoured, so a forgotten client cannot pin a task forever.
const MAX_POLL_SECONDS: u64 = 3600;

pub(super) fn get_me(shared: &Shared) -> Value {
    let mut me = shared.bot_user();
    me["can_join_groups"] = json!(true);
    // Privacy mode off: the bot reads every group message.
    me["can_read_all_group_messages"] = json!(
        !shared
            .lock()
            .privacy_default
            .unwrap_or(shared.config.group_privacy)
    );
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

pub(super) async fn get_updates(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let offset = params.i64("offset")?;
    let limit = params
        .i64("limit")?
        .map_or(100, |l| l.clamp(1, 100) as usize);
    let timeout = params
        .i64("timeout")?
        .map_or(0, |t| t.clamp(0, MAX_POLL_SECONDS as i64) as u64);

    let (generation, mut changes, ready) = {
        let mut state = shared.lock();
        if state.webhook.is_some() {
            return Err(ApiError::conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        // A newer getUpdates supersedes any long poll still waiting.
        state.poll_generation += 1;
        let generation = state.poll_generation;
        match offset {
            Some(offset) if offset > 0 => {
                state.pending.retain(|p| p.update_id >= offset || p.forced);
            }
            Some(offset) if offset < 0 => {
                let keep = offset.unsigned_abs() as usize;
                let len = state.pending.len();
                if len > keep {
                    state.pending.drain(..len - keep);
                }
            }
            _ => {}
        }
        let ready = take_updates(&mut state.pending, limit);
        // Tell an older long poll it has been superseded, then subscribe,
        // both under the lock: we do not see our own notification, and no
        // update can be queued between the check above and the wait below.
        shared.notify();
        (generation, shared.subscribe(), ready)
    };
    if !ready.is_empty() || timeout == 0 {
        return Ok(ApiOk::new(Value::Array(ready)));
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(ApiOk::new(json!([]))),
            _ = shared.cancel.cancelled() => return Ok(ApiOk::new(json!([]))),
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(ApiOk::new(json!([])));
                }
            }
        }
        let mut state = shared.lock();
        if state.poll_generation != generation {
            return Err(ApiError::conflict(
                "terminated by other getUpdates request; make sure that only one bot instance is running",
            ));
        }
        if state.webhook.is_some() {
            return Ok(ApiOk::new(json!([])));
        }
        let ready = take_updates(&mut state.pending, limit);
        if !ready.is_empty() {
            return Ok(ApiOk::new(Value::Array(ready)));
        }
    }
}

/// Returns up to `limit` queued updates without removing them: only a later
/// `offset` confirms them, as on the real API.
fn take_updates(
    pending: &mut std::collections::VecDeque<crate::state::Pending>,
    limit: usize,
) -> Vec<Value> {
    pending
        .iter_mut()
        .take(limit)
        .map(|p| {
            p.forced = false;
            p.body.clone()
        })
        .collect()
}

pub(super) fn set_webhook(shared: &Shared, params: &Params) -> ApiResult {
    let url = params.str("url").unwrap_or_default();
    if url.is_empty() {
        return delete_webhook(shared, params);
    }
    // The real API insists on HTTPS and a few ports; tests run plain HTTP on
    // random ports, so only the scheme and the shape are checked.
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| ApiError::bad_request("bad webhook: invalid webhook URL specified"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ApiError::bad_request(
            "bad webhook: HTTPS url must be provided for webhook",
        ));
    }
    let secret_token = params.non_empty_str("secret_token");
    if let Some(secret) = &secret_token {
        let allowed = secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !allowed || secret.len() > 256 {
            return Err(ApiError::bad_request(
                "secret token contains unallowed characters",
            ));
        }
    }
    let allowed_updates = params
        .json("allowed_updates")?
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
    let max_connections = params
        .i64("max_connections")?
        .map(|n| n.clamp(1, 100) as u32);
    let certificate = match params.file("certificate") {
        None => None,
        Some(upload) => {
            let pem = String::from_utf8_lossy(&upload.bytes).into_owned();
            if reqwest::Certificate::from_pem(pem.as_bytes()).is_err()
                || !pem.contains("BEGIN CERTIFICATE")
            {
                return Err(ApiError::bad_request(
                    "bad webhook: failed to parse the certificate",
                ));
            }
            Some(pem)
        }
    };
    let webhook = Webhook {
        url,
        secret_token,
        allowed_updates,
        max_connections,
        certificate,
    };
    let description = {
        let mut state = shared.lock();
        if params.bool("drop_pending_updates") {
            state.pending.clear();
        }
        let description = if state.webhook.as_ref() == Some(&webhook) {
            "Webhook is already set"
        } else {
            "Webhook was set"
        };
        if state.webhook.as_ref().map(|w| &w.url) != Some(&webhook.url) {
            state.last_error = None;
            // A new address is tried at once, not after the old backoff.
            for p in state.pending.iter_mut() {
                p.retry_at = None;
            }
        }
        state.webhook = Some(webhook);
        description
    };
    shared.notify();
    Ok(ApiOk::with_description(json!(true), description))
}

pub(super) fn delete_webhook(shared: &Shared, params: &Params) -> ApiResult {
    let description = {
        let mut state = shared.lock();
        if params.bool("drop_pending_updates") {
            state.pending.clear();
        }
        state.last_error = None;
        match state.webhook.take() {
            Some(_) => "Webhook was deleted",
            None => "Webhook is already deleted",
        }
    };
    shared.notify();
    Ok(ApiOk::with_description(json!(true), description))
}

pub(super) fn webhook_info(shared: &Shared) -> Value {
    let info = shared.lock().webhook_state();
    let mut out = json!({
        "url": info.url.unwrap_or_default(),
        "has_custom_certificate": info.certificate.is_some(),
        "pending_update_count": info.pending_update_count,
    });
    if let Some(date) = info.last_error_date {
        out["last_error_date"] = json!(date);
    }
    if let Some(message) = info.last_error_message {
        out["last_error_message"] = json!(message);
    }
    if let Some(max) = info.max_connections {
        out["max_connections"] = json!(max);
    }
    if let Some(allowed) = info.allowed_updates {
        out["allowed_updates"] = json!(allowed);
    }
    out
}
