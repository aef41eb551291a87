//! Every text a chat user reads, in their language: Fluent message
//! catalogues (`locales/<language>/*.ftl`, compiled in), with CLDR plural
//! rules ("1 фото", "2 фото", "5 фото"), and the COCO class names.
//!
//! - [`Lang`] is a language we ship. Telegram's `language_code` picks it
//!   ([`Lang::from_code`]); anything else falls back to English.
//! - [`t!`] formats one message: `t!(lang, "start")`,
//!   `t!(lang, "deleted", pictures = 3, results = 2)`.
//! - A message missing from a catalogue falls back to English (a unit test
//!   keeps every catalogue complete, so that is only a safety net), and a
//!   key missing from English shows as the key.
//! - [`Lang::class_name`] names a detected class: the catalogue's name for
//!   the 80 COCO classes, the model's own name for any other.
//!
//! The catalogues hold words only; what is said when is the services'
//! business. Numbers that are shown with a fixed precision (scores,
//! confidences) are passed in already formatted, as strings.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use fluent_bundle::FluentResource;
use fluent_bundle::concurrent::FluentBundle;
pub use fluent_bundle::{FluentArgs, FluentValue};
use serde::{Deserialize, Serialize};
use unic_langid::LanguageIdentifier;

/// A language the bot speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ru,
    Es,
}

/// The catalogues of one language, in the order of [`Lang::ALL`].
const CATALOGUES: [(Lang, &[&str]); 3] = [
    (
        Lang::En,
        &[
            include_str!("../locales/en/main.ftl"),
            include_str!("../locales/en/classes.ftl"),
        ],
    ),
    (
        Lang::Ru,
        &[
            include_str!("../locales/ru/main.ftl"),
            include_str!("../locales/ru/classes.ftl"),
        ],
    ),
    (
        Lang::Es,
        &[
            include_str!("../locales/es/main.ftl"),
            include_str!("../locales/es/classes.ftl"),
        ],
    ),
];

type Bundle = FluentBundle<FluentResource>;

static BUNDLES: LazyLock<Vec<Bundle>> = LazyLock::new(|| {
    CATALOGUES
        .iter()
        .map(|(lang, sources)| bundle(*lang, sources))
        .collect()
});

fn bundle(lang: Lang, sources: &[&str]) -> Bundle {
    let id: LanguageIdentifier = lang
        .code()
        .parse()
        .unwrap_or_else(|_| LanguageIdentifier::default());
    let mut bundle = Bundle::new_concurrent(vec![id]);
    // Isolation marks around placeables would reach the chat as invisible
    // characters and break exact texts; none of our languages is
    // right-to-left.
    bundle.set_use_isolating(false);
    for source in sources {
        // A catalogue with a syntax error still yields the messages it could
        // parse; the unit tests fail on any error.
        let resource = match FluentResource::try_new((*source).to_owned()) {
            Ok(resource) | Err((resource, _)) => resource,
        };
        // A duplicate message id keeps the first; the tests forbid them.
        let _ = bundle.add_resource(resource);
    }
    bundle
}

impl Lang {
    /// Every language shipped, English (the fallback) first.
    pub const ALL: [Self; 3] = [Self::En, Self::Ru, Self::Es];

    /// The ISO 639-1 code, as Telegram's `language_code` spells it.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ru => "ru",
            Self::Es => "es",
        }
    }

    /// The language of an IETF tag such as Telegram's `language_code`
    /// (`ru`, `es-419`, `en-GB`, `pt-br`): its primary subtag, any case.
    /// `None` when we do not ship it.
    pub fn from_code(code: &str) -> Option<Self> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|lang| lang.code() == primary)
    }

    /// [`Lang::from_code`], English when there is no code or we do not
    /// ship it.
    pub fn from_code_or_default(code: Option<&str>) -> Self {
        code.and_then(Self::from_code).unwrap_or_default()
    }

    /// The language's name in itself ("Русский"), for the language menu.
    pub fn native_name(self) -> String {
        self.text("language-name")
    }

    fn bundle(self) -> &'static Bundle {
        let index = Self::ALL.iter().position(|l| *l == self).unwrap_or(0);
        &BUNDLES[index]
    }

    /// Message `key` with no arguments.
    pub fn text(self, key: &str) -> String {
        self.format(key, None)
    }

    /// Message `key` with `args`; see [`t!`].
    pub fn format(self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        [self, Self::En]
            .into_iter()
            .find_map(|lang| format_in(lang.bundle(), key, args))
            .unwrap_or_else(|| key.to_owned())
    }

    /// Message `key` when this language's catalogue has it (no fallback):
    /// for words stored in English that the catalogue may name.
    pub fn lookup(self, key: &str) -> Option<String> {
        format_in(self.bundle(), key, None)
    }

    /// The name of a detected class in this language: the catalogue's for
    /// the COCO classes (`bus` → `автобус`), the model's own otherwise.
    pub fn class_name<'a>(self, class: &'a str) -> Cow<'a, str> {
        match self.lookup(&class_key(class)) {
            Some(name) => Cow::Owned(name),
            None => Cow::Borrowed(class),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The catalogue key of a class name: `class-` and the name with spaces
/// as hyphens (`traffic light` → `class-traffic-light`).
pub fn class_key(class: &str) -> String {
    let mut key = String::with_capacity(class.len() + 6);
    key.push_str("class-");
    for c in class.chars() {
        key.push(if c == ' ' || c == '_' { '-' } else { c });
    }
    key
}

fn format_in(bundle: &Bundle, key: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
    let pattern = bundle.get_message(key)?.value()?;
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, args, &mut errors);
    // A missing argument shows as `{$name}`; the catalogue tests format
    // every message, so this only guards against a caller's typo.
    Some(text.into_owned())
}

/// Formats one message: `t!(lang, "key")` or
/// `t!(lang, "key", name = value, …)`, where a value is a number (which
/// also picks the plural form) or a string.
#[macro_export]
macro_rules! t {
    ($lang:expr, $key:expr) => {
        $crate::Lang::text($lang, $key)
    };
    ($lang:expr, $key:expr, $($name:ident = $value:expr),+ $(,)?) => {{
        let mut args = $crate::FluentArgs::new();
        $( args.set(stringify!($name), $crate::FluentValue::from($value)); )+
        $crate::Lang::format($lang, $key, Some(&args))
    }};
}

#[cfg(test)]
mod tests;
