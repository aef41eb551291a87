//! The Telegram bot token, the webhook secret and the Results tokens from
//! AWS Secrets Manager.
//!
//! The gateway's secret's `SecretString` is JSON:
//! `{"telegram_token":"…","webhook_secret":"…","results_token":"…","operator_token":"…","results_token_previous":"…"}`
//! (the last three optional; the previous results token only while it is
//! rotated out). A deployment may keep the Results tokens in a secret of
//! their own (`{"results_token":"…","results_token_previous":"…"}`, read by
//! [`results_secrets`]), so that the detectors, which decode untrusted
//! files, can read that secret and not the one with the bot token. The
//! values come back as
//! [`SecretString`]s, whose `Debug` prints nothing of them, and no error
//! message here quotes the secret's contents (not even a parse error's
//! excerpt): errors name the secret id and say what is wrong with it.

use aws_config::SdkConfig;
use secrecy::SecretString;
use serde::Deserialize;

use super::error::{classify, service_code};
use crate::{Result, StorageError};

/// The setting that names the secret, for error messages.
pub const SECRET_ID_SETTING: &str = "POLYBOT_TELEGRAM_SECRET_ID";

/// Every field the secret may hold ([`TelegramSecrets`]), for the docs'
/// test that the README names them all.
pub const TELEGRAM_SECRET_FIELDS: [&str; 5] = [
    "telegram_token",
    "webhook_secret",
    "results_token",
    "operator_token",
    "results_token_previous",
];

/// The gateway's Telegram credentials.
#[derive(Debug)]
pub struct TelegramSecrets {
    pub telegram_token: SecretString,
    pub webhook_secret: SecretString,
    /// Detectors' token for `polybot.v1.Results` (optional field `results_token`).
    pub results_token: Option<SecretString>,
    /// Operators' token for the read RPCs (optional field `operator_token`).
    pub operator_token: Option<SecretString>,
    /// The results token being rotated out, still accepted (optional field
    /// `results_token_previous`).
    pub results_token_previous: Option<SecretString>,
}

#[derive(Deserialize)]
struct Raw {
    telegram_token: String,
    webhook_secret: String,
    #[serde(default)]
    results_token: Option<String>,
    #[serde(default)]
    operator_token: Option<String>,
    #[serde(default)]
    results_token_previous: Option<String>,
}

