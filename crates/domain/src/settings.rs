//! A chat's own settings: how sure a detection must be to be shown, which
//! classes to show, what a detection answer holds, and how its boxes are
//! labelled. They are parsed at the edge, from the commands people type
//! (`/confidence 0.6`, `/only person,dog`, `/output counts`, `/labels
//! plain`) and from the settings keyboard's buttons ([`SettingsButton`],
//! whose `callback_data` is a short code of ours, never user data), into a
//! [`SettingsChange`]; the gateway stores the chat's [`ChatSettings`],
//! every job carries them, and the detector applies them after NMS.
//!
//! An absent field reads as its default, so a job or a record written
//! before settings existed reads as the defaults.

use std::collections::BTreeSet;
use std::fmt;

use polybot_i18n::{Lang, t};
use serde::{Deserialize, Serialize};

/// What one chat chose. `Default` is what a chat that never chose gets.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatSettings {
    /// The least confidence an object needs to be shown; `None` is the
    /// deployment's own (`POLYBOT_CONFIDENCE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<MinConfidence>,
    #[serde(default, skip_serializing_if = "ClassChoice::is_all")]
    pub classes: ClassChoice,
    #[serde(default, skip_serializing_if = "OutputMode::is_default")]
    pub output: OutputMode,
    #[serde(default, skip_serializing_if = "LabelStyle::is_default")]
    pub labels: LabelStyle,
    /// The language the chat chose (`/language`); `None`: each message is
    /// answered in its sender's Telegram language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Lang>,
}

impl ChatSettings {
    /// These settings with one change made.
    pub fn with(mut self, change: SettingsChange) -> Self {
        match change {
            SettingsChange::Confidence(c) => self.confidence = c,
            SettingsChange::Classes(c) => self.classes = c,
            SettingsChange::ClassShown(name, shown) => {
                self.classes = self.classes.with_class(name, shown);
            }
            SettingsChange::Output(o) => self.output = o,
            SettingsChange::Labels(l) => self.labels = l,
            SettingsChange::Language(l) => self.language = l,
        }
        self
    }

    /// The language to answer in: the chat's choice, else the sender's
    /// (`language_code`), else English.
    pub fn language_for(&self, sender: Option<Lang>) -> Lang {
        self.language.or(sender).unwrap_or_default()
    }

    /// Whether these are the defaults (nothing chosen).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether an object of `class` at `confidence` is shown, given the
    /// deployment's own least confidence `floor`.
    pub fn shows(&self, class: &str, confidence: f32, floor: f32) -> bool {
        let least = self.confidence.map_or(floor, MinConfidence::get);
        confidence >= least && self.classes.contains(class)
    }

    /// The settings as a few lines for people: the `/settings` message and
    /// the replies to the text forms.
    pub fn describe(&self, lang: Lang) -> String {
        t!(
            lang,
            "settings-describe",
            confidence = self.confidence_text(lang),
            classes = self.classes.describe(lang),
            output = self.output.describe(lang),
            labels = self.labels.describe(lang),
            language = self.language_text(lang),
        )
    }

    /// The chosen language as people read it ("Русский"), or that each
    /// sender's own is used.
    pub fn language_text(&self, lang: Lang) -> String {
        self.language
            .map_or_else(|| t!(lang, "settings-language-auto"), Lang::native_name)
    }

    /// The least confidence as people read it: `0.6`, or `standard`.
    pub fn confidence_text(&self, lang: Lang) -> String {
        self.confidence
            .map_or_else(|| t!(lang, "settings-standard"), |c| c.to_string())
    }
}

/// A least confidence a chat may choose, within [`MinConfidence::MIN`] and
/// [`MinConfidence::MAX`], kept to two decimals.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct MinConfidence(f32);

impl MinConfidence {
    pub const MIN: f32 = 0.05;
    pub const MAX: f32 = 0.95;
    /// The choices the keyboard offers.
    pub const CHOICES: [f32; 3] = [0.25, 0.5, 0.7];

    pub fn new(value: f32) -> Option<Self> {
        let rounded = (value * 100.0).round() / 100.0;
        (Self::MIN..=Self::MAX)
            .contains(&rounded)
            .then_some(Self(rounded))
    }

