//! Turning a user's message into a durable detection job, exactly once per
//! Telegram update, or into a friendly answer when there is nothing to detect.
//!
//! - **Idempotent.** The prediction id comes from (bot, update), so a retried
//!   delivery finds the object, record and job an earlier attempt made; the
//!   update's claim is finished as soon as the job is durable, before the
//!   "processing" notice, which is queued without waiting.
//! - **No silent loss.** Once the chat is known, a failure is either
//!   retryable (the caller answers 5xx or polls again) or the user is told.
//! - **Bounded retries.** Deliveries of one update are counted; past
//!   [`RetryBudget::max_attempts`] or [`RetryBudget::max_age`] the update
//!   is answered with an apology, or skipped with a log line and a metric
//!   when even that fails, so one poison update cannot hold the bot.
//!
//! The paths live in their own modules: `texts.rs` (commands and other
//! text answers), `photo.rs` (one photo becomes one job), `album.rs`
//! (photos sent together become one request), `rework.rs` (a reply to an
//! answer asks for another action on its original photo) and `budget.rs`
//! (how long an update is retried), `admission.rs` (per-user and per-chat
//! limits), `settings.rs` (a chat's settings shown and changed, by command
//! or button), `extras.rs` (an answer's `Details`, `Crops` and `Original`
//! buttons) and `deferred.rs` (text answers sent after the webhook
//! returned).

mod admission;
mod album;
mod budget;
mod clip;
mod deferred;
mod extras;
mod photo;
mod privacy;
mod rework;
mod settings;
mod texts;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use polybot_domain::{BotId, ChatId, FailureKind, Lang, PredictionId, Press};
use polybot_storage::{AlbumKey, Backends, ClaimKey, Once, StorageError, run_once};
use tracing::{info, warn};

pub use admission::{Limit, Limits};
pub use album::{no_picture_in_album, only_captioned_used};
pub use budget::{RetryBudget, given_up};

use crate::inbound::{BotUsername, Inbound};
use crate::messenger::{Messenger, MessengerError};
use crate::progress::Progress;
use budget::Attempts;

/// How long one delivery may work on an update before another may take over.
const UPDATE_LEASE: Duration = Duration::from_secs(60);

/// What became of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Queued(PredictionId),
    /// A photo joined its album; the album is answered as one request.
    Joined,
    Answered,
    Duplicate,
    Ignored,
    /// It could not be handled; the user was told so.
    Failed,
    /// A poison update: retries ran out and the user could not be told.
    Skipped,
    /// Over a user's or chat's limit: not taken (the chat was told, once a
    /// minute).
    Limited,
}

impl Handled {
    /// Bounded label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued(_) => "queued",
            Self::Joined => "album",
            Self::Answered => "answered",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Limited => "limited",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    #[error("another delivery of this update is being handled")]
    InProgress,
    /// A group message waits until `getMe` told the bot its username.
    #[error("the bot's username is not known yet (getMe has not answered)")]
    NotIntroduced,
}

impl IntakeError {
    /// Whether Telegram should deliver the update again (we answer 5xx).
    /// A configuration error (a missing bucket, denied access) is retried
    /// too: an operator can fix it while Telegram keeps the update.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_retryable() || matches!(e, StorageError::Config { .. }),
            Self::Messenger(e) => e.is_retryable(),
            Self::InProgress | Self::NotIntroduced => true,
        }
    }

    /// An outage of the whole bot (Telegram refuses its token), not of
    /// this update.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Messenger(e) if e.is_outage())
    }
}

pub struct Intake {
    backends: Backends,
    messenger: Arc<dyn Messenger>,
    bot: BotId,
    max_download: u64,
    budget: RetryBudget,
    attempts: Attempts,
    progress: Option<Progress>,
    me: OnceLock<BotUsername>,
    /// Where albums to close later are sent ([`Intake::close_album`]).
    albums: Option<tokio::sync::mpsc::Sender<AlbumKey>>,
    /// How long an album must be quiet before it is closed.
    album_quiet: Duration,
    /// How much one user or chat may ask of the bot.
    limits: Limits,
    /// The language of each album this gateway is collecting.
    album_languages: album::AlbumLanguages,
}

/// How long an album waits for more photos after its latest, by default:
/// Telegram delivers an album's updates within moments of each other.
pub const DEFAULT_ALBUM_QUIET: Duration = Duration::from_millis(1500);

