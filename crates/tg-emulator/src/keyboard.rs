//! `reply_markup` checking: what the Bot API server, TDLib and Telegram's
//! servers accept as a keyboard, and the inline keyboard Telegram echoes
//! back in the `Message`.
//!
//! The steps follow the real path of a keyboard. The Bot API server parses
//! the JSON (`Client::get_reply_markup`, `get_inline_keyboard_button`): type
//! errors, a button without `text`, a button that does nothing ("Text
//! buttons are unallowed"; an empty `callback_data` or `url` counts as
//! absent). TDLib then silently drops buttons with an empty text and rows
//! left empty (`get_reply_markup` in `ReplyMarkup.cpp`); a keyboard left
//! without buttons is no keyboard at all. Telegram's servers last refuse
//! `callback_data` over 64 bytes (`BUTTON_DATA_INVALID`) and keyboards over
//! 8 buttons a row or 100 in all (`REPLY_MARKUP_TOO_LONG`, which the Bot API
//! server words "reply markup is too long"). Error texts are the server's,
//! first letter lowercased as it does.
//!
//! Reply keyboards, `remove_keyboard` and `force_reply` are accepted with
//! shallow checks: they are stored, and Telegram does not echo them.

use serde_json::{Map, Value};

use crate::{error::ApiError, model::InlineButton, params::Params};

/// `reply_markup` is not JSON.
pub(crate) const CANT_PARSE: &str = "can't parse reply keyboard markup JSON object";
/// `reply_markup` is JSON but not an object.
pub(crate) const NOT_AN_OBJECT: &str = "object expected as reply markup";
/// A row of `inline_keyboard` is not an array.
pub(crate) const NOT_ARRAY_OF_ARRAYS: &str =
    "field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays";
/// Prefix of every error about one inline button.
pub(crate) const BAD_BUTTON: &str = "can't parse inline keyboard button: ";
/// A button with no action (no non-empty `callback_data`, `url`, ...).
pub(crate) const TEXT_BUTTONS_UNALLOWED: &str = "Text buttons are unallowed in the inline keyboard";
/// `callback_data` over [`MAX_CALLBACK_DATA_BYTES`].
pub(crate) const BUTTON_DATA_INVALID: &str = "BUTTON_DATA_INVALID";
/// Over [`MAX_ROW_BUTTONS`] in a row or [`MAX_BUTTONS`] in all.
pub(crate) const TOO_LONG: &str = "reply markup is too long";
/// An edit method given a reply keyboard, `remove_keyboard` or
/// `force_reply` (TDLib's `get_inline_reply_markup`).
pub(crate) const INLINE_EXPECTED: &str = "inline keyboard expected";

/// Longest `callback_data`, in bytes.
pub(crate) const MAX_CALLBACK_DATA_BYTES: usize = 64;
/// Most buttons in one row of an inline keyboard.
pub(crate) const MAX_ROW_BUTTONS: usize = 8;
/// Most buttons in one inline keyboard.
pub(crate) const MAX_BUTTONS: usize = 100;

/// An inline keyboard as Telegram keeps it: rows of buttons, none empty.
pub(crate) type Keyboard = Vec<Vec<InlineButton>>;

/// What a checked `reply_markup` amounts to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// Nothing to show (`{}`, `{"inline_keyboard": []}`, only empty texts...).
    Empty,
    /// An inline keyboard, as Telegram echoes it.
    Inline(Keyboard),
    /// A reply keyboard, `remove_keyboard` or `force_reply`.
    Other,
}

/// A checked `reply_markup` parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplyMarkup {
    /// As the bot sent it (recorded in `SentMessage::reply_markup`).
    pub sent: Value,
    pub kind: Kind,
}

impl ReplyMarkup {
    /// The inline keyboard, empty for any other markup.
    pub fn inline_keyboard(&self) -> Keyboard {
        match &self.kind {
            Kind::Inline(rows) => rows.clone(),
            Kind::Empty | Kind::Other => Vec::new(),
        }
    }
}

/// Reads and checks `reply_markup`; `None` when absent or empty.
pub(crate) fn from_params(params: &Params) -> Result<Option<ReplyMarkup>, ApiError> {
    // `Params::json` parses JSON text (form, multipart, a string in a JSON
    // body) and passes typed JSON through; any failure is unparseable JSON.
    let Some(sent) = params
        .json("reply_markup")
        .map_err(|_| ApiError::bad_request(CANT_PARSE))?
    else {
        return Ok(None);
    };
    let kind = check(&sent).map_err(ApiError::bad_request)?;
    Ok(Some(ReplyMarkup { sent, kind }))
}

