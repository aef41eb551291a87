//! A photo's caption → `Action::from_caption`, and a mistyped command →
//! `nearest_action`: the grammar every photo's request goes through.
//! Nothing may panic; every accepted caption reads back, through the
//! canonical caption the answer shows ("blur 16"), as the same action; a
//! refusal says why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_domain::{Action, nearest_action};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Action::from_caption(Some(text)) {
        Ok(action) => {
            let canonical = action.to_string();
            assert_eq!(
                Action::from_caption(Some(&canonical)),
                Ok(action),
                "{text:?} → {action:?} → {canonical:?}"
            );
            if let Action::Filter(filter) = action {
                for lang in polybot_domain::Lang::ALL {
                    assert!(!filter.answer_caption(lang).is_empty());
                    assert!(!filter.too_small_message(lang).is_empty());
                }
            }
        }
        Err(error) => {
            for lang in polybot_domain::Lang::ALL {
                assert!(!error.message(lang).is_empty(), "a refusal says why");
            }
        }
    }
    if let Some(word) = text.split_whitespace().next() {
        let _ = nearest_action(word.trim_start_matches('/'));
    }
});
