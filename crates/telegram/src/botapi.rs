//! A small Bot API client on reqwest: every call has a deadline, and every
//! failure keeps what Telegram said (HTTP status, `error_code`,
//! `parameters.retry_after`), so callers can tell the error classes apart:
//! network errors, 5xx and 429 are worth retrying, any other 4xx is not.
//!
//! The token is part of every URL, so errors never carry the URL.

use std::time::Duration;

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::token::TokenWatch;

/// How long one ordinary call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Telegram's Bot API serves files up to 20 MB to bots.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

/// A failed Bot API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BotApiError {
    /// No answer: connection refused or reset, timeout.
    #[error("{method}: Telegram could not be reached: {message}")]
    Network {
        method: &'static str,
        message: String,
    },
    /// Telegram answered `ok: false`.
    #[error("{method}: Telegram answered {code}: {description}")]
    Api {
        method: &'static str,
        code: u16,
        description: String,
        retry_after: Option<Duration>,
    },
    /// An answer that is not the Bot API's JSON (a proxy's error page…).
    #[error("{method}: unreadable answer (HTTP {status}): {message}")]
    BadAnswer {
        method: &'static str,
        status: u16,
        message: String,
    },
}

/// Reads a call's `result` (from [`crate::TelegramControl::call`])
/// as `T`; a shape we do not expect is an unreadable answer.
pub fn decode<T: DeserializeOwned>(method: &'static str, result: Value) -> Result<T, BotApiError> {
    serde_json::from_value(result).map_err(|e| BotApiError::BadAnswer {
        method,
        status: 200,
        message: format!("unexpected result: {e}"),
    })
}

/// What a caller should do about a [`BotApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429: wait this long (Telegram's `retry_after`), then try again.
    RateLimited(Duration),
    /// Network errors and 5xx: try again later.
    Retryable,
    /// Any other 4xx: trying again cannot help.
    Permanent,
}

impl BotApiError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Network { .. } => ErrorClass::Retryable,
            Self::Api {
                code: 429,
                retry_after,
                ..
            } => ErrorClass::RateLimited(retry_after.unwrap_or(Duration::from_secs(1))),
            Self::Api { code, .. } if *code >= 500 => ErrorClass::Retryable,
            // The token itself refused (revoked or wrong): the whole bot is
            // out until it is fixed, which a retry will see (crate::token).
            _ if self.is_token_refused() => ErrorClass::Retryable,
            Self::Api { .. } => ErrorClass::Permanent,
            Self::BadAnswer { status, .. } if *status == 429 || *status >= 500 => {
                ErrorClass::Retryable
            }
            Self::BadAnswer { .. } => ErrorClass::Permanent,
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self.class(), ErrorClass::Permanent)
    }

    /// Telegram refused the bot's token: 401 Unauthorized, or 404 Not
    /// Found (what the Bot API answers for a token it does not know).
    pub fn is_token_refused(&self) -> bool {
        matches!(
            self,
            Self::Api {
                code: 401 | 404,
                ..
            }
        )
    }

    /// Telegram's description, when it answered with one.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Api { description, .. } => Some(description),
            _ => None,
        }
    }

    /// Short label for spans and metrics.
    pub fn kind(&self) -> &'static str {
        match self.class() {
            ErrorClass::RateLimited(_) => "rate_limited",
            ErrorClass::Retryable => "unavailable",
            ErrorClass::Permanent => "rejected",
        }
    }
}

/// A multipart file to upload.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: &'static str,
    pub file_name: &'static str,
    pub mime: &'static str,
    pub bytes: Bytes,
}

/// The Bot API at one base URL with one token.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    watch: TokenWatch,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi").field("base", &self.base).finish()
    }
}

/// The innermost cause, without the URL (it holds the token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

