//! The control API under `/control/`: how tests and the demo play the user's
//! side (send photos, documents, videos, animations, video notes, stickers,
//! text, crafted updates, press inline
//! buttons), inject faults (rate limits, scripted errors and delays per
//! method, webhook deliveries that hang up, blocked chats, duplicate
//! deliveries) and inspect what the bot did (sent messages, chat actions,
//! answers to button presses, webhook deliveries, call counters).
//!
//! Answers are plain JSON documents (no `ok`/`result` envelope); errors are
//! `{"ok":false,"error":"..."}` with a 4xx status.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    api::file_response,
    commands,
    entities::entities_json,
    media,
    model::{
        BotDescriptions, ButtonPress, CallbackAnswer, ChatInfo, ChatSetup, ChatType, CommandList,
        FileInfo, PressedQuery, QueuedUpdate, SentMessage, StickerKind, UserMessageOptions,
        VideoMeta,
    },
    privacy,
    state::{
        ChatState, FileKind, Rule, Shared, State as EmuState, chat_instance, default_chat,
        document_json, photo_size_json, reply_copy, sticker_json, unix_now, user_json, video_json,
        video_note_json,
    },
};

type Shared_ = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/control/health", get(health))
        .route("/control/reset", post(reset))
        .route("/control/files", post(register_file))
        .route("/control/files/{file_id}", get(file_bytes))
        .route("/control/chats/{chat_id}", get(chat_info).post(create_chat))
        .route("/control/chats/{chat_id}/photo", post(user_photo))
        .route("/control/chats/{chat_id}/document", post(user_document))
        .route("/control/chats/{chat_id}/video", post(user_video))
        .route("/control/chats/{chat_id}/animation", post(user_animation))
        .route("/control/chats/{chat_id}/video_note", post(user_video_note))
        .route("/control/chats/{chat_id}/sticker", post(user_sticker))
        .route("/control/chats/{chat_id}/text", post(user_text))
        .route("/control/chats/{chat_id}/messages", get(chat_messages))
        .route(
            "/control/chats/{chat_id}/messages/{message_id}/press",
            post(press_button),
        )
        .route("/control/callback_answers", get(callback_answers))
        .route("/control/chats/{chat_id}/actions", get(chat_actions))
        .route("/control/chats/{chat_id}/blocked", post(set_blocked))
        .route("/control/chats/{chat_id}/privacy", post(set_chat_privacy))
        .route("/control/chats/{chat_id}/undelivered", get(undelivered))
        .route("/control/privacy", post(set_default_privacy))
        .route("/control/updates", post(queue_raw_update))
        .route("/control/redeliver/{update_id}", post(redeliver))
        .route("/control/deliveries", get(deliveries))
        .route(
            "/control/rate_limit",
            post(add_rate_limit).delete(clear_rate_limits),
        )
        .route("/control/faults", post(add_fault).delete(clear_faults))
        .route(
            "/control/webhook_faults",
            post(add_webhook_fault).delete(clear_webhook_faults),
        )
        .route("/control/requests", get(requests))
        .route("/control/webhook", get(webhook))
        .route("/control/commands", get(command_lists))
        .route("/control/descriptions", get(description_lists))
}

/// A control API failure.
struct ControlError(StatusCode, String);

impl ControlError {
    fn bad_request(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }

    fn not_found(msg: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, msg.into())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "ok": false, "error": self.1 }))).into_response()
    }
}

type ControlResult<T> = Result<T, ControlError>;

fn parse_id(raw: &str, what: &str) -> ControlResult<i64> {
    raw.parse()
        .map_err(|_| ControlError::bad_request(format!("{what} must be an integer, got {raw:?}")))
}

fn options(query: Option<String>) -> ControlResult<UserMessageOptions> {
    serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ControlError::bad_request(format!("bad query string: {e}")))
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// Forgets everything (updates, files, chats, webhook, rules, counters).
async fn reset(State(shared): Shared_) -> Json<Value> {
    *shared.lock() = EmuState::default();
    shared.notify();
    Json(json!({ "ok": true }))
}

#[derive(Debug, Deserialize)]
struct RegisterQuery {
    file_name: Option<String>,
    mime_type: Option<String>,
}