    pub fn get(self) -> f32 {
        self.0
    }

    /// Reads `0.6`, `0,6`, `.6` or `60%`.
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let text = text.trim();
        let (number, percent) = match text.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (text, false),
        };
        let value: f32 = number
            .replace(',', ".")
            .parse()
            .map_err(|_| SettingError::Confidence(text.to_owned()))?;
        let value = if percent { value / 100.0 } else { value };
        if !value.is_finite() {
            return Err(SettingError::Confidence(text.to_owned()));
        }
        Self::new(value).ok_or_else(|| SettingError::Confidence(text.to_owned()))
    }
}

impl TryFrom<f32> for MinConfidence {
    type Error = &'static str;
    fn try_from(value: f32) -> Result<Self, Self::Error> {
        Self::new(value).ok_or("confidence out of range")
    }
}

impl From<MinConfidence> for f32 {
    fn from(c: MinConfidence) -> Self {
        c.0
    }
}

impl fmt::Display for MinConfidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two decimals at most, without trailing zeros: 0.5, 0.25.
        let text = format!("{:.2}", self.0);
        f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Which classes a chat wants shown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Option<BTreeSet<String>>", into = "Option<BTreeSet<String>>")]
pub enum ClassChoice {
    #[default]
    All,
    /// Only these, by the model's own class names (never empty).
    Only(BTreeSet<String>),
}

impl ClassChoice {
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    pub fn contains(&self, class: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(class),
        }
    }

    /// With `class` among those shown, or not (none left is all).
    fn with_class(&self, class: String, shown: bool) -> Self {
        let mut set = match self {
            Self::All => BTreeSet::new(),
            Self::Only(set) => set.clone(),
        };
        if shown {
            set.insert(class);
        } else {
            set.remove(&class);
        }
        Self::from(Some(set))
    }
}

impl From<Option<BTreeSet<String>>> for ClassChoice {
    fn from(set: Option<BTreeSet<String>>) -> Self {
        match set {
            Some(set) if !set.is_empty() => Self::Only(set),
            _ => Self::All,
        }
    }
}

impl From<ClassChoice> for Option<BTreeSet<String>> {
    fn from(choice: ClassChoice) -> Self {
        match choice {
            ClassChoice::All => None,
            ClassChoice::Only(set) => Some(set),
        }
    }
}

impl ClassChoice {
    /// The choice as people read it: "all", or the names (in `lang` for
    /// the COCO classes).
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            Self::All => t!(lang, "settings-all-classes"),
            Self::Only(set) => set
                .iter()
                .map(|name| lang.class_name(name).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl fmt::Display for ClassChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Only(set) => {
                let names: Vec<&str> = set.iter().map(String::as_str).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// What a detection answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// The annotated photo with the counts as its caption.
    #[default]
    Photo,
    /// The photo, and below it a text with each object's score and box.
    Details,
    /// One text with the counts, no picture.
    Counts,
}

impl OutputMode {
    pub const ALL: [Self; 3] = [Self::Photo, Self::Details, Self::Counts];

    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The word `/output` takes.
    pub fn word(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Details => "details",
            Self::Counts => "counts",
        }
    }

    pub fn describe(self, lang: Lang) -> String {
        lang.text(match self {
            Self::Photo => "output-photo",
            Self::Details => "output-details",
            Self::Counts => "output-counts",
        })
    }

    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let word = normalise(text);
        let word = word.trim_end_matches('s');
        match word {
            "photo" | "picture" | "image" | "pic" => Ok(Self::Photo),
            "detail" | "photo and detail" | "photo detail" | "full" => Ok(Self::Details),
            "count" | "count only" | "text" | "number" => Ok(Self::Counts),
            _ => Err(SettingError::Output(text.trim().to_owned())),
        }
    }
}

/// How a box is labelled on the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelStyle {
    /// `person 0.87`.
    #[default]
    Score,
    /// `person`.
    Name,
}