impl BotApi {
    /// `api_url` is the Bot API base URL (`https://api.telegram.org` or an emulator).
    pub fn new(token: &SecretString, api_url: &reqwest::Url) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: api_url.as_str().trim_end_matches('/').to_owned(),
            token: token.clone(),
            watch: TokenWatch::default(),
        }
    }

    /// Whether Telegram accepts the token, as the calls' answers tell.
    pub fn token_watch(&self) -> &TokenWatch {
        &self.watch
    }

    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token.expose_secret())
    }

    /// Calls `method` with JSON parameters; the `result` on success.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &Value,
        timeout: Duration,
    ) -> Result<T, BotApiError> {
        let request = self
            .http
            .post(self.method_url(method))
            .json(params)
            .timeout(timeout);
        self.answer(method, request).await
    }

    /// Calls `method` with multipart parameters and files (a media
    /// group's items are named by `attach://<field>` in its parameters).
    pub async fn call_multipart<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        uploads: Vec<Upload>,
        timeout: Duration,
    ) -> Result<T, BotApiError> {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in params {
            form = form.text(*k, v.clone());
        }
        for upload in uploads {
            let part = reqwest::multipart::Part::stream(upload.bytes)
                .file_name(upload.file_name)
                .mime_str(upload.mime)
                .map_err(|e| BotApiError::BadAnswer {
                    method,
                    status: 0,
                    message: describe(e),
                })?;
            form = form.part(upload.field, part);
        }
        let request = self
            .http
            .post(self.method_url(method))
            .multipart(form)
            .timeout(timeout);
        self.answer(method, request).await
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, BotApiError> {
        let response = request.send().await.map_err(|e| BotApiError::Network {
            method,
            message: describe(e),
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| BotApiError::Network {
            method,
            message: describe(e),
        })?;
        let answer = parse_answer(method, status, &body);
        match &answer {
            Err(e) if e.is_token_refused() => self.watch.refused(method),
            Ok(_) | Err(BotApiError::Api { .. }) => self.watch.accepted(),
            Err(_) => {}
        }
        answer
    }

    /// Downloads `file_path` (from getFile), refusing more than `max_bytes`.
    pub async fn download(
        &self,
        file_path: &str,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<Result<Bytes, u64>, BotApiError> {
        const METHOD: &str = "download";
        let url = format!(
            "{}/file/bot{}/{file_path}",
            self.base,
            self.token.expose_secret()
        );
        let fetch = async {
            let mut response =
                self.http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| BotApiError::Network {
                        method: METHOD,
                        message: describe(e),
                    })?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let body = response.bytes().await.unwrap_or_default();
                return Err(parse_answer::<Value>(METHOD, status, &body)
                    .err()
                    .unwrap_or(BotApiError::BadAnswer {
                        method: METHOD,
                        status,
                        message: "a file download failed".into(),
                    }));
            }
            // A declared length past the limit is refused before any of it
            // is read; an undeclared or understated one is caught by counting.
            if let Some(declared) = response.content_length()
                && declared > max_bytes
            {
                return Ok(Err(declared));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| BotApiError::Network {
                method: METHOD,
                message: describe(e),
            })? {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > max_bytes {
                    return Ok(Err(buf.len() as u64));
                }
            }
            Ok(Ok(Bytes::from(buf)))
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .unwrap_or_else(|_| {
                Err(BotApiError::Network {
                    method: METHOD,
                    message: format!("no complete answer within {timeout:?}"),
                })
            })
    }
}

/// Reads a Bot API answer: `{"ok":true,"result":…}` or
/// `{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`.
pub fn parse_answer<T: DeserializeOwned>(
    method: &'static str,
    status: u16,
    body: &[u8],
) -> Result<T, BotApiError> {
    let bad = |message: String| BotApiError::BadAnswer {
        method,
        status,
        message,
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        let result = v.get("result").cloned().unwrap_or(Value::Null);
        return serde_json::from_value(result).map_err(|e| bad(format!("unexpected result: {e}")));
    }
    let code = v
        .get("error_code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(status);
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("no description")
        .to_owned();
    let retry_after = v
        .pointer("/parameters/retry_after")
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    Err(BotApiError::Api {
        method,
        code,
        description,
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> BotApiError {
        parse_answer::<Value>("sendMessage", status, body.as_bytes()).expect_err("an error")
    }

    #[test]
    fn a_429_is_rate_limited_for_its_retry_after() {
        let e = err(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 13","parameters":{"retry_after":13}}"#,
        );
        assert_eq!(e.class(), ErrorClass::RateLimited(Duration::from_secs(13)));
    }

    #[test]
    fn server_errors_and_network_errors_are_retryable() {
        let e = err(
            500,
            r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
        );
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert_eq!(
            err(502, "<html>bad gateway</html>").class(),
            ErrorClass::Retryable
        );
        let network = BotApiError::Network {
            method: "getFile",
            message: "connection reset".into(),
        };
        assert_eq!(network.class(), ErrorClass::Retryable);
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for (status, body) in [
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: invalid file_id"}"#,
            ),
            (
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            ),
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: some brand new complaint"}"#,
            ),
        ] {
            assert_eq!(err(status, body).class(), ErrorClass::Permanent, "{body}");
        }
    }

    #[test]
    fn a_successful_answer_yields_its_result() {
        let v: Value =
            parse_answer("getMe", 200, br#"{"ok":true,"result":{"id":7}}"#).expect("a result");
        assert_eq!(v["id"], 7);
    }
}