/// Reads `reply_markup` for an edit method, which takes inline keyboards
/// only: what the bot sent (to record) and the keyboard (empty when
/// absent, which removes the message's keyboard as on Telegram).
pub(crate) fn for_edit(params: &Params) -> Result<(Option<Value>, Keyboard), ApiError> {
    match from_params(params)? {
        None => Ok((None, Vec::new())),
        Some(ReplyMarkup {
            kind: Kind::Other, ..
        }) => Err(ApiError::bad_request(INLINE_EXPECTED)),
        Some(markup) => {
            let rows = markup.inline_keyboard();
            Ok((Some(markup.sent), rows))
        }
    }
}

/// The `reply_markup` field of a Message with this keyboard, if any.
pub(crate) fn message_field(rows: &[Vec<InlineButton>]) -> Option<Value> {
    if rows.is_empty() {
        return None;
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| Value::Array(row.iter().map(InlineButton::to_json).collect()))
        .collect();
    let mut field = Map::new();
    field.insert("inline_keyboard".to_owned(), Value::Array(rows));
    Some(Value::Object(field))
}

/// Sets (or, for an empty keyboard, removes) a Message's `reply_markup`.
pub(crate) fn set_message_field(message: &mut Value, rows: &[Vec<InlineButton>]) {
    let Some(object) = message.as_object_mut() else {
        return;
    };
    match message_field(rows) {
        Some(field) => object.insert("reply_markup".to_owned(), field),
        None => object.remove("reply_markup"),
    };
}

/// Checks a parsed `reply_markup`; the error is the text after `Bad Request: `.
fn check(value: &Value) -> Result<Kind, String> {
    let object = value.as_object().ok_or(NOT_AN_OBJECT)?;

    // A reply keyboard comes first, as in the Bot API server.
    let mut has_reply_keyboard = false;
    if let Some(keyboard) = object.get("keyboard") {
        let rows = keyboard
            .as_array()
            .ok_or_else(|| must_be_of_type("keyboard", "Array"))?;
        for row in rows {
            let buttons = row
                .as_array()
                .ok_or("field \"keyboard\" must be an Array of Arrays")?;
            has_reply_keyboard |= !buttons.is_empty();
        }
    }

    let mut inline = Vec::new();
    if let Some(keyboard) = object.get("inline_keyboard") {
        let rows = keyboard
            .as_array()
            .ok_or_else(|| must_be_of_type("inline_keyboard", "Array"))?;
        for row in rows {
            let buttons = row.as_array().ok_or(NOT_ARRAY_OF_ARRAYS)?;
            let mut parsed = Vec::with_capacity(buttons.len());
            for button in buttons {
                parsed.push(inline_button(button).map_err(|e| format!("{BAD_BUTTON}{e}"))?);
            }
            inline.push(parsed);
        }
    }

    let mut flags = [false; 6];
    for (flag, name) in flags.iter_mut().zip([
        "hide_keyboard",
        "remove_keyboard",
        "personal_keyboard",
        "selective",
        "force_reply_keyboard",
        "force_reply",
    ]) {
        *flag = optional_bool(object, name)?;
    }
    let [hide, remove, _, _, force_reply_keyboard, force_reply] = flags;

    if has_reply_keyboard {
        return Ok(Kind::Other);
    }
    // TDLib drops buttons without text and rows left empty.
    let rows: Keyboard = inline
        .into_iter()
        .map(|row| {
            row.into_iter()
                .filter(|b| !b.text.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|row| !row.is_empty())
        .collect();
    if !rows.is_empty() {
        check_limits(&rows)?;
        return Ok(Kind::Inline(rows));
    }
    if hide || remove || force_reply || force_reply_keyboard {
        return Ok(Kind::Other);
    }
    Ok(Kind::Empty)
}

/// The checks Telegram's servers make on a keyboard TDLib accepted.
fn check_limits(rows: &[Vec<InlineButton>]) -> Result<(), String> {
    let too_much_data = rows
        .iter()
        .flatten()
        .filter_map(|b| b.callback_data.as_deref())
        .any(|d| d.len() > MAX_CALLBACK_DATA_BYTES);
    if too_much_data {
        return Err(BUTTON_DATA_INVALID.to_owned());
    }
    let total: usize = rows.iter().map(Vec::len).sum();
    if total > MAX_BUTTONS || rows.iter().any(|r| r.len() > MAX_ROW_BUTTONS) {
        return Err(TOO_LONG.to_owned());
    }
    Ok(())
}

/// One InlineKeyboardButton, reduced to its text and the one field that
/// says what it does, in the Bot API server's order of precedence (a
/// button with both `url` and `callback_data` is a URL button).
fn inline_button(value: &Value) -> Result<InlineButton, String> {
    let object = value
        .as_object()
        .ok_or("InlineKeyboardButton must be an Object")?;
    let text = required_string(object, "text")?;
    let mut button = InlineButton {
        text,
        callback_data: None,
        url: None,
        other: Default::default(),
    };
    if let Some(url) = optional_string(object, "url")?.filter(|u| !u.is_empty()) {
        button.url = Some(url);
        return Ok(button);
    }
    if let Some(data) = optional_string(object, "callback_data")?.filter(|d| !d.is_empty()) {
        button.callback_data = Some(data);
        return Ok(button);
    }
    let (field, echoed) = other_action(object)?;
    if field == "url" {
        // A login button is echoed as a plain URL button.
        button.url = echoed.as_str().map(str::to_owned);
    } else {
        button.other.insert(field.to_owned(), echoed);
    }
    Ok(button)
}

/// The action of a button that is neither a URL nor a callback button,
/// as Telegram echoes it.
fn other_action(object: &Map<String, Value>) -> Result<(&'static str, Value), String> {
    if object.contains_key("callback_game") {
        return Ok(("callback_game", Value::Object(Map::new())));
    }
    if object.contains_key("pay") {
        return Ok(("pay", Value::Bool(true)));
    }
    if object.contains_key("switch_inline_query") {
        let query = required_string(object, "switch_inline_query")?;
        return Ok(("switch_inline_query", Value::String(query)));
    }
    if object.contains_key("switch_inline_query_chosen_chat") {
        let chosen = required_object(object, "switch_inline_query_chosen_chat")?;
        return Ok((
            "switch_inline_query_chosen_chat",
            Value::Object(chosen.clone()),
        ));
    }
    if object.contains_key("switch_inline_query_current_chat") {
        let query = required_string(object, "switch_inline_query_current_chat")?;
        return Ok(("switch_inline_query_current_chat", Value::String(query)));
    }
    if object.contains_key("login_url") {
        let login = required_object(object, "login_url")?;
        return Ok(("url", Value::String(required_string(login, "url")?)));
    }
    if object.contains_key("web_app") {
        let web_app = required_object(object, "web_app")?;
        let url = required_string(web_app, "url")?;
        return Ok(("web_app", single("url", url)));
    }
    if object.contains_key("copy_text") {
        let copy = required_object(object, "copy_text")?;
        let text = required_string(copy, "text")?;
        return Ok(("copy_text", single("text", text)));
    }
    Err(TEXT_BUTTONS_UNALLOWED.to_owned())
}

fn single(name: &str, value: String) -> Value {
    let mut object = Map::new();
    object.insert(name.to_owned(), Value::String(value));
    Value::Object(object)
}

/// TDLib's error for a markup field of the wrong type. The Bot API server
/// lowercases the first letter of a description, so "Field" becomes
/// "field" here, where it starts the description, and not inside a
/// button's error, which follows a prefix.
fn must_be_of_type(name: &str, kind: &str) -> String {
    format!("field \"{name}\" must be of type {kind}")
}

/// TDLib's `get_optional_string_field`: a string or a number (as text).
fn optional_string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("Field \"{name}\" must be of type String")),
    }
}

