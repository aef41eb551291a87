//! The catalogues are complete and consistent: every message of English
//! exists in every language with the same placeholders, nothing fails to
//! parse or format, and the language codes Telegram sends pick the right
//! catalogue.

use std::collections::{BTreeMap, BTreeSet};

use fluent_syntax::ast;

use super::*;

/// Each message id of one language with the variables its value uses.
fn messages(lang: Lang) -> BTreeMap<String, BTreeSet<String>> {
    let (_, sources) = CATALOGUES
        .iter()
        .find(|(l, _)| *l == lang)
        .expect("every language has catalogues");
    let mut messages = BTreeMap::new();
    for source in *sources {
        let resource = fluent_syntax::parser::parse(*source).unwrap_or_else(|(_, errors)| {
            panic!("the {lang} catalogue does not parse: {errors:?}")
        });
        for entry in resource.body {
            match entry {
                ast::Entry::Message(message) => {
                    let mut vars = BTreeSet::new();
                    if let Some(value) = &message.value {
                        pattern_vars(value, &mut vars);
                    }
                    for attribute in &message.attributes {
                        pattern_vars(&attribute.value, &mut vars);
                    }
                    let id = message.id.name.to_owned();
                    assert!(
                        messages.insert(id.clone(), vars).is_none(),
                        "{lang}: message {id} is defined twice"
                    );
                }
                ast::Entry::Junk { content } => panic!("{lang}: unparsable entry {content:?}"),
                _ => {}
            }
        }
    }
    messages
}

fn pattern_vars(pattern: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_vars(expression, vars);
        }
    }
}

fn expression_vars(expression: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Select { selector, variants } => {
            inline_vars(selector, vars);
            for variant in variants {
                pattern_vars(&variant.value, vars);
            }
        }
        ast::Expression::Inline(inline) => inline_vars(inline, vars),
    }
}

fn inline_vars(inline: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_owned());
        }
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for argument in &arguments.positional {
                inline_vars(argument, vars);
            }
            for argument in &arguments.named {
                inline_vars(&argument.value, vars);
            }
        }
        ast::InlineExpression::Placeable { expression } => expression_vars(expression, vars),
        _ => {}
    }
}

#[test]
fn every_language_has_every_message_with_the_same_placeholders() {
    let english = messages(Lang::En);
    assert!(english.len() > 100, "the English catalogue is loaded");
    for lang in Lang::ALL {
        let theirs = messages(lang);
        for (id, vars) in &english {
            let Some(their_vars) = theirs.get(id) else {
                panic!("{lang} lacks the message {id}");
            };
            assert_eq!(
                their_vars, vars,
                "{lang}: message {id} uses other placeholders than English"
            );
        }
        for id in theirs.keys() {
            assert!(
                english.contains_key(id),
                "{lang} has {id}, which English has not"
            );
        }
    }
}

/// Formats every message of every language with every placeholder given
/// (numbers, so plural selectors take a real branch), and fails on any
/// formatting error: a reference to a missing message or term, a bad
/// function call.
#[test]
fn every_message_formats_without_errors() {
    for lang in Lang::ALL {
        let bundle = lang.bundle();
        for (id, vars) in messages(lang) {
            for n in [0, 1, 2, 5, 21] {
                let mut args = FluentArgs::new();
                for var in &vars {
                    args.set(var.clone(), FluentValue::from(n));
                }
                let message = bundle.get_message(&id).expect("parsed, so loaded");
                let pattern = message.value().expect("every message has a value");
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{lang}: {id} with {n}: {errors:?}");
                assert!(!text.trim().is_empty(), "{lang}: {id} is empty");
            }
        }
    }
}

#[test]
fn the_eighty_coco_classes_are_named_in_every_language() {
    for lang in Lang::ALL {
        let classes = messages(lang)
            .into_keys()
            .filter(|id| id.starts_with("class-"))
            .count();
        assert_eq!(classes, 80, "{lang}");
    }
    assert_eq!(Lang::Ru.class_name("bus"), "автобус");
    assert_eq!(Lang::Es.class_name("bus"), "autobús");
    assert_eq!(Lang::En.class_name("traffic light"), "traffic light");
    assert_ne!(Lang::Ru.class_name("traffic light"), "traffic light");
}

#[test]
fn a_custom_models_class_keeps_its_own_name() {
    for lang in Lang::ALL {
        assert_eq!(lang.class_name("forklift"), "forklift");
        assert_eq!(lang.class_name("Ящик"), "Ящик");
    }
}

#[test]
fn telegram_language_codes_pick_the_catalogue_and_unknown_ones_fall_back_to_english() {
    for (code, lang) in [
        ("ru", Some(Lang::Ru)),
        ("RU", Some(Lang::Ru)),
        ("es-419", Some(Lang::Es)),
        ("es_ES", Some(Lang::Es)),
        ("en-GB", Some(Lang::En)),
        ("xx", None),
        ("pt-br", None),
        ("", None),
    ] {
        assert_eq!(Lang::from_code(code), lang, "{code}");
    }
    assert_eq!(Lang::from_code_or_default(Some("xx")), Lang::En);
    assert_eq!(Lang::from_code_or_default(None), Lang::En);
}

#[test]
fn plural_forms_follow_each_languages_rules() {
    let pictures = |lang, n: u64| t!(lang, "history-count", count = n);
    assert_ne!(pictures(Lang::Ru, 2), pictures(Lang::Ru, 5));
    assert_ne!(pictures(Lang::En, 1), pictures(Lang::En, 2));
}

#[test]
fn a_missing_message_falls_back_to_english_and_then_to_its_key() {
    assert_eq!(Lang::Ru.text("no-such-message"), "no-such-message");
    assert_eq!(Lang::En.native_name(), "English");
}

#[test]
fn the_language_round_trips_through_serde_by_its_code() {
    for lang in Lang::ALL {
        let json = serde_json::to_string(&lang).expect("serialises");
        assert_eq!(json, format!("\"{}\"", lang.code()));
        let back: Lang = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, lang);
    }
}
