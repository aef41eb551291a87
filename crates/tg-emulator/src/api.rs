//! The Bot API surface: `/bot<token>/<method>` and `/file/bot<token>/<path>`.
//!
//! Routing is done by hand in one fallback handler rather than with axum
//! path patterns, because the token shares a path segment with the `bot`
//! prefix and method names must match without regard to case.

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, Method as HttpMethod, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    commands,
    error::{ApiError, ApiOk, ApiResult},
    markup, media,
    model::{ChatActionRecord, FileInfo, SentKind, SentMessage},
    params::{Params, parse_params, percent_decode},
    state::{
        FileKind, Shared, StoredFile, Webhook, document_json, photo_size_json, reply_copy, unix_now,
    },
};

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
    SendMediaGroup,
    SendChatAction,
    EditMessageText,
    EditMessageCaption,
    DeleteMessage,
    SetMyCommands,
    GetMyCommands,
    DeleteMyCommands,
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
    ("sendMediaGroup", Method::SendMediaGroup),
    ("sendChatAction", Method::SendChatAction),
    ("editMessageText", Method::EditMessageText),
    ("editMessageCaption", Method::EditMessageCaption),
    ("deleteMessage", Method::DeleteMessage),
    ("setMyCommands", Method::SetMyCommands),
    ("getMyCommands", Method::GetMyCommands),
    ("deleteMyCommands", Method::DeleteMyCommands),
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

const MAX_TEXT_UTF16: usize = 4096;
const MAX_CAPTION_UTF16: usize = 1024;
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
const MAX_DOCUMENT_BYTES: usize = 50 * 1024 * 1024;
/// Bots may download files up to 20 MB through getFile.
const MAX_GETFILE_BYTES: u64 = 20 * 1024 * 1024;
/// Longest long poll honoured, so a forgotten client cannot pin a task forever.
const MAX_POLL_SECONDS: u64 = 3600;

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

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

/// `GET /file/bot<token>/<file_path>`.
fn download(shared: &Shared, rest: &str, method: &HttpMethod) -> Result<Response, ApiError> {
    let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
    let token = percent_decode(token);
    if token.strip_prefix("bot") != Some(shared.config.token.as_str()) {
        return Err(ApiError::unauthorized());
    }
    let path = percent_decode(path);
    let state = shared.lock();
    let file = state.file_by_path(&path).ok_or_else(ApiError::not_found)?;
    Ok(file_response(file, method == HttpMethod::HEAD))
}

/// Raw bytes of a stored file with its content type.
pub(crate) fn file_response(file: &StoredFile, head_only: bool) -> Response {
    let mime = file
        .info
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let body = if head_only {
        Body::empty()
    } else {
        Body::from(file.bytes.clone())
    };
    let mut response = Response::new(body);
    if let Ok(value) = HeaderValue::from_str(&mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(file.bytes.len() as u64),
    );
    response
}

async fn call(shared: &Arc<Shared>, method: Method, params: &Params) -> ApiResult {
    match method {
        Method::GetMe => Ok(ApiOk::new(get_me(shared))),
        Method::LogOut | Method::Close | Method::AnswerCallbackQuery => Ok(ApiOk::new(json!(true))),
        Method::GetUpdates => get_updates(shared, params).await,
        Method::SetWebhook => set_webhook(shared, params),
        Method::DeleteWebhook => delete_webhook(shared, params),
        Method::GetWebhookInfo => Ok(ApiOk::new(webhook_info(shared))),
        Method::GetFile => get_file(shared, params),
        Method::SendMessage => send_message(shared, params),
        Method::SendPhoto => send_photo(shared, params).await,
        Method::SendDocument => send_document(shared, params).await,
        Method::SendMediaGroup => send_media_group(shared, params).await,
        Method::SendChatAction => send_chat_action(shared, params),
        Method::EditMessageText => edit_message(shared, params, EditTarget::Text),
        Method::EditMessageCaption => edit_message(shared, params, EditTarget::Caption),
        Method::DeleteMessage => delete_message(shared, params),
        Method::SetMyCommands => commands::set_my_commands(shared, params),
        Method::GetMyCommands => commands::get_my_commands(shared, params),
        Method::DeleteMyCommands => commands::delete_my_commands(shared, params),
    }
}

