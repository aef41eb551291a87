//! The updates intake answers with text: `/start`, `/help` and messages
//! the bot cannot analyse, `/detect` without a photo, and captions it
//! cannot carry out. Every such answer quotes the user's message.

use polybot_domain::ChatId;
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::inbound::{BotUsername, Command, Refusal};
use crate::messenger::MessengerError;

/// The answer to `/start`: what the bot is for, and what to do.
pub const START_TEXT: &str = "Hi! I find the objects in photos and videos. Send me a photo and \
I\u{2019}ll reply with what I see, such as \u{201c}person \u{d7}2, car \u{d7}1\u{201d}, and the \
photo with a box around each. /help lists everything I can do.";

/// The answer to `/detect` (or another action) with no photo to look at.
pub const DETECT_HINT: &str = "Send /detect as the caption of a photo, or as a reply to one, \
and I\u{2019}ll find the objects in it. The other actions work the same way, e.g. \
\u{201c}blur 16\u{201d}: /help lists them.";

/// The answer to `/help` and to messages the bot cannot analyse: every
/// action, how to ask for it, and an example. In groups Telegram's privacy
/// mode delivers only commands addressed to the bot and replies to it, so
/// the group line suggests those forms, naming the bot once its username
/// is known.
pub fn help_text(me: Option<&BotUsername>) -> String {
    let addressed =
        |command: &str| me.map_or_else(|| format!("/{command}"), |me| format!("/{command}{me}"));
    let (detect, blur) = (addressed("detect"), addressed("blur"));
    format!(
        "Send me a photo (or a picture as a file, up to 20 MB) with no caption or the caption \
         \u{201c}detect\u{201d}, and I\u{2019}ll find the objects in it: I reply with the counts, \
         such as \u{201c}person \u{d7}2, car \u{d7}1\u{201d}, and the photo with a box around \
         each object.\n\n\
         Videos, GIFs and round videos (up to 20 MB) work too: I reply with a few of their \
         frames, boxed, and the most of each object seen at once, and when.\n\n\
         In a group, Telegram shows me only commands addressed to me: caption a photo \
         {detect}, or reply {blur} to a photo (every action works this way).\n\n\
         {actions}\n\n\
         /start \u{2013} what I do\n\
         /help \u{2013} this message\n\
         /detect \u{2013} find objects (a photo\u{2019}s caption, or a reply to a photo)\n\
         {settings}",
        actions = polybot_domain::ACTIONS_HELP,
        settings = crate::settings::HELP,
    )
}

impl Intake {
    /// A message the bot cannot analyse (`what` it was): what it can do.
    pub(super) async fn answer_with_help(
        &self,
        chat: ChatId,
        message_id: i64,
        what: &'static str,
    ) -> Result<Handled, IntakeError> {
        info!(what, "answering with help");
        self.answer(chat, message_id, &help_text(self.me())).await
    }

    pub(super) async fn answer_command(
        &self,
        chat: ChatId,
        message_id: i64,
        command: Command,
    ) -> Result<Handled, IntakeError> {
        info!(command = command.as_str(), "answering a command");
        let text = match command {
            Command::Start => START_TEXT.to_owned(),
            Command::Help => help_text(self.me()),
            Command::DetectWithoutPhoto => DETECT_HINT.to_owned(),
            Command::DidYouMean(action) => format!(
                "I don\u{2019}t know that command. Did you mean {action}? Send it as the \
                 caption of a photo, or as a reply to one.\n\n{}",
                help_text(self.me())
            ),
        };
        self.answer(chat, message_id, &text).await
    }

    /// A caption the bot cannot carry out: why not.
    pub(super) async fn answer_refusal(
        &self,
        chat: ChatId,
        message_id: i64,
        refusal: &Refusal,
    ) -> Result<Handled, IntakeError> {
        info!(
            refusal = refusal.as_str(),
            "answering a caption we cannot carry out"
        );
        self.answer(chat, message_id, &refusal.to_string()).await
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
