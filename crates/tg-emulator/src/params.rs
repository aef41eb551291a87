//! Bot API call parameters, from any of the encodings the real API accepts.
//!
//! Telegram takes parameters from the query string, `application/json`,
//! `application/x-www-form-urlencoded` and `multipart/form-data`, for GET and
//! POST alike, and merges the query string with the body. Handlers read them
//! through [`Params`] without caring which encoding the client chose.

use std::collections::HashMap;

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Multipart, Request},
    http::header::CONTENT_TYPE,
};
use serde_json::Value;

use crate::error::ApiError;

/// Largest request body accepted (sendDocument allows 50 MB uploads).
pub(crate) const MAX_BODY_BYTES: usize = 60 * 1024 * 1024;

/// A file uploaded in a multipart field.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

#[derive(Debug, Clone)]
pub(crate) enum Param {
    /// Query string, form field or multipart text field: always a string on
    /// the wire, so JSON-typed parameters (reply_parameters) arrive serialized.
    Text(String),
    /// A field of a JSON body, already typed.
    Json(Value),
    File(Upload),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    map: HashMap<String, Param>,
}

impl Params {
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Param::Text((*v).to_owned())))
            .collect();
        Self { map }
    }

    /// A parameter as a string; JSON numbers and booleans are stringified
    /// because clients differ in how they encode e.g. `chat_id`.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.map.get(name)? {
            Param::Text(s) => Some(s.clone()),
            Param::Json(Value::String(s)) => Some(s.clone()),
            Param::Json(Value::Null) => None,
            Param::Json(v) => Some(v.to_string()),
            Param::File(_) => None,
        }
    }

    /// A non-empty string parameter.
    pub fn non_empty_str(&self, name: &str) -> Option<String> {
        self.str(name).filter(|s| !s.is_empty())
    }

    /// An integer parameter; `Err` when present but not an integer.
    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let invalid = || ApiError::bad_request(format!("invalid {name} specified"));
        match self.map.get(name) {
            None | Some(Param::Json(Value::Null)) => Ok(None),
            Some(Param::Json(Value::Number(n))) => n.as_i64().map(Some).ok_or_else(invalid),
            Some(Param::Text(s)) | Some(Param::Json(Value::String(s))) => {
                if s.trim().is_empty() {
                    Ok(None)
                } else {
                    s.trim().parse().map(Some).map_err(|_| invalid())
                }
            }
            Some(_) => Err(invalid()),
        }
    }

    /// A boolean parameter; Telegram accepts `true`/`false`/`1`/`0`.
    pub fn bool(&self, name: &str) -> bool {
        match self.map.get(name) {
            Some(Param::Json(Value::Bool(b))) => *b,
            Some(Param::Json(Value::Number(n))) => n.as_i64().unwrap_or(0) != 0,
            Some(Param::Text(s)) | Some(Param::Json(Value::String(s))) => {
                matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1")
            }
            _ => false,
        }
    }

    /// A JSON-typed parameter (object or array): typed in a JSON body,
    /// serialized JSON text in the other encodings.
    pub fn json(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.map.get(name) {
            None | Some(Param::Json(Value::Null)) => Ok(None),
            Some(Param::Json(Value::String(s))) | Some(Param::Text(s)) => {
                if s.trim().is_empty() {
                    return Ok(None);
                }
                serde_json::from_str(s)
                    .map(Some)
                    .map_err(|_| ApiError::bad_request(format!("can't parse {name} JSON object")))
            }
            Some(Param::Json(v)) => Ok(Some(v.clone())),
            Some(Param::File(_)) => Err(ApiError::bad_request(format!(
                "can't parse {name} JSON object"
            ))),
        }
    }

    pub fn file(&self, name: &str) -> Option<&Upload> {
        match self.map.get(name)? {
            Param::File(upload) => Some(upload),
            _ => None,
        }
    }

    fn insert(&mut self, name: String, value: Param) {
        self.map.insert(name, value);
    }
}

/// Reads every parameter of a request: the query string first, then the body
/// (body fields win, as they do on the real API).
pub(crate) async fn parse_params(req: Request<Body>) -> Result<Params, ApiError> {
    let mut params = Params::default();
    if let Some(query) = req.uri().query() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::bad_request("can't parse query string"))?;
        for (k, v) in pairs {
            params.insert(k, Param::Text(v));
        }
    }

    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();

    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("can't parse multipart body: {e}")))?;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    return Err(multipart_error(e));
                }
            };
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            let file_name = field.file_name().map(str::to_owned);
            let field_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(multipart_error)?;
            // A part with a file name is an upload; without one it is a plain
            // field unless it is not even text.
            let value = match (file_name, std::str::from_utf8(&bytes)) {
                (None, Ok(text)) => Param::Text(text.to_owned()),
                (file_name, _) => Param::File(Upload {
                    file_name,
                    content_type: field_type,
                    bytes,
                }),
            };
            params.insert(name, value);
        }
        return Ok(params);
    }

    let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large())?;
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("can't parse JSON encoded request body"))?;
        match value {
            Value::Object(fields) => {
                for (k, v) in fields {
                    params.insert(k, Param::Json(v));
                }
            }
            _ => {
                return Err(ApiError::bad_request(
                    "JSON encoded request body must be an object",
                ));
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| ApiError::bad_request("can't parse form-urlencoded body"))?;
        for (k, v) in pairs {
            params.insert(k, Param::Text(v));
        }
    }
    // Other content types: the real API ignores the body, and so do we.
    Ok(params)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large()
    } else {
        ApiError::bad_request(format!("can't parse multipart body: {e}"))
    }
}

/// Decodes `%XX` escapes in a path segment. Clients differ: teloxide, for
/// example, escapes the `/` inside a `file_path` when it builds download URLs.
pub(crate) fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_escaped_slashes_and_trailing_percent() {
        assert_eq!(percent_decode("photos%2Ffile_1.jpg"), "photos/file_1.jpg");
        assert_eq!(percent_decode("a%"), "a%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("x%zzy"), "x%zzy");
    }

    #[test]
    fn params_coerce_numbers_and_json_text() {
        let p = Params::from_pairs(&[
            ("chat_id", "42"),
            ("reply_parameters", r#"{"message_id":7}"#),
            ("flag", "true"),
        ]);
        assert_eq!(p.i64("chat_id"), Ok(Some(42)));
        assert_eq!(
            p.json("reply_parameters")
                .ok()
                .flatten()
                .and_then(|v| v["message_id"].as_i64()),
            Some(7)
        );
        assert!(p.bool("flag"));
        assert!(p.i64("missing").ok().flatten().is_none());
    }
}