/// Stores bytes as a file the bot can `getFile` and download.
async fn register_file(
    State(shared): Shared_,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<FileInfo>> {
    let q: RegisterQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ControlError::bad_request(format!("bad query string: {e}")))?;
    let image = media::sniff(&body);
    let kind = if image.is_some() {
        FileKind::Photo
    } else {
        FileKind::Document
    };
    let mime = q.mime_type.or_else(|| image.map(|i| i.mime().to_owned()));
    let stored = shared.lock().store_file(
        body,
        kind,
        q.file_name,
        mime,
        image.map(|i| (i.width, i.height)),
    );
    Ok(Json(stored.info))
}

/// Raw bytes of any stored file (what the bot sent included), no token needed.
async fn file_bytes(State(shared): Shared_, Path(file_id): Path<String>) -> Response {
    match shared.lock().file(&file_id) {
        Some(file) => file_response(file, false),
        None => ControlError::not_found(format!("no file {file_id:?}")).into_response(),
    }
}

/// Creates a message from a simulated user and queues it as an update.
fn queue_user_message(
    shared: &Shared,
    chat_id: i64,
    opts: &UserMessageOptions,
    content: Value,
) -> ControlResult<QueuedUpdate> {
    let queued = {
        let mut state = shared.lock();
        let chat = state.chat_mut(chat_id);
        let user = sender(chat_id, chat, opts)?;
        let chat_json = chat
            .chat
            .get_or_insert_with(|| default_chat(chat_id, Some(&user)))
            .clone();
        let reply = match opts.reply_to_message_id {
            Some(id) => Some(chat.messages.get(&id).map(reply_copy).ok_or_else(|| {
                ControlError::bad_request(format!("chat {chat_id} has no message {id}"))
            })?),
            None => None,
        };
        let message_id = chat.next_message_id();
        let mut message = json!({
            "message_id": message_id,
            "from": user,
            "chat": chat_json,
            "date": unix_now(),
        });
        if let (Some(target), Some(extra)) = (message.as_object_mut(), content.as_object()) {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        if let Some(group) = &opts.media_group_id {
            message["media_group_id"] = json!(group);
        }
        if let Some(original) = reply {
            message["reply_to_message"] = original;
        }
        chat.messages.insert(message_id, message.clone());
        let chat_privacy = chat.privacy;
        let privacy = chat_privacy
            .or(state.privacy_default)
            .unwrap_or(shared.config.group_privacy);
        let chat = state.chat_mut(chat_id);
        let delivered = !privacy
            || privacy::delivers(
                &message,
                shared.bot_id,
                &shared.config.bot_username,
                chat.bot_posted(),
            );
        if !delivered {
            chat.undelivered.push(message_id);
            return Ok(QueuedUpdate {
                update_id: 0,
                message_id: Some(message_id),
                update: json!({ "message": message }),
                delivered: false,
            });
        }
        let (update_id, update) = state.queue_update(json!({ "message": message }));
        QueuedUpdate {
            update_id,
            message_id: Some(message_id),
            update,
            delivered: true,
        }
    };
    shared.notify();
    Ok(queued)
}

/// The `from` of a user message: the member named by `from_id`, else the
/// chat's first member, else a made-up user (the chat's id in a private chat,
/// 1000 in a group). Options given explicitly override the member's names.
fn sender(chat_id: i64, chat: &ChatState, opts: &UserMessageOptions) -> ControlResult<Value> {
    let member = match opts.from_id {
        Some(id) => {
            let member = chat.members.iter().find(|m| m.id == id);
            // A group set up with members is a closed cast: a stranger
            // posting is most likely a mistake in the test.
            if member.is_none() && chat.created && chat_id < 0 && !chat.members.is_empty() {
                return Err(ControlError::bad_request(format!(
                    "user {id} is not a member of chat {chat_id}"
                )));
            }
            member
        }
        None => chat.members.first(),
    };
    let from_id = member
        .map(|m| m.id)
        .or(opts.from_id)
        .unwrap_or(if chat_id > 0 { chat_id } else { 1000 });
    let mut user = user_json(
        from_id,
        opts.first_name
            .as_deref()
            .or(member.map(|m| m.first_name.as_str())),
        opts.username
            .as_deref()
            .or(member.and_then(|m| m.username.as_deref())),
        opts.language_code
            .as_deref()
            .or(member.and_then(|m| m.language_code.as_deref())),
    );
    if let Some(last_name) = member.and_then(|m| m.last_name.as_ref()) {
        user["last_name"] = json!(last_name);
    }
    Ok(user)
}

/// Adds a caption and its entities to a photo, document, video or animation
/// message.
fn add_caption(content: &mut Value, caption: Option<&String>) {
    if let Some(caption) = caption {
        content["caption"] = json!(caption);
        if let Some(entities) = entities_json(caption) {
            content["caption_entities"] = entities;
        }
    }
}

async fn user_photo(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let opts = options(query)?;
    if body.is_empty() {
        return Err(ControlError::bad_request("body must hold the photo bytes"));
    }
    let mime = media::sniff(&body).map(|i| i.mime().to_owned());
    let sizes = tokio::task::spawn_blocking(move || media::photo_sizes(&body))
        .await
        .map_err(|e| ControlError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let photo: Vec<Value> = shared
        .lock()
        .store_photo_sizes(sizes, mime)
        .iter()
        .map(photo_size_json)
        .collect();
    let mut content = json!({ "photo": photo });
    add_caption(&mut content, opts.caption.as_ref());
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

async fn user_document(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let opts = options(query)?;
    let image = media::sniff(&body);
    let file_name = opts.file_name.clone().unwrap_or_else(|| match image {
        Some(info) => format!("image.{}", info.extension()),
        None => "file.bin".to_owned(),
    });
    let mime = opts.mime_type.clone().unwrap_or_else(|| {
        image.map_or_else(
            || "application/octet-stream".to_owned(),
            |i| i.mime().to_owned(),
        )
    });
    let thumb_source = body.clone();
    let thumbnail = if image.is_some() {
        tokio::task::spawn_blocking(move || media::document_thumbnail(&thumb_source))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let document = {
        let mut state = shared.lock();
        let thumb = thumbnail.map(|t| {
            state
                .store_file(
                    t.bytes,
                    FileKind::Thumbnail,
                    None,
                    Some("image/jpeg".to_owned()),
                    Some((t.width, t.height)),
                )
                .info
        });
        let stored = state.store_file(
            body,
            FileKind::Document,
            Some(file_name),
            Some(mime),
            image.map(|i| (i.width, i.height)),
        );
        document_json(&stored.info, thumb.as_ref())
    };
    let mut content = json!({ "document": document });
    add_caption(&mut content, opts.caption.as_ref());
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

/// A query string parsed as `T` (unknown fields, such as the
/// [`UserMessageOptions`] next to them, are ignored).
fn query_as<T: DeserializeOwned>(query: Option<&str>) -> ControlResult<T> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ControlError::bad_request(format!("bad query string: {e}")))
}

/// Refuses what Telegram does not allow on a kind of message: a caption
/// (video notes, stickers) or an album (animations, video notes, stickers).
fn refuse_options(
    opts: &UserMessageOptions,
    what: &str,
    caption: bool,
    album: bool,
) -> ControlResult<()> {
    if !caption && opts.caption.is_some() {
        return Err(ControlError::bad_request(format!(
            "a {what} has no caption on Telegram"
        )));
    }
    if !album && opts.media_group_id.is_some() {
        return Err(ControlError::bad_request(format!(
            "a {what} can't be part of an album (media_group_id) on Telegram"
        )));
    }
    Ok(())
}

fn require_bytes(body: &Bytes, what: &str) -> ControlResult<()> {
    if body.is_empty() {
        return Err(ControlError::bad_request(format!(
            "body must hold the {what} bytes"
        )));
    }
    Ok(())
}

/// A video or an animation from a user: the file with the size and duration
/// the query states ([`VideoMeta`]), served by getFile like any other.
fn store_user_video(
    shared: &Shared,
    body: Bytes,
    kind: FileKind,
    opts: &UserMessageOptions,
    meta: VideoMeta,
    default_name: &str,
) -> Value {
    let file_name = opts
        .file_name
        .clone()
        .unwrap_or_else(|| default_name.to_owned());
    let mime = opts
        .mime_type
        .clone()
        .unwrap_or_else(|| "video/mp4".to_owned());
    let info = shared
        .lock()
        .store_media(
            body,
            kind,
            Some(file_name),
            Some(mime),
            Some((meta.width, meta.height)),
            Some(meta.duration),
        )
        .info;
    video_json(&info)
}

/// A user sends a video (`?width=&height=&duration=`, default 640×360, 1 s):
/// a `video` message, with a caption and in an album if asked.
async fn user_video(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let meta: VideoMeta = query_as(query.as_deref())?;
    let opts = options(query)?;
    require_bytes(&body, "video")?;
    let video = store_user_video(&shared, body, FileKind::Video, &opts, meta, "video.mp4");
    let mut content = json!({ "video": video });
    add_caption(&mut content, opts.caption.as_ref());
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

/// A user sends a GIF, which Telegram keeps as a silent MP4: an `animation`
/// message that also carries the same file as its `document`, as the Bot
/// API does for older clients.
async fn user_animation(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let meta: VideoMeta = query_as(query.as_deref())?;
    let opts = options(query)?;
    refuse_options(&opts, "animation", true, false)?;
    require_bytes(&body, "animation")?;
    let animation = store_user_video(
        &shared,
        body,
        FileKind::Animation,
        &opts,
        meta,
        "animation.gif.mp4",
    );
    let mut document = json!({});
    for field in [
        "file_id",
        "file_unique_id",
        "file_name",
        "mime_type",
        "file_size",
    ] {
        if let Some(value) = animation.get(field) {
            document[field] = value.clone();
        }
    }
    let mut content = json!({ "animation": animation, "document": document });
    add_caption(&mut content, opts.caption.as_ref());
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct VideoNoteQuery {
    /// Diameter in pixels.
    length: u32,
    duration: u32,
}

impl Default for VideoNoteQuery {
    fn default() -> Self {
        // What Telegram's apps record today: 384 px round clips.
        Self {
            length: 384,
            duration: 1,
        }
    }
}

/// A user records a round video (`?length=&duration=`, default 384 px,
/// 1 s): a `video_note` message, no caption.
async fn user_video_note(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let q: VideoNoteQuery = query_as(query.as_deref())?;
    let opts = options(query)?;
    refuse_options(&opts, "video note", false, false)?;
    require_bytes(&body, "video note")?;
    let info = shared
        .lock()
        .store_media(
            body,
            FileKind::VideoNote,
            None,
            Some("video/mp4".to_owned()),
            Some((q.length, q.length)),
            Some(q.duration),
        )
        .info;
    let content = json!({ "video_note": video_note_json(&info) });
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

#[derive(Debug, Default, Deserialize)]
struct StickerQuery {
    /// `static`, `animated` or `video`; guessed from the bytes when absent.
    sticker: Option<StickerKind>,
    emoji: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// A user sends a regular sticker (`?sticker=static|animated|video`,
/// `emoji` default 👍, `width`/`height` default the WebP's or 512×512): a
/// `sticker` message, no caption.
async fn user_sticker(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let q: StickerQuery = query_as(query.as_deref())?;
    let opts = options(query)?;
    refuse_options(&opts, "sticker", false, false)?;
    require_bytes(&body, "sticker")?;
    let kind = q.sticker.unwrap_or_else(|| StickerKind::sniff(&body));
    let image = (kind == StickerKind::Static)
        .then(|| media::sniff(&body))
        .flatten();
    let width = q.width.or(image.map(|i| i.width)).unwrap_or(512);
    let height = q.height.or(image.map(|i| i.height)).unwrap_or(512);
    let info = shared
        .lock()
        .store_file(
            body,
            FileKind::Sticker,
            None,
            Some(kind.mime().to_owned()),
            Some((width, height)),
        )
        .info;
    let emoji = q.emoji.unwrap_or_else(|| "👍".to_owned());
    let content = json!({ "sticker": sticker_json(&info, kind, Some(&emoji)) });
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

/// Text from a user: a JSON body `{"text": "..."}` or the raw body as text.
async fn user_text(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let opts = options(query)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = if is_json {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ControlError::bad_request(format!("bad JSON: {e}")))?;
        value
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ControlError::bad_request("JSON body needs a \"text\" string"))?
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ControlError::bad_request("body must be UTF-8 text"))?
    };
    if text.is_empty() {
        return Err(ControlError::bad_request("text must not be empty"));
    }
    let mut content = json!({ "text": text });
    // Telegram's servers mark /commands and @mentions; bots rely on them.
    if let Some(entities) = entities_json(&text) {
        content["entities"] = entities;
    }
    queue_user_message(&shared, chat_id, &opts, content).map(Json)
}

/// Creates or replaces a chat's identity (type, title, members). Messages
/// already in the chat are kept; later ones carry the new `Chat` object.
async fn create_chat(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    body: Bytes,
) -> ControlResult<Json<ChatInfo>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let setup: ChatSetup = serde_json::from_slice(&body).map_err(|e| {
        ControlError::bad_request(format!(
            "expected {{\"type\": \"group\"|\"supergroup\"|\"private\", \"title\"?: string, \"members\"?: [{{\"id\": n, \"first_name\"?: string, \"username\"?: string}}]}}: {e}"
        ))
    })?;
    let chat = chat_object(chat_id, &setup)?;
    let info = {
        let mut state = shared.lock();
        let state_chat = state.chat_mut(chat_id);
        state_chat.chat = Some(chat.clone());
        state_chat.created = true;
        state_chat.members = setup.members;
        ChatInfo {
            chat,
            members: state_chat.members.clone(),
            created: true,
        }
    };
    Ok(Json(info))
}

/// Validates a chat setup and builds the Bot API `Chat` object for it.
fn chat_object(chat_id: i64, setup: &ChatSetup) -> ControlResult<Value> {
    if setup.chat_id != 0 && setup.chat_id != chat_id {
        return Err(ControlError::bad_request(format!(
            "chat_id {} in the body does not match {chat_id} in the path",
            setup.chat_id
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for member in &setup.members {
        if member.id <= 0 {
            return Err(ControlError::bad_request(format!(
                "member ids must be positive user ids, got {}",
                member.id
            )));
        }
        if !seen.insert(member.id) {
            return Err(ControlError::bad_request(format!(
                "member {} is listed twice",
                member.id
            )));
        }
    }
    match setup.kind {
        ChatType::Group | ChatType::Supergroup => {
            if chat_id >= 0 {
                return Err(ControlError::bad_request(format!(
                    "a {} needs a negative chat_id, got {chat_id}",
                    setup.kind.as_str()
                )));
            }
            let title = setup
                .title
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ControlError::bad_request(format!("a {} needs a title", setup.kind.as_str()))
                })?;
            Ok(json!({ "id": chat_id, "type": setup.kind.as_str(), "title": title }))
        }
        ChatType::Private => {
            if chat_id <= 0 {
                return Err(ControlError::bad_request(format!(
                    "a private chat needs a positive chat_id, got {chat_id}"
                )));
            }
            // A private chat is named after the user on the other side.
            let mut chat = json!({
                "id": chat_id,
                "type": "private",
                "first_name": setup.members.first().map_or("Test", |m| m.first_name.as_str()),
            });
            if let Some(member) = setup.members.first() {
                if let Some(last_name) = &member.last_name {
                    chat["last_name"] = json!(last_name);
                }
                if let Some(username) = &member.username {
                    chat["username"] = json!(username);
                }
            }
            Ok(chat)
        }
    }
}

/// A chat's `Chat` object and members, once a message or `POST` made it known.
async fn chat_info(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
) -> ControlResult<Json<ChatInfo>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let state = shared.lock();
    let known = state.chats.get(&chat_id).and_then(|c| {
        Some(ChatInfo {
            chat: c.chat.clone()?,
            members: c.members.clone(),
            created: c.created,
        })
    });
    known.map(Json).ok_or_else(|| {
        ControlError::not_found(format!(
            "chat {chat_id} is unknown: create it or send a user message to it first"
        ))
    })
}

/// Every command list the bot stored with `setMyCommands`.
async fn command_lists(State(shared): Shared_) -> Json<Vec<CommandList>> {
    Json(commands::all_lists(&shared.lock()))
}

/// Every language's description and short description the bot set.
async fn description_lists(State(shared): Shared_) -> Json<Vec<BotDescriptions>> {
    Json(crate::descriptions::all(&shared.lock()))
}

async fn chat_messages(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
) -> ControlResult<Response> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let sent = shared
        .lock()
        .chats
        .get(&chat_id)
        .map(|c| c.sent.clone())
        .unwrap_or_default();
    Ok(Json(sent).into_response())
}

/// Which button a press names.
#[derive(Debug, Clone, Copy)]
enum ButtonChoice<'a> {
    Data(&'a str),
    Text(&'a str),
}

/// A user presses a callback button of a bot message: queues a
/// `callback_query` update as Telegram sends it (delivered like any other,
/// privacy mode aside: presses always reach the bot).
async fn press_button(
    State(shared): Shared_,
    Path((chat_id, message_id)): Path<(String, String)>,
    body: Bytes,
) -> ControlResult<Json<PressedQuery>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let message_id = parse_id(&message_id, "message_id")?;
    let press: ButtonPress = serde_json::from_slice(&body).map_err(|e| {
        ControlError::bad_request(format!(
            "expected {{\"data\": string}} or {{\"text\": string}}, and optionally \"from_id\": n: {e}"
        ))
    })?;
    let choice = match (press.data.as_deref(), press.text.as_deref()) {
        (Some(data), None) => ButtonChoice::Data(data),
        (None, Some(text)) => ButtonChoice::Text(text),
        _ => {
            return Err(ControlError::bad_request(
                "name the button by \"data\" (its callback_data) or by \"text\", one of the two",
            ));
        }
    };
    let pressed_at_ms = shared.now_ms();
    let pressed = {
        let mut state = shared.lock();
        let (message, data, from) = {
            let chat = state.chats.get(&chat_id).ok_or_else(|| {
                ControlError::not_found(format!("chat {chat_id} has no message {message_id}"))
            })?;
            let sent = pressable_message(chat, chat_id, message_id)?;
            let data = pressed_data(sent, choice)?;
            let options = UserMessageOptions {
                from_id: press.from_id,
                ..UserMessageOptions::default()
            };
            (sent.message.clone(), data, sender(chat_id, chat, &options)?)
        };
        let from_id = from.get("id").and_then(Value::as_i64).unwrap_or_default();
        let callback_query_id = state.next_callback_query_id();
        let (update_id, update) = state.queue_update(json!({
            "callback_query": {
                "id": callback_query_id,
                "from": from,
                "message": message,
                "chat_instance": chat_instance(shared.bot_id, chat_id),
                "data": data,
            }
        }));
        state.callback_queries.push(CallbackAnswer {
            callback_query_id: callback_query_id.clone(),
            update_id,
            chat_id,
            message_id,
            from_id,
            data,
            pressed_at_ms,
            answered: false,
            text: None,
            show_alert: false,
            url: None,
            cache_time: None,
            answered_at_ms: None,
        });
        PressedQuery {
            update_id,
            callback_query_id,
            update,
        }
    };
    shared.notify();
    Ok(Json(pressed))
}

/// The bot message whose buttons a user can press: it exists, the bot
/// sent it, it is not deleted and it has an inline keyboard.
fn pressable_message(
    chat: &ChatState,
    chat_id: i64,
    message_id: i64,
) -> ControlResult<&SentMessage> {
    let Some(sent) = chat.sent.iter().find(|m| m.message_id == message_id) else {
        return Err(if chat.messages.contains_key(&message_id) {
            ControlError::bad_request(format!(
                "message {message_id} in chat {chat_id} is a user's: only the bot's messages have inline buttons"
            ))
        } else {
            ControlError::not_found(format!("chat {chat_id} has no message {message_id}"))
        });
    };
    if sent.deleted {
        return Err(ControlError::not_found(format!(
            "message {message_id} in chat {chat_id} was deleted by the bot"
        )));
    }
    if sent.inline_keyboard.is_empty() {
        return Err(ControlError::bad_request(format!(
            "message {message_id} in chat {chat_id} has no inline keyboard"
        )));
    }
    Ok(sent)
}

/// The `callback_data` of the button a press names.
fn pressed_data(sent: &SentMessage, choice: ButtonChoice<'_>) -> ControlResult<String> {
    let (message_id, chat_id) = (sent.message_id, sent.chat_id);
    let buttons = || serde_json::to_string(&sent.inline_keyboard).unwrap_or_default();
    match choice {
        ButtonChoice::Data(data) => sent
            .buttons()
            .find(|b| b.callback_data.as_deref() == Some(data))
            .map(|_| data.to_owned())
            .ok_or_else(|| {
                ControlError::bad_request(format!(
                    "message {message_id} in chat {chat_id} has no button with callback_data {data:?}; its keyboard: {}",
                    buttons()
                ))
            }),
        ButtonChoice::Text(text) => {
            let button = sent.button(text).ok_or_else(|| {
                ControlError::bad_request(format!(
                    "message {message_id} in chat {chat_id} has no button with text {text:?}; its keyboard: {}",
                    buttons()
                ))
            })?;
            button.callback_data.clone().ok_or_else(|| {
                ControlError::bad_request(format!(
                    "button {text:?} of message {message_id} in chat {chat_id} is not a callback button: {}",
                    button.to_json()
                ))
            })
        }
    }
}

#[derive(Debug, Deserialize)]
struct AnswersQuery {
    chat_id: Option<i64>,
}

/// Every button press, in order, with the bot's answer if it gave one;
/// `?chat_id=` keeps one chat's.
async fn callback_answers(
    State(shared): Shared_,
    RawQuery(query): RawQuery,
) -> ControlResult<Json<Vec<CallbackAnswer>>> {
    let q: AnswersQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ControlError::bad_request(format!("bad query string: {e}")))?;
    let answers = shared
        .lock()
        .callback_queries
        .iter()
        .filter(|a| q.chat_id.is_none_or(|id| a.chat_id == id))
        .cloned()
        .collect();
    Ok(Json(answers))
}

async fn chat_actions(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
) -> ControlResult<Response> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let actions = shared
        .lock()
        .chats
        .get(&chat_id)
        .map(|c| c.actions.clone())
        .unwrap_or_default();
    Ok(Json(actions).into_response())
}

#[derive(Debug, Deserialize)]
struct PrivacyBody {
    enabled: bool,
}

fn privacy_body(body: &[u8]) -> ControlResult<bool> {
    serde_json::from_slice::<PrivacyBody>(body)
        .map(|b| b.enabled)
        .map_err(|e| ControlError::bad_request(format!("expected {{\"enabled\": bool}}: {e}")))
}

/// Turns privacy mode on or off in one group (as if the bot's setting had
/// changed and it was added to the group again).
async fn set_chat_privacy(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    body: Bytes,
) -> ControlResult<Json<Value>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let enabled = privacy_body(&body)?;
    shared.lock().chat_mut(chat_id).privacy = Some(enabled);
    Ok(Json(json!({ "ok": true })))
}

/// Turns privacy mode on or off in every group without a setting of its own.
async fn set_default_privacy(State(shared): Shared_, body: Bytes) -> ControlResult<Json<Value>> {
    let enabled = privacy_body(&body)?;
    shared.lock().privacy_default = Some(enabled);
    Ok(Json(json!({ "ok": true })))
}

/// The ids of the user messages privacy mode kept from the bot, in order.
async fn undelivered(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
) -> ControlResult<Json<Vec<i64>>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let ids = shared
        .lock()
        .chats
        .get(&chat_id)
        .map(|c| c.undelivered.clone())
        .unwrap_or_default();
    Ok(Json(ids))
}

