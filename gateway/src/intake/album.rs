//! The album path: each photo of an album (`media_group_id`) is stored and
//! joins the album in the shared table; once the album is quiet it is
//! closed (by whichever gateway gets there first, see `albums.rs`) and
//! submitted as one request, whose caption applies to every photo, or
//! which `concat` joins into one picture.

use polybot_domain::{
    Action, AlbumAction, AlbumId, AlbumPhoto, AlbumPhotos, ChatId, Job, JobKind, PredictionId,
    UpdateId,
};
use polybot_storage::{AlbumClose, AlbumJoin, AlbumKey};
use tracing::{Instrument, info, warn};

use super::{Handled, Intake, IntakeError};
use crate::inbound::{PhotoRef, Refusal};

impl Intake {
    /// A photo of an album: stored, and added to the album in the table.
    /// The album becomes one request once it is quiet ([`Intake::close_album`]).
    pub(super) async fn accept_album_photo(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
        album: &AlbumId,
        caption: Option<&str>,
    ) -> Result<Handled, IntakeError> {
        let stored = self.store_original(update_id, chat, message_id, photo);
        let Some(original_key) = stored.await? else {
            return Ok(Handled::Answered);
        };
        let key = AlbumKey {
            chat,
            album: album.clone(),
        };
        let member = AlbumPhoto {
            message_id,
            original_key,
            caption: caption.map(str::to_owned),
        };
        match self.backends.table.join_album(&key, &member).await? {
            AlbumJoin::Joined => {
                match &self.albums {
                    Some(closer) => {
                        // A full channel only means closes are already pending.
                        let _ = closer.try_send(key);
                    }
                    None => {
                        warn!("no album closer configured; the album waits for another gateway")
                    }
                }
                info!(album = %album, "photo joined its album");
                Ok(Handled::Joined)
            }
            AlbumJoin::TooLate => {
                // The album was answered already: this photo is a request
                // of its own.
                info!(album = %album, "a photo after its album closed; answering it on its own");
                match Action::from_caption(caption).map(JobKind::try_from) {
                    Ok(Ok(kind)) => {
                        self.accept_photo(update_id, chat, message_id, photo, kind)
                            .await
                    }
                    Ok(Err(direction)) => {
                        let refusal = Refusal::ConcatNeedsAlbum(direction);
                        self.answer(chat, message_id, &refusal.to_string()).await
                    }
                    Err(e) => self.answer(chat, message_id, &e.to_string()).await,
                }
            }
        }
    }

    /// Closes an album once no photo joined it for the quiet window (on
    /// whichever gateway gets there first) and submits it as one request:
    /// its caption (on any photo) applies to every photo, or `concat`
    /// joins them. Returns when the album is closed, by this call or another.
    pub async fn close_album(&self, key: &AlbumKey) -> Result<(), IntakeError> {
        let photos = loop {
            match self
                .backends
                .table
                .close_album(key, self.album_quiet)
                .await?
            {
                AlbumClose::Open { wait } => tokio::time::sleep(wait).await,
                AlbumClose::AlreadyClosed => return Ok(()),
                AlbumClose::Closed(photos) => break photos,
            }
        };
        let Some(first) = photos.first() else {
            return Ok(());
        };
        let caption = photos.iter().find_map(|p| p.caption.as_deref());
        let prediction_id = PredictionId::for_album(self.bot, key.chat, &key.album);
        let span = tracing::info_span!(
            "album",
            chat_id = key.chat.0,
            album = %key.album,
            photos = photos.len(),
            prediction_id = %prediction_id,
        );
        async {
            let action = match Action::from_caption(caption) {
                Ok(Action::Concat(_)) if photos.len() < 2 => {
                    let refusal = Refusal::ConcatNeedsAlbum(polybot_domain::Direction::Horizontal);
                    return self
                        .answer(key.chat, first.message_id, &refusal.to_string())
                        .await
                        .map(drop);
                }
                Ok(Action::Concat(direction)) => AlbumAction::Concat(direction),
                Ok(Action::Detect) => AlbumAction::Each(JobKind::Detect),
                Ok(Action::Filter(filter)) => AlbumAction::Each(JobKind::Filter(filter)),
                Err(e) => {
                    info!(error = %e, "the album's caption asks badly; answering once");
                    return self
                        .answer(key.chat, first.message_id, &e.to_string())
                        .await
                        .map(drop);
                }
            };
            let Some(album) = AlbumPhotos::new(photos.clone()) else {
                return Ok(());
            };
            let job = Job::album(prediction_id, key.chat, UpdateId(0), album, action);
            let handled = self.submit(job).await?;
            if let (Handled::Queued(prediction), Some(progress)) = (handled, &self.progress) {
                progress.track(crate::progress::Job {
                    prediction,
                    chat: key.chat,
                    reply_to: first.message_id,
                    notice: match action {
                        AlbumAction::Concat(_) => crate::progress::FILTER_NOTICE_TEXT,
                        AlbumAction::Each(kind) => crate::progress::notice_text(kind),
                    },
                });
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}
