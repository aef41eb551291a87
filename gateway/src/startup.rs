//! Telegram calls at start-up (`getMe`, `setWebhook`, `setMyCommands`): a
//! 429, a 5xx or a network error is waited out with backoff (a 429 for its
//! `retry_after`) instead of ending the process; only Telegram's 4xx
//! refusals are final. The gateway reports ready only once the webhook is
//! registered. The bot's username and its command menu are learned and set
//! in the background: until then, only group messages wait (they are
//! delivered again), private chats are served at once.

use std::sync::Arc;

use polybot_domain::BotId;
use polybot_telemetry::tasks::{Backoff, Components};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use bytes::Bytes;

use crate::botapi::{BotApiError, CALL_TIMEOUT, ErrorClass, Upload};
use crate::inbound::BotUsername;
use crate::messenger::TelegramControl;

/// The readiness component that is ready once Telegram knows the webhook.
pub const WEBHOOK_COMPONENT: &str = "webhook";

/// How many times `getMe` is tried before start-up fails.
const GET_ME_ATTEMPTS: u32 = 10;

/// The pause before retrying after `e`, or `None` when retrying cannot help.
fn pause_after(e: &BotApiError, current: std::time::Duration) -> Option<std::time::Duration> {
    match e.class() {
        ErrorClass::RateLimited(after) => Some(after.max(current)),
        ErrorClass::Retryable => Some(current),
        ErrorClass::Permanent => None,
    }
}

/// The bot's id from `getMe`, retried with backoff.
pub async fn get_me(api: &dyn TelegramControl, backoff: Backoff) -> Result<BotId, BotApiError> {
    #[derive(Deserialize)]
    struct Me {
        id: i64,
    }
    let mut pause = backoff.initial;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let me = api
            .call("getMe", &json!({}), CALL_TIMEOUT)
            .await
            .and_then(|me| crate::botapi::decode::<Me>("getMe", me));
        match me {
            Ok(me) => return Ok(BotId(me.id)),
            // A token Telegram refuses at start-up is a setting to fix:
            // fail at once, naming it, rather than retry.
            Err(e) if e.is_token_refused() => return Err(e),
            Err(e) => match pause_after(&e, pause) {
                Some(wait) if attempt < GET_ME_ATTEMPTS => {
                    warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "getMe failed; retrying");
                    tokio::time::sleep(wait).await;
                    pause = backoff.next(pause);
                }
                _ => return Err(e),
            },
        }
    }
}

/// Registers the webhook, retrying until Telegram accepts it (or refuses it
/// for good, which is logged as an error and leaves the gateway not ready).
/// A self-signed `certificate` (PEM) is uploaded with it, as Telegram needs.
pub async fn register_webhook(
    api: Arc<dyn TelegramControl>,
    hook: reqwest::Url,
    secret: SecretString,
    certificate: Option<Bytes>,
    backoff: Backoff,
    components: Components,
    cancel: CancellationToken,
) {
    const METHOD: &str = "setWebhook";
    let params = [
        ("url", hook.to_string()),
        ("secret_token", secret.expose_secret().to_owned()),
        ("max_connections", "40".to_owned()),
    ];
    let json_params = json!({
        "url": hook.as_str(),
        "secret_token": secret.expose_secret(),
        "max_connections": 40,
    });
    let uploaded = certificate.is_some();
    let call = || async {
        match &certificate {
            Some(pem) => {
                let file = Upload {
                    field: "certificate",
                    file_name: "certificate.pem",
                    mime: "application/x-pem-file",
                    bytes: pem.clone(),
                };
                api.call_with_file(METHOD, &params, file, CALL_TIMEOUT)
                    .await
            }
            None => api.call(METHOD, &json_params, CALL_TIMEOUT).await,
        }
    };
    if retry(METHOD, call, backoff, &cancel).await.is_some() {
        info!(%hook, certificate_uploaded = uploaded, "webhook registered with Telegram");
        components.set(WEBHOOK_COMPONENT, true);
    } else if !cancel.is_cancelled() {
        error!(%hook, "the webhook is not registered; the gateway stays not ready");
    }
}

/// The command menu: what users see when they type `/` (private chats),
/// and the shorter one for groups, where the bot is asked by name.
pub fn command_menus() -> [(serde_json::Value, serde_json::Value); 2] {
    let settings = crate::settings::COMMANDS
        .map(|(command, description)| json!({"command": command, "description": description}));
    let mut private = vec![
        json!({"command": "start", "description": "What this bot does"}),
        json!({"command": "help", "description": "Everything it can do, with examples"}),
        json!({"command": "detect", "description": "Find objects: send it as a photo's caption"}),
    ];
    private.extend(settings.iter().cloned());
    let mut group = vec![
        json!({"command": "detect", "description": "Find objects: a photo's caption, or a reply to a photo"}),
        json!({"command": "help", "description": "What this bot can do"}),
    ];
    group.extend(settings);
    let (private, group) = (json!(private), json!(group));
    [
        (json!({"type": "all_private_chats"}), private),
        (json!({"type": "all_group_chats"}), group),
    ]
}

/// Learns the bot's username (`getMe`) and hands it to `learned`, then
/// sets the command menus; each retried with backoff until it succeeds,
/// Telegram refuses it for good, or the gateway stops.
pub async fn introduce(
    api: Arc<dyn TelegramControl>,
    backoff: Backoff,
    learned: impl FnOnce(BotUsername),
    cancel: CancellationToken,
) {
    #[derive(Deserialize)]
    struct Me {
        username: Option<String>,
    }
    let no_params = json!({});
    let get_me = || api.call("getMe", &no_params, CALL_TIMEOUT);
    let Some(me) = retry("getMe", get_me, backoff, &cancel).await else {
        return;
    };
    match serde_json::from_value::<Me>(me)
        .ok()
        .and_then(|me| me.username)
        .as_deref()
        .and_then(BotUsername::parse)
    {
        Some(username) => {
            info!(%username, "the bot's username");
            learned(username);
        }
        None => error!("getMe gave no usable username; group messages will wait"),
    }
    for (scope, commands) in command_menus() {
        let params = json!({"scope": scope, "commands": commands});
        let set = || api.call("setMyCommands", &params, CALL_TIMEOUT);
        if retry("setMyCommands", set, backoff, &cancel)
            .await
            .is_some()
        {
            info!(scope = %scope["type"], "command menu set");
        }
    }
}

/// One start-up call, retried while retrying can help; `None` when it was
/// refused for good (logged) or the gateway stopped.
async fn retry<F, Fut>(
    method: &'static str,
    call: F,
    backoff: Backoff,
    cancel: &CancellationToken,
) -> Option<serde_json::Value>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, BotApiError>>,
{
    let mut pause = backoff.initial;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = tokio::select! {
            _ = cancel.cancelled() => return None,
            r = call() => r,
        };
        match result {
            Ok(answer) => return Some(answer),
            Err(e) => match pause_after(&e, pause) {
                Some(wait) => {
                    warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "{method} failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    pause = backoff.next(pause);
                }
                None => {
                    error!(error = %e, "Telegram refused {method}");
                    return None;
                }
            },
        }
    }
}