impl Intake {
    pub fn new(
        backends: Backends,
        messenger: Arc<dyn Messenger>,
        bot: BotId,
        max_download: u64,
    ) -> Self {
        Self {
            backends,
            messenger,
            bot,
            max_download,
            budget: RetryBudget::default(),
            attempts: Attempts::default(),
            progress: None,
            me: OnceLock::new(),
            albums: None,
            album_quiet: DEFAULT_ALBUM_QUIET,
            limits: Limits::default(),
            album_languages: album::AlbumLanguages::default(),
        }
    }

    /// How much one user or chat may ask ([`Limits::default`] otherwise).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Closes albums through `closer` (a task that calls
    /// [`Intake::close_album`]) after `quiet`.
    pub fn with_albums(
        mut self,
        closer: tokio::sync::mpsc::Sender<AlbumKey>,
        quiet: Duration,
    ) -> Self {
        self.albums = Some(closer);
        self.album_quiet = quiet;
        self
    }

    /// How long an album must be quiet before it is closed.
    pub fn album_quiet(&self) -> Duration {
        self.album_quiet
    }

    /// Up to `limit` albums quiet for the window that no gateway is
    /// closing: those whose closer stopped or failed.
    pub async fn pending_albums(&self, limit: usize) -> Result<Vec<AlbumKey>, IntakeError> {
        Ok(self
            .backends
            .table
            .pending_albums(self.album_quiet, limit)
            .await?)
    }

    /// The bot's username, once `getMe` told it.
    pub fn me(&self) -> Option<&BotUsername> {
        self.me.get()
    }

    /// Records the bot's username (the first one told wins).
    pub fn introduce(&self, me: BotUsername) {
        let _ = self.me.set(me);
    }

    /// Shows progress (chat action, a notice when slow) for queued jobs.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn with_retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Handles one update. `Ok` means Telegram may forget it; an error
    /// means it must deliver it again (it is always retryable): whatever an
    /// earlier attempt left behind, a retry finds and reuses.
    #[cfg(test)]
    pub async fn handle(&self, inbound: Inbound) -> Result<Handled, IntakeError> {
        self.handle_in(inbound, None).await
    }

