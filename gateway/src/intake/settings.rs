//! The settings path: `/settings` answered with the settings message and
//! its keyboard; a typed change (`/confidence 0.6`, `/only person,dog`,
//! `/output counts`, `/labels plain`) stored in the shared table and
//! confirmed; a pressed settings button answered once, stored, and its
//! message edited to show the new value (no new message). In groups anyone
//! may read and change the chat's settings: they change only what the bot
//! shows the group, and limiting them to admins would cost a
//! `getChatMember` call per change.
//!
//! A change is made before anything is sent, and each one sets a value
//! (a class button says whether to show its class), so a delivery handled
//! twice changes nothing more.

use polybot_domain::{ChatId, ChatSettings, SettingsButton, SettingsChange, parse_classes};
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::messenger::{CallbackQueryId, MessengerError};
use crate::settings::{SettingsRequest, TypedSetting, message, toast};

/// The answer to `/only` before any detector said which classes it knows.
pub const CLASSES_UNKNOWN: &str = "I can\u{2019}t check object names yet: the detector has not \
started. Please try again in a minute.";

/// The toast of a button the bot no longer knows (an old keyboard).
pub const BUTTON_UNKNOWN: &str = "This button no longer works. Send /settings for new ones.";

impl Intake {
    /// A settings command: the settings shown, changed, or why not.
    pub(super) async fn answer_settings(
        &self,
        chat: ChatId,
        message_id: i64,
        request: &SettingsRequest,
    ) -> Result<Handled, IntakeError> {
        let table = &self.backends.table;
        match request {
            SettingsRequest::Show => {
                info!("showing the settings");
                let settings = table.chat_settings(chat).await?;
                let classes = table.model_classes().await?;
                let (text, keyboard) = message(&settings, classes.as_deref());
                match self
                    .messenger
                    .send_keyboard(chat, &text, keyboard, Some(message_id))
                    .await
                {
                    Ok(_) => Ok(Handled::Answered),
                    Err(MessengerError::Rejected(reason)) => {
                        info!(%reason, "Telegram refused the settings message; the update is done");
                        Ok(Handled::Answered)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            SettingsRequest::Invalid(error) => {
                info!(error = %error, "a setting we cannot read");
                self.answer(chat, message_id, &error.to_string()).await
            }
            SettingsRequest::Change(typed) => {
                let change = match typed {
                    TypedSetting::Confidence(c) => SettingsChange::Confidence(*c),
                    TypedSetting::Output(o) => SettingsChange::Output(*o),
                    TypedSetting::Labels(l) => SettingsChange::Labels(*l),
                    TypedSetting::Only(names) => {
                        let Some(known) = table.model_classes().await? else {
                            return self.answer(chat, message_id, CLASSES_UNKNOWN).await;
                        };
                        match parse_classes(names, &known) {
                            Ok(choice) => SettingsChange::Classes(choice),
                            Err(e) => return self.answer(chat, message_id, &e.to_string()).await,
                        }
                    }
                };
                let settings = table.change_chat_settings(chat, change).await?;
                info!("settings changed by a command");
                self.answer(chat, message_id, &confirmation(&settings))
                    .await
            }
        }
    }

    /// A pressed button: the change made, the settings message edited to
    /// show it, and the press answered (a toast naming the new value).
    pub(super) async fn answer_button(
        &self,
        chat: ChatId,
        message_id: i64,
        query: &CallbackQueryId,
        pressed: Option<SettingsButton>,
    ) -> Result<Handled, IntakeError> {
        let table = &self.backends.table;
        let classes = table.model_classes().await?;
        let change = pressed.and_then(|b| b.change(classes.as_deref().unwrap_or_default()));
        let toast = match (pressed, change) {
            (Some(pressed), Some(change)) => {
                let settings = table.change_chat_settings(chat, change).await?;
                info!(button = %pressed.encode(), "settings changed by a button");
                let (text, keyboard) = message(&settings, classes.as_deref());
                match self
                    .messenger
                    .edit_keyboard(chat, message_id, &text, keyboard)
                    .await
                {
                    // The message is gone or too old to edit: the toast
                    // still says what changed.
                    Ok(()) | Err(MessengerError::Rejected(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                toast(&settings, pressed)
            }
            _ => {
                info!("a button we do not know");
                BUTTON_UNKNOWN.to_owned()
            }
        };
        self.toast(query, &toast).await
    }
}

/// The reply to a typed change: the settings as they now are.
fn confirmation(settings: &ChatSettings) -> String {
    format!(
        "Done. This chat\u{2019}s settings:\n{}\n\n/settings shows them with buttons.",
        settings.describe()
    )
}
