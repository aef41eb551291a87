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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use polybot_domain::{
    Action, AlbumAction, AlbumId, AlbumPhoto, AlbumPhotos, BotId, ChatId, FailureKind,
    JOB_SCHEMA_VERSION, Job, JobKind, ObjectKey, PredictionId, PredictionRecord, PredictionStatus,
    UpdateId,
};
use polybot_storage::{
    AlbumClose, AlbumJoin, AlbumKey, Attributes, Backends, ClaimKey, Once, PutMode, StorageError,
    run_once,
};
use tracing::{Instrument, info, warn};

use crate::inbound::{BotUsername, Command, Inbound, PhotoRef, Refusal};
use crate::messenger::{Messenger, MessengerError};
use crate::progress::Progress;

/// The answer to `/start`: what the bot is for, and what to do.
pub const START_TEXT: &str = "Hi! I find the objects in photos. Send me a photo and I\u{2019}ll reply \
with what I see, such as \u{201c}person \u{d7}2, car \u{d7}1\u{201d}, and the photo with a box \
around each. /help lists everything I can do.";

/// The answer to `/detect` (or another action) with no photo to look at.
pub const DETECT_HINT: &str = "Send /detect as the caption of a photo, or as a reply to one, \
and I\u{2019}ll find the objects in it. The other actions work the same way, e.g. \
\u{201c}blur 16\u{201d}: /help lists them.";

/// The answer to `/help` and to messages the bot cannot analyse: every
/// action, how to ask for it, and an example. In groups the bot is asked by
/// name, so the examples name it once its username is known.
pub fn help_text(me: Option<&BotUsername>) -> String {
    let detect = me.map_or_else(|| "/detect".to_owned(), |me| format!("/detect{me}"));
    format!(
        "Send me a photo (or a picture as a file, up to 20 MB) with no caption or the caption \
         \u{201c}detect\u{201d}, and I\u{2019}ll find the objects in it: I reply with the counts, \
         such as \u{201c}person \u{d7}2, car \u{d7}1\u{201d}, and the photo with a box around \
         each object.\n\n\
         In a group, ask me by name: caption a photo {detect}, or reply {detect} to a photo.\n\n\
         {actions}\n\n\
         /start \u{2013} what I do\n\
         /help \u{2013} this message\n\
         /detect \u{2013} find objects (a photo\u{2019}s caption, or a reply to a photo)",
        actions = polybot_domain::ACTIONS_HELP,
    )
}

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
}

/// How many deliveries of one update are tried, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    pub max_attempts: u32,
    pub max_age: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_age: Duration::from_secs(10 * 60),
        }
    }
}

/// Deliveries seen per update (in memory: a restart starts the count again).
#[derive(Default)]
struct Attempts {
    seen: Mutex<HashMap<(BotId, UpdateId), (Instant, u32)>>,
}

impl Attempts {
    /// Counts one more attempt; whether the budget is now spent.
    fn count(&self, key: (BotId, UpdateId), budget: RetryBudget) -> (u32, bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, (first, _)| first.elapsed() < budget.max_age * 2);
        }
        let entry = seen.entry(key).or_insert((Instant::now(), 0));
        entry.1 += 1;
        let spent = entry.1 >= budget.max_attempts || entry.0.elapsed() >= budget.max_age;
        (entry.1, spent)
    }

    fn forget(&self, key: (BotId, UpdateId)) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }
}

static POISON: std::sync::LazyLock<polybot_telemetry::metrics::Counter> =
    std::sync::LazyLock::new(|| {
        polybot_telemetry::metrics::Counter::new(
            "polybot_updates_given_up_total",
            "polybot.updates.given_up",
            "Updates that could not be handled, by what was done (apologised, skipped, unreadable)",
            &["result"],
        )
    });

