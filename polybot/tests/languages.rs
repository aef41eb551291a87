//! The bot in its users' languages and what it keeps of them, through the
//! real binaries (`polybot gateway`, `polybot detector` with the real
//! model, telemetry as production has it) against the Telegram emulator:
//!
//! - a user whose Telegram is in Russian gets `/start` and the class names
//!   of the counts in Russian ("автобус"), Spanish in Spanish, and an
//!   unknown language (`xx`) in English; `/language` makes a chat's choice
//!   win over the sender's; the command menu, the description and the
//!   short description are registered per language;
//! - `/privacy` names the retention in days; `/history` lists a photo's
//!   objects and sends its answer again by Telegram's `file_id` (no
//!   upload); `/forget`, confirmed, erases every picture and record of the
//!   chat (checked in the data folder too), after which `/history` is
//!   empty; a second `/forget` erases nothing more.
//!
//! Needs `cargo xtask setup` (model, ONNX Runtime, photos).

mod support;

use polybot_domain::{ChatId, Lang, t};
use support::{Ground, Queue, WAIT, photo};
use tg_emulator::{EmulatorClient, SentKind, SentMessage, UserMessageOptions};

const QUEUE: Queue = Queue {
    visibility: 30,
    max_receives: 3,
};

/// A private chat's user whose Telegram is set to `language`.
struct Speaker<'a> {
    client: &'a EmulatorClient,
    chat: i64,
    language: &'a str,
}

