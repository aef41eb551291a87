//! `setMyCommands`, `getMyCommands` and `deleteMyCommands`: one command list
//! per (`scope`, `language_code`), validated as Telegram validates it.
//!
//! Error texts are those of the real Bot API server: its own parsing
//! (`can't parse BotCommandScope: ...`), TDLib's checks (`command must be
//! non-empty`, `invalid language code specified`) and Telegram's server
//! codes (`BOT_COMMAND_INVALID`, `BOT_COMMANDS_TOO_MUCH`). Unlike Telegram,
//! a `chat` scope may name a chat the emulator has not seen yet, so a bot can
//! set per-chat menus before the test's first message.

use serde_json::{Map, Value, json};

use crate::{
    error::{ApiError, ApiOk, ApiResult},
    model::{BotCommand, BotCommandScope, CommandList},
    params::Params,
    state::{Shared, State},
};

/// Telegram keeps at most 100 commands per list.
const MAX_COMMANDS: usize = 100;
const MAX_COMMAND_CHARS: usize = 32;
const MAX_DESCRIPTION_CHARS: usize = 256;

pub(crate) fn set_my_commands(shared: &Shared, params: &Params) -> ApiResult {
    let commands = commands(params)?;
    let key = (scope(params)?, language_code(params)?);
    let mut state = shared.lock();
    if commands.is_empty() {
        state.commands.remove(&key);
    } else {
        state.commands.insert(key, commands);
    }
    Ok(ApiOk::new(json!(true)))
}

pub(crate) fn get_my_commands(shared: &Shared, params: &Params) -> ApiResult {
    let key = (scope(params)?, language_code(params)?);
    // Only the exact (scope, language) list, without falling back to wider
    // scopes: that is what getMyCommands answers on the real API too.
    let commands = shared
        .lock()
        .commands
        .get(&key)
        .cloned()
        .unwrap_or_default();
    Ok(ApiOk::new(json!(commands)))
}

pub(crate) fn delete_my_commands(shared: &Shared, params: &Params) -> ApiResult {
    let key = (scope(params)?, language_code(params)?);
    shared.lock().commands.remove(&key);
    Ok(ApiOk::new(json!(true)))
}

/// Every stored list, for `GET /control/commands`.
pub(crate) fn all_lists(state: &State) -> Vec<CommandList> {
    state
        .commands
        .iter()
        .map(|((scope, language_code), commands)| CommandList {
            scope: scope.clone(),
            language_code: language_code.clone(),
            commands: commands.clone(),
        })
        .collect()
}

/// `language_code`: empty (every language) or two lowercase letters, as
/// Telegram checks it for the commands and the descriptions alike.
pub(crate) fn language_code(params: &Params) -> Result<String, ApiError> {
    let code = params.str("language_code").unwrap_or_default();
    let valid =
        code.is_empty() || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()));
    if !valid {
        return Err(ApiError::bad_request("invalid language code specified"));
    }
    Ok(code)
}

/// The `scope` parameter; the default scope when absent.
fn scope(params: &Params) -> Result<BotCommandScope, ApiError> {
    let value = params
        .json("scope")
        .map_err(|_| ApiError::bad_request("can't parse BotCommandScope JSON object"))?;
    let Some(value) = value else {
        return Ok(BotCommandScope::Default);
    };
    let scope_error =
        |what: &str| ApiError::bad_request(format!("can't parse BotCommandScope: {what}"));
    let object = value
        .as_object()
        .ok_or_else(|| scope_error("BotCommandScope must be an Object"))?;
    let kind = required_string(object, "type").map_err(|e| scope_error(&e))?;
    let scope = match kind.as_str() {
        "default" => BotCommandScope::Default,
        "all_private_chats" => BotCommandScope::AllPrivateChats,
        "all_group_chats" => BotCommandScope::AllGroupChats,
        "all_chat_administrators" => BotCommandScope::AllChatAdministrators,
        "chat" | "chat_administrators" | "chat_member" => {
            let raw = required_string(object, "chat_id").map_err(|e| scope_error(&e))?;
            if raw.is_empty() {
                return Err(scope_error("Empty chat_id specified"));
            }
            // `@channelusername` cannot be resolved here: no such chat exists.
            let chat_id: i64 = raw
                .trim()
                .parse()
                .map_err(|_| ApiError::bad_request("chat not found"))?;
            match kind.as_str() {
                "chat" => BotCommandScope::Chat { chat_id },
                "chat_administrators" => BotCommandScope::ChatAdministrators { chat_id },
                _ => {
                    let raw = required_string(object, "user_id").map_err(|e| scope_error(&e))?;
                    let user_id = raw
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(|| scope_error("Invalid user_id specified"))?;
                    BotCommandScope::ChatMember { chat_id, user_id }
                }
            }
        }
        _ => return Err(scope_error("Unsupported type specified")),
    };
    // Administrators and members only exist in groups.
    let group_only_chat = match scope {
        BotCommandScope::ChatAdministrators { chat_id }
        | BotCommandScope::ChatMember { chat_id, .. } => Some(chat_id),
        _ => None,
    };
    if group_only_chat.is_some_and(|id| id > 0) {
        return Err(ApiError::bad_request(
            "can't use specified scope in private chats",
        ));
    }
    Ok(scope)
}