    /// [`Intake::handle`] for an update whose sender's Telegram is set to
    /// `sender`'s language: the answer is in it, unless the chat chose one.
    #[tracing::instrument(
        name = "telegram.update",
        skip_all,
        fields(
            update_id = inbound.update_id().0,
            chat_id = inbound.chat().map(|c| c.0),
            prediction_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    )]
    pub async fn handle_in(
        &self,
        inbound: Inbound,
        sender: Option<Lang>,
    ) -> Result<Handled, IntakeError> {
        let result = self.handle_inner(&inbound, sender).await;
        if let Ok(h) = &result {
            tracing::Span::current().record("outcome", h.as_str());
        }
        result
    }

    /// The language to answer `chat` in: its choice, else the sender's,
    /// else English. A table that cannot be read costs only the choice.
    async fn language(&self, chat: ChatId, sender: Option<Lang>) -> Lang {
        match self.backends.table.chat_settings(chat).await {
            Ok(settings) => settings.language_for(sender),
            Err(e) => {
                warn!(error = %e, "could not read the chat's language; using the sender's");
                sender.unwrap_or_default()
            }
        }
    }

    async fn handle_inner(
        &self,
        inbound: &Inbound,
        sender: Option<Lang>,
    ) -> Result<Handled, IntakeError> {
        let Some(chat) = inbound.chat() else {
            if let Inbound::Ignored { kind, .. } = inbound {
                info!(kind, "ignoring an update with nothing to answer");
            }
            return Ok(Handled::Ignored);
        };
        if let Inbound::Deferred { .. } = inbound {
            // Outside the retry budget: this passes once getMe answers.
            return Err(IntakeError::NotIntroduced);
        }
        let update = inbound.update_id();
        let lang = self.language(chat, sender).await;
        let key = ClaimKey::Update(self.bot, update);
        let work = async {
            let (attempt, spent) = self.attempts.count((self.bot, update), self.budget);
            match self.process(inbound, lang).await {
                Ok(handled) => Ok(handled),
                // A refused token is the whole bot's outage: the update
                // waits it out however long it lasts, its budget unspent.
                Err(e) if e.is_retryable() && (!spent || e.is_outage()) => {
                    if e.is_outage() {
                        self.attempts.forget((self.bot, update));
                    }
                    warn!(error = %e, attempt, "could not handle the update; Telegram will deliver it again");
                    Err(e)
                }
                Err(e) => self.give_up(inbound, chat, attempt, e, lang).await,
            }
        };
        let outcome = match run_once(&*self.backends.table, key, UPDATE_LEASE, work).await {
            Ok(Once::Ran(handled)) => {
                self.attempts.forget((self.bot, update));
                Ok(handled)
            }
            Ok(Once::Done) => {
                info!("duplicate delivery of an update already handled");
                Ok(Handled::Duplicate)
            }
            // Not an attempt of ours: another delivery is working on it.
            Ok(Once::Busy) => Err(IntakeError::InProgress),
            Err(e) => Err(e),
        };
        if let Ok(Handled::Queued(prediction)) = &outcome
            && let Some(progress) = &self.progress
        {
            let shown = match inbound {
                Inbound::Photo {
                    message_id, kind, ..
                }
                | Inbound::Rework {
                    message_id, kind, ..
                } => Some((*message_id, crate::progress::notice_text(*kind, lang))),
                Inbound::Clip { message_id, .. } => {
                    Some((*message_id, crate::progress::clip_notice_text(lang)))
                }
                _ => None,
            };
            if let Some((reply_to, notice)) = shown {
                // Off the request path: its own task, best effort.
                progress.track(crate::progress::Job {
                    prediction: *prediction,
                    chat,
                    reply_to,
                    notice,
                });
            }
        }
        outcome
    }

    /// The update failed for good (or retries ran out): tell the user.
    async fn give_up(
        &self,
        inbound: &Inbound,
        chat: ChatId,
        attempt: u32,
        error: IntakeError,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        let reply_to = match inbound {
            Inbound::Photo { message_id, .. }
            | Inbound::Clip { message_id, .. }
            | Inbound::Rework { message_id, .. }
            | Inbound::AlbumItem { message_id, .. }
            | Inbound::Refused { message_id, .. }
            | Inbound::Command { message_id, .. }
            | Inbound::Settings { message_id, .. }
            | Inbound::Other { message_id, .. } => Some(*message_id),
            Inbound::Ignored { .. } | Inbound::Deferred { .. } | Inbound::Button { .. } => None,
        };
        warn!(error = %error, attempt, "giving up on the update; telling the user");
        match self
            .messenger
            .send_text(chat, &FailureKind::Internal.user_message(lang), reply_to)
            .await
        {
            Ok(()) => {
                given_up("apologised");
                Ok(Handled::Failed)
            }
            Err(e) if !e.is_retryable() => {
                given_up("apologised");
                Ok(Handled::Failed)
            }
            Err(e) => {
                let (_, spent) = self
                    .attempts
                    .count((self.bot, inbound.update_id()), self.budget);
                if spent {
                    warn!(error = %e, update_id = inbound.update_id().0, attempt,
                        "skipping a poison update: retries ran out and the user could not be told");
                    given_up("skipped");
                    Ok(Handled::Skipped)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Routes an update to its path: text answers (`texts.rs`), a photo
    /// (`photo.rs`), an item of an album (`album.rs`) or a reply to an
    /// answer (`rework.rs`).
    async fn process(&self, inbound: &Inbound, lang: Lang) -> Result<Handled, IntakeError> {
        match inbound {
            Inbound::Ignored { .. } => Ok(Handled::Ignored),
            Inbound::Deferred { .. } => Err(IntakeError::NotIntroduced),
            Inbound::Other {
                chat,
                message_id,
                what,
                ..
            } => self.answer_with_help(*chat, *message_id, what, lang).await,
            Inbound::Command {
                chat,
                message_id,
                command,
                ..
            } => {
                self.answer_command(*chat, *message_id, *command, lang)
                    .await
            }
            Inbound::Settings {
                chat,
                message_id,
                request,
                ..
            } => {
                self.answer_settings(*chat, *message_id, request, lang)
                    .await
            }
            Inbound::Button {
                chat,
                message_id,
                query,
                pressed,
                ..
            } => match pressed {
                Some(Press::Answer(button)) => {
                    self.send_extra(*chat, *message_id, query, *button, lang)
                        .await
                }
                Some(Press::Settings(button)) => {
                    self.answer_button(*chat, *message_id, query, Some(*button), lang)
                        .await
                }
                Some(Press::Forget(button)) => {
                    self.answer_forget(*chat, *message_id, query, *button, lang)
                        .await
                }
                None => {
                    self.answer_button(*chat, *message_id, query, None, lang)
                        .await
                }
            },
            Inbound::AlbumItem {
                update_id,
                chat,
                from,
                message_id,
                item,
                album,
                caption,
                addressed,
            } => {
                // Only an item meant for the bot counts: in a group, others
                // are someone else's album until one of its items asks.
                let asking = admission::Asking::album_item(*chat, *from, *update_id);
                if *addressed && let Some(refused) = self.admit(asking, *message_id, lang).await? {
                    return Ok(refused);
                }
                self.accept_album_item(album::ItemUpdate {
                    update_id: *update_id,
                    chat: *chat,
                    message_id: *message_id,
                    item,
                    album,
                    caption: caption.as_deref(),
                    addressed: *addressed,
                    lang,
                })
                .await
            }
            Inbound::Refused {
                chat,
                message_id,
                refusal,
                ..
            } => self.answer_refusal(*chat, *message_id, refusal, lang).await,
            Inbound::Photo {
                update_id,
                chat,
                from,
                message_id,
                photo,
                kind,
            } => {
                let asking = admission::Asking::request(*chat, *from, *update_id);
                if let Some(refused) = self.admit(asking, *message_id, lang).await? {
                    return Ok(refused);
                }
                self.accept_photo(*update_id, *chat, *message_id, photo, *kind, lang)
                    .await
            }
            Inbound::Clip {
                update_id,
                chat,
                from,
                message_id,
                clip,
                kind,
                seconds,
            } => {
                let asking = admission::Asking::request(*chat, *from, *update_id);
                if let Some(refused) = self.admit(asking, *message_id, lang).await? {
                    return Ok(refused);
                }
                let request = clip::ClipRequest {
                    update_id: *update_id,
                    chat: *chat,
                    message_id: *message_id,
                    kind: *kind,
                    seconds: *seconds,
                    lang,
                };
                self.accept_clip(request, clip).await
            }
            Inbound::Rework {
                update_id,
                chat,
                from,
                message_id,
                answered,
                kind,
            } => {
                let asking = admission::Asking::request(*chat, *from, *update_id);
                if let Some(refused) = self.admit(asking, *message_id, lang).await? {
                    return Ok(refused);
                }
                self.accept_rework(*update_id, *chat, *message_id, *answered, *kind, lang)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Intake's own decisions, through a fake messenger and the embedded
    //! backend: one job per update, a failed attempt never blocks the
    //! retry, and files we cannot take are answered.
    use std::sync::Arc;

    use polybot_domain::{JobKind, UpdateId};

    use super::*;
    use crate::fake::{Call, FakeMessenger, local_backends};
    use crate::inbound::PhotoRef;

    const LIMIT: u64 = 1024;

    fn photo(update: i64, size: u64) -> Inbound {
        Inbound::Photo {
            update_id: UpdateId(update),
            chat: ChatId(42),
            from: None,
            message_id: 7,
            photo: PhotoRef {
                file_id: format!("file-{update}"),
                size,
                content_type: "image/jpeg".into(),
                extension: "jpg",
            },
            kind: JobKind::Detect,
        }
    }

    async fn intake(dir: &std::path::Path) -> (Intake, Arc<FakeMessenger>, Backends) {
        let backends = local_backends(dir).await;
        let messenger = FakeMessenger::new();
        let intake = Intake::new(backends.clone(), messenger.clone(), BotId(1), LIMIT);
        (intake, messenger, backends)
    }

    async fn queued(backends: &Backends) -> u64 {
        backends.jobs.stats().await.expect("queue stats").visible
    }

    #[tokio::test]
    async fn a_redelivered_photo_update_becomes_one_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        messenger.serve("file-1", &b"jpeg bytes"[..]);
        let first = intake.handle(photo(1, 10)).await.expect("handled");
        assert!(matches!(first, Handled::Queued(_)), "{first:?}");
        let again = intake.handle(photo(1, 10)).await.expect("handled");
        assert_eq!(again, Handled::Duplicate);
        assert_eq!(queued(&backends).await, 1, "one job for two deliveries");
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
    }

    #[tokio::test]
    async fn a_failed_attempt_releases_the_update_so_the_redelivery_is_handled_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        messenger.serve("file-2", &b"jpeg bytes"[..]);
        messenger.fail_next(
            Call::Download,
            MessengerError::Unavailable("Bad Gateway".into()),
        );
        let failed = intake.handle(photo(2, 10)).await;
        assert!(
            matches!(&failed, Err(e @ IntakeError::Messenger(_)) if e.is_retryable()),
            "a Telegram outage must be retried: {failed:?}"
        );
        assert_eq!(queued(&backends).await, 0);
        // Not "in progress": the failed attempt gave its lease back.
        let retried = intake.handle(photo(2, 10)).await.expect("handled");
        assert!(matches!(retried, Handled::Queued(_)), "{retried:?}");
        assert_eq!(queued(&backends).await, 1);
    }

    #[tokio::test]
    async fn a_photo_over_the_limit_is_answered_without_a_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        // Telegram's size says too large: not even downloaded.
        let answered = intake.handle(photo(3, LIMIT + 1)).await.expect("handled");
        assert_eq!(answered, Handled::Answered);
        // Telegram did not say; the download finds out.
        messenger.serve("file-4", vec![0_u8; LIMIT as usize + 1]);
        let answered = intake.handle(photo(4, 0)).await.expect("handled");
        assert_eq!(answered, Handled::Answered);
        let too_large = format!("text: {}", FailureKind::TooLarge.user_message(Lang::En));
        assert_eq!(messenger.sent(), vec![too_large.clone(), too_large]);
        assert_eq!(queued(&backends).await, 0);
    }

    #[tokio::test]
    async fn a_file_telegram_will_not_serve_is_answered_as_not_an_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        let answered = intake.handle(photo(5, 10)).await.expect("handled");
        assert_eq!(answered, Handled::Answered);
        assert_eq!(
            messenger.sent(),
            vec![format!(
                "text: {}",
                FailureKind::NotAnImage.user_message(Lang::En)
            )]
        );
        assert_eq!(queued(&backends).await, 0);
        // The answer is the update's one outcome: a redelivery is a duplicate.
        assert_eq!(
            intake.handle(photo(5, 10)).await.expect("handled"),
            Handled::Duplicate
        );
        assert_eq!(messenger.sent().len(), 1);
    }

    fn rework(update: i64, answered: i64) -> Inbound {
        Inbound::Rework {
            update_id: UpdateId(update),
            chat: ChatId(42),
            from: None,
            message_id: 9,
            answered,
            kind: JobKind::Detect,
        }
    }

    #[tokio::test]
    async fn an_action_replying_to_an_answer_queues_a_job_on_the_answered_original() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        let shown = PredictionId::new();
        let original = polybot_domain::ObjectKey::original(ChatId(42), shown, "jpg");
        let photo = polybot_storage::AnsweredPhoto {
            prediction_id: shown,
            original_key: original.clone(),
        };
        backends
            .table
            .record_answer(ChatId(42), 12, &photo)
            .await
            .expect("record");
        let handled = intake.handle(rework(10, 12)).await.expect("handled");
        let Handled::Queued(prediction) = handled else {
            panic!("{handled:?}");
        };
        assert_ne!(prediction, shown, "a new request of its own");
        let record = backends.table.get(prediction).await.expect("get");
        let record = record.expect("recorded");
        assert_eq!(
            record.original_key, original,
            "the original, not the answer's picture"
        );
        assert_eq!(queued(&backends).await, 1);
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
    }

    #[tokio::test]
    async fn an_action_replying_to_a_message_that_answered_no_photo_is_ignored_in_silence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        let handled = intake.handle(rework(11, 13)).await.expect("handled");
        assert_eq!(handled, Handled::Ignored);
        assert_eq!(queued(&backends).await, 0);
        assert!(messenger.sent().is_empty(), "{:?}", messenger.sent());
    }

    #[tokio::test]
    async fn past_its_retry_budget_an_update_gets_one_apology() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (intake, messenger, backends) = intake(dir.path()).await;
        let intake = intake.with_retry_budget(RetryBudget {
            max_attempts: 2,
            max_age: Duration::from_secs(600),
        });
        for _ in 0..2 {
            messenger.fail_next(
                Call::Download,
                MessengerError::Unavailable("Bad Gateway".into()),
            );
        }
        assert!(
            intake.handle(photo(6, 10)).await.is_err(),
            "first attempt retried"
        );
        assert_eq!(
            intake.handle(photo(6, 10)).await.expect("handled"),
            Handled::Failed
        );
        assert_eq!(
            messenger.sent(),
            vec![format!(
                "text: {}",
                FailureKind::Internal.user_message(Lang::En)
            )]
        );
        assert_eq!(
            intake.handle(photo(6, 10)).await.expect("handled"),
            Handled::Duplicate
        );
        assert_eq!(queued(&backends).await, 0);
    }
}