impl LabelStyle {
    pub const ALL: [Self; 2] = [Self::Score, Self::Name];

    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn word(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Name => "plain",
        }
    }

    pub fn describe(self, lang: Lang) -> String {
        lang.text(match self {
            Self::Score => "labels-score",
            Self::Name => "labels-name",
        })
    }

    pub fn parse(text: &str) -> Result<Self, SettingError> {
        match normalise(text).as_str() {
            "score" | "scores" | "with score" | "with scores" | "on" => Ok(Self::Score),
            "plain" | "name" | "names" | "name only" | "no score" | "without score" | "off" => {
                Ok(Self::Name)
            }
            _ => Err(SettingError::Labels(text.trim().to_owned())),
        }
    }
}

/// One change to a chat's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsChange {
    Confidence(Option<MinConfidence>),
    Classes(ClassChoice),
    /// One class shown, or no longer shown (the keyboard's class buttons:
    /// each says which, so pressing one twice, or a delivery handled
    /// twice, changes nothing more).
    ClassShown(String, bool),
    Output(OutputMode),
    Labels(LabelStyle),
    /// The chat's language; `None`: each sender's own.
    Language(Option<Lang>),
}

/// Why a typed setting was not understood. [`SettingError::message`] is
/// the whole reply to send; the Display text is it in English, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("{}", self.message(Lang::En))]
    Confidence(String),
    #[error("{}", self.message(Lang::En))]
    UnknownClasses {
        unknown: Vec<String>,
        valid: Vec<String>,
    },
    #[error("{}", self.message(Lang::En))]
    Output(String),
    #[error("{}", self.message(Lang::En))]
    Labels(String),
    #[error("{}", self.message(Lang::En))]
    Language(String),
}

impl SettingError {
    /// The reply to send, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            Self::Confidence(value) => t!(lang, "setting-error-confidence", value = value.as_str()),
            Self::UnknownClasses { unknown, valid } => t!(
                lang,
                "setting-error-classes",
                unknown = quoted(unknown),
                valid = valid.join(", "),
            ),
            Self::Output(value) => t!(lang, "setting-error-output", value = value.as_str()),
            Self::Labels(value) => t!(lang, "setting-error-labels", value = value.as_str()),
            Self::Language(value) => t!(
                lang,
                "setting-error-language",
                value = value.as_str(),
                languages = Lang::ALL
                    .iter()
                    .map(|l| l.code())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("\u{201c}{n}\u{201d}"))
        .collect();
    quoted.join(", ")
}

/// Lower case, `_` and `-` as spaces, single spaces.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The argument of `/confidence`.
pub fn parse_confidence(text: &str) -> Result<Option<MinConfidence>, SettingError> {
    match normalise(text).as_str() {
        "standard" | "default" | "reset" | "auto" => Ok(None),
        _ => MinConfidence::parse(text).map(Some),
    }
}

/// The argument of `/only`: `all`, or class names of the model's `known`
/// ones, separated by commas, spaces or "and", in the forms people type
/// (`Dogs`, `people`, `traffic lights`, `teddy_bear`).
pub fn parse_classes(text: &str, known: &[String]) -> Result<ClassChoice, SettingError> {
    let words: Vec<String> = normalise(&text.replace([',', ';', '+', '&'], " "))
        .split(' ')
        .filter(|w| !w.is_empty() && *w != "and")
        .map(str::to_owned)
        .collect();
    if words.is_empty()
        || matches!(
            words.join(" ").as_str(),
            "all" | "everything" | "any" | "all classes"
        )
    {
        return Ok(ClassChoice::All);
    }
    let mut chosen = BTreeSet::new();
    let mut unknown = Vec::new();
    let mut at = 0;
    while at < words.len() {
        // The longest run of words that names a class: "traffic light".
        let found = (1..=3.min(words.len() - at)).rev().find_map(|len| {
            class_named(&words[at..at + len].join(" "), known).map(|class| (class, len))
        });
        match found {
            Some((class, len)) => {
                chosen.insert(class.to_owned());
                at += len;
            }
            None => {
                unknown.push(words[at].clone());
                at += 1;
            }
        }
    }
    if !unknown.is_empty() {
        return Err(SettingError::UnknownClasses {
            unknown,
            valid: known.to_vec(),
        });
    }
    Ok(ClassChoice::from(Some(chosen)))
}

