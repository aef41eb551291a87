//! The updates intake answers with text: `/start`, `/help` and messages
//! the bot cannot analyse, `/detect` without a photo, and captions it
//! cannot carry out. Every such answer quotes the user's message.

use polybot_domain::{ChatId, Lang, t};
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::inbound::{BotUsername, Command, Refusal};
use crate::messenger::MessengerError;

/// The answer to `/start`: what the bot is for, and what to do.
pub fn start_text(lang: Lang) -> String {
    t!(lang, "start")
}

/// The answer to `/detect` (or another action) with no photo to look at.
pub fn detect_hint(lang: Lang) -> String {
    t!(lang, "detect-hint")
}

/// The answer to `/help` and to messages the bot cannot analyse: every
/// action, how to ask for it, and an example. In groups Telegram's privacy
/// mode delivers only commands addressed to the bot and replies to it, so
/// the group line suggests those forms, naming the bot once its username
/// is known.
pub fn help_text(me: Option<&BotUsername>, lang: Lang) -> String {
    let addressed =
        |command: &str| me.map_or_else(|| format!("/{command}"), |me| format!("/{command}{me}"));
    t!(
        lang,
        "help",
        detect = addressed("detect"),
        blur = addressed("blur"),
        actions = polybot_domain::actions_help(lang),
        settings = polybot_domain::settings::help(lang),
    )
}

impl Intake {
    /// A message the bot cannot analyse (`what` it was): what it can do.
    pub(super) async fn answer_with_help(
        &self,
        chat: ChatId,
        message_id: i64,
        what: &'static str,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        info!(what, "answering with help");
        self.answer(chat, message_id, &help_text(self.me(), lang))
            .await
    }

    pub(super) async fn answer_command(
        &self,
        chat: ChatId,
        message_id: i64,
        command: Command,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        info!(command = command.as_str(), "answering a command");
        let text = match command {
            Command::Start => start_text(lang),
            Command::Help => help_text(self.me(), lang),
            Command::DetectWithoutPhoto => detect_hint(lang),
            Command::DidYouMean(action) => t!(
                lang,
                "did-you-mean",
                action = action,
                help = help_text(self.me(), lang),
            ),
            Command::Privacy => self.privacy_text(lang),
            Command::History => return self.answer_history(chat, message_id, lang).await,
            Command::Forget => return self.ask_to_forget(chat, message_id, lang).await,
        };
        self.answer(chat, message_id, &text).await
    }

    /// A caption the bot cannot carry out: why not.
    pub(super) async fn answer_refusal(
        &self,
        chat: ChatId,
        message_id: i64,
        refusal: &Refusal,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        info!(
            refusal = refusal.as_str(),
            "answering a caption we cannot carry out"
        );
        self.answer(chat, message_id, &refusal.message(lang)).await
    }

    /// A text answer quoting the user's message.
    pub(super) async fn answer(
        &self,
        chat: ChatId,
        message_id: i64,
        text: &str,
    ) -> Result<Handled, IntakeError> {
        match self.messenger.send_text(chat, text, Some(message_id)).await {
            Ok(()) => Ok(Handled::Answered),
            Err(MessengerError::Rejected(reason)) => {
                info!(%reason, "Telegram refused the answer; the update is done");
                Ok(Handled::Answered)
            }
            Err(e) => Err(e.into()),
        }
    }
}