#[derive(Debug, Deserialize)]
struct BlockedBody {
    blocked: bool,
}

/// Makes sends to the chat fail with 403, as when a user blocks the bot.
async fn set_blocked(
    State(shared): Shared_,
    Path(chat_id): Path<String>,
    body: Bytes,
) -> ControlResult<Json<Value>> {
    let chat_id = parse_id(&chat_id, "chat_id")?;
    let body: BlockedBody = serde_json::from_slice(&body)
        .map_err(|e| ControlError::bad_request(format!("expected {{\"blocked\": bool}}: {e}")))?;
    shared.lock().chat_mut(chat_id).blocked = body.blocked;
    Ok(Json(json!({ "ok": true })))
}

/// Queues an Update exactly as given (an `update_id` is added when missing).
async fn queue_raw_update(
    State(shared): Shared_,
    body: Bytes,
) -> ControlResult<Json<QueuedUpdate>> {
    let update: Value = serde_json::from_slice(&body)
        .map_err(|e| ControlError::bad_request(format!("bad JSON: {e}")))?;
    if !update.is_object() {
        return Err(ControlError::bad_request("an Update must be a JSON object"));
    }
    let queued = {
        let mut state = shared.lock();
        // Remember crafted messages so later replies to them resolve.
        let message = update
            .get("message")
            .filter(|m| m.get("message_id").is_some());
        let chat_id = message
            .and_then(|m| m.get("chat"))
            .and_then(|c| c.get("id"))
            .and_then(Value::as_i64);
        let message_id = message
            .and_then(|m| m.get("message_id"))
            .and_then(Value::as_i64);
        if let (Some(message), Some(chat_id), Some(message_id)) = (message, chat_id, message_id) {
            let chat = state.chat_mut(chat_id);
            chat.observe_message_id(message_id);
            chat.messages.insert(message_id, message.clone());
            if chat.chat.is_none() {
                chat.chat = message.get("chat").cloned();
            }
        }
        let (update_id, update) = state.queue_update(update);
        // A crafted press can be answered like one made with `/press`.
        if let Some(record) = crafted_press(&update, update_id, shared.now_ms()) {
            let known = state
                .callback_queries
                .iter()
                .any(|q| q.callback_query_id == record.callback_query_id);
            if !known {
                state.callback_queries.push(record);
            }
        }
        QueuedUpdate {
            update_id,
            message_id,
            update,
            delivered: true,
        }
    };
    shared.notify();
    Ok(Json(queued))
}

