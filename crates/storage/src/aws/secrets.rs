//! The Telegram bot token and webhook secret from AWS Secrets Manager.
//!
//! The secret's `SecretString` is JSON:
//! `{"telegram_token":"…","webhook_secret":"…","results_token":"…","operator_token":"…","results_token_previous":"…"}`
//! (the last three optional; the previous results token only while it is
//! rotated out). The values come back as
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
    let value = out
        .secret_string
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
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
}