/// Counts an update that was given up on.
pub fn given_up(result: &'static str) {
    POISON.inc(&[result]);
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
        }
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
    pub async fn handle(&self, inbound: Inbound) -> Result<Handled, IntakeError> {
        let result = self.handle_inner(&inbound).await;
        if let Ok(h) = &result {
            tracing::Span::current().record("outcome", h.as_str());
        }
        result
    }

    async fn handle_inner(&self, inbound: &Inbound) -> Result<Handled, IntakeError> {
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
        let key = ClaimKey::Update(self.bot, update);
        let work = async {
            let (attempt, spent) = self.attempts.count((self.bot, update), self.budget);
            match self.process(inbound).await {
                Ok(handled) => Ok(handled),
                Err(e) if e.is_retryable() && !spent => {
                    warn!(error = %e, attempt, "could not handle the update; Telegram will deliver it again");
                    Err(e)
                }
                Err(e) => self.give_up(inbound, chat, attempt, e).await,
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
            && let Inbound::Photo {
                message_id, kind, ..
            } = inbound
            && let Some(progress) = &self.progress
        {
            // Off the request path: its own task, best effort.
            progress.track(crate::progress::Job {
                prediction: *prediction,
                chat,
                reply_to: *message_id,
                notice: crate::progress::notice_text(*kind),
            });
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
    ) -> Result<Handled, IntakeError> {
        let reply_to = match inbound {
            Inbound::Photo { message_id, .. }
            | Inbound::AlbumPhoto { message_id, .. }
            | Inbound::Refused { message_id, .. }
            | Inbound::Command { message_id, .. }
            | Inbound::Other { message_id, .. } => Some(*message_id),
            Inbound::Ignored { .. } | Inbound::Deferred { .. } => None,
        };
        warn!(error = %error, attempt, "giving up on the update; telling the user");
        match self
            .messenger
            .send_text(chat, FailureKind::Internal.user_message(), reply_to)
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

    async fn process(&self, inbound: &Inbound) -> Result<Handled, IntakeError> {
        match inbound {
            Inbound::Ignored { .. } => Ok(Handled::Ignored),
            Inbound::Deferred { .. } => Err(IntakeError::NotIntroduced),
            Inbound::Other {
                chat,
                message_id,
                what,
                ..
            } => {
                info!(what, "answering with help");
                self.answer(*chat, *message_id, &help_text(self.me())).await
            }
            Inbound::Command {
                chat,
                message_id,
                command,
                ..
            } => {
                info!(command = command.as_str(), "answering a command");
                let text = match command {
                    Command::Start => START_TEXT.to_owned(),
                    Command::Help => help_text(self.me()),
                    Command::DetectWithoutPhoto => DETECT_HINT.to_owned(),
                };
                self.answer(*chat, *message_id, &text).await
            }
            Inbound::AlbumPhoto {
                update_id,
                chat,
                message_id,
                photo,
                album,
                caption,
            } => {
                self.accept_album_photo(
                    *update_id,
                    *chat,
                    *message_id,
                    photo,
                    album,
                    caption.as_deref(),
                )
                .await
            }
            Inbound::Refused {
                chat,
                message_id,
                refusal,
                ..
            } => {
                info!(
                    refusal = refusal.as_str(),
                    "answering a caption we cannot carry out"
                );
                self.answer(*chat, *message_id, &refusal.to_string()).await
            }
            Inbound::Photo {
                update_id,
                chat,
                message_id,
                photo,
                kind,
            } => {
                self.accept_photo(*update_id, *chat, *message_id, photo, *kind)
                    .await
            }
        }
    }

    /// A text answer quoting the user's message.
    async fn answer(
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

    /// Downloads the photo and stores it under this update's key. `Err`
    /// carries what was answered instead (too large, not an image).
    async fn store_original(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
    ) -> Result<Result<ObjectKey, Handled>, IntakeError> {
        let refuse = |kind: FailureKind| async move {
            self.answer(chat, message_id, kind.user_message()).await
        };
        if photo.size > self.max_download {
            info!(size = photo.size, "photo over the download limit");
            return refuse(FailureKind::TooLarge).await.map(Err);
        }
        let bytes = match self
            .messenger
            .download(&photo.file_id, self.max_download)
            .await
        {
            Ok(b) => b,
            Err(MessengerError::TooLarge { .. }) => {
                return refuse(FailureKind::TooLarge).await.map(Err);
            }
            Err(MessengerError::Rejected(reason)) => {
                warn!(%reason, "Telegram would not serve the file");
                return refuse(FailureKind::NotAnImage).await.map(Err);
            }
            Err(e) => return Err(e.into()),
        };
        let original_key = ObjectKey::original(
            chat,
            PredictionId::for_update(self.bot, update_id),
            photo.extension,
        );
        let store = tracing::info_span!(
            "store original",
            key = %original_key,
            size = bytes.len(),
        );
        match self
            .backends
            .objects
            .put(
                &original_key,
                bytes,
                &photo.content_type,
                PutMode::CreateOnly,
            )
            .instrument(store)
            .await
        {
            // An earlier delivery stored this very photo.
            Ok(()) | Err(StorageError::AlreadyExists(_)) => Ok(Ok(original_key)),
            Err(e) => Err(e.into()),
        }
    }

    async fn accept_photo(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
        kind: JobKind,
    ) -> Result<Handled, IntakeError> {
        let original_key = match self
            .store_original(update_id, chat, message_id, photo)
            .await?
        {
            Ok(key) => key,
            Err(answered) => return Ok(answered),
        };
        let prediction_id = PredictionId::for_update(self.bot, update_id);
        tracing::Span::current().record("prediction_id", tracing::field::display(prediction_id));
        let job = Job::photo(
            prediction_id,
            chat,
            message_id,
            update_id,
            original_key,
            kind,
        );
        // Once the job is durable the update is done (run_once finishes
        // it): a job sent twice by two deliveries has one prediction id,
        // and the reply claim answers it once.
        self.submit(job).await
    }

    /// A photo of an album: stored, and added to the album in the table.
    /// The album becomes one request once it is quiet ([`Intake::close_album`]).
    async fn accept_album_photo(
        &self,
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: &PhotoRef,
        album: &AlbumId,
        caption: Option<&str>,
    ) -> Result<Handled, IntakeError> {
        let original_key = match self
            .store_original(update_id, chat, message_id, photo)
            .await?
        {
            Ok(key) => key,
            Err(answered) => return Ok(answered),
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

    /// Records the request and puts its job on the queue (idempotent on
    /// the prediction id).
    async fn submit(&self, job: Job) -> Result<Handled, IntakeError> {
        let prediction_id = job.prediction_id;
        let created = self
            .backends
            .table
            .create(&PredictionRecord::pending(&job))
            .instrument(tracing::info_span!("save prediction"))
            .await;
        match created {
            Ok(()) => {}
            Err(StorageError::AlreadyExists(_)) => {
                // An earlier delivery got this far; if its job already ran,
                // there is nothing left to do.
                let existing = self.backends.table.get(prediction_id).await?;
                if existing.is_some_and(|r| r.status != PredictionStatus::Pending) {
                    info!(%prediction_id, "an earlier delivery's job already ran");
                    return Ok(Handled::Duplicate);
                }
            }
            Err(e) => return Err(e.into()),
        }
        // The producer span: its context travels in the message attributes,
        // so the detector's job span continues this trace as its child.
        let publish = tracing::info_span!(
            "jobs.publish",
            otel.name = "jobs publish",
            otel.kind = "producer",
            messaging.system = self.backends.jobs.messaging_system(),
            messaging.operation.type = "send",
            messaging.destination.name = "jobs",
            prediction_id = %prediction_id,
        );
        async {
            let mut attributes = Attributes::new();
            attributes.insert("schema_version".into(), JOB_SCHEMA_VERSION.to_string());
            polybot_telemetry::inject_context(&mut attributes);
            self.backends.jobs.send(&job.to_json(), &attributes).await
        }
        .instrument(publish)
        .await?;
        info!(%prediction_id, kind = %job.input.action(), photos = job.input.photo_count(), "photo queued");
        Ok(Handled::Queued(prediction_id))
    }
}

#[cfg(test)]
mod tests {
    //! Intake's own decisions, through a fake messenger and the embedded
    //! backend: one job per update, a failed attempt never blocks the
    //! retry, and files we cannot take are answered.
    use std::sync::Arc;

    use super::*;
    use crate::fake::{Call, FakeMessenger, local_backends};

    const LIMIT: u64 = 1024;

    fn photo(update: i64, size: u64) -> Inbound {
        Inbound::Photo {
            update_id: UpdateId(update),
            chat: ChatId(42),
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
        let too_large = format!("text: {}", FailureKind::TooLarge.user_message());
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
            vec![format!("text: {}", FailureKind::NotAnImage.user_message())]
        );
        assert_eq!(queued(&backends).await, 0);
        // The answer is the update's one outcome: a redelivery is a duplicate.
        assert_eq!(
            intake.handle(photo(5, 10)).await.expect("handled"),
            Handled::Duplicate
        );
        assert_eq!(messenger.sent().len(), 1);
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
            vec![format!("text: {}", FailureKind::Internal.user_message())]
        );
        assert_eq!(
            intake.handle(photo(6, 10)).await.expect("handled"),
            Handled::Duplicate
        );
        assert_eq!(queued(&backends).await, 0);
    }
}