/// The record of the `callback_query` in a crafted update, if it has one
/// with an `id`.
fn crafted_press(update: &Value, update_id: i64, pressed_at_ms: u64) -> Option<CallbackAnswer> {
    let query = update.get("callback_query")?;
    let id = query.get("id").and_then(Value::as_str)?;
    let int = |pointer: &str| query.pointer(pointer).and_then(Value::as_i64);
    Some(CallbackAnswer {
        callback_query_id: id.to_owned(),
        update_id,
        chat_id: int("/message/chat/id").unwrap_or_default(),
        message_id: int("/message/message_id").unwrap_or_default(),
        from_id: int("/from/id").unwrap_or_default(),
        data: query
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        pressed_at_ms,
        answered: false,
        text: None,
        show_alert: false,
        url: None,
        cache_time: None,
        answered_at_ms: None,
    })
}

/// Queues an already-sent update again, as Telegram does when it is not sure
/// the bot got it.
async fn redeliver(
    State(shared): Shared_,
    Path(update_id): Path<String>,
) -> ControlResult<Json<QueuedUpdate>> {
    let update_id = parse_id(&update_id, "update_id")?;
    let update = shared
        .lock()
        .requeue(update_id)
        .ok_or_else(|| ControlError::not_found(format!("no update {update_id} was ever queued")))?;
    shared.notify();
    let message_id = update
        .get("message")
        .and_then(|m| m.get("message_id"))
        .and_then(Value::as_i64);
    Ok(Json(QueuedUpdate {
        update_id,
        message_id,
        update,
        delivered: true,
    }))
}

