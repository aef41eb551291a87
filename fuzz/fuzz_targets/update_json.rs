//! Raw update bytes → `inbound::parse_bytes`, the one entry point both the
//! webhook and long polling take for every update (a getUpdates answer is
//! split into its updates first, each parsed on its own). Run with and
//! without the bot's username known, as before and after `getMe`. Nothing
//! may panic, and what comes out must be coherent with the raw JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_fuzz::inbound::{BotUsername, Inbound, UnreadableUpdate, parse_bytes, update_id_of};

fn check(data: &[u8], me: Option<&BotUsername>) {
    let raw = serde_json::from_slice::<serde_json::Value>(data).ok();
    match parse_bytes(data, me) {
        Err(UnreadableUpdate::NotJson(_)) => assert!(raw.is_none(), "JSON refused as not JSON"),
        Err(UnreadableUpdate::NoUpdateId) => {
            let raw = raw.expect("only JSON gets this far");
            assert!(update_id_of(&raw).is_none());
        }
        Ok(parsed) => {
            let raw = raw.expect("only JSON is parsed");
            assert_eq!(Some(parsed.update_id()), update_id_of(&raw));
            match &parsed {
                // Deferred only while the bot does not know its own name.
                Inbound::Deferred { .. } => assert!(me.is_none()),
                Inbound::Ignored { .. } => assert_eq!(parsed.chat(), None),
                _ => assert!(parsed.chat().is_some(), "{parsed:?} has a chat to answer"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let me = BotUsername::parse("polybot_test_bot").expect("a valid username");
    check(data, None);
    check(data, Some(&me));
    // A getUpdates `result`: each element is parsed on its own.
    if let Ok(serde_json::Value::Array(updates)) = serde_json::from_slice(data) {
        for update in updates {
            let bytes = serde_json::to_vec(&update).expect("a Value serialises");
            check(&bytes, Some(&me));
        }
    }
});
