//! Bot API error answers (`{"ok":false,"error_code":N,"description":"..."}`).
//!
//! Every failure of a Bot API call goes through [`ApiError`], so handlers never
//! panic and clients always see the JSON shape the real API uses.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// A Bot API failure, rendered as the real API renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400 with the `Bad Request: ` prefix the real API puts on parameter errors.
    pub fn bad_request(what: impl AsRef<str>) -> Self {
        Self::new(400, format!("Bad Request: {}", what.as_ref()))
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    pub fn forbidden(what: impl AsRef<str>) -> Self {
        Self::new(403, format!("Forbidden: {}", what.as_ref()))
    }

    pub fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    pub fn conflict(what: impl AsRef<str>) -> Self {
        Self::new(409, format!("Conflict: {}", what.as_ref()))
    }

    pub fn too_large() -> Self {
        Self::new(413, "Request Entity Too Large")
    }

    pub fn too_many_requests(retry_after: u32) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "ok": false,
            "error_code": self.code,
            "description": self.description,
        });
        if let Some(retry_after) = self.retry_after {
            body["parameters"] = json!({ "retry_after": retry_after });
        }
        (self.status(), Json(body)).into_response()
    }
}

/// Successful Bot API answer: `{"ok":true,"result":...}` plus the optional
/// `description` some methods (setWebhook, deleteWebhook) include.
#[derive(Debug, Clone)]
pub(crate) struct ApiOk {
    pub result: serde_json::Value,
    pub description: Option<String>,
}

impl ApiOk {
    pub fn new(result: serde_json::Value) -> Self {
        Self {
            result,
            description: None,
        }
    }

    pub fn with_description(result: serde_json::Value, description: impl Into<String>) -> Self {
        Self {
            result,
            description: Some(description.into()),
        }
    }
}

impl IntoResponse for ApiOk {
    fn into_response(self) -> Response {
        let mut body = json!({ "ok": true, "result": self.result });
        if let Some(description) = self.description {
            body["description"] = json!(description);
        }
        (StatusCode::OK, Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<ApiOk, ApiError>;
