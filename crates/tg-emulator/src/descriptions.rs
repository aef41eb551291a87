//! `setMyDescription`, `getMyDescription`, `setMyShortDescription` and
//! `getMyShortDescription`: the texts a user sees in an empty chat with the
//! bot and on its profile, one per `language_code` ("" for everyone without
//! a text of their own), checked as the Bot API documents them: 0–512 and
//! 0–120 characters, an empty text removing that language's one.
//!
//! The error texts for a text that is too long are the emulator's own
//! wording (the lengths are Telegram's); `language_code` is checked as for
//! `setMyCommands`.

use serde_json::json;

use crate::{
    error::{ApiError, ApiOk, ApiResult},
    model::BotDescriptions,
    params::Params,
    state::{Shared, State},
};

/// The longest description Telegram accepts, in characters.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 512;
/// The longest short description Telegram accepts, in characters.
pub(crate) const MAX_SHORT_DESCRIPTION_CHARS: usize = 120;

/// Which of the two texts a call sets or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `description`: shown in the chat with the bot while it is empty.
    Description,
    /// `short_description`: on the profile page and with shared links.
    Short,
}

impl Kind {
    /// The parameter (and result field) that holds the text.
    fn field(self) -> &'static str {
        match self {
            Kind::Description => "description",
            Kind::Short => "short_description",
        }
    }

    fn max_chars(self) -> usize {
        match self {
            Kind::Description => MAX_DESCRIPTION_CHARS,
            Kind::Short => MAX_SHORT_DESCRIPTION_CHARS,
        }
    }

    fn texts(self, state: &mut State) -> &mut std::collections::BTreeMap<String, String> {
        match self {
            Kind::Description => &mut state.descriptions,
            Kind::Short => &mut state.short_descriptions,
        }
    }
}

/// `setMyDescription` / `setMyShortDescription`.
pub(crate) fn set(shared: &Shared, params: &Params, kind: Kind) -> ApiResult {
    let language = crate::commands::language_code(params)?;
    // An absent text is an empty one: both remove the language's text.
    let text = params.str(kind.field()).unwrap_or_default();
    if text.chars().count() > kind.max_chars() {
        return Err(ApiError::bad_request(format!(
            "{} is too long: at most {} characters",
            kind.field().replace('_', " "),
            kind.max_chars()
        )));
    }
    let mut state = shared.lock();
    let texts = kind.texts(&mut state);
    if text.is_empty() {
        texts.remove(&language);
    } else {
        texts.insert(language, text);
    }
    Ok(ApiOk::new(json!(true)))
}

/// `getMyDescription` / `getMyShortDescription`: the language's own text,
/// else the default one, else "" (what a user of that language is shown).
pub(crate) fn get(shared: &Shared, params: &Params, kind: Kind) -> ApiResult {
    let language = crate::commands::language_code(params)?;
    let mut state = shared.lock();
    let texts = kind.texts(&mut state);
    let text = texts
        .get(&language)
        .or_else(|| texts.get(""))
        .cloned()
        .unwrap_or_default();
    Ok(ApiOk::new(json!({ kind.field(): text })))
}

/// Every language's texts, for `GET /control/descriptions`: one entry per
/// language that has either text, the default ("") first.
pub(crate) fn all(state: &State) -> Vec<BotDescriptions> {
    let languages: std::collections::BTreeSet<&String> = state
        .descriptions
        .keys()
        .chain(state.short_descriptions.keys())
        .collect();
    languages
        .into_iter()
        .map(|language| BotDescriptions {
            language_code: language.clone(),
            description: state.descriptions.get(language).cloned(),
            short_description: state.short_descriptions.get(language).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_text(shared: &Shared, kind: Kind, pairs: &[(&str, &str)]) -> Result<(), String> {
        set(shared, &Params::from_pairs(pairs), kind)
            .map(|_| ())
            .map_err(|e| e.description)
    }

    #[test]
    fn lengths_are_telegrams_and_an_empty_text_removes_the_language() {
        let shared = Shared::new(crate::EmulatorConfig::default(), Default::default())
            .expect("the emulator's state");
        let long = "é".repeat(MAX_SHORT_DESCRIPTION_CHARS + 1);
        assert_eq!(
            set_text(&shared, Kind::Short, &[("short_description", &long)]).unwrap_err(),
            "Bad Request: short description is too long: at most 120 characters"
        );
        // Characters, not bytes: 120 two-byte letters fit.
        let fits = "é".repeat(MAX_SHORT_DESCRIPTION_CHARS);
        set_text(&shared, Kind::Short, &[("short_description", &fits)]).unwrap();
        let too_long = "a".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert!(set_text(&shared, Kind::Description, &[("description", &too_long)]).is_err());
        set_text(
            &shared,
            Kind::Description,
            &[("description", "Hola"), ("language_code", "es")],
        )
        .unwrap();
        assert_eq!(
            set_text(
                &shared,
                Kind::Description,
                &[("description", "x"), ("language_code", "spanish")]
            )
            .unwrap_err(),
            "Bad Request: invalid language code specified"
        );
        let all = all(&shared.lock());
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].short_description.as_deref(), Some(fits.as_str()));
        assert_eq!(all[1].description.as_deref(), Some("Hola"));
        set_text(
            &shared,
            Kind::Description,
            &[("description", ""), ("language_code", "es")],
        )
        .unwrap();
        assert_eq!(super::all(&shared.lock()).len(), 1);
    }
}
