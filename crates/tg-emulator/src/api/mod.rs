//! The Bot API surface: `/bot<token>/<method>` and `/file/bot<token>/<path>`.
//!
//! Routing is done by hand in one fallback handler rather than with axum
//! path patterns, because the token shares a path segment with the `bot`
//! prefix and method names must match without regard to case.

mod album;
mod callbacks;
mod common;
mod edit;
mod files;
mod send;
mod updates;

pub(crate) use files::file_response;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    commands,
    descriptions::{self, Kind},
    error::{ApiError, ApiOk, ApiResult},
    params::{Params, parse_params, percent_decode},
    state::Shared,
};

use album::send_media_group;
use callbacks::answer_callback_query;
use edit::{EditTarget, delete_message, edit_message, edit_reply_markup, send_chat_action};
use files::{download, get_file};
use send::{send_document, send_message, send_photo, send_video};
use updates::{delete_webhook, get_me, get_updates, set_webhook, webhook_info};

/// Bot API methods the emulator implements, with their canonical spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    GetMe,
    LogOut,
    Close,
    GetUpdates,
    SetWebhook,
    DeleteWebhook,
    GetWebhookInfo,
    GetFile,
    SendMessage,
    SendPhoto,
    SendDocument,
    SendVideo,
    SendMediaGroup,
    SendChatAction,
    EditMessageText,
    EditMessageCaption,
    EditMessageReplyMarkup,
    DeleteMessage,
    SetMyCommands,
    GetMyCommands,
    DeleteMyCommands,
    SetMyDescription,
    GetMyDescription,
    SetMyShortDescription,
    GetMyShortDescription,
    AnswerCallbackQuery,
}

const METHODS: &[(&str, Method)] = &[
    ("getMe", Method::GetMe),
    ("logOut", Method::LogOut),
    ("close", Method::Close),
    ("getUpdates", Method::GetUpdates),
    ("setWebhook", Method::SetWebhook),
    ("deleteWebhook", Method::DeleteWebhook),
    ("getWebhookInfo", Method::GetWebhookInfo),
    ("getFile", Method::GetFile),
    ("sendMessage", Method::SendMessage),
    ("sendPhoto", Method::SendPhoto),
    ("sendDocument", Method::SendDocument),
    ("sendVideo", Method::SendVideo),
    ("sendMediaGroup", Method::SendMediaGroup),
    ("sendChatAction", Method::SendChatAction),
    ("editMessageText", Method::EditMessageText),
    ("editMessageCaption", Method::EditMessageCaption),
    ("editMessageReplyMarkup", Method::EditMessageReplyMarkup),
    ("deleteMessage", Method::DeleteMessage),
    ("setMyCommands", Method::SetMyCommands),
    ("getMyCommands", Method::GetMyCommands),
    ("deleteMyCommands", Method::DeleteMyCommands),
    ("setMyDescription", Method::SetMyDescription),
    ("getMyDescription", Method::GetMyDescription),
    ("setMyShortDescription", Method::SetMyShortDescription),
    ("getMyShortDescription", Method::GetMyShortDescription),
    ("answerCallbackQuery", Method::AnswerCallbackQuery),
];

/// Names of the implemented Bot API methods, canonical spelling.
pub fn supported_methods() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|(name, _)| *name)
}

fn lookup(name: &str) -> Option<(&'static str, Method)> {
    METHODS
        .iter()
        .find(|(canonical, _)| canonical.eq_ignore_ascii_case(name))
        .copied()
}

