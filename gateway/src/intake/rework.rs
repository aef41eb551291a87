//! The rework path: a reply to one of the bot's answers asking for an
//! action ("blur", "rotate left") becomes a job on the original photo of
//! that answer, found in the table by the answer's message id (Telegram
//! quotes only the answer in the reply, not the photo it answered). Nothing
//! is downloaded: the original is already stored. A reply to a message
//! that is no recorded answer (a notice, the help, an album's answer, one
//! past its retention) is chatter, ignored in silence like "thanks".

use polybot_domain::{ChatId, Job, JobKind, Lang, PredictionId, UpdateId};
use tracing::info;

use super::{Handled, Intake, IntakeError};

impl Intake {
    pub(super) async fn accept_rework(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        answered: i64,
        kind: JobKind,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let Some(photo) = self.backends.table.answered_photo(chat, answered).await? else {
            info!(
                kind = "reply_chatter",
                answered, "a reply to a message that answered no photo; ignoring it"
            );
            return Ok(Handled::Ignored);
        };
        let prediction_id = PredictionId::for_update(self.bot, update_id);
        tracing::Span::current().record("prediction_id", tracing::field::display(prediction_id));
        info!(answered, of = %photo.prediction_id, "applying a reply's action to the original photo");
        let job = Job::photo(
            prediction_id,
            chat,
            message_id,
            update_id,
            photo.original_key,
            kind,
        )
        .in_language(lang);
        self.submit(job).await
    }
}