fn required_string(object: &Map<String, Value>, name: &str) -> Result<String, String> {
    optional_string(object, name)?.ok_or_else(|| format!("Can't find field \"{name}\""))
}

fn required_object<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Map<String, Value>, String> {
    match object.get(name) {
        None => Err(format!("Can't find field \"{name}\"")),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(format!("Field \"{name}\" must be of type Object")),
    }
}

fn optional_bool(object: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match object.get(name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(must_be_of_type(name, "Boolean")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn err(markup: Value) -> String {
        match check(&markup) {
            Err(e) => e,
            Ok(kind) => panic!("expected an error, got {kind:?}"),
        }
    }

    fn rows(markup: Value) -> Keyboard {
        match check(&markup) {
            Ok(Kind::Inline(rows)) => rows,
            other => panic!("expected an inline keyboard, got {other:?}"),
        }
    }

    fn button(text: &str, data: &str) -> Value {
        json!({"text": text, "callback_data": data})
    }

    #[test]
    fn a_callback_keyboard_is_echoed_with_text_and_callback_data_only() {
        let keyboard = rows(json!({"inline_keyboard": [
            [{"text": "Yes", "callback_data": "y", "extra": 1}, {"text": "Site", "url": "https://e.com", "callback_data": "ignored"}],
            [{"text": "Share", "switch_inline_query": "bus"}]
        ]}));
        let echoed = message_field(&keyboard);
        assert_eq!(
            echoed,
            Some(json!({"inline_keyboard": [
                [{"text": "Yes", "callback_data": "y"}, {"text": "Site", "url": "https://e.com"}],
                [{"text": "Share", "switch_inline_query": "bus"}]
            ]}))
        );
    }

    #[test]
    fn markup_that_is_not_an_object_or_not_rows_of_buttons_is_refused() {
        assert_eq!(err(json!([1])), NOT_AN_OBJECT);
        assert_eq!(err(json!("x")), NOT_AN_OBJECT);
        assert_eq!(
            err(json!({"inline_keyboard": [button("a", "b")]})),
            NOT_ARRAY_OF_ARRAYS
        );
        assert_eq!(
            err(json!({"inline_keyboard": {"text": "a"}})),
            "field \"inline_keyboard\" must be of type Array"
        );
        assert_eq!(
            err(json!({"inline_keyboard": [["a"]]})),
            format!("{BAD_BUTTON}InlineKeyboardButton must be an Object")
        );
    }

    #[test]
    fn a_button_needs_a_text_and_an_action() {
        assert_eq!(
            err(json!({"inline_keyboard": [[{"callback_data": "x"}]]})),
            format!("{BAD_BUTTON}Can't find field \"text\"")
        );
        assert_eq!(
            err(json!({"inline_keyboard": [[{"text": ["x"], "callback_data": "x"}]]})),
            format!("{BAD_BUTTON}Field \"text\" must be of type String")
        );
        let text_only = format!("{BAD_BUTTON}{TEXT_BUTTONS_UNALLOWED}");
        assert_eq!(
            err(json!({"inline_keyboard": [[{"text": "a"}]]})),
            text_only
        );
        // An empty callback_data or url counts as none.
        assert_eq!(
            err(json!({"inline_keyboard": [[button("a", "")]]})),
            text_only
        );
        assert_eq!(
            err(json!({"inline_keyboard": [[{"text": "a", "url": ""}]]})),
            text_only
        );
    }

    #[test]
    fn callback_data_may_be_64_bytes_but_not_65() {
        let ok = "é".repeat(32);
        assert_eq!(
            rows(json!({"inline_keyboard": [[button("a", &ok)]]})).len(),
            1
        );
        let long = format!("{ok}x");
        assert_eq!(
            err(json!({"inline_keyboard": [[button("a", &long)]]})),
            BUTTON_DATA_INVALID
        );
    }

    #[test]
    fn more_than_8_in_a_row_or_100_in_all_is_too_long() {
        let row = |n: usize| {
            (0..n)
                .map(|i| button(&i.to_string(), "d"))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(json!({"inline_keyboard": [row(8)]}))[0].len(), 8);
        assert_eq!(err(json!({"inline_keyboard": [row(9)]})), TOO_LONG);
        let hundred: Vec<Value> = (0..20).map(|_| json!(row(5))).collect();
        assert_eq!(rows(json!({"inline_keyboard": hundred})).len(), 20);
        let more: Vec<Value> = (0..21).map(|_| json!(row(5))).collect();
        assert_eq!(err(json!({"inline_keyboard": more})), TOO_LONG);
    }

    #[test]
    fn buttons_with_an_empty_text_are_dropped_as_tdlib_does() {
        let keyboard = rows(
            json!({"inline_keyboard": [[button("", "a"), button("B", "b")], [button("", "c")]]}),
        );
        assert_eq!(keyboard.len(), 1);
        assert_eq!(keyboard[0].len(), 1);
        assert_eq!(keyboard[0][0].text, "B");
        assert_eq!(
            check(&json!({"inline_keyboard": [[button("", "a")]]})),
            Ok(Kind::Empty)
        );
        assert_eq!(check(&json!({"inline_keyboard": []})), Ok(Kind::Empty));
    }

    #[test]
    fn other_markups_are_accepted_and_not_echoed() {
        for markup in [
            json!({"keyboard": [["A"]], "resize_keyboard": true}),
            json!({"remove_keyboard": true}),
            json!({"force_reply": true, "input_field_placeholder": "x"}),
        ] {
            assert_eq!(check(&markup), Ok(Kind::Other), "{markup}");
        }
        assert_eq!(
            err(json!({"remove_keyboard": "yes"})),
            "field \"remove_keyboard\" must be of type Boolean"
        );
        assert_eq!(check(&json!({})), Ok(Kind::Empty));
    }

    #[test]
    fn reply_markup_is_read_from_json_text_or_typed_json() {
        let params = Params::from_pairs(&[(
            "reply_markup",
            r#"{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}"#,
        )]);
        let markup = from_params(&params)
            .ok()
            .flatten()
            .map(|m| m.inline_keyboard());
        assert_eq!(
            markup.map(|k| k[0][0].callback_data.clone()),
            Some(Some("b".into()))
        );
        let bad = Params::from_pairs(&[("reply_markup", "{inline")]);
        assert_eq!(
            from_params(&bad).err().map(|e| e.description),
            Some(format!("Bad Request: {CANT_PARSE}"))
        );
        let none = Params::from_pairs(&[("reply_markup", "")]);
        assert_eq!(from_params(&none), Ok(None));
    }
}
