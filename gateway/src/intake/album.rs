//! The album path: each item of an album (`media_group_id`) joins the
//! album in the shared table (a picture stored first; in a group, a
//! picture that does not itself address the bot only noted, to be fetched
//! if the album turns out to; anything else noted as skipped). Once the
//! album is quiet it is closed (by whichever gateway gets there first, see
//! `albums.rs`) and submitted as one request, whose caption applies to
//! every picture, or which `concat` joins into one picture. Its one answer
//! names the items that were not pictures ("3: a video, skipped") and, in
//! a group where only the captioned item arrived, says why the others were
//! not used.

use polybot_domain::{
    Action, AlbumAction, AlbumId, AlbumMember, AlbumPhoto, AlbumPhotos, AlbumSkip, ChatId,
    Direction, Job, JobKind, Lang, PredictionId, SkippedItem, UnfetchedPhoto, UpdateId, t,
};
use std::time::Duration;

use polybot_storage::{AlbumClose, AlbumJoin, AlbumKey};
use tracing::{Instrument, info, warn};

use super::{Handled, Intake, IntakeError};
use crate::inbound::{AlbumContent, PhotoRef, Refusal};

/// The line an album's answer ends with when, in a group, only its
/// captioned item reached the bot (Telegram's privacy mode).
pub fn only_captioned_used(lang: Lang) -> String {
    polybot_domain::item_name(polybot_domain::ONLY_CAPTIONED_USED, lang)
}

/// How long a closer holds an album it turns into a request: well over
/// what fetching its photos and queueing it take. A closer that dies
/// holding it leaves it to another gateway after this.
pub const ALBUM_CLAIM: Duration = Duration::from_secs(60);

/// The first pause when submitting a claimed album fails for now.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The answer to an album none of whose items is a picture.
pub fn no_picture_in_album(lang: Lang) -> String {
    t!(lang, "album-no-picture")
}

/// The language of each album this gateway took an addressed item of,
/// until it is closed: its sender's (albums are rare and close within
/// seconds, so this stays small; past [`AlbumLanguages::MAX`] the oldest
/// guesses are simply dropped, and those albums are answered in the chat's
/// choice or English).
#[derive(Default)]
pub(super) struct AlbumLanguages(std::sync::Mutex<std::collections::HashMap<AlbumKey, Lang>>);

impl AlbumLanguages {
    const MAX: usize = 10_000;

    fn remember(&self, key: &AlbumKey, lang: Lang) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.entry(key.clone()).or_insert(lang);
    }

    fn take(&self, key: &AlbumKey) -> Option<Lang> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key)
    }
}

/// What an album's items are, once fetched: the pictures to work on, and
/// the others by their place.
struct Items {
    photos: Vec<AlbumPhoto>,
    skipped: Vec<AlbumSkip>,
}

/// One item of an album, as [`Intake::accept_album_item`] takes it.
pub(super) struct ItemUpdate<'a> {
    pub update_id: UpdateId,
    pub chat: ChatId,
    pub message_id: i64,
    pub item: &'a AlbumContent,
    pub album: &'a AlbumId,
    pub caption: Option<&'a str>,
    pub addressed: bool,
    /// The language its sender is answered in.
    pub lang: Lang,
}

