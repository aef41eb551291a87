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

use polybot_domain::{
    ChatId, ChatSettings, Lang, SettingsButton, SettingsChange, parse_classes, t,
};
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::messenger::{CallbackQueryId, MessengerError};
use crate::settings::{SettingsRequest, TypedSetting, message, toast};

impl Intake {
    /// A settings command: the settings shown, changed, or why not.
    pub(super) async fn answer_settings(
        &self,
        chat: ChatId,
        message_id: i64,
        request: &SettingsRequest,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let table = &self.backends.table;
        match request {
            SettingsRequest::Show => {
                info!("showing the settings");
                let settings = table.chat_settings(chat).await?;
                let classes = table.model_classes().await?;
                let (text, keyboard) = message(&settings, classes.as_deref(), lang);
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
                self.answer(chat, message_id, &error.message(lang)).await
            }
            SettingsRequest::Change(typed) => {
                let change = match typed {
                    TypedSetting::Confidence(c) => SettingsChange::Confidence(*c),
                    TypedSetting::Output(o) => SettingsChange::Output(*o),
                    TypedSetting::Labels(l) => SettingsChange::Labels(*l),
                    TypedSetting::Language(l) => SettingsChange::Language(*l),
                    TypedSetting::Only(names) => {
                        let Some(known) = table.model_classes().await? else {
                            let text = t!(lang, "classes-unknown");
                            return self.answer(chat, message_id, &text).await;
                        };
                        match parse_classes(names, &known) {
                            Ok(choice) => SettingsChange::Classes(choice),
                            Err(e) => {
                                return self.answer(chat, message_id, &e.message(lang)).await;
                            }
                        }
                    }
                };
                let settings = table.change_chat_settings(chat, change).await?;
                info!("settings changed by a command");
                // A new language speaks at once.
                let lang = settings.language.unwrap_or(lang);
                self.answer(chat, message_id, &confirmation(&settings, lang))
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
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let table = &self.backends.table;
        let classes = table.model_classes().await?;
        let change = pressed.and_then(|b| b.change(classes.as_deref().unwrap_or_default()));
        let toast = match (pressed, change) {
            (Some(pressed), Some(change)) => {
                let settings = table.change_chat_settings(chat, change).await?;
                info!(button = %pressed.encode(), "settings changed by a button");
                let lang = settings.language.unwrap_or(lang);
                let (text, keyboard) = message(&settings, classes.as_deref(), lang);
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
                toast(&settings, pressed, lang)
            }
            _ => {
                info!("a button we do not know");
                t!(lang, "toast-button-unknown")
            }
        };
        self.toast(query, &toast).await
    }
}

/// The reply to a typed change: the settings as they now are.
fn confirmation(settings: &ChatSettings, lang: Lang) -> String {
    t!(lang, "settings-changed", settings = settings.describe(lang))
}
