//! Telegram's privacy mode in groups: on by default, the bot gets only the
//! messages meant for it; switched off per group, it gets everything.

use serde_json::json;
use tg_emulator::{EmulatorConfig, UserMessageOptions};

use crate::{jpeg, ok, start};

/// The message ids getUpdates returns now (and confirms them).
async fn delivered_ids(emu: &tg_emulator::EmulatorHandle) -> Vec<i64> {
    let updates = ok(emu, "getUpdates", json!({"timeout": 0})).await;
    let updates = updates.as_array().cloned().unwrap_or_default();
    if let Some(last) = updates.last().and_then(|u| u["update_id"].as_i64()) {
        ok(emu, "getUpdates", json!({"offset": last + 1, "timeout": 0})).await;
    }
    updates
        .iter()
        .filter_map(|u| u["message"]["message_id"].as_i64())
        .collect()
}

#[tokio::test]
async fn under_privacy_mode_a_group_delivers_only_what_is_meant_for_the_bot() {
    let emu = start().await;
    let client = emu.client();
    let bot = EmulatorConfig::default().bot_username;
    let group = -4242;
    let caption = |text: &str| UserMessageOptions {
        caption: Some(text.to_owned()),
        ..Default::default()
    };
    let mention = client
        .send_user_photo(group, jpeg(32, 32), &caption(&format!("@{bot} blur")))
        .await
        .unwrap();
    assert!(!mention.delivered, "a bare mention is not delivered");
    let bare = client.send_user_text(group, "/detect").await.unwrap();
    assert!(!bare.delivered, "a bare command before the bot posted");
    let other = client
        .send_user_text(group, "/detect@another_bot")
        .await
        .unwrap();
    let ours = client
        .send_user_photo(group, jpeg(32, 32), &caption(&format!("/detect@{bot}")))
        .await
        .unwrap();
    assert!(ours.delivered);
    let private = client.send_user_text(77, "@someone hello").await.unwrap();
    assert_eq!(
        delivered_ids(&emu).await,
        vec![ours.message_id.unwrap(), private.message_id.unwrap()]
    );
    assert_eq!(
        client.undelivered(group).await.unwrap(),
        vec![
            mention.message_id.unwrap(),
            bare.message_id.unwrap(),
            other.message_id.unwrap()
        ],
        "what was held back is still recorded"
    );

    // Once the bot posted, a bare command and a reply to the bot get through.
    let sent = ok(
        &emu,
        "sendMessage",
        json!({"chat_id": group, "text": "hello"}),
    )
    .await;
    let bare = client.send_user_text(group, "/detect").await.unwrap();
    let reply = client
        .send_user_text_with(
            group,
            "thanks",
            &UserMessageOptions {
                reply_to_message_id: sent["message_id"].as_i64(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let chatter = client.send_user_text(group, "nice").await.unwrap();
    assert!(!chatter.delivered);
    assert_eq!(
        delivered_ids(&emu).await,
        vec![bare.message_id.unwrap(), reply.message_id.unwrap()]
    );
    let me = ok(&emu, "getMe", json!({})).await;
    assert_eq!(me["can_read_all_group_messages"], false);
}

#[tokio::test]
async fn with_privacy_mode_off_a_group_delivers_everything() {
    let emu = start().await;
    let client = emu.client();
    let (quiet, open) = (-501, -502);
    client.set_group_privacy(open, false).await.unwrap();
    let held = client.send_user_text(quiet, "hello").await.unwrap();
    let chatter = client.send_user_text(open, "hello").await.unwrap();
    assert!(!held.delivered);
    assert!(chatter.delivered);
    assert_eq!(delivered_ids(&emu).await, vec![chatter.message_id.unwrap()]);

    client.set_default_group_privacy(false).await.unwrap();
    let now = client.send_user_text(quiet, "hello").await.unwrap();
    assert!(
        now.delivered,
        "the default applies to groups without a setting"
    );
    let me = ok(&emu, "getMe", json!({})).await;
    assert_eq!(me["can_read_all_group_messages"], true);
}