/// The model's class that `typed` names, singular or plural, or by its
/// name in one of the bot's languages (`/only автобус`, `/only autobús`).
pub fn class_named<'a>(typed: &str, known: &'a [String]) -> Option<&'a str> {
    let typed = normalise(typed);
    known
        .iter()
        .find(|class| {
            let name = normalise(class);
            typed == name
                || plurals(&name).contains(&typed)
                || Lang::ALL
                    .iter()
                    .any(|lang| normalise(&lang.class_name(class)) == typed)
        })
        .map(String::as_str)
}

/// The plural forms an English class name is typed in.
fn plurals(name: &str) -> Vec<String> {
    let (head, last) = match name.rsplit_once(' ') {
        Some((head, last)) => (format!("{head} "), last),
        None => (String::new(), name),
    };
    let irregular = match last {
        "person" => Some("people"),
        "mouse" => Some("mice"),
        "knife" => Some("knives"),
        "sheep" => Some("sheep"),
        "skis" => Some("skis"),
        "scissors" => Some("scissors"),
        _ => None,
    };
    let mut forms = vec![format!("{head}{last}s"), format!("{head}{last}es")];
    if let Some(stem) = last.strip_suffix('y') {
        forms.push(format!("{head}{stem}ies"));
    }
    if let Some(word) = irregular {
        forms.push(format!("{head}{word}"));
    }
    if last == "person" {
        forms.push(format!("{head}persons"));
    }
    forms
}

/// What a settings command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsRequest {
    /// `/settings` (or a setting's command with nothing after it): the
    /// settings message with its keyboard.
    Show,
    /// A typed change.
    Change(TypedSetting),
    /// A typed value that is not one: the error's text is the answer.
    Invalid(SettingError),
}

/// A change typed as a command. Class names are checked against the
/// model's list when the change is made, so they stay text here.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedSetting {
    Confidence(Option<MinConfidence>),
    Only(String),
    Output(OutputMode),
    Labels(LabelStyle),
    Language(Option<Lang>),
}

/// The settings commands, in the menu's order; each one's menu text is
/// the catalogue's `command-<name>`.
pub const COMMANDS: [&str; 6] = [
    "settings",
    "confidence",
    "only",
    "output",
    "labels",
    "language",
];

/// The argument of `/language`: a code (`ru`, `es-419`), a language's own
/// or English name, or `auto` for each sender's own.
pub fn parse_language(text: &str) -> Result<Option<Lang>, SettingError> {
    let word = normalise(text);
    if matches!(
        word.as_str(),
        "auto" | "automatic" | "default" | "авто" | "automático" | "automatico"
    ) {
        return Ok(None);
    }
    if let Some(lang) = Lang::from_code(&word) {
        return Ok(Some(lang));
    }
    Lang::ALL
        .into_iter()
        .find(|lang| {
            Lang::ALL
                .iter()
                .any(|named_in| lang_name_in(*lang, *named_in).to_lowercase() == word)
        })
        .map(Some)
        .ok_or_else(|| SettingError::Language(text.trim().to_owned()))
}

/// `lang`'s name in `named_in` ("Russian", "Русский", "ruso").
fn lang_name_in(lang: Lang, named_in: Lang) -> String {
    named_in.text(&format!("language-{}", lang.code()))
}

/// The `/help` lines for the settings.
pub fn help(lang: Lang) -> String {
    t!(lang, "settings-help")
}

/// Reads a command `name` (lowercase, no slash) and the text after it;
/// `None` when it is no settings command.
pub fn parse_command(name: &str, args: &str) -> Option<SettingsRequest> {
    let args = args.trim();
    let change = |parsed: Result<TypedSetting, SettingError>| match parsed {
        Ok(change) => SettingsRequest::Change(change),
        Err(e) => SettingsRequest::Invalid(e),
    };
    Some(match name {
        "settings" => SettingsRequest::Show,
        _ if args.is_empty() && COMMANDS.contains(&name) => SettingsRequest::Show,
        "confidence" => change(parse_confidence(args).map(TypedSetting::Confidence)),
        "only" => SettingsRequest::Change(TypedSetting::Only(args.to_owned())),
        "output" => change(OutputMode::parse(args).map(TypedSetting::Output)),
        "labels" => change(LabelStyle::parse(args).map(TypedSetting::Labels)),
        "language" => change(parse_language(args).map(TypedSetting::Language)),
        _ => return None,
    })
}

