//! What the sending methods share: the target chat, the message replied
//! to, caption and text checks, and the length limits.

use serde_json::Value;

use crate::{error::ApiError, markup, params::Params, state::Shared};

pub(super) const MAX_TEXT_UTF16: usize = 4096;

pub(super) const MAX_CAPTION_UTF16: usize = 1024;

pub(super) fn chat_id(params: &Params) -> Result<i64, ApiError> {
    let raw = params
        .non_empty_str("chat_id")
        .ok_or_else(|| ApiError::bad_request("chat_id is empty"))?;
    // `@channelusername` targets are not emulated: no such chat exists here.
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("chat not found"))
}

pub(super) fn ensure_not_blocked(shared: &Shared, chat_id: i64) -> Result<(), ApiError> {
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
pub(super) fn reply_target(params: &Params) -> Result<Option<(i64, bool)>, ApiError> {
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

pub(super) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Caption text checked against `parse_mode` and length; `None` when absent.
pub(super) fn caption(params: &Params) -> Result<Option<(String, String)>, ApiError> {
    let Some(raw) = params.non_empty_str("caption") else {
        return Ok(None);
    };
    let plain = markup::render(params.str("parse_mode").as_deref(), &raw)?;
    if utf16_len(&plain) > MAX_CAPTION_UTF16 {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    Ok(Some((raw, plain)))
}
