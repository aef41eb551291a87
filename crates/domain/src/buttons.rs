//! The buttons the bot puts under its messages, as their `callback_data`
//! codes: the settings keyboard's ([`SettingsButton`]) and the extras under
//! every detection answer ([`AnswerButton`]: `Details`, `Crops`,
//! `Original`). A code names what to do and, for an answer's button, the
//! prediction by its opaque id: never user data, and far under Telegram's
//! 64 bytes. [`Press::decode`] reads any of them back.

use std::fmt;

use polybot_i18n::Lang;

use crate::ids::PredictionId;
use crate::settings::SettingsButton;

/// What an answer's button sends, below the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerExtra {
    /// A text listing each object with its score and box.
    Details,
    /// A picture of each object, cut from the original photo.
    Crops,
    /// The full-resolution annotated photo, as a document.
    Original,
}

impl AnswerExtra {
    pub const ALL: [Self; 3] = [Self::Details, Self::Crops, Self::Original];

    /// The button's label.
    pub fn label(self, lang: Lang) -> String {
        lang.text(match self {
            Self::Details => "button-details",
            Self::Crops => "button-crops",
            Self::Original => "button-original",
        })
    }

    /// Bounded name, for keys, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Details => "details",
            Self::Crops => "crops",
            Self::Original => "original",
        }
    }

    fn code(self) -> char {
        match self {
            Self::Details => 'd',
            Self::Crops => 'c',
            Self::Original => 'o',
        }
    }
}

impl fmt::Display for AnswerExtra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A button under a detection answer: an extra of one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerButton {
    pub extra: AnswerExtra,
    pub prediction: PredictionId,
}

impl AnswerButton {
    /// `a:<d|c|o>:<the prediction id's 32 hex digits>`: 36 bytes.
    pub fn encode(self) -> String {
        format!(
            "a:{}:{}",
            self.extra.code(),
            self.prediction.as_uuid().simple()
        )
    }

    fn decode(data: &str) -> Option<Self> {
        let rest = data.strip_prefix("a:")?;
        let (code, id) = rest.split_once(':')?;
        let extra = AnswerExtra::ALL
            .into_iter()
            .find(|e| code.len() == 1 && code.starts_with(e.code()))?;
        let prediction = id.parse().ok()?;
        Some(Self { extra, prediction })
    }
}

/// Any button of ours, pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Settings(SettingsButton),
    Answer(AnswerButton),
    /// `/forget`'s confirmation: erase everything of the chat (`Yes`), or
    /// keep it.
    Forget(ForgetButton),
}

/// The buttons under `/forget`'s question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgetButton {
    Yes,
    No,
}

impl ForgetButton {
    pub fn encode(self) -> String {
        match self {
            Self::Yes => "f:yes",
            Self::No => "f:no",
        }
        .to_owned()
    }

    pub fn decode(data: &str) -> Option<Self> {
        match data {
            "f:yes" => Some(Self::Yes),
            "f:no" => Some(Self::No),
            _ => None,
        }
    }
}

impl Press {
    /// The button a `callback_data` names; `None` for data that is not
    /// ours (or of a keyboard this build no longer knows).
    pub fn decode(data: &str) -> Option<Self> {
        SettingsButton::decode(data)
            .map(Self::Settings)
            .or_else(|| AnswerButton::decode(data).map(Self::Answer))
            .or_else(|| ForgetButton::decode(data).map(Self::Forget))
    }

    pub fn encode(self) -> String {
        match self {
            Self::Settings(b) => b.encode(),
            Self::Answer(b) => b.encode(),
            Self::Forget(b) => b.encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_answer_button_fits_callback_data_and_decodes_to_itself() {
        let prediction = PredictionId::new();
        for extra in AnswerExtra::ALL {
            let button = AnswerButton { extra, prediction };
            let data = button.encode();
            assert!(data.len() <= 64, "{data}");
            assert!(!data.contains(&prediction.to_string()), "the compact form");
            assert_eq!(Press::decode(&data), Some(Press::Answer(button)));
        }
        let settings = SettingsButton::AllClasses;
        assert_eq!(
            Press::decode(&settings.encode()),
            Some(Press::Settings(settings))
        );
        for other in ["", "a:", "a:x:00", "a:d:not-an-id", "a:dd:0", "hello"] {
            assert_eq!(Press::decode(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn decoding_any_text_never_panics_and_what_decodes_reencodes(data in ".{0,80}") {
            if let Some(p) = Press::decode(&data) {
                prop_assert_eq!(Press::decode(&p.encode()), Some(p));
            }
        }
    }
}