/// Reads the secret `secret_id` (a name or an ARN).
///
/// A missing secret, denied access or a malformed value is
/// [`StorageError::Config`]; an outage is [`StorageError::Unavailable`].
pub async fn telegram_secrets(sdk: &SdkConfig, secret_id: &str) -> Result<TelegramSecrets> {
    let setting = format!("{SECRET_ID_SETTING}={secret_id}");
    if secret_id.is_empty() {
        return Err(StorageError::config(format!(
            "{SECRET_ID_SETTING} is empty"
        )));
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(o) => o,
        Err(e) if service_code(&e) == Some("ResourceNotFoundException") => {
            return Err(StorageError::config(format!(
                "{setting}: no such secret in Secrets Manager"
            )));
        }
        Err(e) => {
            return Err(super::startup_error(
                SECRET_ID_SETTING,
                secret_id,
                "the secret could not be read",
                sdk.region(),
                classify("Secrets Manager", &format!("GetSecretValue {secret_id}"), e),
            ));
        }
    };
    let Some(text) = out.secret_string else {
        return Err(StorageError::config(format!(
            "{setting}: the secret has no SecretString (a binary secret?); \
             expected JSON {{\"telegram_token\":\"…\",\"webhook_secret\":\"…\"}}"
        )));
    };
    let raw: Raw = serde_json::from_str(&text).map_err(|e| {
        // serde's message may quote part of the value; say only where and
        // what kind of problem it is.
        StorageError::config(format!(
            "{setting}: the SecretString is not JSON of the form \
             {{\"telegram_token\":\"…\",\"webhook_secret\":\"…\"}} ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    for (field, value) in [
        ("telegram_token", &raw.telegram_token),
        ("webhook_secret", &raw.webhook_secret),
    ] {
        if value.trim().is_empty() {
            return Err(StorageError::config(format!("{setting}: {field} is empty")));
        }
    }
    let optional = |v: Option<String>| v.filter(|v| !v.trim().is_empty()).map(SecretString::from);
    Ok(TelegramSecrets {
        telegram_token: SecretString::from(raw.telegram_token),
        webhook_secret: SecretString::from(raw.webhook_secret),
        results_token: optional(raw.results_token),
        operator_token: optional(raw.operator_token),
        results_token_previous: optional(raw.results_token_previous),
    })
}

/// The setting that names the Results tokens' own secret.
pub const RESULTS_SECRET_ID_SETTING: &str = "POLYBOT_RESULTS_SECRET_ID";

/// Every field the Results tokens' own secret may hold ([`ResultsSecrets`]).
pub const RESULTS_SECRET_FIELDS: [&str; 2] = ["results_token", "results_token_previous"];

/// The Results tokens from their own secret.
#[derive(Debug)]
pub struct ResultsSecrets {
    /// The token detectors present (field `results_token`, required).
    pub results_token: SecretString,
    /// The token being rotated out, still accepted by gateways (optional
    /// field `results_token_previous`).
    pub results_token_previous: Option<SecretString>,
}

#[derive(Deserialize)]
struct RawResults {
    #[serde(default)]
    results_token: Option<String>,
    #[serde(default)]
    results_token_previous: Option<String>,
}

/// Parses the Results tokens' secret; `named` (`SETTING=id`) prefixes the
/// errors, which never quote the value.
fn parse_results_secrets(named: &str, text: &str) -> Result<ResultsSecrets> {
    let raw: RawResults = serde_json::from_str(text).map_err(|e| {
        StorageError::config(format!(
            "{named}: the SecretString is not JSON of the form \
             {{\"results_token\":\"…\",\"results_token_previous\":\"…\"}} ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let present = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let results_token = present(raw.results_token).ok_or_else(|| {
        StorageError::config(format!(
            "{named}: the secret has no non-empty string field \"results_token\""
        ))
    })?;
    Ok(ResultsSecrets {
        results_token: SecretString::from(results_token),
        results_token_previous: present(raw.results_token_previous).map(SecretString::from),
    })
}

/// Reads the Results tokens' own secret `secret_id` (a name or an ARN):
/// `results_token`, and `results_token_previous` while it is rotated out.
///
/// A missing secret or a malformed value is [`StorageError::Config`]; an
/// outage is [`StorageError::Unavailable`].
pub async fn results_secrets(sdk: &SdkConfig, secret_id: &str) -> Result<ResultsSecrets> {
    let named = format!("{RESULTS_SECRET_ID_SETTING}={secret_id}");
    let text = secret_string(sdk, RESULTS_SECRET_ID_SETTING, secret_id).await?;
    parse_results_secrets(&named, &text)
}

/// The `SecretString` of `secret_id`; errors name `setting` and the id.
async fn secret_string(sdk: &SdkConfig, setting: &str, secret_id: &str) -> Result<String> {
    let named = format!("{setting}={secret_id}");
    if secret_id.is_empty() {
        return Err(StorageError::config(format!("{setting} is empty")));
    }
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = match client.get_secret_value().secret_id(secret_id).send().await {
        Ok(o) => o,
        Err(e) if service_code(&e) == Some("ResourceNotFoundException") => {
            return Err(StorageError::config(format!(
                "{named}: no such secret in Secrets Manager"
            )));
        }
        Err(e) => {
            return Err(classify(
                "Secrets Manager",
                &format!("GetSecretValue {secret_id}"),
                e,
            ));
        }
    };
    out.secret_string.ok_or_else(|| {
        StorageError::config(format!(
            "{named}: the secret has no SecretString (a binary secret?); expected JSON"
        ))
    })
}

/// Reads one string field of a JSON secret (a detector reads only
/// `results_token` from the deployment's secret). Errors, like
/// [`telegram_secrets`]'s, never quote the secret's contents.
pub async fn secret_field(
    sdk: &SdkConfig,
    setting: &str,
    secret_id: &str,
    field: &str,
) -> Result<SecretString> {
    let named = format!("{setting}={secret_id}");
    let text = secret_string(sdk, setting, secret_id).await?;
    let value = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get(field).and_then(|f| f.as_str()).map(str::to_owned))
        .filter(|v| !v.trim().is_empty());
    value.map(SecretString::from).ok_or_else(|| {
        StorageError::config(format!(
            "{named}: the SecretString is not JSON with a non-empty string field {field:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_is_read_from_the_secret() {
        let json: serde_json::Map<String, serde_json::Value> = TELEGRAM_SECRET_FIELDS
            .iter()
            .map(|f| {
                (
                    (*f).to_owned(),
                    serde_json::Value::from(format!("value of {f}")),
                )
            })
            .collect();
        let raw: Raw = serde_json::from_value(json.into()).expect("parses");
        assert_eq!(raw.telegram_token, "value of telegram_token");
        assert_eq!(raw.webhook_secret, "value of webhook_secret");
        assert_eq!(raw.results_token.as_deref(), Some("value of results_token"));
        assert_eq!(
            raw.operator_token.as_deref(),
            Some("value of operator_token")
        );
    }

    #[test]
    fn the_results_secret_needs_results_token_and_may_hold_the_previous_one() {
        use secrecy::ExposeSecret as _;
        let named = "POLYBOT_RESULTS_SECRET_ID=polybot/results";
        let both = parse_results_secrets(
            named,
            r#"{"results_token":"new-token","results_token_previous":"old-token"}"#,
        )
        .expect("parses");
        assert_eq!(both.results_token.expose_secret(), "new-token");
        assert_eq!(
            both.results_token_previous
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("old-token".to_owned())
        );
        // An empty previous token is no previous token.
        let one = parse_results_secrets(
            named,
            r#"{"results_token":"new-token","results_token_previous":" "}"#,
        )
        .expect("parses");
        assert!(one.results_token_previous.is_none());
        assert_eq!(
            RESULTS_SECRET_FIELDS,
            ["results_token", "results_token_previous"]
        );
    }

    #[test]
    fn a_bad_results_secret_is_named_and_never_quoted() {
        let named = "POLYBOT_RESULTS_SECRET_ID=polybot/results";
        for text in [
            r#"{"results_token_previous":"sensitive-old-token"}"#,
            r#"{"results_token":""}"#,
            "sensitive-not-json",
            r#"{"results_token": 12, "x": "sensitive"}"#,
        ] {
            let err = parse_results_secrets(named, text)
                .err()
                .unwrap_or_else(|| panic!("{text} is refused"))
                .to_string();
            assert!(err.contains(named), "{err}");
            assert!(
                !err.contains("sensitive"),
                "the error quotes the secret: {err}"
            );
        }
    }
}
