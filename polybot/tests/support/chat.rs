//! A chat user as the black-box tests play one: says something and reads
//! the one answer, sends `bus.jpg` and reads what answers it (the "still
//! working" notice left out), and reads the chat as it shows.
#![allow(dead_code)]

use std::time::Duration;

use tg_emulator::{EmulatorClient, SentMessage, UserMessageOptions};

use super::{WAIT, photo};

/// How the "still working" notice begins.
pub const NOTICE: &str = "Looking for objects";

/// A user of one private chat.
pub struct User<'a> {
    pub client: &'a EmulatorClient,
    pub chat: i64,
}

impl User<'_> {
    /// Sends `text` and returns the bot's one answer (quoting it).
    pub async fn say(&self, text: &str) -> SentMessage {
        let sent = self
            .client
            .send_user_text(self.chat, text)
            .await
            .expect("send");
        let started = std::time::Instant::now();
        loop {
            let answers: Vec<SentMessage> = self
                .messages()
                .await
                .into_iter()
                .filter(|m| m.reply_to_message_id == sent.message_id)
                .collect();
            if let [answer] = answers.as_slice() {
                return answer.clone();
            }
            assert!(answers.len() < 2, "{text}: one answer: {answers:#?}");
            assert!(started.elapsed() < WAIT, "{text}: the bot answers in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `bus.jpg` and returns the bot's answer to it: every message
    /// quoting it (the answer, and any text below it), once it came. The
    /// "still working" notice of a slow answer is progress, not the
    /// answer: it is left out.
    pub async fn bus(&self) -> Vec<SentMessage> {
        let sent = self
            .client
            .send_user_photo(self.chat, photo("bus.jpg"), &UserMessageOptions::default())
            .await
            .expect("send");
        self.answers_to(sent.message_id).await
    }

    /// The bot's answer to the user's message `message_id`: every message
    /// quoting it, once one came (the "still working" notice left out).
    pub async fn answers_to(&self, message_id: Option<i64>) -> Vec<SentMessage> {
        let answers = || async {
            self.messages()
                .await
                .into_iter()
                .filter(|m| m.reply_to_message_id == message_id)
                .filter(|m| !m.text.as_deref().is_some_and(|t| t.starts_with(NOTICE)))
                .collect::<Vec<_>>()
        };
        let started = std::time::Instant::now();
        while answers().await.is_empty() {
            assert!(started.elapsed() < WAIT, "the bot answers in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A details text follows its photo, an album's items each other:
        // give them a moment to arrive.
        tokio::time::sleep(Duration::from_millis(700)).await;
        answers().await
    }

    /// What the chat shows: the bot's messages it did not delete.
    pub async fn messages(&self) -> Vec<SentMessage> {
        let all = self.client.messages(self.chat).await.expect("messages");
        all.into_iter().filter(|m| !m.deleted).collect()
    }
}

/// How many objects a counts text names ("person ×4, bus ×1": 5).
pub fn objects(counts: &str) -> u32 {
    counts
        .split(", ")
        .filter_map(|c| c.rsplit_once('\u{d7}')?.1.parse::<u32>().ok())
        .sum()
}

pub fn caption(m: &SentMessage) -> &str {
    m.caption.as_deref().unwrap_or_default()
}