impl Intake {
    /// An item of an album: added to the album in the table (a picture
    /// stored first, unless it waits unfetched). The album becomes one
    /// request once it is quiet ([`Intake::close_album`]).
    pub(super) async fn accept_album_item(
        &self,
        u: ItemUpdate<'_>,
    ) -> Result<Handled, IntakeError> {
        let caption = u.caption.map(str::to_owned);
        let key = AlbumKey {
            chat: u.chat,
            album: u.album.clone(),
        };
        if u.addressed {
            self.album_languages.remember(&key, u.lang);
        }
        let member = match u.item {
            AlbumContent::Photo(photo) if u.addressed => {
                let stored = self.store_original(u.update_id, u.chat, u.message_id, photo, u.lang);
                let Some(original_key) = stored.await? else {
                    return Ok(Handled::Answered);
                };
                AlbumMember::Photo(AlbumPhoto {
                    message_id: u.message_id,
                    original_key,
                    caption,
                })
            }
            AlbumContent::Photo(photo) => AlbumMember::Unfetched(UnfetchedPhoto {
                message_id: u.message_id,
                update_id: u.update_id,
                file_id: photo.file_id.clone(),
                size: photo.size,
                content_type: photo.content_type.clone(),
                extension: photo.extension.to_owned(),
                caption,
            }),
            AlbumContent::Other(what) => AlbumMember::Skipped(SkippedItem {
                message_id: u.message_id,
                what: (*what).to_owned(),
                caption,
            }),
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
                info!(album = %u.album, "item joined its album");
                Ok(Handled::Joined)
            }
            AlbumJoin::TooLate => self.too_late(u, member).await,
        }
    }

    /// An item after its album was answered: a request of its own.
    async fn too_late(
        &self,
        u: ItemUpdate<'_>,
        member: AlbumMember,
    ) -> Result<Handled, IntakeError> {
        info!(album = %u.album, "an item after its album closed; answering it on its own");
        let (AlbumContent::Photo(photo), AlbumMember::Photo(_)) = (u.item, &member) else {
            return match u.item {
                AlbumContent::Other(what) if u.chat.0 > 0 => {
                    self.answer_with_help(u.chat, u.message_id, what, u.lang)
                        .await
                }
                // In a group, only what addressed the bot is answered.
                _ => Ok(Handled::Ignored),
            };
        };
        match Action::from_caption(u.caption).map(JobKind::try_from) {
            Ok(Ok(kind)) => {
                self.accept_photo(u.update_id, u.chat, u.message_id, photo, kind, u.lang)
                    .await
            }
            Ok(Err(direction)) => {
                let refusal = Refusal::ConcatNeedsAlbum(direction);
                self.answer(u.chat, u.message_id, &refusal.to_string())
                    .await
            }
            Err(e) => self.answer(u.chat, u.message_id, &e.to_string()).await,
        }
    }

    /// Closes an album once no item joined it for the quiet window (on
    /// whichever gateway gets there first) and submits it as one request:
    /// its caption (on any item) applies to every picture, or `concat`
    /// joins them. Returns when the album is finished, by this call or
    /// another. An `Err` (retryable) leaves the album to a later call here
    /// or on any gateway, once this one's claim lapses: nothing is marked
    /// done before its request is queued.
    pub async fn close_album(&self, key: &AlbumKey) -> Result<(), IntakeError> {
        let members = loop {
            match self
                .backends
                .table
                .close_album(key, self.album_quiet, ALBUM_CLAIM)
                .await?
            {
                AlbumClose::Open { wait } | AlbumClose::Held { wait } => {
                    tokio::time::sleep(wait).await
                }
                AlbumClose::AlreadyClosed => return Ok(()),
                AlbumClose::Closed(members) => break members,
            }
        };
        // Retried here while the claim is comfortably ours; after that the
        // claim lapses and a later close (here or on any gateway) goes on.
        let claimed = tokio::time::Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            match self.album_request(key, members.clone()).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && claimed.elapsed() + pause < ALBUM_CLAIM / 2 => {
                    warn!(error = %e, album = %key.album, retry_in = ?pause, "could not submit the album yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(ALBUM_CLAIM / 8);
                }
                Err(e) if e.is_retryable() => return Err(e),
                // Nothing a retry can change (the chat refuses the bot): done.
                Err(e) => {
                    warn!(error = %e, album = %key.album, "the album cannot be answered");
                    break;
                }
            }
        }
        self.backends.table.finish_album(key).await?;
        Ok(())
    }

    /// The album's items turned into its one request (or its one answer,
    /// when the caption asks badly or nothing in it is a picture).
    async fn album_request(
        &self,
        key: &AlbumKey,
        members: Vec<AlbumMember>,
    ) -> Result<(), IntakeError> {
        let Some(first) = members.first().map(AlbumMember::message_id) else {
            return Ok(());
        };
        let caption = members
            .iter()
            .find_map(AlbumMember::caption)
            .map(str::to_owned);
        // In a group an item's caption is kept only when it addresses the
        // bot: an album without one was not meant for it.
        let group = key.chat.0 < 0;
        if group && caption.is_none() {
            info!(album = %key.album, "an album not addressed to the bot");
            return Ok(());
        }
        let prediction_id = PredictionId::for_album(self.bot, key.chat, &key.album);
        // Its sender's language, when this gateway took an addressed item
        // of it; the chat's choice, or English, when another did.
        let sender = self.album_languages.take(key);
        let lang = self.language(key.chat, sender).await;
        let span = tracing::info_span!(
            "album",
            chat_id = key.chat.0,
            album = %key.album,
            items = members.len(),
            prediction_id = %prediction_id,
        );
        async {
            let seen = members.len();
            let action = match Action::from_caption(caption.as_deref()) {
                Ok(action) => action,
                Err(e) => {
                    info!(error = %e, "the album's caption asks badly; answering once");
                    return self
                        .answer(key.chat, first, &e.message(lang))
                        .await
                        .map(drop);
                }
            };
            let Items {
                photos,
                mut skipped,
            } = self.fetch_items(key.chat, members).await?;
            if group && seen == 1 && !photos.is_empty() {
                // Telegram's albums have two items or more: privacy mode
                // kept the others from the bot.
                skipped.push(AlbumSkip {
                    position: 0,
                    what: polybot_domain::ONLY_CAPTIONED_USED.to_owned(),
                });
            }
            let action = match action {
                Action::Concat(direction) if photos.len() < 2 => {
                    let refusal = if group && seen == 1 {
                        Refusal::ConcatInGroup(direction)
                    } else {
                        Refusal::ConcatNeedsAlbum(Direction::Horizontal)
                    };
                    return self
                        .answer(key.chat, first, &refusal.message(lang))
                        .await
                        .map(drop);
                }
                Action::Concat(direction) => AlbumAction::Concat(direction),
                Action::Detect => AlbumAction::Each(JobKind::Detect),
                Action::Filter(filter) => AlbumAction::Each(JobKind::Filter(filter)),
            };
            let Some(album) = AlbumPhotos::new(photos) else {
                let lines: Vec<String> = skipped.iter().map(|s| s.line(lang)).collect();
                let text = format!("{}\n\n{}", no_picture_in_album(lang), lines.join("\n"));
                return self.answer(key.chat, first, &text).await.map(drop);
            };
            let job = Job::album(prediction_id, key.chat, UpdateId(0), album, action)
                .skipping(skipped)
                .in_language(lang);
            let reply_to = job.message_id;
            let handled = self.submit(job).await?;
            if let (Handled::Queued(prediction), Some(progress)) = (handled, &self.progress) {
                progress.track(crate::progress::Job {
                    prediction,
                    chat: key.chat,
                    reply_to,
                    notice: match action {
                        AlbumAction::Concat(_) => crate::progress::filter_notice_text(lang),
                        AlbumAction::Each(kind) => crate::progress::notice_text(kind, lang),
                    },
                });
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The album's pictures (those waiting unfetched downloaded now) and
    /// the items left out, by their place in the album.
    async fn fetch_items(
        &self,
        chat: ChatId,
        members: Vec<AlbumMember>,
    ) -> Result<Items, IntakeError> {
        let mut items = Items {
            photos: Vec::new(),
            skipped: Vec::new(),
        };
        for (place, member) in (1_u32..).zip(members) {
            let skip = |what: &str| AlbumSkip {
                position: place,
                what: what.to_owned(),
            };
            match member {
                AlbumMember::Photo(photo) => items.photos.push(photo),
                AlbumMember::Skipped(item) => items.skipped.push(skip(&item.what)),
                AlbumMember::Unfetched(p) => {
                    let photo = PhotoRef {
                        file_id: p.file_id.clone(),
                        size: p.size,
                        content_type: p.content_type.clone(),
                        extension: crate::inbound::known_extension(&p.extension),
                    };
                    // The album is closed: a photo that cannot be had now is
                    // named in the answer rather than holding the others.
                    match self.fetch_original(p.update_id, chat, &photo).await {
                        Ok(Ok(original_key)) => items.photos.push(AlbumPhoto {
                            message_id: p.message_id,
                            original_key,
                            caption: p.caption,
                        }),
                        // Stored in English, told in the chat's language.
                        Ok(Err(kind)) => items.skipped.push(skip(&kind.short_message(Lang::En))),
                        Err(e) => {
                            warn!(error = %e, "could not fetch an album's photo");
                            items.skipped.push(skip("a photo I could not fetch"));
                        }
                    }
                }
            }
        }
        Ok(items)
    }
}