async fn deliveries(State(shared): Shared_) -> Response {
    Json(shared.lock().deliveries.clone()).into_response()
}

/// Adds the rule in a control request's `body` to the list `rules` picks;
/// `shape` is the body's expected form, for the error.
fn add_rule<R: Rule + DeserializeOwned>(
    shared: &Shared,
    body: &[u8],
    shape: &str,
    rules: fn(&mut EmuState) -> &mut Vec<R>,
) -> ControlResult<Json<Value>> {
    let mut rule: R = serde_json::from_slice(body)
        .map_err(|e| ControlError::bad_request(format!("expected {shape}: {e}")))?;
    if !rule.used_up() {
        rules(&mut shared.lock()).push(rule);
    }
    Ok(Json(json!({ "ok": true })))
}

/// Forgets the rules of the list `rules` picks.
fn clear_rules<R>(shared: &Shared, rules: fn(&mut EmuState) -> &mut Vec<R>) -> Json<Value> {
    rules(&mut shared.lock()).clear();
    Json(json!({ "ok": true }))
}

async fn add_rate_limit(State(shared): Shared_, body: Bytes) -> ControlResult<Json<Value>> {
    let shape = r#"{"method"?: string, "count": n, "retry_after": s}"#;
    add_rule(&shared, &body, shape, |s| &mut s.rate_limits)
}

