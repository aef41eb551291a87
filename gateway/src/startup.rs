//! Telegram calls at start-up (`getMe`, `setWebhook`, `setMyCommands`,
//! `setMyDescription`, `setMyShortDescription`): a 429, a 5xx or a network
//! error is waited out with backoff (a 429 for its `retry_after`) instead of
//! ending the process; only Telegram's 4xx refusals are final. The gateway
//! reports ready only once the webhook is registered. The bot's username,
//! its command menu and its profile texts are learned and set in the
//! background: until then, only group messages wait (they are delivered
//! again), private chats are served at once; a menu or a text Telegram
//! refuses is logged and the bot runs without it.

use std::sync::Arc;

use polybot_domain::{BotId, Lang};
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

/// One command menu to register: its scope, its commands, and the
/// language its users' Telegram is set to (`None`: everyone else).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMenu {
    pub scope: serde_json::Value,
    pub commands: serde_json::Value,
    pub language: Option<Lang>,
}

impl CommandMenu {
    /// `setMyCommands`' parameters.
    pub fn params(&self) -> serde_json::Value {
        let mut params = json!({"scope": self.scope, "commands": self.commands});
        if let Some(lang) = self.language {
            params["language_code"] = json!(lang.code());
        }
        params
    }
}

/// The command menus: what users see when they type `/` (private chats),
/// and the shorter one for groups, where the bot is asked by name; each in
/// every language we ship (English also as the default for the rest).
pub fn command_menus() -> Vec<CommandMenu> {
    let languages = std::iter::once(None).chain(Lang::ALL.into_iter().skip(1).map(Some));
    languages
        .flat_map(|language| {
            let lang = language.unwrap_or_default();
            let entry = |command: &str, key: &str| {
                json!({"command": command, "description": lang.text(key)})
            };
            let settings: Vec<_> = crate::settings::COMMANDS
                .iter()
                .map(|command| entry(command, &format!("command-{command}")))
                .collect();
            let privacy = [
                entry("history", "command-history"),
                entry("forget", "command-forget"),
                entry("privacy", "command-privacy"),
            ];
            let mut private = vec![
                entry("start", "command-start"),
                entry("help", "command-help"),
                entry("detect", "command-detect"),
            ];
            private.extend(settings.iter().cloned());
            private.extend(privacy.iter().cloned());
            let mut group = vec![
                entry("detect", "command-detect-group"),
                entry("help", "command-help-group"),
            ];
            group.extend(settings);
            group.extend(privacy);
            [
                CommandMenu {
                    scope: json!({"type": "all_private_chats"}),
                    commands: json!(private),
                    language,
                },
                CommandMenu {
                    scope: json!({"type": "all_group_chats"}),
                    commands: json!(group),
                    language,
                },
            ]
        })
        .collect()
}

/// The bot's profile texts in one language (`None`: everyone else): the
/// description a new user reads in the empty chat before pressing Start,
/// and the short one on the bot's profile and with links to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub language: Option<Lang>,
    pub description: String,
    pub short_description: String,
}

impl Profile {
    /// The two calls that set these texts, with their parameters.
    pub fn calls(&self) -> [(&'static str, serde_json::Value); 2] {
        let with_language = |mut params: serde_json::Value| {
            if let Some(lang) = self.language {
                params["language_code"] = json!(lang.code());
            }
            params
        };
        [
            (
                "setMyDescription",
                with_language(json!({"description": self.description})),
            ),
            (
                "setMyShortDescription",
                with_language(json!({"short_description": self.short_description})),
            ),
        ]
    }
}

/// The profile texts in every language we ship, English also as the
/// default for the rest (as for the command menus).
pub fn profiles() -> Vec<Profile> {
    std::iter::once(None)
        .chain(Lang::ALL.into_iter().skip(1).map(Some))
        .map(|language| {
            let lang = language.unwrap_or_default();
            Profile {
                language,
                description: lang.text("bot-description"),
                short_description: lang.text("bot-short-description"),
            }
        })
        .collect()
}

/// Learns the bot's username (`getMe`) and hands it to `learned`, then
/// sets the command menus and the profile texts; each retried with backoff
/// until it succeeds, Telegram refuses it for good, or the gateway stops.
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
    for menu in command_menus() {
        let params = menu.params();
        let set = || api.call("setMyCommands", &params, CALL_TIMEOUT);
        if retry("setMyCommands", set, backoff, &cancel)
            .await
            .is_some()
        {
            let language = menu.language.map_or("default", Lang::code);
            info!(scope = %menu.scope["type"], language, "command menu set");
        }
    }
    // Best effort like the menus: a text Telegram refuses leaves the
    // profile as it was (logged), and the bot serves chats all the same.
    for profile in profiles() {
        for (method, params) in profile.calls() {
            let set = || api.call(method, &params, CALL_TIMEOUT);
            if retry(method, set, backoff, &cancel).await.is_some() {
                let language = profile.language.map_or("default", Lang::code);
                info!(language, "{method} done");
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The most characters Telegram takes in `setMyDescription`.
    const MAX_DESCRIPTION_CHARS: usize = 512;
    /// The most characters Telegram takes in `setMyShortDescription`.
    const MAX_SHORT_DESCRIPTION_CHARS: usize = 120;

    /// Telegram refuses a text over its limit, and the bot would then show
    /// nothing in that language: every catalogue's texts must fit.
    #[test]
    fn every_profile_text_fits_telegrams_limits_in_every_language() {
        let profiles = profiles();
        assert_eq!(profiles.len(), Lang::ALL.len());
        assert_eq!(profiles[0].language, None, "the default comes first");
        for profile in &profiles {
            let chars = |text: &str| text.chars().count();
            assert!(
                (1..=MAX_DESCRIPTION_CHARS).contains(&chars(&profile.description)),
                "{profile:#?}"
            );
            assert!(
                (1..=MAX_SHORT_DESCRIPTION_CHARS).contains(&chars(&profile.short_description)),
                "{profile:#?}"
            );
            assert!(profile.description.contains("/help"), "{profile:#?}");
            let [(set_description, params), (set_short, short)] = profile.calls();
            assert_eq!(
                (set_description, set_short),
                ("setMyDescription", "setMyShortDescription")
            );
            assert_eq!(params["description"], json!(profile.description));
            assert_eq!(short["short_description"], json!(profile.short_description));
            assert_eq!(
                params.get("language_code").and_then(|c| c.as_str()),
                profile.language.map(Lang::code)
            );
        }
        let english = &profiles[0];
        for other in &profiles[1..] {
            assert_ne!(other.description, english.description, "{other:#?}");
            assert_ne!(other.short_description, english.short_description);
        }
    }
}
