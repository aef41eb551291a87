//! Raw update JSON → `Inbound`, the path both the webhook and long polling
//! take: the update id is read from the JSON value (for logs), the bytes are
//! deserialised into teloxide's `Update` (a webhook body), or a `Vec<Update>`
//! (the `result` of a getUpdates answer), and each update is mapped by
//! `inbound::parse`. Nothing may panic, and what comes out must be coherent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_fuzz::inbound::{self, Inbound};
use teloxide_core::types::Update;

fn check(update: &Update) {
    let parsed = inbound::parse(update);
    assert_eq!(parsed.update_id().0, i64::from(update.id.0));
    match &parsed {
        Inbound::Photo { photo, chat, .. } => {
            assert!(!photo.extension.is_empty());
            assert!(!photo.content_type.is_empty());
            assert_eq!(parsed.chat(), Some(*chat));
        }
        Inbound::Other { chat, .. } => assert_eq!(parsed.chat(), Some(*chat)),
        Inbound::Ignored { .. } => assert_eq!(parsed.chat(), None),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = inbound::update_id_of(&raw);
    }
    if let Ok(update) = serde_json::from_slice::<Update>(data) {
        check(&update);
    }
    if let Ok(updates) = serde_json::from_slice::<Vec<Update>>(data) {
        updates.iter().for_each(check);
    }
});
