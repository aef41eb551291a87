//! What the bot keeps of a chat, shown and erased:
//!
//! - `/privacy` says what is kept, where, for how long (the one retention
//!   clock, [`polybot_storage::Retention`], which Terraform also gives the
//!   bucket's lifecycle) and how to erase it;
//! - `/history` lists the chat's latest results (date, action, what was
//!   found) and sends their pictures again by their Telegram `file_id`
//!   (nothing is uploaded again); only this chat's, never one past the
//!   retention (a DynamoDB TTL deletes late) or erased;
//! - `/forget` asks first (Yes/No buttons); Yes erases every picture and
//!   record of the chat on both stores ([`polybot_storage::Backends::erase_chat`])
//!   and says how much went. Pressed twice, or delivered twice, it erases
//!   nothing more.

use polybot_domain::{
    ChatId, ForgetButton, JobResult, Lang, PredictionRecord, PredictionStatus, now_epoch, t,
};
use polybot_telegram::SavedPhoto;
use tracing::info;

use super::{Handled, Intake, IntakeError};
use crate::messenger::{Button, CallbackQueryId, Keyboard, MessengerError};

/// How many results `/history` shows.
pub const HISTORY_SHOWN: usize = 10;

impl Intake {
    /// The `/privacy` answer.
    pub(super) fn privacy_text(&self, lang: Lang) -> String {
        t!(
            lang,
            "privacy",
            days = u32::from(self.backends.retention().as_days())
        )
    }

    /// `/history`: the chat's latest results as one text, then their
    /// pictures sent again by `file_id`.
    pub(super) async fn answer_history(
        &self,
        chat: ChatId,
        message_id: i64,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        // More than shown: requests that failed or are still running, and
        // crops, are not results to list.
        let records = self
            .backends
            .table
            .list_by_chat(chat, HISTORY_SHOWN * 3)
            .await?;
        let kept_since = now_epoch() - self.backends.retention().as_duration().as_secs_f64();
        let lines: Vec<(String, Option<String>)> = records
            .iter()
            .filter(|r| r.chat_id == chat && r.created_at >= kept_since)
            .filter_map(|r| history_line(r, lang).map(|line| (line, r.answer_file_id.clone())))
            .take(HISTORY_SHOWN)
            .collect();
        info!(results = lines.len(), "answering /history");
        if lines.is_empty() {
            return self
                .answer(chat, message_id, &t!(lang, "history-empty"))
                .await;
        }
        let text = format!(
            "{}\n\n{}",
            t!(lang, "history-count", count = lines.len()),
            lines
                .iter()
                .map(|(line, _)| line.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        self.answer(chat, message_id, &text).await?;
        let photos: Vec<SavedPhoto> = lines
            .into_iter()
            .filter_map(|(caption, file_id)| {
                Some(SavedPhoto {
                    file_id: file_id?,
                    caption,
                })
            })
            .collect();
        if photos.is_empty() {
            return Ok(Handled::Answered);
        }
        match self
            .messenger
            .send_saved_photos(chat, photos, Some(message_id))
            .await
        {
            Ok(()) => Ok(Handled::Answered),
            // A picture Telegram no longer has: the text said it all.
            Err(MessengerError::Rejected(reason) | MessengerError::MediaRejected(reason)) => {
                info!(%reason, "Telegram refused to send the history's pictures again");
                Ok(Handled::Answered)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `/forget`: the question, with Yes and No under it.
    pub(super) async fn ask_to_forget(
        &self,
        chat: ChatId,
        message_id: i64,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let button = |label: String, pressed: ForgetButton| Button {
            text: label,
            data: pressed.encode(),
        };
        let keyboard = Keyboard(vec![vec![
            button(t!(lang, "forget-yes"), ForgetButton::Yes),
            button(t!(lang, "forget-no"), ForgetButton::No),
        ]]);
        let question = t!(lang, "forget-question");
        match self
            .messenger
            .send_keyboard(chat, &question, keyboard, Some(message_id))
            .await
        {
            Ok(_) => Ok(Handled::Answered),
            Err(MessengerError::Rejected(reason)) => {
                info!(%reason, "Telegram refused the question; the update is done");
                Ok(Handled::Answered)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A press under `/forget`'s question: Yes erases everything of the
    /// chat, No keeps it; either way the question becomes the outcome
    /// (its buttons gone) and the press is answered.
    pub(super) async fn answer_forget(
        &self,
        chat: ChatId,
        message_id: i64,
        query: &CallbackQueryId,
        pressed: ForgetButton,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let outcome = match pressed {
            ForgetButton::Yes => {
                let erased = self.backends.erase_chat(chat).await?;
                info!(
                    pictures = erased.pictures,
                    results = erased.results,
                    "erased everything of a chat"
                );
                t!(
                    lang,
                    "forget-done",
                    pictures = erased.pictures,
                    results = erased.results
                )
            }
            ForgetButton::No => t!(lang, "forget-kept"),
        };
        match self
            .messenger
            .edit_keyboard(chat, message_id, &outcome, Keyboard(Vec::new()))
            .await
        {
            // The question is gone or too old to edit: say it anew.
            Ok(()) => {}
            Err(MessengerError::Rejected(_)) => {
                self.answer(chat, message_id, &outcome).await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.toast(query, &outcome).await
    }
}

/// One result's line in `/history`: "2026-12-07 21:05 UTC · detect ·
/// bus ×1, person ×4"; `None` for what is no result to list (failed,
/// still running, the crops of a detection).
fn history_line(record: &PredictionRecord, lang: Lang) -> Option<String> {
    if record.status != PredictionStatus::Succeeded {
        return None;
    }
    let found = match record.result.as_ref()? {
        JobResult::Detected(summary) => summary.counts_text(lang),
        JobResult::Filtered(output) => output.filter.answer_caption(lang),
        JobResult::Joined(_) => t!(lang, "history-joined"),
        JobResult::Album(album) => t!(lang, "history-album", count = album.items.len()),
        JobResult::Video(video) => video.peaks_text(lang),
        JobResult::Cropped(_) => return None,
    };
    Some(t!(
        lang,
        "history-line",
        date = date(record.created_at),
        action = record.kind.to_string(),
        found = found
    ))
}

/// A moment as people read it, in UTC: `2026-12-07 21:05 UTC`.
fn date(epoch: f64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(epoch as i64) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_utc_calendar_time() {
        assert_eq!(date(0.0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_796_677_500.0), "2026-12-07 21:05 UTC");
    }
}
