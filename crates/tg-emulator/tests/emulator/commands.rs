//! setMyCommands / getMyCommands / deleteMyCommands per scope and language,
//! and `GET /control/commands`.

use serde_json::json;
use tg_emulator::{BotCommand, BotCommandScope};

use crate::{call, ok, start};

#[tokio::test]
async fn command_lists_are_kept_per_scope_and_language() {
    let emu = start().await;
    let client = emu.client();
    let default = json!([{"command": "start", "description": "Start"}]);
    let groups = json!([{"command": "detect", "description": "Find objects"}]);
    let chat = json!([{"command": "stats", "description": "Chat statistics"}]);
    ok(&emu, "setMyCommands", json!({"commands": default})).await;
    ok(
        &emu,
        "setMyCommands",
        json!({"commands": groups, "scope": {"type": "all_group_chats"}}),
    )
    .await;
    ok(
        &emu,
        "setMyCommands",
        json!({"commands": chat, "scope": {"type": "chat", "chat_id": -100}, "language_code": "de"}),
    )
    .await;

    assert_eq!(ok(&emu, "getMyCommands", json!({})).await, default);
    assert_eq!(
        ok(&emu, "getMyCommands", json!({"scope": {"type": "default"}})).await,
        default
    );
    assert_eq!(
        ok(
            &emu,
            "getMyCommands",
            json!({"scope": {"type": "all_group_chats"}})
        )
        .await,
        groups
    );
    // Exact (scope, language) lists only, as on the real API.
    assert_eq!(
        ok(
            &emu,
            "getMyCommands",
            json!({"scope": {"type": "chat", "chat_id": -100}})
        )
        .await,
        json!([])
    );
    assert_eq!(
        ok(
            &emu,
            "getMyCommands",
            json!({"scope": {"type": "chat", "chat_id": "-100"}, "language_code": "de"})
        )
        .await,
        chat
    );

    let lists = client.commands().await.unwrap();
    let summary: Vec<_> = lists
        .iter()
        .map(|l| {
            (
                l.scope.clone(),
                l.language_code.as_str(),
                l.commands[0].command.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (BotCommandScope::Default, "", "start"),
            (BotCommandScope::AllGroupChats, "", "detect"),
            (BotCommandScope::Chat { chat_id: -100 }, "de", "stats"),
        ]
    );
    assert_eq!(
        lists[1].commands,
        [BotCommand {
            command: "detect".into(),
            description: "Find objects".into()
        }]
    );
    // The control JSON shape, for non-Rust callers.
    let raw: serde_json::Value = crate::http()
        .get(format!("{}/control/commands", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        raw[2],
        json!({"scope": {"type": "chat", "chat_id": -100}, "language_code": "de", "commands": chat})
    );

    ok(
        &emu,
        "deleteMyCommands",
        json!({"scope": {"type": "all_group_chats"}}),
    )
    .await;
    assert_eq!(client.commands().await.unwrap().len(), 2);
    assert_eq!(ok(&emu, "getMyCommands", json!({})).await, default);
}

#[tokio::test]
async fn invalid_commands_scopes_and_languages_are_rejected_like_telegram() {
    let emu = start().await;
    let cases = [
        (
            json!({"commands": [{"command": "Detect", "description": "x"}]}),
            "Bad Request: BOT_COMMAND_INVALID",
        ),
        (
            json!({"commands": [{"command": "de-tect", "description": "x"}]}),
            "Bad Request: BOT_COMMAND_INVALID",
        ),
        (
            json!({"commands": [{"command": "detect", "description": ""}]}),
            "Bad Request: command description must be non-empty",
        ),
        (
            json!({"commands": [{"command": "a".repeat(33), "description": "x"}]}),
            "Bad Request: command length must not exceed 32",
        ),
        (
            json!({"commands": (0..101).map(|i| json!({"command": format!("c{i}"), "description": "x"})).collect::<Vec<_>>()}),
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
        (
            json!({"commands": [], "scope": {"type": "everyone"}}),
            "Bad Request: can't parse BotCommandScope: Unsupported type specified",
        ),
        (
            json!({"commands": [], "language_code": "eng"}),
            "Bad Request: invalid language code specified",
        ),
    ];
    for (params, expected) in cases {
        let (status, body) = call(&emu, "setMyCommands", params.clone()).await;
        assert_eq!(status, 400, "{params}: {body}");
        assert_eq!(body["description"], expected, "{params}");
    }
    let (status, body) = call(
        &emu,
        "getMyCommands",
        json!({"scope": {"type": "chat_member", "chat_id": -5}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "Bad Request: can't parse BotCommandScope: Can't find field \"user_id\""
    );
    assert!(emu.client().commands().await.unwrap().is_empty());

    // Form encoding carries scope and commands as JSON text.
    let r = crate::http()
        .post(emu.method_url("setMyCommands"))
        .form(&[
            (
                "commands",
                r#"[{"command":"/help","description":" Help "}]"#,
            ),
            ("scope", r#"{"type":"all_private_chats"}"#),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let lists = emu.client().commands().await.unwrap();
    assert_eq!(lists[0].scope, BotCommandScope::AllPrivateChats);
    assert_eq!(lists[0].commands[0].command, "help");
    assert_eq!(lists[0].commands[0].description, "Help");
}