/// A field Telegram reads as a string; numbers are accepted as their text,
/// as the real server does for `chat_id` and `user_id`.
fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, String> {
    match object.get(field) {
        None | Some(Value::Null) => Err(format!("Can't find field \"{field}\"")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(format!("Field \"{field}\" must be of type String")),
    }
}

/// The `commands` parameter; an absent one is an empty list, as on the real API.
fn commands(params: &Params) -> Result<Vec<BotCommand>, ApiError> {
    let value = params
        .json("commands")
        .map_err(|_| ApiError::bad_request("can't parse commands JSON"))?;
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::bad_request("expected an Array of BotCommand"))?;
    let mut commands = Vec::with_capacity(items.len());
    for item in items {
        let command_error =
            |what: &str| ApiError::bad_request(format!("can't parse BotCommand: {what}"));
        let object = item
            .as_object()
            .ok_or_else(|| command_error("expected an Object"))?;
        let command = required_string(object, "command").map_err(|e| command_error(&e))?;
        let description = required_string(object, "description").map_err(|e| command_error(&e))?;
        commands.push(validate(&command, &description)?);
    }
    if commands.len() > MAX_COMMANDS {
        return Err(ApiError::bad_request("BOT_COMMANDS_TOO_MUCH"));
    }
    Ok(commands)
}

/// TDLib trims both fields and drops a leading `/`, then checks lengths;
/// Telegram's servers then allow only `a-z`, digits and `_` in the name.
fn validate(command: &str, description: &str) -> Result<BotCommand, ApiError> {
    let command = command.trim();
    let command = command.strip_prefix('/').unwrap_or(command);
    if command.is_empty() {
        return Err(ApiError::bad_request("command must be non-empty"));
    }
    if command.chars().count() > MAX_COMMAND_CHARS {
        return Err(ApiError::bad_request(format!(
            "command length must not exceed {MAX_COMMAND_CHARS}"
        )));
    }
    let description = description.trim();
    if description.is_empty() {
        return Err(ApiError::bad_request(
            "command description must be non-empty",
        ));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_request(format!(
            "command description length must not exceed {MAX_DESCRIPTION_CHARS}"
        )));
    }
    let allowed = command
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !allowed {
        return Err(ApiError::bad_request("BOT_COMMAND_INVALID"));
    }
    Ok(BotCommand {
        command: command.to_owned(),
        description: description.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_of(json: &str) -> Result<BotCommandScope, String> {
        scope(&Params::from_pairs(&[("scope", json)])).map_err(|e| e.description)
    }

    #[test]
    fn scopes_parse_with_numeric_or_string_ids() {
        assert_eq!(scope(&Params::default()), Ok(BotCommandScope::Default));
        assert_eq!(
            scope_of(r#"{"type":"all_group_chats"}"#),
            Ok(BotCommandScope::AllGroupChats)
        );
        assert_eq!(
            scope_of(r#"{"type":"chat_member","chat_id":"-100","user_id":7}"#),
            Ok(BotCommandScope::ChatMember {
                chat_id: -100,
                user_id: 7
            })
        );
        assert_eq!(
            scope_of(r#"{"type":"everyone"}"#).unwrap_err(),
            "Bad Request: can't parse BotCommandScope: Unsupported type specified"
        );
        assert_eq!(
            scope_of(r#"{"type":"chat"}"#).unwrap_err(),
            "Bad Request: can't parse BotCommandScope: Can't find field \"chat_id\""
        );
        assert_eq!(
            scope_of(r#"{"type":"chat_member","chat_id":-1,"user_id":0}"#).unwrap_err(),
            "Bad Request: can't parse BotCommandScope: Invalid user_id specified"
        );
        assert_eq!(
            scope_of(r#"{"type":"chat_administrators","chat_id":5}"#).unwrap_err(),
            "Bad Request: can't use specified scope in private chats"
        );
    }

    #[test]
    fn commands_are_trimmed_and_checked_like_telegram() {
        let ok = validate(" /detect ", " Find objects ").unwrap();
        assert_eq!(
            (ok.command.as_str(), ok.description.as_str()),
            ("detect", "Find objects")
        );
        let err = |c: &str, d: &str| validate(c, d).unwrap_err().description;
        assert_eq!(err("Detect", "x"), "Bad Request: BOT_COMMAND_INVALID");
        assert_eq!(err("de-tect", "x"), "Bad Request: BOT_COMMAND_INVALID");
        assert_eq!(err("/", "x"), "Bad Request: command must be non-empty");
        assert_eq!(
            err(&"a".repeat(33), "x"),
            "Bad Request: command length must not exceed 32"
        );
        assert_eq!(
            err("a", " "),
            "Bad Request: command description must be non-empty"
        );
        assert_eq!(
            err("a", &"d".repeat(257)),
            "Bad Request: command description length must not exceed 256"
        );
        assert!(validate(&"a".repeat(32), &"d".repeat(256)).is_ok());
    }
}
