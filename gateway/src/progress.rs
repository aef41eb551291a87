//! What the user sees while a job is worked on.
//!
//! - **At once:** Telegram's "sending photo…" chat action, repeated every
//!   few seconds (Telegram shows one for five) until the answer: one per
//!   chat however many of its jobs wait, none while this gateway has a
//!   backlog ([`ProgressConfig::actions_up_to`]), and only from the spare
//!   sends of Telegram's global budget (the messenger's part).
//! - **Only when slow:** a written notice, when no answer came within
//!   [`ProgressConfig::notice_after`]. A fast answer comes alone, and is
//!   not queued behind a notice in its chat.
//! - **Never outliving the job:** the notice is attached to the prediction
//!   in the shared table; the reply (on whichever gateway) removes it, or
//!   turns it into the error message. Whichever of the two comes second
//!   cleans up ([`polybot_storage::Notices::attach_notice`]).
//!
//! All of it is best effort: a lost chat action or notice never delays or
//! changes the answer. A gateway that restarts stops showing progress for
//! its jobs; their notices are still removed by the reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polybot_domain::{ChatId, JobKind, Lang, PredictionId, t};
use polybot_storage::PredictionTable;
use polybot_telemetry::tasks::Supervisor;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use crate::messenger::Messenger;

/// Chats whose last chat action is remembered before the stale ones are
/// forgotten (each is only needed for [`ProgressConfig::action_every`]).
const FORGET_ACTIONS_ABOVE: usize = 4096;

/// The notice shown when a detection's answer is slow.
pub fn detect_notice_text(lang: Lang) -> String {
    t!(lang, "notice-detect")
}

/// The notice for a filter's job.
pub fn filter_notice_text(lang: Lang) -> String {
    t!(lang, "notice-filter")
}

/// The notice for a clip's job; its percentage is added as the detector
/// reports it ([`clip_notice`]).
pub fn clip_notice_text(lang: Lang) -> String {
    t!(lang, "notice-clip")
}

/// The clip notice with how far the job has got.
pub fn clip_notice(done: u32, total: u32, lang: Lang) -> String {
    let percent = u64::from(done.min(total)) * 100 / u64::from(total.max(1));
    t!(lang, "notice-clip-progress", percent = percent)
}

/// Shows a long job's progress in its notice, if a notice is shown and
/// the job is not answered yet (on whichever gateway it was sent): the
/// notice is edited. `Ok(true)` when it was.
pub async fn show_clip_progress(
    table: &dyn PredictionTable,
    messenger: &dyn Messenger,
    chat: ChatId,
    prediction: PredictionId,
    (done, total): (u32, u32),
    lang: Lang,
) -> Result<bool, polybot_storage::StorageError> {
    let notice = table.notice(prediction).await?;
    let (Some(message_id), false) = (notice.message_id, notice.answered) else {
        return Ok(false);
    };
    match messenger
        .edit_text(chat, message_id, &clip_notice(done, total, lang))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) => {
            // Best effort: the answer replaces the notice anyway.
            debug!(error = %e, "could not show the progress in the notice");
            Ok(false)
        }
    }
}

/// The notice for a job of `kind`.
pub fn notice_text(kind: JobKind, lang: Lang) -> String {
    match kind {
        JobKind::Detect => detect_notice_text(lang),
        JobKind::Filter(_) => filter_notice_text(lang),
    }
}

/// When progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct ProgressConfig {
    /// A written notice goes out when no answer came within this long.
    pub notice_after: Duration,
    /// The chat action is repeated this often (Telegram shows one for 5 s).
    pub action_every: Duration,
    /// Progress stops after this long whatever happens (the job's own
    /// deadline answers the user long before).
    pub give_up_after: Duration,
    /// Chat actions stop while more jobs than this wait here: under a
    /// backlog they would only add to Telegram's load (the notice still
    /// tells a user whose answer is slow).
    pub actions_up_to: usize,
}

impl ProgressConfig {
    /// Long enough that a usual answer (well under a second) comes alone.
    pub const DEFAULT_NOTICE_AFTER: Duration = Duration::from_secs(2);
}

impl Default for ProgressConfig {
    fn default() -> Self {
        Self {
            notice_after: Self::DEFAULT_NOTICE_AFTER,
            action_every: Duration::from_secs(4),
            give_up_after: Duration::from_secs(15 * 60),
            actions_up_to: 200,
        }
    }
}

/// One job's progress to show.
#[derive(Debug, Clone)]
pub struct Job {
    pub prediction: PredictionId,
    pub chat: ChatId,
    /// The user's message, which the notice quotes.
    pub reply_to: i64,
    /// The notice to show when the answer is slow ([`notice_text`]).
    pub notice: String,
}