fn get_me(shared: &Shared) -> Value {
    let mut me = shared.bot_user();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

async fn get_updates(shared: &Arc<Shared>, params: &Params) -> ApiResult {
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

fn set_webhook(shared: &Shared, params: &Params) -> ApiResult {
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
    let webhook = Webhook {
        url,
        secret_token,
        allowed_updates,
        max_connections,
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

fn delete_webhook(shared: &Shared, params: &Params) -> ApiResult {
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

fn webhook_info(shared: &Shared) -> Value {
    let info = shared.lock().webhook_state();
    let mut out = json!({
        "url": info.url.unwrap_or_default(),
        "has_custom_certificate": false,
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

fn get_file(shared: &Shared, params: &Params) -> ApiResult {
    let file_id = params
        .non_empty_str("file_id")
        .ok_or_else(|| ApiError::bad_request("file_id is empty"))?;
    let state = shared.lock();
    let file = state
        .file(&file_id)
        .ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
    if file.info.file_size > MAX_GETFILE_BYTES {
        return Err(ApiError::bad_request("file is too big"));
    }
    Ok(ApiOk::new(json!({
        "file_id": file.info.file_id,
        "file_unique_id": file.info.file_unique_id,
        "file_size": file.info.file_size,
        "file_path": file.info.file_path,
    })))
}

fn chat_id(params: &Params) -> Result<i64, ApiError> {
    let raw = params
        .non_empty_str("chat_id")
        .ok_or_else(|| ApiError::bad_request("chat_id is empty"))?;
    // `@channelusername` targets are not emulated: no such chat exists here.
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("chat not found"))
}

fn ensure_not_blocked(shared: &Shared, chat_id: i64) -> Result<(), ApiError> {
    let blocked = shared.lock().chats.get(&chat_id).is_some_and(|c| c.blocked);
    if blocked {
        let what = if chat_id > 0 {
            "bot was blocked by the user"
        } else {
            "bot was kicked from the group chat"
        };
        return Err(ApiError::forbidden(what));
    }
    Ok(())
}

/// `reply_parameters` (Bot API 7) or the older `reply_to_message_id`.
fn reply_target(params: &Params) -> Result<Option<(i64, bool)>, ApiError> {
    if let Some(rp) = params.json("reply_parameters")? {
        let id = rp
            .get("message_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("invalid reply parameters specified"))?;
        let allow = rp
            .get("allow_sending_without_reply")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return Ok(Some((id, allow)));
    }
    Ok(params
        .i64("reply_to_message_id")?
        .map(|id| (id, params.bool("allow_sending_without_reply"))))
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Caption text checked against `parse_mode` and length; `None` when absent.
fn caption(params: &Params) -> Result<Option<(String, String)>, ApiError> {
    let Some(raw) = params.non_empty_str("caption") else {
        return Ok(None);
    };
    let plain = markup::render(params.str("parse_mode").as_deref(), &raw)?;
    if utf16_len(&plain) > MAX_CAPTION_UTF16 {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    Ok(Some((raw, plain)))
}

/// What a new bot message carries besides the common fields.
struct Outgoing {
    kind: SentKind,
    method: &'static str,
    content: Value,
    text: Option<String>,
    caption: Option<String>,
    parse_mode: Option<String>,
    file: Option<FileInfo>,
}

/// Builds, stores and records a message from the bot; returns its JSON.
fn post_bot_message(shared: &Shared, params: &Params, chat_id: i64, out: Outgoing) -> ApiResult {
    let reply = reply_target(params)?;
    let reply_markup = params.json("reply_markup")?;
    let mut messages = post_bot_messages(shared, chat_id, reply, reply_markup, false, vec![out])?;
    Ok(ApiOk::new(messages.pop().unwrap_or(Value::Null)))
}

/// Builds, stores and records consecutive messages from the bot under one
/// lock, so their ids are consecutive and either all or none are sent; with
/// `album` they share a new `media_group_id`. Every message replies to
/// `reply`, as the messages of a Telegram album each do.
fn post_bot_messages(
    shared: &Shared,
    chat_id: i64,
    reply: Option<(i64, bool)>,
    reply_markup: Option<Value>,
    album: bool,
    items: Vec<Outgoing>,
) -> Result<Vec<Value>, ApiError> {
    let bot = shared.bot_user();
    let mut state = shared.lock();
    let chat_json = state.chat_json(chat_id);
    let media_group_id = album.then(|| state.next_media_group_id());
    let chat = state.chat_mut(chat_id);
    let reply_to = match reply {
        Some((id, allow)) => match chat.messages.get(&id) {
            Some(original) => Some((id, reply_copy(original))),
            None if allow => None,
            None => return Err(ApiError::bad_request("message to be replied not found")),
        },
        None => None,
    };
    let date = unix_now();
    let mut sent = Vec::with_capacity(items.len());
    for out in items {
        let message_id = chat.next_message_id();
        let mut message = json!({
            "message_id": message_id,
            "from": bot,
            "chat": chat_json,
            "date": date,
        });
        if let Some(group) = &media_group_id {
            message["media_group_id"] = json!(group);
        }
        if let (Some(target), Some(content)) = (message.as_object_mut(), out.content.as_object()) {
            for (k, v) in content {
                target.insert(k.clone(), v.clone());
            }
        }
        if let Some((_, original)) = &reply_to {
            message["reply_to_message"] = original.clone();
        }
        // Telegram echoes only inline keyboards back in the Message.
        if let Some(markup) = reply_markup
            .as_ref()
            .filter(|m| m.get("inline_keyboard").is_some())
        {
            message["reply_markup"] = markup.clone();
        }
        chat.messages.insert(message_id, message.clone());
        chat.sent.push(SentMessage {
            message_id,
            chat_id,
            kind: out.kind,
            method: out.method.to_owned(),
            text: out.text,
            caption: out.caption,
            parse_mode: out.parse_mode,
            reply_to_message_id: reply_to.as_ref().map(|(id, _)| *id),
            reply_markup: reply_markup.clone(),
            file: out.file,
            date,
            previous_versions: Vec::new(),
            deleted: false,
            media_group_id: media_group_id.clone(),
            message: message.clone(),
        });
        sent.push(message);
    }
    Ok(sent)
}

fn send_message(shared: &Shared, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let text = params
        .non_empty_str("text")
        .ok_or_else(|| ApiError::bad_request("message text is empty"))?;
    let plain = markup::render(params.str("parse_mode").as_deref(), &text)?;
    if plain.trim().is_empty() {
        return Err(ApiError::bad_request("message text is empty"));
    }
    if utf16_len(&plain) > MAX_TEXT_UTF16 {
        return Err(ApiError::bad_request("message is too long"));
    }
    ensure_not_blocked(shared, chat_id)?;
    post_bot_message(
        shared,
        params,
        chat_id,
        Outgoing {
            kind: SentKind::Text,
            method: "sendMessage",
            content: json!({ "text": plain }),
            text: Some(text),
            caption: None,
            parse_mode: params.non_empty_str("parse_mode"),
            file: None,
        },
    )
}

/// The bytes behind a `photo`/`document` parameter or an InputMedia's `media`.
enum Input {
    Bytes {
        bytes: Bytes,
        file_name: Option<String>,
        content_type: Option<String>,
    },
    /// A `file_id` the emulator already knows: Telegram re-sends the same file.
    Existing(StoredFile),
}

impl Input {
    fn upload(u: &crate::params::Upload) -> Self {
        Self::Bytes {
            bytes: u.bytes.clone(),
            file_name: u.file_name.clone(),
            content_type: u.content_type.clone(),
        }
    }
}

async fn resolve_input(shared: &Shared, params: &Params, field: &str) -> Result<Input, ApiError> {
    if let Some(upload) = params.file(field) {
        return Ok(Input::upload(upload));
    }
    let value = params
        .non_empty_str(field)
        .ok_or_else(|| ApiError::bad_request(format!("there is no {field} in the request")))?;
    resolve_value(shared, params, &value).await
}

/// A file reference: `attach://<multipart field>`, an HTTP URL to fetch, or
/// a known `file_id`.
async fn resolve_value(shared: &Shared, params: &Params, value: &str) -> Result<Input, ApiError> {
    let wrong = || ApiError::bad_request("wrong file identifier/HTTP URL specified");
    if let Some(name) = value.strip_prefix("attach://") {
        return params.file(name).map(Input::upload).ok_or_else(wrong);
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        let fetch_failed = || ApiError::bad_request("failed to get HTTP URL content");
        let response = shared
            .http
            .get(value)
            .send()
            .await
            .map_err(|_| fetch_failed())?;
        if !response.status().is_success() {
            return Err(fetch_failed());
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let file_name = reqwest::Url::parse(value)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
            .filter(|n| !n.is_empty());
        let bytes = response.bytes().await.map_err(|_| fetch_failed())?;
        return Ok(Input::Bytes {
            bytes,
            file_name,
            content_type,
        });
    }
    shared
        .lock()
        .file(value)
        .cloned()
        .map(Input::Existing)
        .ok_or_else(wrong)
}

/// The checks Telegram's servers make on uploaded photo bytes (sendPhoto
/// and each photo of sendMediaGroup): at most 10 MB, an image, width +
/// height at most 10000 and sides at most 20:1.
fn check_photo(bytes: &[u8]) -> Result<media::ImageInfo, ApiError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(ApiError::too_large());
    }
    let info = media::sniff(bytes).ok_or_else(|| ApiError::bad_request("IMAGE_PROCESS_FAILED"))?;
    let (w, h) = (info.width.max(1), info.height.max(1));
    if w + h > 10_000 || w.max(h) / w.min(h) > 20 {
        return Err(ApiError::bad_request("PHOTO_INVALID_DIMENSIONS"));
    }
    Ok(info)
}

/// Stores the PhotoSize ladder of photo bytes that passed [`check_photo`],
/// smallest first.
async fn store_photo(
    shared: &Shared,
    bytes: Bytes,
    info: media::ImageInfo,
) -> Result<Vec<FileInfo>, ApiError> {
    let mime = info.mime().to_owned();
    // Decoding and re-encoding thumbnails is CPU work: keep it off the
    // async workers.
    let sizes = tokio::task::spawn_blocking(move || media::photo_sizes(&bytes))
        .await
        .map_err(|_| ApiError::new(500, "Internal Server Error"))?;
    Ok(shared.lock().store_photo_sizes(sizes, Some(mime)))
}

/// The check Telegram makes on uploaded document bytes: at most 50 MB.
fn check_document(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::too_large());
    }
    Ok(())
}

/// Stores document bytes that passed [`check_document`].
fn store_document(
    shared: &Shared,
    bytes: Bytes,
    file_name: Option<String>,
    content_type: Option<&str>,
) -> FileInfo {
    let file_name = file_name.unwrap_or_else(|| "document".to_owned());
    let mime = document_mime(&bytes, Some(&file_name), content_type);
    let dims = media::sniff(&bytes).map(|i| (i.width, i.height));
    shared
        .lock()
        .store_file(bytes, FileKind::Document, Some(file_name), Some(mime), dims)
        .info
}

async fn send_photo(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let caption = caption(params)?;
    let input = resolve_input(shared, params, "photo").await?;
    ensure_not_blocked(shared, chat_id)?;
    let files: Vec<FileInfo> = match input {
        Input::Existing(file) => vec![file.info],
        Input::Bytes { bytes, .. } => {
            let info = check_photo(&bytes)?;
            store_photo(shared, bytes, info).await?
        }
    };
    let mut content = json!({ "photo": files.iter().map(photo_size_json).collect::<Vec<_>>() });
    if let Some((_, plain)) = &caption {
        content["caption"] = json!(plain);
    }
    post_bot_message(
        shared,
        params,
        chat_id,
        Outgoing {
            kind: SentKind::Photo,
            method: "sendPhoto",
            content,
            text: None,
            caption: caption.map(|c| c.0),
            parse_mode: params.non_empty_str("parse_mode"),
            file: files.last().cloned(),
        },
    )
}

/// MIME type for a document: sniffed image type, then the extension, then
/// what the client declared.
fn document_mime(bytes: &[u8], file_name: Option<&str>, declared: Option<&str>) -> String {
    if let Some(info) = media::sniff(bytes) {
        return info.mime().to_owned();
    }
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("txt") => Some("text/plain"),
        Some("json") => Some("application/json"),
        Some("pdf") => Some("application/pdf"),
        Some("csv") => Some("text/csv"),
        Some("zip") => Some("application/zip"),
        Some("html") | Some("htm") => Some("text/html"),
        _ => None,
    };
    by_ext
        .or(declared.filter(|d| !d.is_empty()))
        .unwrap_or("application/octet-stream")
        .to_owned()
}

async fn send_document(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let caption = caption(params)?;
    let input = resolve_input(shared, params, "document").await?;
    ensure_not_blocked(shared, chat_id)?;
    let file = match input {
        Input::Existing(file) => file.info,
        Input::Bytes {
            bytes,
            file_name,
            content_type,
        } => {
            check_document(&bytes)?;
            store_document(shared, bytes, file_name, content_type.as_deref())
        }
    };
    let mut content = json!({ "document": document_json(&file, None) });
    if let Some((_, plain)) = &caption {
        content["caption"] = json!(plain);
    }
    post_bot_message(
        shared,
        params,
        chat_id,
        Outgoing {
            kind: SentKind::Document,
            method: "sendDocument",
            content,
            text: None,
            caption: caption.map(|c| c.0),
            parse_mode: params.non_empty_str("parse_mode"),
            file: Some(file),
        },
    )
}

/// Most items in one sendMediaGroup (TDLib's `MAX_GROUPED_MESSAGES`).
const MAX_ALBUM_ITEMS: usize = 10;

/// One InputMediaPhoto / InputMediaDocument of sendMediaGroup's `media`.
struct AlbumItem {
    kind: SentKind,
    /// `attach://<field>`, an HTTP URL or a `file_id`.
    media: String,
    /// (as sent, rendered) caption.
    caption: Option<(String, String)>,
    parse_mode: Option<String>,
}

/// Reads one InputMedia object as the Bot API server's `get_input_media`
/// does; the error is the text that follows `can't parse InputMedia: `.
fn album_item(params: &Params, value: &Value) -> Result<AlbumItem, String> {
    let object = value
        .as_object()
        .ok_or_else(|| "expected an Object".to_owned())?;
    let text_field = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let parse_mode = text_field("parse_mode");
    let caption = match text_field("caption") {
        Some(raw) => {
            // TDLib's own words ("Can't parse entities: ..."); the server
            // only lowercases the first letter of the whole description.
            let plain = markup::render(parse_mode.as_deref(), &raw).map_err(|e| {
                let what = e.description.trim_start_matches("Bad Request: ");
                let mut chars = what.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect::<String>()
                })
            })?;
            Some((raw, plain))
        }
        None => None,
    };
    let kind = text_field("type").ok_or_else(|| "Can't find field \"type\"".to_owned())?;
    // `attach://x` without a multipart file field `x`, or no `media` at
    // all, is "media not found" (the server's `get_input_file` finds no file).
    let media = text_field("media")
        .filter(|m| {
            m.strip_prefix("attach://")
                .is_none_or(|n| params.file(n).is_some())
        })
        .ok_or_else(|| "media not found".to_owned())?;
    let kind = match kind.as_str() {
        "photo" => SentKind::Photo,
        "document" => SentKind::Document,
        "animation" => return Err(format!("type \"{kind}\" can't be used in sendMediaGroup")),
        // Valid in a Telegram album, but the emulator has no video or audio.
        "video" | "audio" => {
            return Err(format!("type \"{kind}\" is not supported by the emulator"));
        }
        _ => return Err(format!("type \"{kind}\" is unsupported")),
    };
    Ok(AlbumItem {
        kind,
        media,
        caption,
        parse_mode,
    })
}

/// How the Bot API server reports an item of an album that Telegram's
/// servers refused (`Client::on_message_send_failed`): the item's 1-based
/// position and the server's error. (Telegram numbers the items in the
/// order their failures arrive; the emulator checks them in order, so the
/// first refused item is the one named.) Other errors (413) pass unchanged.
fn album_member_error(position: usize, error: ApiError) -> ApiError {
    match error.description.strip_prefix("Bad Request: ") {
        Some(what) if error.code == 400 => ApiError::bad_request(format!(
            "failed to send message #{position} with the error message \"{what}\""
        )),
        _ => error,
    }
}

/// `sendMediaGroup`: photos or documents sent together as one album.
///
/// The checks come in the order of the Bot API server and TDLib
/// (`Client::process_send_media_group_query`,
/// `MessagesManager::send_message_group`): every item is parsed first, then
/// the count, captions and file references, then mixing of documents with
/// photos, then what Telegram's servers check on each upload. Nothing is
/// stored or sent unless every item passes. As TDLib does, one item is
/// sent as an ordinary message with no `media_group_id`.
async fn send_media_group(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let reply = reply_target(params)?;
    let media = params
        .json("media")?
        .ok_or_else(|| ApiError::bad_request("parameter \"media\" is required"))?;
    let media = media
        .as_array()
        .ok_or_else(|| ApiError::bad_request("expected an Array of InputMedia"))?;
    let items = media
        .iter()
        .map(|item| album_item(params, item))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(format!("can't parse InputMedia: {e}")))?;
    if items.is_empty() {
        return Err(ApiError::bad_request("there are no messages to send"));
    }
    if items.len() > MAX_ALBUM_ITEMS {
        return Err(ApiError::bad_request(
            "too many messages to send as an album",
        ));
    }
    let mut inputs = Vec::with_capacity(items.len());
    for item in &items {
        if item
            .caption
            .as_ref()
            .is_some_and(|(_, plain)| utf16_len(plain) > MAX_CAPTION_UTF16)
        {
            return Err(ApiError::bad_request("message caption is too long"));
        }
        // HTTP URLs are fetched as sendPhoto fetches them; one that cannot
        // be fetched is "failed to get HTTP URL content".
        inputs.push(resolve_value(shared, params, &item.media).await?);
    }
    let has_document = items.iter().any(|i| i.kind == SentKind::Document);
    if has_document && items.iter().any(|i| i.kind != SentKind::Document) {
        return Err(ApiError::bad_request(
            "document can't be mixed with other media types",
        ));
    }
    ensure_not_blocked(shared, chat_id)?;

    // What Telegram's servers check on each upload, for every item before
    // anything is stored: a refused item leaves no trace.
    let mut photo_infos = Vec::with_capacity(items.len());
    for (position, (item, input)) in items.iter().zip(&inputs).enumerate() {
        let checked = match (item.kind, input) {
            (SentKind::Photo, Input::Bytes { bytes, .. }) => check_photo(bytes).map(Some),
            (_, Input::Bytes { bytes, .. }) => check_document(bytes).map(|()| None),
            (_, Input::Existing(_)) => Ok(None),
        };
        photo_infos.push(checked.map_err(|e| album_member_error(position + 1, e))?);
    }

    let album = items.len() > 1;
    let mut outgoing = Vec::with_capacity(items.len());
    for ((item, input), photo_info) in items.into_iter().zip(inputs).zip(photo_infos) {
        let (mut content, file) = match (item.kind, input, photo_info) {
            (SentKind::Photo, Input::Bytes { bytes, .. }, Some(info)) => {
                let files = store_photo(shared, bytes, info).await?;
                let sizes: Vec<Value> = files.iter().map(photo_size_json).collect();
                (json!({ "photo": sizes }), files.last().cloned())
            }
            (SentKind::Photo, Input::Existing(file), _) => (
                json!({ "photo": [photo_size_json(&file.info)] }),
                Some(file.info),
            ),
            (
                _,
                Input::Bytes {
                    bytes,
                    file_name,
                    content_type,
                },
                _,
            ) => {
                let file = store_document(shared, bytes, file_name, content_type.as_deref());
                (
                    json!({ "document": document_json(&file, None) }),
                    Some(file),
                )
            }
            (_, Input::Existing(file), _) => (
                json!({ "document": document_json(&file.info, None) }),
                Some(file.info),
            ),
        };
        if let Some((_, plain)) = &item.caption {
            content["caption"] = json!(plain);
        }
        outgoing.push(Outgoing {
            kind: item.kind,
            method: "sendMediaGroup",
            content,
            text: None,
            caption: item.caption.map(|c| c.0),
            parse_mode: item.parse_mode,
            file,
        });
    }
    // sendMediaGroup takes no reply_markup (the Bot API server ignores it).
    let messages = post_bot_messages(shared, chat_id, reply, None, album, outgoing)?;
    Ok(ApiOk::new(Value::Array(messages)))
}

fn send_chat_action(shared: &Shared, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let action = params
        .non_empty_str("action")
        .filter(|a| CHAT_ACTIONS.contains(&a.as_str()))
        .ok_or_else(|| ApiError::bad_request("wrong parameter action in request"))?;
    ensure_not_blocked(shared, chat_id)?;
    let at_ms = shared.now_ms();
    shared
        .lock()
        .chat_mut(chat_id)
        .actions
        .push(ChatActionRecord {
            chat_id,
            action,
            at_ms,
        });
    Ok(ApiOk::new(json!(true)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditTarget {
    Text,
    Caption,
}

fn edit_message(shared: &Shared, params: &Params, target: EditTarget) -> ApiResult {
    if params.non_empty_str("inline_message_id").is_some() {
        return Err(ApiError::bad_request(
            "inline messages are not supported by the emulator",
        ));
    }
    let chat_id = chat_id(params)?;
    let message_id = params
        .i64("message_id")?
        .ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    let parse_mode = params.non_empty_str("parse_mode");
    let new_raw = match target {
        EditTarget::Text => Some(
            params
                .non_empty_str("text")
                .ok_or_else(|| ApiError::bad_request("message text is empty"))?,
        ),
        EditTarget::Caption => params.non_empty_str("caption"),
    };
    let new_plain = match &new_raw {
        Some(raw) => Some(markup::render(parse_mode.as_deref(), raw)?),
        None => None,
    };
    let limit = match target {
        EditTarget::Text => (MAX_TEXT_UTF16, "message is too long"),
        EditTarget::Caption => (MAX_CAPTION_UTF16, "message caption is too long"),
    };
    if new_plain.as_deref().is_some_and(|p| utf16_len(p) > limit.0) {
        return Err(ApiError::bad_request(limit.1));
    }
    let reply_markup = params.json("reply_markup")?;

    let mut state = shared.lock();
    let chat = state.chat_mut(chat_id);
    let sent = chat
        .sent
        .iter_mut()
        .find(|m| m.message_id == message_id && !m.deleted)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    let field = match (target, sent.kind) {
        (EditTarget::Text, SentKind::Text) => "text",
        (EditTarget::Text, _) => {
            return Err(ApiError::bad_request(
                "there is no text in the message to edit",
            ));
        }
        (EditTarget::Caption, SentKind::Text) => {
            return Err(ApiError::bad_request(
                "there is no caption in the message to edit",
            ));
        }
        (EditTarget::Caption, _) => "caption",
    };
    let current = match target {
        EditTarget::Text => &mut sent.text,
        EditTarget::Caption => &mut sent.caption,
    };
    if *current == new_raw && sent.parse_mode == parse_mode && sent.reply_markup == reply_markup {
        return Err(ApiError::bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    if let Some(old) = current.take() {
        sent.previous_versions.push(old);
    }
    *current = new_raw;
    sent.parse_mode = parse_mode;
    let mut message = sent.message.clone();
    if let Some(obj) = message.as_object_mut() {
        match new_plain {
            Some(plain) => obj.insert(field.to_owned(), json!(plain)),
            None => obj.remove(field),
        };
        obj.insert("edit_date".to_owned(), json!(unix_now()));
        obj.remove("reply_markup");
        if let Some(markup) = reply_markup
            .as_ref()
            .filter(|m| m.get("inline_keyboard").is_some())
        {
            obj.insert("reply_markup".to_owned(), markup.clone());
        }
    }
    sent.reply_markup = reply_markup;
    sent.message = message.clone();
    chat.messages.insert(message_id, message.clone());
    Ok(ApiOk::new(message))
}

fn delete_message(shared: &Shared, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let message_id = params
        .i64("message_id")?
        .ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    let mut state = shared.lock();
    let chat = state.chat_mut(chat_id);
    if chat.messages.remove(&message_id).is_none() {
        return Err(ApiError::bad_request("message to delete not found"));
    }
    if let Some(sent) = chat.sent.iter_mut().find(|m| m.message_id == message_id) {
        sent.deleted = true;
    }
    Ok(ApiOk::new(json!(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_lookup_ignores_case_and_returns_canonical_names() {
        assert_eq!(lookup("GETME").map(|m| m.0), Some("getMe"));
        assert_eq!(lookup("sendphoto").map(|m| m.0), Some("sendPhoto"));
        assert_eq!(lookup("sendSticker"), None);
    }

    #[test]
    fn album_member_errors_name_the_item_and_keep_other_codes() {
        let e = album_member_error(3, ApiError::bad_request("PHOTO_INVALID_DIMENSIONS"));
        assert_eq!(
            e.description,
            "Bad Request: failed to send message #3 with the error message \"PHOTO_INVALID_DIMENSIONS\""
        );
        assert_eq!(album_member_error(1, ApiError::too_large()).code, 413);
    }

    #[test]
    fn sent_messages_recorded_before_albums_still_parse() {
        let old = json!({
            "message_id": 1, "chat_id": 2, "kind": "text", "method": "sendMessage",
            "text": "hi", "caption": null, "parse_mode": null, "reply_to_message_id": null,
            "reply_markup": null, "file": null, "date": 0, "previous_versions": [],
            "deleted": false, "message": {}
        });
        let parsed: SentMessage = serde_json::from_value(old).expect("parses");
        assert_eq!(parsed.media_group_id, None);
    }

    #[test]
    fn document_mime_prefers_sniffed_image_type() {
        let jpeg = media::test_jpeg(8, 8);
        assert_eq!(document_mime(&jpeg, Some("x.bin"), None), "image/jpeg");
        assert_eq!(document_mime(b"hello", Some("a.txt"), None), "text/plain");
        assert_eq!(
            document_mime(b"\x00\x01", None, Some("application/x-foo")),
            "application/x-foo"
        );
    }
}