/// A button of the settings keyboard: what pressing it changes. Its
/// `callback_data` is a short code (`s:c:50`, `s:o:counts`, `s:t:5:1`), far
/// under Telegram's 64 bytes; a class is named by its index in the model's
/// list, so no name travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsButton {
    /// A least confidence in hundredths; `None` the standard one.
    Confidence(Option<u8>),
    AllClasses,
    /// The model's class at this index to be shown (`true`) or no longer.
    Class(u16, bool),
    Output(OutputMode),
    Labels(LabelStyle),
    /// A language for the chat; `None`: each sender's own.
    Language(Option<Lang>),
}

impl SettingsButton {
    const PREFIX: &'static str = "s:";

    /// The `callback_data` of this button.
    pub fn encode(self) -> String {
        match self {
            Self::Confidence(None) => "s:c:std".to_owned(),
            Self::Confidence(Some(hundredths)) => format!("s:c:{hundredths}"),
            Self::AllClasses => "s:k:all".to_owned(),
            Self::Class(index, shown) => format!("s:t:{index}:{}", u8::from(shown)),
            Self::Output(o) => format!("s:o:{}", o.word()),
            Self::Labels(l) => format!("s:l:{}", l.word()),
            Self::Language(l) => format!("s:g:{}", l.map_or("auto", Lang::code)),
        }
    }

