//! Messages from the bot: `sendMessage`, `sendPhoto`, `sendDocument`,
//! `sendVideo`, and how a sent message is built, stored and recorded.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::common::{
    MAX_TEXT_UTF16, caption, chat_id, ensure_not_blocked, reply_target, utf16_len,
};
use crate::api::files::{
    Input, VideoParams, check_document, check_photo, check_video, resolve_input, store_document,
    store_photo, store_video,
};
use crate::{
    error::{ApiError, ApiOk, ApiResult},
    keyboard::{self, ReplyMarkup},
    markup,
    model::{FileInfo, SentKind, SentMessage},
    params::Params,
    state::{Shared, document_json, photo_size_json, reply_copy, unix_now, video_json},
};

/// What a new bot message carries besides the common fields.
pub(super) struct Outgoing {
    kind: SentKind,
    method: &'static str,
    content: Value,
    text: Option<String>,
    caption: Option<String>,
    parse_mode: Option<String>,
    file: Option<FileInfo>,
}

impl Outgoing {
    /// A photo, document or video message: `content` gets the plain text of the
    /// caption (`(as sent, plain)`, from [`caption`]).
    pub(super) fn file(
        kind: SentKind,
        method: &'static str,
        mut content: Value,
        caption: Option<(String, String)>,
        parse_mode: Option<String>,
        file: Option<FileInfo>,
    ) -> Self {
        if let Some((_, plain)) = &caption {
            content["caption"] = json!(plain);
        }
        Self {
            kind,
            method,
            content,
            text: None,
            caption: caption.map(|c| c.0),
            parse_mode,
            file,
        }
    }
}

/// Builds, stores and records a message from the bot with its checked
/// `reply_markup`; returns its JSON.
fn post_bot_message(
    shared: &Shared,
    params: &Params,
    chat_id: i64,
    reply_markup: Option<ReplyMarkup>,
    out: Outgoing,
) -> ApiResult {
    let reply = reply_target(params)?;
    let mut messages = post_bot_messages(
        shared,
        chat_id,
        reply,
        reply_markup.as_ref(),
        false,
        vec![out],
    )?;
    Ok(ApiOk::new(messages.pop().unwrap_or(Value::Null)))
}

/// Builds, stores and records consecutive messages from the bot under one
/// lock, so their ids are consecutive and either all or none are sent; with
/// `album` they share a new `media_group_id`. Every message replies to
/// `reply`, as the messages of a Telegram album each do.
pub(super) fn post_bot_messages(
    shared: &Shared,
    chat_id: i64,
    reply: Option<(i64, bool)>,
    reply_markup: Option<&ReplyMarkup>,
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
    let inline_keyboard = reply_markup
        .map(ReplyMarkup::inline_keyboard)
        .unwrap_or_default();
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
        keyboard::set_message_field(&mut message, &inline_keyboard);
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
            reply_markup: reply_markup.map(|m| m.sent.clone()),
            inline_keyboard: inline_keyboard.clone(),
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

pub(super) fn send_message(shared: &Shared, params: &Params) -> ApiResult {
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
    let reply_markup = keyboard::from_params(params)?;
    ensure_not_blocked(shared, chat_id)?;
    post_bot_message(
        shared,
        params,
        chat_id,
        reply_markup,
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

pub(super) async fn send_photo(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let caption = caption(params)?;
    // Checked before the upload is processed, as the Bot API server does.
    let reply_markup = keyboard::from_params(params)?;
    let input = resolve_input(shared, params, "photo").await?;
    ensure_not_blocked(shared, chat_id)?;
    let files: Vec<FileInfo> = match input {
        Input::Existing(file) => vec![file.info],
        Input::Bytes { bytes, .. } => {
            let info = check_photo(&bytes)?;
            store_photo(shared, bytes, info).await?
        }
    };
    let content = json!({ "photo": files.iter().map(photo_size_json).collect::<Vec<_>>() });
    let parse_mode = params.non_empty_str("parse_mode");
    let out = Outgoing::file(
        SentKind::Photo,
        "sendPhoto",
        content,
        caption,
        parse_mode,
        files.last().cloned(),
    );
    post_bot_message(shared, params, chat_id, reply_markup, out)
}

pub(super) async fn send_document(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let caption = caption(params)?;
    let reply_markup = keyboard::from_params(params)?;
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
    let content = json!({ "document": document_json(&file, None) });
    let parse_mode = params.non_empty_str("parse_mode");
    let out = Outgoing::file(
        SentKind::Document,
        "sendDocument",
        content,
        caption,
        parse_mode,
        Some(file),
    );
    post_bot_message(shared, params, chat_id, reply_markup, out)
}

/// `sendVideo`: an upload (at most 50 MB), an HTTP URL or a `file_id`, with
/// an optional caption (at most 1024 characters after entity parsing),
/// `reply_markup` and reply. `width`, `height` and `duration` are kept as
/// given (the emulator does not parse video); `supports_streaming`,
/// `thumbnail`, `cover` and `has_spoiler` are accepted and not recorded.
pub(super) async fn send_video(shared: &Arc<Shared>, params: &Params) -> ApiResult {
    let chat_id = chat_id(params)?;
    let caption = caption(params)?;
    let reply_markup = keyboard::from_params(params)?;
    let video = VideoParams::from_params(params);
    let input = resolve_input(shared, params, "video").await?;
    ensure_not_blocked(shared, chat_id)?;
    let file = match input {
        Input::Existing(file) => file.info,
        Input::Bytes {
            bytes,
            file_name,
            content_type,
        } => {
            check_video(&bytes)?;
            store_video(shared, bytes, file_name, content_type.as_deref(), video)
        }
    };
    let content = json!({ "video": video_json(&file) });
    let parse_mode = params.non_empty_str("parse_mode");
    let out = Outgoing::file(
        SentKind::Video,
        "sendVideo",
        content,
        caption,
        parse_mode,
        Some(file),
    );
    post_bot_message(shared, params, chat_id, reply_markup, out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