impl Speaker<'_> {
    fn options(&self) -> UserMessageOptions {
        UserMessageOptions {
            language_code: Some(self.language.to_owned()),
            ..UserMessageOptions::default()
        }
    }

    /// Sends `text`; the bot's answers quoting it, once one came.
    async fn say(&self, text: &str) -> Vec<SentMessage> {
        let sent = self
            .client
            .send_user_text_with(self.chat, text, &self.options())
            .await
            .expect("send");
        self.answers_to(sent.message_id).await
    }

    /// Sends `bus.jpg`; the bot's answer (a photo) quoting it.
    async fn bus(&self) -> SentMessage {
        let sent = self
            .client
            .send_user_photo(self.chat, photo("bus.jpg"), &self.options())
            .await
            .expect("send");
        let started = std::time::Instant::now();
        loop {
            let photos: Vec<SentMessage> = self
                .answers(sent.message_id)
                .await
                .into_iter()
                .filter(|m| m.kind == SentKind::Photo)
                .collect();
            if let [answer] = photos.as_slice() {
                return answer.clone();
            }
            assert!(photos.len() < 2, "one answer: {photos:#?}");
            assert!(started.elapsed() < WAIT, "the bot answers in time");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn answers(&self, message_id: Option<i64>) -> Vec<SentMessage> {
        let all = self.client.messages(self.chat).await.expect("messages");
        all.into_iter()
            .filter(|m| !m.deleted && m.reply_to_message_id == message_id)
            .collect()
    }

    async fn answers_to(&self, message_id: Option<i64>) -> Vec<SentMessage> {
        let started = std::time::Instant::now();
        while self.answers(message_id).await.is_empty() {
            assert!(started.elapsed() < WAIT, "the bot answers in time");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // A text's pictures follow it: give them a moment to arrive.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        self.answers(message_id).await
    }

    /// Presses the button labelled `label` under the bot's `message`, and
    /// waits for the press to be answered.
    async fn press(&self, message: &SentMessage, label: &str) {
        let pressed = self
            .client
            .press_text(self.chat, message.message_id, None, label)
            .await
            .expect("press");
        self.client
            .wait_callback_answer(&pressed.callback_query_id, WAIT)
            .await
            .expect("the press is answered");
    }
}

fn text(messages: &[SentMessage]) -> String {
    messages
        .iter()
        .filter_map(|m| m.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_is_answered_in_their_language_and_a_chat_may_choose_one() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let _detector = ground.detector(&ports).await;
    let client = &ground.client;
    let russian = Speaker {
        client,
        chat: 7701,
        language: "ru",
    };
    let spanish = Speaker {
        client,
        chat: 7702,
        language: "es-419",
    };
    let unknown = Speaker {
        client,
        chat: 7703,
        language: "xx",
    };

    assert_eq!(text(&russian.say("/start").await), t!(Lang::Ru, "start"));
    assert_eq!(text(&spanish.say("/start").await), t!(Lang::Es, "start"));
    assert_eq!(text(&unknown.say("/start").await), t!(Lang::En, "start"));
    assert!(t!(Lang::Ru, "start") != t!(Lang::En, "start"));

    let counts = russian.bus().await.caption.unwrap_or_default();
    assert!(counts.contains("автобус ×1"), "{counts}");
    assert!(!counts.contains("bus"), "{counts}");
    let counts = spanish.bus().await.caption.unwrap_or_default();
    assert!(counts.contains("autobús ×1"), "{counts}");
    let counts = unknown.bus().await.caption.unwrap_or_default();
    assert!(counts.contains("bus ×1"), "{counts}");

    // An action without a photo is explained in the user's language, with
    // the English caption words the bot reads.
    let blur = russian.say("/blur 99").await;
    assert_eq!(text(&blur), t!(Lang::Ru, "detect-hint"));
    assert!(text(&blur).contains("blur 16"), "{}", text(&blur));

    // The chat chooses Spanish: it wins over the sender's Russian.
    let chosen = russian.say("/language es").await;
    assert!(
        text(&chosen).contains(&Lang::Es.native_name()),
        "{}",
        text(&chosen)
    );
    assert_eq!(text(&russian.say("/start").await), t!(Lang::Es, "start"));
    let counts = russian.bus().await.caption.unwrap_or_default();
    assert!(counts.contains("autobús ×1"), "{counts}");
    let unreadable = russian.say("/language klingon").await;
    assert!(
        text(&unreadable).contains("klingon"),
        "{}",
        text(&unreadable)
    );
    russian.say("/language auto").await;
    assert_eq!(text(&russian.say("/start").await), t!(Lang::Ru, "start"));

    // The menu in every language, for private chats and groups.
    let menus = client.commands().await.expect("menus");
    for language in ["", "ru", "es"] {
        let of_language: Vec<_> = menus
            .iter()
            .filter(|m| m.language_code == language)
            .collect();
        assert_eq!(of_language.len(), 2, "{language:?}: {menus:#?}");
        for menu in of_language {
            assert!(
                menu.commands.iter().any(|c| c.command == "forget"),
                "{menu:#?}"
            );
        }
    }
    let russian_menu = menus
        .iter()
        .find(|m| m.language_code == "ru")
        .expect("Russian menu");
    let start = russian_menu
        .commands
        .iter()
        .find(|c| c.command == "privacy")
        .expect("privacy in the menu");
    assert_eq!(start.description, t!(Lang::Ru, "command-privacy"));

    // The profile a new user reads before pressing Start, in every
    // language, within Telegram's limits. It is set after the menus, in
    // the background: wait for all of it.
    let deadline = std::time::Instant::now() + WAIT;
    let profiles = loop {
        let profiles = client.descriptions().await.expect("descriptions");
        let complete = profiles.len() == 3
            && profiles
                .iter()
                .all(|p| p.description.is_some() && p.short_description.is_some());
        if complete {
            break profiles;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no complete profile: {profiles:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let codes: Vec<&str> = profiles.iter().map(|p| p.language_code.as_str()).collect();
    assert_eq!(codes, ["", "es", "ru"], "{profiles:#?}");
    for profile in &profiles {
        let description = profile.description.as_deref().unwrap_or_default();
        let short = profile.short_description.as_deref().unwrap_or_default();
        assert!(description.chars().count() <= 512, "{profile:#?}");
        assert!(short.chars().count() <= 120, "{profile:#?}");
        assert!(description.contains("/help"), "{profile:#?}");
        let lang = Lang::from_code(&profile.language_code).unwrap_or_default();
        assert_eq!(description, t!(lang, "bot-description"));
        assert_eq!(short, t!(lang, "bot-short-description"));
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert_ne!(profiles[a].description, profiles[b].description);
        assert_ne!(profiles[a].short_description, profiles[b].short_description);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn history_shows_a_chats_results_and_forget_erases_them_everywhere() {
    let ground = Ground::new(QUEUE).await;
    let ports = Ground::ports();
    let _gateway = ground.gateway(&ports).await;
    let _detector = ground.detector(&ports).await;
    let client = &ground.client;
    let user = Speaker {
        client,
        chat: 7711,
        language: "en",
    };
    let neighbour = Speaker {
        client,
        chat: 7712,
        language: "en",
    };

    let privacy = text(&user.say("/privacy").await);
    assert!(privacy.contains("30 days"), "{privacy}");

    assert_eq!(
        text(&user.say("/history").await),
        t!(Lang::En, "history-empty")
    );
    let answer = user.bus().await;
    let answered_with = answer.file.as_ref().expect("a photo").file_id.clone();
    neighbour.bus().await;

    let history = user.say("/history").await;
    let listed = text(&history);
    assert!(
        listed.contains("detect") && listed.contains("bus ×1"),
        "{listed}"
    );
    // Its picture, sent again by the file id of the answer: not uploaded.
    let again: Vec<&SentMessage> = history
        .iter()
        .filter(|m| m.kind == SentKind::Photo)
        .collect();
    assert_eq!(again.len(), 1, "{history:#?}");
    assert_eq!(
        again[0].file.as_ref().expect("a photo").file_id,
        answered_with
    );

    let question = user.say("/forget").await;
    assert_eq!(question.len(), 1, "{question:#?}");
    user.press(&question[0], &t!(Lang::En, "forget-yes")).await;
    let outcome = user.client.messages(user.chat).await.expect("messages");
    let outcome = outcome
        .iter()
        .find(|m| m.message_id == question[0].message_id)
        .expect("the question");
    let said = outcome.text.clone().unwrap_or_default();
    // The original and the annotated photo (and the answer's record).
    assert!(
        said.starts_with("Deleted 2 pictures and 1 result"),
        "{said}"
    );

    assert_eq!(
        text(&user.say("/history").await),
        t!(Lang::En, "history-empty")
    );
    let backends = support::open_backends(ground.data.clone(), &QUEUE).await;
    let left = backends
        .table
        .list_by_chat(ChatId(user.chat), 100)
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:#?}");
    assert!(
        !ground
            .data
            .join("objects")
            .join(user.chat.to_string())
            .exists()
            || std::fs::read_dir(ground.data.join("objects").join(user.chat.to_string()))
                .expect("dir")
                .next()
                .is_none(),
        "no picture of the chat is left"
    );
    // The neighbour's results are theirs, untouched.
    let theirs = backends
        .table
        .list_by_chat(ChatId(neighbour.chat), 100)
        .await
        .expect("list");
    assert_eq!(theirs.len(), 1, "{theirs:#?}");

    // Asked again and confirmed: nothing more to erase.
    let question = user.say("/forget").await;
    user.press(&question[0], &t!(Lang::En, "forget-yes")).await;
    let all = user.client.messages(user.chat).await.expect("messages");
    let said = all
        .iter()
        .find(|m| m.message_id == question[0].message_id)
        .and_then(|m| m.text.clone())
        .unwrap_or_default();
    assert!(
        said.starts_with("Deleted 0 pictures and 0 results"),
        "{said}"
    );
}
