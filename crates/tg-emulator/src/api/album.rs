//! `sendMediaGroup`: photos and videos, or documents, sent together as one
//! album.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::common::{MAX_CAPTION_UTF16, chat_id, ensure_not_blocked, reply_target, utf16_len};
use crate::api::files::{
    Input, VideoParams, check_document, check_photo, check_video, resolve_value, store_document,
    store_photo, store_video,
};
use crate::api::send::{Outgoing, post_bot_messages};
use crate::{
    error::{ApiError, ApiOk, ApiResult},
    markup,
    model::SentKind,
    params::Params,
    state::{Shared, document_json, photo_size_json, video_json},
};

/// Most items in one sendMediaGroup (TDLib's `MAX_GROUPED_MESSAGES`).
const MAX_ALBUM_ITEMS: usize = 10;

/// One InputMediaPhoto / InputMediaVideo / InputMediaDocument of
/// sendMediaGroup's `media`.
struct AlbumItem {
    kind: SentKind,
    /// `attach://<field>`, an HTTP URL or a `file_id`.
    media: String,
    /// (as sent, rendered) caption.
    caption: Option<(String, String)>,
    parse_mode: Option<String>,
    /// `width`, `height` and `duration` of an InputMediaVideo.
    video: VideoParams,
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
        "video" => SentKind::Video,
        "animation" => return Err(format!("type \"{kind}\" can't be used in sendMediaGroup")),
        // Valid in a Telegram album, but the emulator has no audio.
        "audio" => {
            return Err(format!("type \"{kind}\" is not supported by the emulator"));
        }
        _ => return Err(format!("type \"{kind}\" is unsupported")),
    };
    Ok(AlbumItem {
        kind,
        media,
        caption,
        parse_mode,
        video: VideoParams::from_json(object),
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

/// `sendMediaGroup`: photos and videos, or documents, sent together as one
/// album.
///
/// The checks come in the order of the Bot API server and TDLib
/// (`Client::process_send_media_group_query`,
/// `MessagesManager::send_message_group`): every item is parsed first, then
/// the count, captions and file references, then mixing of documents with
/// photos, then what Telegram's servers check on each upload. Nothing is
/// stored or sent unless every item passes. As TDLib does, one item is
/// sent as an ordinary message with no `media_group_id`.
pub(super) async fn send_media_group(shared: &Arc<Shared>, params: &Params) -> ApiResult {
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
            (SentKind::Video, Input::Bytes { bytes, .. }) => check_video(bytes).map(|()| None),
            (_, Input::Bytes { bytes, .. }) => check_document(bytes).map(|()| None),
            (_, Input::Existing(_)) => Ok(None),
        };
        photo_infos.push(checked.map_err(|e| album_member_error(position + 1, e))?);
    }

    let album = items.len() > 1;
    let mut outgoing = Vec::with_capacity(items.len());
    for ((item, input), photo_info) in items.into_iter().zip(inputs).zip(photo_infos) {
        let (content, file) = match (item.kind, input, photo_info) {
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
                SentKind::Video,
                Input::Bytes {
                    bytes,
                    file_name,
                    content_type,
                },
                _,
            ) => {
                let file = store_video(
                    shared,
                    bytes,
                    file_name,
                    content_type.as_deref(),
                    item.video,
                );
                (json!({ "video": video_json(&file) }), Some(file))
            }
            (SentKind::Video, Input::Existing(file), _) => {
                (json!({ "video": video_json(&file.info) }), Some(file.info))
            }
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
        outgoing.push(Outgoing::file(
            item.kind,
            "sendMediaGroup",
            content,
            item.caption,
            item.parse_mode,
            file,
        ));
    }
    // sendMediaGroup takes no reply_markup (the Bot API server ignores it).
    let messages = post_bot_messages(shared, chat_id, reply, None, album, outgoing)?;
    Ok(ApiOk::new(Value::Array(messages)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn album_member_errors_name_the_item_and_keep_other_codes() {
        let e = album_member_error(3, ApiError::bad_request("PHOTO_INVALID_DIMENSIONS"));
        assert_eq!(
            e.description,
            "Bad Request: failed to send message #3 with the error message \"PHOTO_INVALID_DIMENSIONS\""
        );
        assert_eq!(album_member_error(1, ApiError::too_large()).code, 413);
    }
}
