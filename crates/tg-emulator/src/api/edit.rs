//! Changes to what the bot sent, and chat actions: `sendChatAction`,
//! `editMessageText`, `editMessageCaption`, `editMessageReplyMarkup` and
//! `deleteMessage`.

use serde_json::json;

use crate::api::common::{
    MAX_CAPTION_UTF16, MAX_TEXT_UTF16, chat_id, ensure_not_blocked, utf16_len,
};
use crate::{
    error::{ApiError, ApiOk, ApiResult},
    keyboard, markup,
    model::{ChatActionRecord, SentKind},
    params::Params,
    state::{Shared, unix_now},
};

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

pub(super) fn send_chat_action(shared: &Shared, params: &Params) -> ApiResult {
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
pub(super) enum EditTarget {
    Text,
    Caption,
}

/// Telegram's answer to an edit that changes nothing.
const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

/// The `(chat_id, message_id)` an edit method targets.
fn edit_target(params: &Params) -> Result<(i64, i64), ApiError> {
    if params.non_empty_str("inline_message_id").is_some() {
        return Err(ApiError::bad_request(
            "inline messages are not supported by the emulator",
        ));
    }
    let chat_id = chat_id(params)?;
    let message_id = params
        .i64("message_id")?
        .ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    Ok((chat_id, message_id))
}

pub(super) fn edit_message(shared: &Shared, params: &Params, target: EditTarget) -> ApiResult {
    let (chat_id, message_id) = edit_target(params)?;
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
    // Without reply_markup an edit removes the keyboard, as on Telegram.
    let (reply_markup, inline_keyboard) = keyboard::for_edit(params)?;

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
    // Same text, new keyboard is a change (Telegram compares both).
    if *current == new_raw
        && sent.parse_mode == parse_mode
        && sent.inline_keyboard == inline_keyboard
    {
        return Err(ApiError::bad_request(NOT_MODIFIED));
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
    }
    keyboard::set_message_field(&mut message, &inline_keyboard);
    sent.reply_markup = reply_markup;
    sent.inline_keyboard = inline_keyboard;
    sent.message = message.clone();
    chat.messages.insert(message_id, message.clone());
    Ok(ApiOk::new(message))
}

/// `editMessageReplyMarkup`: replaces the inline keyboard of any message
/// the bot sent (text, photo, document or video), or removes it when no
/// `reply_markup` is given.
pub(super) fn edit_reply_markup(shared: &Shared, params: &Params) -> ApiResult {
    let (chat_id, message_id) = edit_target(params)?;
    let (reply_markup, inline_keyboard) = keyboard::for_edit(params)?;

    let mut state = shared.lock();
    let chat = state.chat_mut(chat_id);
    let sent = chat
        .sent
        .iter_mut()
        .find(|m| m.message_id == message_id && !m.deleted)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    if sent.inline_keyboard == inline_keyboard {
        return Err(ApiError::bad_request(NOT_MODIFIED));
    }
    let mut message = sent.message.clone();
    if let Some(obj) = message.as_object_mut() {
        obj.insert("edit_date".to_owned(), json!(unix_now()));
    }
    keyboard::set_message_field(&mut message, &inline_keyboard);
    sent.reply_markup = reply_markup;
    sent.inline_keyboard = inline_keyboard;
    sent.message = message.clone();
    chat.messages.insert(message_id, message.clone());
    Ok(ApiOk::new(message))
}

pub(super) fn delete_message(shared: &Shared, params: &Params) -> ApiResult {
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
