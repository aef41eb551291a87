//! `answerCallbackQuery`: the bot's answer to a button press
//! (`POST /control/chats/{chat_id}/messages/{message_id}/press` queues the
//! press). Each answer is recorded for `GET /control/callback_answers`.

use serde_json::json;

use crate::{
    error::{ApiError, ApiOk, ApiResult},
    params::Params,
    state::Shared,
};

/// Telegram's words (`QUERY_ID_INVALID`) for an id it does not know, one
/// already answered (a query is answered once) and a missing one (the Bot
/// API server reads a missing id as 0, which no query has).
pub(crate) const QUERY_INVALID: &str =
    "query is too old and response timeout expired or query ID is invalid";

/// Telegram's error for an answer text over [`MAX_ANSWER_TEXT_CHARS`]: the
/// server's own code, which the Bot API server passes on unchanged.
pub(crate) const ANSWER_TEXT_TOO_LONG: &str = "MESSAGE_TOO_LONG";

/// Longest notification text, in characters.
pub(crate) const MAX_ANSWER_TEXT_CHARS: usize = 200;

/// Longest `cache_time` the Bot API server passes on (30 days); it clamps
/// larger or negative values rather than refusing them.
const MAX_CACHE_TIME: i64 = 30 * 24 * 60 * 60;

pub(super) fn answer_callback_query(shared: &Shared, params: &Params) -> ApiResult {
    let id = params
        .str("callback_query_id")
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty());
    let text = params.non_empty_str("text");
    let show_alert = params.bool("show_alert");
    let url = params.non_empty_str("url");
    // Like the Bot API server: an unreadable number counts as 0.
    let cache_time = params
        .i64("cache_time")
        .ok()
        .flatten()
        .unwrap_or(0)
        .clamp(0, MAX_CACHE_TIME);
    let at_ms = shared.now_ms();

    let mut state = shared.lock();
    let query = id
        .and_then(|id| {
            state
                .callback_queries
                .iter_mut()
                .find(|q| q.callback_query_id == id)
        })
        .filter(|q| !q.answered)
        .ok_or_else(|| ApiError::bad_request(QUERY_INVALID))?;
    // A refused answer leaves the query open: the bot may answer again.
    if text
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_ANSWER_TEXT_CHARS)
    {
        return Err(ApiError::bad_request(ANSWER_TEXT_TOO_LONG));
    }
    query.answered = true;
    query.text = text;
    query.show_alert = show_alert;
    query.url = url;
    query.cache_time = u32::try_from(cache_time).ok();
    query.answered_at_ms = Some(at_ms);
    Ok(ApiOk::new(json!(true)))
}
