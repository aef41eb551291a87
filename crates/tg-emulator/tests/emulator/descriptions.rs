//! setMyDescription / getMyDescription and setMyShortDescription /
//! getMyShortDescription per language, and `GET /control/descriptions`.

use serde_json::json;
use tg_emulator::BotDescriptions;

use crate::{call, ok, start};

#[tokio::test]
async fn descriptions_are_kept_per_language_with_telegrams_limits() {
    let emu = start().await;
    ok(
        &emu,
        "setMyDescription",
        json!({"description": "Finds objects"}),
    )
    .await;
    ok(
        &emu,
        "setMyDescription",
        json!({"description": "Находит объекты", "language_code": "ru"}),
    )
    .await;
    ok(
        &emu,
        "setMyShortDescription",
        json!({"short_description": "Objects in photos"}),
    )
    .await;

    // A language's own text, else the default one.
    assert_eq!(
        ok(&emu, "getMyDescription", json!({"language_code": "ru"})).await,
        json!({"description": "Находит объекты"})
    );
    assert_eq!(
        ok(&emu, "getMyDescription", json!({"language_code": "es"})).await,
        json!({"description": "Finds objects"})
    );
    assert_eq!(
        ok(
            &emu,
            "getMyShortDescription",
            json!({"language_code": "ru"})
        )
        .await,
        json!({"short_description": "Objects in photos"})
    );

    assert_eq!(
        emu.client().descriptions().await.unwrap(),
        vec![
            BotDescriptions {
                language_code: String::new(),
                description: Some("Finds objects".into()),
                short_description: Some("Objects in photos".into()),
            },
            BotDescriptions {
                language_code: "ru".into(),
                description: Some("Находит объекты".into()),
                short_description: None,
            },
        ]
    );

    // Over the limit (in characters) is refused and changes nothing.
    let cases = [
        (
            "setMyDescription",
            json!({"description": "я".repeat(513)}),
            "Bad Request: description is too long: at most 512 characters",
        ),
        (
            "setMyShortDescription",
            json!({"short_description": "я".repeat(121), "language_code": "ru"}),
            "Bad Request: short description is too long: at most 120 characters",
        ),
        (
            "setMyShortDescription",
            json!({"short_description": "x", "language_code": "RU"}),
            "Bad Request: invalid language code specified",
        ),
    ];
    for (method, params, expected) in cases {
        let (status, body) = call(&emu, method, params.clone()).await;
        assert_eq!(status, 400, "{method} {params}: {body}");
        assert_eq!(body["description"], expected, "{method} {params}");
    }
    ok(
        &emu,
        "setMyDescription",
        json!({"description": "я".repeat(512)}),
    )
    .await;
    ok(
        &emu,
        "setMyShortDescription",
        json!({"short_description": "я".repeat(120), "language_code": "ru"}),
    )
    .await;

    // An empty text removes the language's own one: Russian users then see
    // the default.
    ok(
        &emu,
        "setMyDescription",
        json!({"description": "", "language_code": "ru"}),
    )
    .await;
    assert_eq!(
        ok(&emu, "getMyDescription", json!({"language_code": "ru"})).await,
        json!({"description": "я".repeat(512)})
    );
    let ru = emu.client().descriptions().await.unwrap();
    assert_eq!(ru[1].language_code, "ru");
    assert_eq!(ru[1].description, None);
    emu.shutdown().await;
}