/// Entry point for every path that is not under `/control/`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/file/") {
        return download(&shared, rest, req.method()).into_response();
    }
    let Some(rest) = path.strip_prefix("/bot") else {
        return ApiError::not_found().into_response();
    };
    let (token, method_name) = rest.split_once('/').unwrap_or((rest, ""));
    if percent_decode(token) != shared.config.token {
        return ApiError::unauthorized().into_response();
    }
    let method_name = percent_decode(method_name);
    let at_ms = shared.now_ms();

    let Some((canonical, method)) = lookup(&method_name) else {
        shared.lock().record_request(&method_name, 404, at_ms);
        return ApiError::not_found().into_response();
    };

    let limited = shared.lock().take_rate_limit(canonical);
    let fault = match limited {
        Some(_) => None,
        None => shared.lock().take_fault(canonical),
    };
    if let Some(delay) = fault.as_ref().and_then(|f| f.delay_ms) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let scripted = fault.and_then(scripted_error);
    let outcome = match (limited, scripted) {
        (Some(retry_after), _) => Err(ApiError::too_many_requests(retry_after)),
        (None, Some(error)) => Err(error),
        (None, None) => match parse_params(req).await {
            Ok(params) => call(&shared, method, &params).await,
            Err(e) => Err(e),
        },
    };
    let status = match &outcome {
        Ok(_) => 200,
        Err(e) => e.code,
    };
    tracing::debug!(method = canonical, status, "bot api call");
    shared.lock().record_request(canonical, status, at_ms);
    match outcome {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The error a scripted fault answers with, if it names one.
fn scripted_error(fault: crate::model::ApiFault) -> Option<ApiError> {
    let code = fault.error_code?;
    if code == 429 {
        let mut e = ApiError::too_many_requests(fault.retry_after.unwrap_or(1));
        if let Some(d) = fault.description {
            e.description = d;
        }
        return Some(e);
    }
    let description = fault.description.unwrap_or_else(|| {
        match code {
            400 => "Bad Request: scripted error",
            401 => "Unauthorized",
            403 => "Forbidden: scripted error",
            404 => "Not Found",
            409 => "Conflict: scripted error",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Scripted error",
        }
        .to_owned()
    });
    let mut e = ApiError::new(code, description);
    e.retry_after = fault.retry_after;
    Some(e)
}

async fn call(shared: &Arc<Shared>, method: Method, params: &Params) -> ApiResult {
    match method {
        Method::GetMe => Ok(ApiOk::new(get_me(shared))),
        Method::LogOut | Method::Close => Ok(ApiOk::new(json!(true))),
        Method::GetUpdates => get_updates(shared, params).await,
        Method::SetWebhook => set_webhook(shared, params),
        Method::DeleteWebhook => delete_webhook(shared, params),
        Method::GetWebhookInfo => Ok(ApiOk::new(webhook_info(shared))),
        Method::GetFile => get_file(shared, params),
        Method::SendMessage => send_message(shared, params),
        Method::SendPhoto => send_photo(shared, params).await,
        Method::SendDocument => send_document(shared, params).await,
        Method::SendVideo => send_video(shared, params).await,
        Method::SendMediaGroup => send_media_group(shared, params).await,
        Method::SendChatAction => send_chat_action(shared, params),
        Method::EditMessageText => edit_message(shared, params, EditTarget::Text),
        Method::EditMessageCaption => edit_message(shared, params, EditTarget::Caption),
        Method::EditMessageReplyMarkup => edit_reply_markup(shared, params),
        Method::DeleteMessage => delete_message(shared, params),
        Method::SetMyCommands => commands::set_my_commands(shared, params),
        Method::GetMyCommands => commands::get_my_commands(shared, params),
        Method::DeleteMyCommands => commands::delete_my_commands(shared, params),
        Method::SetMyDescription => descriptions::set(shared, params, Kind::Description),
        Method::GetMyDescription => descriptions::get(shared, params, Kind::Description),
        Method::SetMyShortDescription => descriptions::set(shared, params, Kind::Short),
        Method::GetMyShortDescription => descriptions::get(shared, params, Kind::Short),
        Method::AnswerCallbackQuery => answer_callback_query(shared, params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_lookup_ignores_case_and_returns_canonical_names() {
        assert_eq!(lookup("GETME").map(|m| m.0), Some("getMe"));
        assert_eq!(lookup("sendphoto").map(|m| m.0), Some("sendPhoto"));
        assert_eq!(
            lookup("EDITMESSAGEREPLYMARKUP").map(|m| m.0),
            Some("editMessageReplyMarkup")
        );
        assert_eq!(lookup("sendSticker"), None);
    }
}