    /// The button a `callback_data` names, if it is one of ours.
    pub fn decode(data: &str) -> Option<Self> {
        let rest = data.strip_prefix(Self::PREFIX)?;
        let (what, value) = rest.split_once(':')?;
        match what {
            "c" if value == "std" => Some(Self::Confidence(None)),
            "c" => value
                .parse::<u8>()
                .ok()
                .filter(|h| MinConfidence::new(f32::from(*h) / 100.0).is_some())
                .map(|h| Self::Confidence(Some(h))),
            "k" if value == "all" => Some(Self::AllClasses),
            "t" => {
                let (index, shown) = value.split_once(':')?;
                let shown = match shown {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                index.parse().ok().map(|i| Self::Class(i, shown))
            }
            "o" => OutputMode::ALL
                .into_iter()
                .find(|o| o.word() == value)
                .map(Self::Output),
            "l" => LabelStyle::ALL
                .into_iter()
                .find(|l| l.word() == value)
                .map(Self::Labels),
            "g" if value == "auto" => Some(Self::Language(None)),
            "g" => Lang::ALL
                .into_iter()
                .find(|l| l.code() == value)
                .map(|l| Self::Language(Some(l))),
            _ => None,
        }
    }

    /// The change this button makes, given the model's classes; `None`
    /// for a class index the model does not have (an old keyboard).
    pub fn change(self, known: &[String]) -> Option<SettingsChange> {
        Some(match self {
            Self::Confidence(h) => {
                SettingsChange::Confidence(h.and_then(|h| MinConfidence::new(f32::from(h) / 100.0)))
            }
            Self::AllClasses => SettingsChange::Classes(ClassChoice::All),
            Self::Class(i, shown) => {
                SettingsChange::ClassShown(known.get(usize::from(i))?.clone(), shown)
            }
            Self::Output(o) => SettingsChange::Output(o),
            Self::Labels(l) => SettingsChange::Labels(l),
            Self::Language(l) => SettingsChange::Language(l),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coco() -> Vec<String> {
        [
            "person",
            "bicycle",
            "car",
            "bus",
            "traffic light",
            "dog",
            "mouse",
            "knife",
            "teddy bear",
            "skis",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_class_is_also_named_in_the_bots_languages() {
        let known = coco();
        assert_eq!(class_named("автобус", &known), Some("bus"));
        assert_eq!(class_named("Autobús", &known), Some("bus"));
        assert_eq!(class_named("светофор", &known), Some("traffic light"));
        assert_eq!(class_named("unicornio", &known), None);
    }

    fn only(names: &[&str]) -> ClassChoice {
        ClassChoice::Only(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn only_reads_the_plural_and_case_forms_people_type() {
        let known = coco();
        let cases = [
            ("person,dog", only(&["person", "dog"])),
            ("People, DOGS", only(&["person", "dog"])),
            ("persons and buses", only(&["person", "bus"])),
            ("Traffic lights", only(&["traffic light"])),
            (
                "teddy_bear mice knives",
                only(&["teddy bear", "mouse", "knife"]),
            ),
            ("cars", only(&["car"])),
            ("skis", only(&["skis"])),
            ("all", ClassChoice::All),
            ("  ALL ", ClassChoice::All),
        ];
        for (typed, expected) in cases {
            assert_eq!(parse_classes(typed, &known), Ok(expected), "{typed}");
        }
    }

    #[test]
    fn an_unknown_class_is_named_with_the_valid_ones() {
        let err = parse_classes("dog, unicorn", &coco()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\u{201c}unicorn\u{201d}"), "{text}");
        assert!(text.contains("person, bicycle, car"), "{text}");
        assert!(!text.contains("\u{201c}dog\u{201d}"), "{text}");
    }

    #[test]
    fn confidence_is_read_in_the_forms_people_type_and_its_range_is_named() {
        for (typed, expected) in [("0.6", 0.6), ("0,6", 0.6), (".25", 0.25), ("70%", 0.7)] {
            assert_eq!(
                parse_confidence(typed).map(|c| c.map(MinConfidence::get)),
                Ok(Some(expected)),
                "{typed}"
            );
        }
        assert_eq!(parse_confidence("standard"), Ok(None));
        for bad in ["0", "1", "0.99", "high", "NaN", "inf", "-0.5"] {
            let err = parse_confidence(bad).unwrap_err();
            assert!(err.to_string().contains("0.05 to 0.95"), "{bad}: {err}");
        }
    }

    #[test]
    fn output_and_labels_read_their_words() {
        assert_eq!(OutputMode::parse("Counts"), Ok(OutputMode::Counts));
        assert_eq!(OutputMode::parse("details"), Ok(OutputMode::Details));
        assert_eq!(OutputMode::parse("photo"), Ok(OutputMode::Photo));
        assert!(OutputMode::parse("video").is_err());
        assert_eq!(LabelStyle::parse("plain"), Ok(LabelStyle::Name));
        assert_eq!(LabelStyle::parse("score"), Ok(LabelStyle::Score));
        assert!(LabelStyle::parse("loud").is_err());
    }

    #[test]
    fn defaults_serialise_as_an_empty_object_and_absent_fields_read_as_defaults() {
        assert_eq!(
            serde_json::to_string(&ChatSettings::default()).unwrap(),
            "{}"
        );
        let read: ChatSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(read, ChatSettings::default());
        let chosen = ChatSettings::default()
            .with(SettingsChange::Confidence(MinConfidence::new(0.7)))
            .with(SettingsChange::Classes(only(&["bus"])))
            .with(SettingsChange::Output(OutputMode::Counts))
            .with(SettingsChange::Labels(LabelStyle::Name));
        let json = serde_json::to_string(&chosen).unwrap();
        assert_eq!(
            json,
            r#"{"confidence":0.7,"classes":["bus"],"output":"counts","labels":"name"}"#
        );
        assert_eq!(serde_json::from_str::<ChatSettings>(&json).unwrap(), chosen);
        // A value out of range cannot be smuggled in.
        assert!(serde_json::from_str::<ChatSettings>(r#"{"confidence":3}"#).is_err());
    }

    #[test]
    fn showing_classes_adds_and_removes_and_the_last_removed_is_all() {
        let shown = |name: &str, shown| SettingsChange::ClassShown(name.into(), shown);
        let s = ChatSettings::default().with(shown("bus", true));
        assert_eq!(s.classes, only(&["bus"]));
        let s = s.with(shown("car", true));
        assert_eq!(s.classes, only(&["bus", "car"]));
        let s = s.with(shown("bus", false)).with(shown("car", false));
        assert_eq!(s.classes, ClassChoice::All);
    }

    #[test]
    fn shows_applies_the_chats_confidence_or_the_floor_and_its_classes() {
        let s = ChatSettings::default();
        assert!(s.shows("dog", 0.3, 0.25));
        assert!(!s.shows("dog", 0.2, 0.25));
        let s = s
            .with(SettingsChange::Confidence(MinConfidence::new(0.5)))
            .with(SettingsChange::Classes(only(&["bus"])));
        assert!(!s.shows("bus", 0.4, 0.25));
        assert!(s.shows("bus", 0.5, 0.25));
        assert!(!s.shows("dog", 0.9, 0.25));
    }

    #[test]
    fn every_button_fits_callback_data_and_decodes_to_itself() {
        let mut buttons = vec![
            SettingsButton::Confidence(None),
            SettingsButton::AllClasses,
            SettingsButton::Class(u16::MAX, true),
            SettingsButton::Class(0, false),
        ];
        buttons.extend(
            MinConfidence::CHOICES
                .map(|c| SettingsButton::Confidence(Some((c * 100.0).round() as u8))),
        );
        buttons.extend(OutputMode::ALL.map(SettingsButton::Output));
        buttons.extend(LabelStyle::ALL.map(SettingsButton::Labels));
        for b in buttons {
            let data = b.encode();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(SettingsButton::decode(&data), Some(b), "{data}");
        }
        for other in [
            "",
            "s:",
            "s:c:200",
            "s:c:1",
            "s:o:video",
            "x:c:50",
            "a:123",
            "s:t:5",
            "s:t:5:2",
        ] {
            assert_eq!(SettingsButton::decode(other), None, "{other}");
        }
    }

    #[test]
    fn commands_read_as_show_change_or_the_reason() {
        assert_eq!(parse_command("settings", ""), Some(SettingsRequest::Show));
        assert_eq!(parse_command("only", " "), Some(SettingsRequest::Show));
        assert_eq!(
            parse_command("only", "person, dog"),
            Some(SettingsRequest::Change(TypedSetting::Only(
                "person, dog".into()
            )))
        );
        assert_eq!(
            parse_command("output", "counts"),
            Some(SettingsRequest::Change(TypedSetting::Output(
                OutputMode::Counts
            )))
        );
        assert!(matches!(
            parse_command("confidence", "1.5"),
            Some(SettingsRequest::Invalid(SettingError::Confidence(_)))
        ));
        assert_eq!(parse_command("blur", "8"), None);
    }

    #[test]
    fn a_class_button_past_the_models_list_changes_nothing() {
        assert_eq!(SettingsButton::Class(99, true).change(&coco()), None);
        assert_eq!(
            SettingsButton::Class(3, true).change(&coco()),
            Some(SettingsChange::ClassShown("bus".into(), true))
        );
    }

    #[test]
    fn a_class_button_pressed_twice_changes_nothing_more() {
        let show_bus = SettingsChange::ClassShown("bus".into(), true);
        let once = ChatSettings::default().with(show_bus.clone());
        assert_eq!(once.clone().with(show_bus), once);
        let hide_bus = SettingsChange::ClassShown("bus".into(), false);
        let hidden = once.with(hide_bus.clone());
        assert_eq!(hidden.classes, ClassChoice::All);
        assert_eq!(hidden.clone().with(hide_bus), hidden);
    }

    proptest! {
        #[test]
        fn decoding_any_text_never_panics_and_what_decodes_reencodes(data in ".{0,70}") {
            if let Some(b) = SettingsButton::decode(&data) {
                prop_assert_eq!(SettingsButton::decode(&b.encode()), Some(b));
            }
        }

        #[test]
        fn any_confidence_in_range_round_trips_through_its_text(h in 5u8..=95) {
            let c = MinConfidence::new(f32::from(h) / 100.0).unwrap();
            prop_assert_eq!(MinConfidence::parse(&c.to_string()), Ok(c));
        }
    }
}