/// Shows progress for the jobs this gateway queued. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    messenger: Arc<dyn Messenger>,
    table: Arc<dyn PredictionTable>,
    config: ProgressConfig,
    /// Each job's stop signal, with a number that tells apart a job
    /// tracked again (a redelivered update) from the earlier tracking.
    active: Arc<Mutex<HashMap<PredictionId, (u64, CancellationToken)>>>,
    /// When each chat last showed a chat action (from any of its jobs).
    last_action: Arc<Mutex<HashMap<ChatId, Instant>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
    shutdown: CancellationToken,
    /// Runs each job's progress as a task of its own.
    supervisor: Supervisor,
}

impl Progress {
    /// Progress tasks run under `supervisor`, and stop with it at the latest.
    pub fn new(
        messenger: Arc<dyn Messenger>,
        table: Arc<dyn PredictionTable>,
        config: ProgressConfig,
        supervisor: Supervisor,
    ) -> Self {
        Self {
            messenger,
            table,
            config,
            active: Arc::default(),
            last_action: Arc::default(),
            next: Arc::default(),
            shutdown: supervisor.cancel_token().child_token(),
            supervisor,
        }
    }

    /// Starts showing progress for a job that was just queued.
    pub fn track(&self, job: Job) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let stop = self.shutdown.child_token();
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let earlier = self.lock().insert(job.prediction, (number, stop.clone()));
        if let Some((_, earlier)) = earlier {
            // A redelivered update: one progress per job is enough.
            earlier.cancel();
        }
        let this = self.clone();
        let span =
            tracing::info_span!("progress", prediction_id = %job.prediction, chat_id = job.chat.0);
        self.supervisor.spawn(
            "progress",
            async move {
                let prediction = job.prediction;
                this.show(job, &stop).await;
                let mut active = this.lock();
                if active.get(&prediction).is_some_and(|(n, _)| *n == number) {
                    active.remove(&prediction);
                }
            }
            .instrument(span),
        );
    }

    /// The job was answered here: stop showing progress at once.
    pub fn answered(&self, prediction: PredictionId) {
        if let Some((_, stop)) = self.lock().remove(&prediction) {
            stop.cancel();
        }
    }

    /// Stops every progress task (at shutdown). A notice being sent at
    /// that moment is still attached, so the reply removes it.
    pub fn close(&self) {
        self.shutdown.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PredictionId, (u64, CancellationToken)>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn show(&self, job: Job, stop: &CancellationToken) {
        let start = Instant::now();
        let give_up = start + self.config.give_up_after;
        let mut notice_due = Some(start + self.config.notice_after);
        let mut next_action = start;
        let mut first = true;
        loop {
            let wake = notice_due.map_or(next_action, |n| n.min(next_action));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(wake) => {}
            }
            let now = Instant::now();
            if now >= give_up {
                return;
            }
            let notice_now = notice_due.is_some_and(|due| now >= due);
            let action_now = !notice_now && now >= next_action;
            if action_now {
                next_action = now + self.config.action_every;
            }
            // Nothing to send (another job of this chat showed the action,
            // or there is a backlog): no need to read the table either.
            let send = notice_now || (action_now && self.action_due(job.chat, now));
            if !send {
                continue;
            }
            // The job was queued a moment ago: only later is it worth asking
            // whether another gateway answered it.
            if !std::mem::take(&mut first) && !self.still_working(job.prediction).await {
                return;
            }
            if notice_now {
                notice_due = None;
                self.notice(&job, stop).await;
            } else {
                self.messenger.show_progress(job.chat).await;
            }
        }
    }

    /// Whether `chat` should show the chat action now: not while this
    /// gateway has a backlog, and once per [`ProgressConfig::action_every`]
    /// for all of the chat's jobs. Takes the turn when it says yes.
    fn action_due(&self, chat: ChatId, now: Instant) -> bool {
        if self.lock().len() > self.config.actions_up_to {
            return false;
        }
        let every = self.config.action_every;
        let mut last = self.last_action.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(&chat).is_some_and(|at| now < *at + every) {
            return false;
        }
        if last.len() >= FORGET_ACTIONS_ABOVE {
            last.retain(|_, at| now < *at + every);
        }
        last.insert(chat, now);
        true
    }

    /// Whether the job is not answered yet (errors count as "yes":
    /// showing progress a little too long is harmless).
    async fn still_working(&self, prediction: PredictionId) -> bool {
        match self.table.notice(prediction).await {
            Ok(notice) => !notice.answered,
            Err(e) => {
                debug!(error = %e, "could not read whether the job was answered");
                true
            }
        }
    }

    /// Sends the notice and attaches it to the prediction; removes it again
    /// when the answer went out meanwhile.
    async fn notice(&self, job: &Job, stop: &CancellationToken) {
        // Awaited even when the answer comes meanwhile: a notice still
        // queued is then dropped, but one already on its way goes out, and
        // must be attached (or removed) like any other.
        let sent = self
            .messenger
            .send_notice(job.chat, &job.notice, Some(job.reply_to), stop.clone())
            .await;
        let Some(message_id) = sent else {
            return;
        };
        match self.table.attach_notice(job.prediction, message_id).await {
            Ok(true) => {}
            Ok(false) => {
                debug!("the answer went out before the notice; removing the notice");
                self.remove(job.chat, message_id).await;
            }
            Err(e) => {
                // Unattached, nobody else would remove it.
                warn!(error = %e, "could not attach the notice; removing it");
                self.remove(job.chat, message_id).await;
            }
        }
    }

    async fn remove(&self, chat: ChatId, message_id: i64) {
        if let Err(e) = self.messenger.delete(chat, message_id).await {
            warn!(error = %e, message_id, "could not remove the notice");
        }
    }
}

