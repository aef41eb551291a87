//! What a chat sees of its settings: the `/settings` message with its
//! keyboard, whose buttons carry [`SettingsButton`] codes, and the toast of
//! a pressed one. The commands that show and change them (`/settings`,
//! `/confidence 0.6`, `/only person,dog`, `/output counts`, `/labels
//! plain`) are read at the edge by the domain's grammar
//! (`polybot_domain::settings::parse_command`, re-exported here); intake
//! (`intake/settings.rs`) stores and answers.

use polybot_domain::{
    ChatSettings, ClassChoice, LabelStyle, Lang, MinConfidence, OutputMode, SettingsButton, t,
};

pub use polybot_domain::settings::{COMMANDS, SettingsRequest, TypedSetting, help, parse_command};

use crate::messenger::{Button, Keyboard};

/// How many of the model's classes get a button of their own (its first
/// ones: for COCO, people and vehicles); the rest are typed with `/only`.
const CLASS_BUTTONS: usize = 8;

/// The settings message: its text and its keyboard, showing `settings`;
/// `classes` is the model's list, when a detector published it.
pub fn message(
    settings: &ChatSettings,
    classes: Option<&[String]>,
    lang: Lang,
) -> (String, Keyboard) {
    let text = t!(lang, "settings-message", settings = settings.describe(lang));
    (text, keyboard(settings, classes.unwrap_or_default(), lang))
}

fn keyboard(settings: &ChatSettings, classes: &[String], lang: Lang) -> Keyboard {
    let button = |chosen: bool, label: &str, code: SettingsButton| Button {
        text: if chosen {
            format!("\u{2713} {label}")
        } else {
            label.to_owned()
        },
        data: code.encode(),
    };
    let mut rows = Vec::new();
    let mut confidence = vec![button(
        settings.confidence.is_none(),
        &t!(lang, "button-standard"),
        SettingsButton::Confidence(None),
    )];
    for choice in MinConfidence::CHOICES {
        let hundredths = (choice * 100.0).round() as u8;
        let chosen = settings
            .confidence
            .is_some_and(|c| (c.get() * 100.0).round() as u8 == hundredths);
        confidence.push(button(
            chosen,
            &format!("\u{2265} {choice}"),
            SettingsButton::Confidence(Some(hundredths)),
        ));
    }
    rows.push(confidence);
    rows.push(
        OutputMode::ALL
            .into_iter()
            .map(|o| {
                let label = match o {
                    OutputMode::Photo => t!(lang, "button-photo"),
                    OutputMode::Details => t!(lang, "button-photo-details"),
                    OutputMode::Counts => t!(lang, "button-counts"),
                };
                button(settings.output == o, &label, SettingsButton::Output(o))
            })
            .collect(),
    );
    rows.push(
        LabelStyle::ALL
            .into_iter()
            .map(|l| {
                let label = match l {
                    LabelStyle::Score => t!(lang, "button-labels-score"),
                    LabelStyle::Name => t!(lang, "button-labels-name"),
                };
                button(settings.labels == l, &label, SettingsButton::Labels(l))
            })
            .collect(),
    );
    let mut languages = vec![button(
        settings.language.is_none(),
        &t!(lang, "button-language-auto"),
        SettingsButton::Language(None),
    )];
    languages.extend(Lang::ALL.into_iter().map(|l| {
        button(
            settings.language == Some(l),
            &l.native_name(),
            SettingsButton::Language(Some(l)),
        )
    }));
    rows.push(languages);
    rows.push(vec![button(
        settings.classes.is_all(),
        &t!(lang, "button-all-objects"),
        SettingsButton::AllClasses,
    )]);
    let class_buttons: Vec<Button> = classes
        .iter()
        .take(CLASS_BUTTONS)
        .enumerate()
        .filter_map(|(index, name)| {
            let shown = matches!(&settings.classes, ClassChoice::Only(set) if set.contains(name));
            let index = u16::try_from(index).ok()?;
            // A chosen class's button takes it away; another adds it.
            Some(button(
                shown,
                &lang.class_name(name),
                SettingsButton::Class(index, !shown),
            ))
        })
        .collect();
    rows.extend(class_buttons.chunks(4).map(<[Button]>::to_vec));
    Keyboard(rows)
}

/// The toast a pressed button shows.
pub fn toast(settings: &ChatSettings, pressed: SettingsButton, lang: Lang) -> String {
    match pressed {
        SettingsButton::Confidence(_) => {
            t!(
                lang,
                "toast-confidence",
                value = settings.confidence_text(lang)
            )
        }
        SettingsButton::AllClasses | SettingsButton::Class(..) => {
            t!(
                lang,
                "toast-objects",
                value = settings.classes.describe(lang)
            )
        }
        SettingsButton::Output(o) => t!(lang, "toast-output", value = o.describe(lang)),
        SettingsButton::Labels(l) => t!(lang, "toast-labels", value = l.describe(lang)),
        SettingsButton::Language(_) => {
            t!(lang, "toast-language", value = settings.language_text(lang))
        }
    }
}

#[cfg(test)]
mod tests {
    use polybot_domain::SettingsChange;

    use super::*;

    fn coco() -> Vec<String> {
        [
            "person",
            "bicycle",
            "car",
            "motorcycle",
            "airplane",
            "bus",
            "train",
            "truck",
            "boat",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_keyboard_marks_the_chosen_values_and_fits_telegrams_limits() {
        let settings = ChatSettings::default()
            .with(SettingsChange::Confidence(MinConfidence::new(0.5)))
            .with(SettingsChange::ClassShown("bus".into(), true));
        let (text, keyboard) = message(&settings, Some(&coco()), Lang::En);
        assert!(text.contains("Confidence: 0.5"), "{text}");
        assert!(text.contains("Classes: bus"), "{text}");
        let buttons: Vec<&Button> = keyboard.0.iter().flatten().collect();
        assert!(keyboard.0.iter().all(|row| row.len() <= 8));
        assert!(buttons.len() <= 100);
        for b in &buttons {
            assert!(!b.data.is_empty() && b.data.len() <= 64, "{b:?}");
            assert!(SettingsButton::decode(&b.data).is_some(), "{b:?}");
        }
        let chosen: Vec<&str> = buttons
            .iter()
            .filter(|b| b.text.starts_with('\u{2713}'))
            .map(|b| b.text.as_str())
            .collect();
        assert_eq!(
            chosen,
            [
                "\u{2713} \u{2265} 0.5",
                "\u{2713} Photo",
                "\u{2713} Labels: name + score",
                "\u{2713} Auto",
                "\u{2713} bus"
            ]
        );
        // Only the first 8 classes get a button; the chosen bus's takes it away.
        assert!(!buttons.iter().any(|b| b.text.contains("boat")));
        let bus = buttons
            .iter()
            .find(|b| b.text.ends_with("bus"))
            .expect("bus");
        assert_eq!(
            SettingsButton::decode(&bus.data),
            Some(SettingsButton::Class(5, false))
        );
    }

    #[test]
    fn without_the_models_classes_the_keyboard_offers_all_only() {
        let (_, keyboard) = message(&ChatSettings::default(), None, Lang::En);
        let last = keyboard.0.last().expect("rows");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].data, SettingsButton::AllClasses.encode());
    }
}