async fn clear_rate_limits(State(shared): Shared_) -> Json<Value> {
    clear_rules(&shared, |s| &mut s.rate_limits)
}

/// Scripts the next calls of a method to fail (or answer late).
async fn add_fault(State(shared): Shared_, body: Bytes) -> ControlResult<Json<Value>> {
    let shape = r#"{"method"?: string, "count": n, "error_code"?: n, "description"?: string, "retry_after"?: s, "delay_ms"?: ms}"#;
    add_rule(&shared, &body, shape, |s| &mut s.faults)
}

async fn clear_faults(State(shared): Shared_) -> Json<Value> {
    clear_rules(&shared, |s| &mut s.faults)
}

/// Makes the next webhook deliveries hang up before the bot answers.
async fn add_webhook_fault(State(shared): Shared_, body: Bytes) -> ControlResult<Json<Value>> {
    let shape = r#"{"count": n, "hang_up_after_ms": ms}"#;
    add_rule(&shared, &body, shape, |s| &mut s.webhook_faults)
}

async fn clear_webhook_faults(State(shared): Shared_) -> Json<Value> {
    clear_rules(&shared, |s| &mut s.webhook_faults)
}

async fn requests(State(shared): Shared_) -> Response {
    Json(shared.lock().stats.clone()).into_response()
}

async fn webhook(State(shared): Shared_) -> Response {
    Json(shared.lock().webhook_state()).into_response()
}