#[cfg(test)]
mod tests {
    use polybot_telemetry::tasks::Components;

    use super::*;
    use crate::fake::{FakeMessenger, local_backends};

    fn job(chat: i64) -> Job {
        Job {
            prediction: PredictionId::new(),
            chat: ChatId(chat),
            reply_to: 1,
            notice: detect_notice_text(Lang::En),
        }
    }

    /// Progress for `jobs` over `secs` seconds (no notice: it would come
    /// after them); the chats their chat actions were shown in.
    async fn actions_shown(config: ProgressConfig, jobs: &[Job], secs: u64) -> Vec<ChatId> {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let messenger = FakeMessenger::new();
        let supervisor = Supervisor::new(CancellationToken::new(), Components::default());
        let progress = Progress::new(
            messenger.clone(),
            Arc::clone(&backends.table),
            ProgressConfig {
                notice_after: Duration::from_secs(3600),
                ..config
            },
            supervisor,
        );
        for job in jobs {
            progress.track(job.clone());
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        progress.close();
        messenger.actions()
    }

    #[tokio::test]
    async fn a_clips_progress_edits_its_notice_until_the_answer_and_never_without_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let table = backends.table.as_ref();
        let messenger = FakeMessenger::new();
        let (chat, id) = (ChatId(5), PredictionId::new());
        // No notice yet (a quick clip): nothing to edit.
        let shown =
            show_clip_progress(table, messenger.as_ref(), chat, id, (3, 30), Lang::En).await;
        assert!(!shown.expect("read"));
        assert!(table.attach_notice(id, 77).await.expect("attach"));
        let shown =
            show_clip_progress(table, messenger.as_ref(), chat, id, (12, 30), Lang::En).await;
        assert!(shown.expect("read"));
        // Answered: the notice is being replaced; no more edits.
        table.close_notice(id).await.expect("close");
        let shown =
            show_clip_progress(table, messenger.as_ref(), chat, id, (29, 30), Lang::En).await;
        assert!(!shown.expect("read"));
        assert_eq!(
            messenger.sent(),
            ["edit 77: Looking for objects in your video\u{2026} 40%"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_chat_with_many_waiting_jobs_shows_one_chat_action_per_period() {
        let mut jobs: Vec<Job> = (0..10).map(|_| job(1)).collect();
        jobs.push(job(2));
        // 0 s, 4 s and 8 s: three periods in nine seconds.
        let shown = actions_shown(ProgressConfig::default(), &jobs, 9).await;
        let in_chat = |chat: i64| shown.iter().filter(|c| c.0 == chat).count();
        assert_eq!(in_chat(1), 3, "ten jobs, one action per period: {shown:?}");
        assert_eq!(in_chat(2), 3, "{shown:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_chat_action_is_shown_while_the_gateway_has_a_backlog() {
        let config = ProgressConfig {
            actions_up_to: 5,
            ..ProgressConfig::default()
        };
        let jobs: Vec<Job> = (0..6).map(job).collect();
        assert_eq!(actions_shown(config, &jobs, 9).await, []);
        let jobs: Vec<Job> = (0..5).map(job).collect();
        assert_eq!(actions_shown(config, &jobs, 1).await.len(), 5);
    }
}
