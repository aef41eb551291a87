//! The [`Preferences`] contract.

use std::collections::BTreeSet;

use polybot_domain::{
    ChatId, ChatSettings, ClassChoice, MinConfidence, OutputMode, SettingsChange,
};

use super::random_i64;
use crate::Preferences;

/// How many changes race on one chat in the contract.
const RACING: usize = 8;

/// A chat reads the defaults until it changes something; a change is
/// returned, read back, and only that chat's; changes accumulate, racing
/// ones included (none is lost); the model's classes are absent until
/// published, then read back in the model's order, and republishing
/// replaces them.
///
/// The model's classes are one per table: run this on a table nobody has
/// published them to (a fresh one).
pub async fn settings(table: &dyn Preferences) {
    let chat = ChatId(random_i64());
    let other_chat = ChatId(random_i64());
    assert_eq!(
        read(table, chat).await,
        ChatSettings::default(),
        "table: a chat that never chose has the defaults"
    );

    let confident = MinConfidence::new(0.7);
    let after_one = change(table, chat, SettingsChange::Confidence(confident)).await;
    let expected = ChatSettings::default().with(SettingsChange::Confidence(confident));
    assert_eq!(
        after_one, expected,
        "table: change_chat_settings returns the settings with the change made"
    );
    assert_eq!(
        read(table, chat).await,
        expected,
        "table: a change is read back"
    );
    assert_eq!(
        read(table, other_chat).await,
        ChatSettings::default(),
        "table: a change is the chat's own: another chat keeps the defaults"
    );

    let only: BTreeSet<String> = ["bus", "car"].map(String::from).into();
    change(
        table,
        chat,
        SettingsChange::Classes(ClassChoice::Only(only.clone())),
    )
    .await;
    let after_three = change(table, chat, SettingsChange::Output(OutputMode::Counts)).await;
    let expected = expected
        .with(SettingsChange::Classes(ClassChoice::Only(only)))
        .with(SettingsChange::Output(OutputMode::Counts));
    assert_eq!(
        after_three, expected,
        "table: successive changes accumulate (confidence, then classes, then output)"
    );
    assert_eq!(read(table, chat).await, expected);

    racing_changes(table).await;
    model_classes(table).await;
}

/// Changes racing on one chat (from as many gateways) all take effect.
async fn racing_changes(table: &dyn Preferences) {
    let chat = ChatId(random_i64());
    let name = |i: usize| format!("class{i}");
    let toggle = |i: usize| change(table, chat, SettingsChange::ClassShown(name(i), true));
    let results = tokio::join!(
        toggle(0),
        toggle(1),
        toggle(2),
        toggle(3),
        toggle(4),
        toggle(5),
        toggle(6),
        toggle(7)
    );
    // As many as RACING says (the array's length is checked).
    let results: [ChatSettings; RACING] = [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
    ];
    for (i, settings) in results.iter().enumerate() {
        assert!(
            settings.classes.contains(&name(i)) && !settings.classes.is_all(),
            "table: each racing change returns settings with its own change made: {settings:?}"
        );
    }
    let all: BTreeSet<String> = (0..RACING).map(name).collect();
    assert_eq!(
        read(table, chat).await.classes,
        ClassChoice::Only(all),
        "table: {RACING} changes racing on one chat all take effect"
    );
}

/// Absent until published, read back in the model's order, replaced by the
/// next publication.
async fn model_classes(table: &dyn Preferences) {
    assert_eq!(
        classes(table).await,
        None,
        "table: the model's classes are absent until a detector publishes them"
    );
    // Not in alphabetical order: the model's own order is kept.
    let first = ["person", "bicycle", "car", "traffic light", "apple"].map(String::from);
    table
        .publish_model_classes(&first)
        .await
        .expect("table: publish_model_classes");
    assert_eq!(
        classes(table).await.as_deref(),
        Some(&first[..]),
        "table: the model's classes read back as published, in the model's order"
    );
    let second = ["cat", "dog"].map(String::from);
    table
        .publish_model_classes(&second)
        .await
        .expect("table: publish_model_classes again");
    assert_eq!(
        classes(table).await.as_deref(),
        Some(&second[..]),
        "table: publishing again replaces the classes"
    );
}

async fn read(table: &dyn Preferences, chat: ChatId) -> ChatSettings {
    table
        .chat_settings(chat)
        .await
        .unwrap_or_else(|e| panic!("table: chat_settings({chat}) failed: {e}"))
}

async fn change(table: &dyn Preferences, chat: ChatId, change: SettingsChange) -> ChatSettings {
    table
        .change_chat_settings(chat, change.clone())
        .await
        .unwrap_or_else(|e| panic!("table: change_chat_settings({chat}, {change:?}) failed: {e}"))
}

async fn classes(table: &dyn Preferences) -> Option<Vec<String>> {
    table
        .model_classes()
        .await
        .unwrap_or_else(|e| panic!("table: model_classes failed: {e}"))
}
