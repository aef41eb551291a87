//! Admission control: one user cannot slow everyone. A user may send so
//! many photos a minute, and a chat may have so many requests waiting;
//! past either, the photo is not taken and the chat is told to wait, at
//! most once a minute. The counts live in the shared table, so the limits
//! hold across every gateway.
//!
//! - **Photos a minute per user** ([`Limits::user_photos_per_minute`]):
//!   every photo counts, an album's each; counted in fixed one-minute
//!   windows. An album item past the limit is left out of its album.
//! - **Waiting requests per chat** ([`Limits::chat_pending`]): single
//!   photos and replies asking for an action; an album is one request
//!   (the photo limit bounds it). Read from the chat's recent records, so
//!   a burst that arrives all at once may let one or two more through.

use std::time::Duration;

use polybot_domain::{ChatId, Lang, PredictionStatus, UpdateId, UserId, now_epoch, t};
use polybot_storage::WindowKey;
use polybot_telemetry::metrics::Counter;
use std::sync::LazyLock;
use tracing::info;

use super::{Handled, Intake, IntakeError};

/// The window of the photo limit and of the "please wait" message.
pub const WINDOW: Duration = Duration::from_secs(60);

/// A request waiting longer than this is not counted as waiting: its job
/// was lost or ended without a record, and must not block the chat.
const PENDING_HORIZON: Duration = Duration::from_secs(15 * 60);

/// Configurable limits; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Photos one user may send in a minute (`POLYBOT_USER_PHOTOS_PER_MINUTE`).
    pub user_photos_per_minute: u32,
    /// Requests a chat may have waiting for their answer (`POLYBOT_CHAT_PENDING_LIMIT`).
    pub chat_pending: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            user_photos_per_minute: 10,
            chat_pending: 3,
        }
    }
}

impl Limits {
    /// No limits: for tests of other things.
    pub const NONE: Self = Self {
        user_photos_per_minute: 0,
        chat_pending: 0,
    };
}

/// Which limit a photo ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    UserRate(u32),
    ChatPending(u32),
}

impl Limit {
    /// Bounded label for the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRate(_) => "user_photos_per_minute",
            Self::ChatPending(_) => "chat_pending",
        }
    }

    /// What the chat is told.
    pub fn user_message(self, lang: Lang) -> String {
        match self {
            Self::UserRate(n) => t!(lang, "limit-user-rate", count = n),
            Self::ChatPending(n) => t!(lang, "limit-chat-pending", count = n),
        }
    }
}

static REFUSED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_admission_refused_total",
        "polybot.admission.refused",
        "Photos not taken because of a limit, by limit (user_photos_per_minute, chat_pending)",
        &["limit"],
    )
});

/// What is asking to be admitted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asking {
    pub chat: ChatId,
    pub from: Option<UserId>,
    /// The update asking: counted once however often it is delivered.
    pub update: UpdateId,
    /// A new request of its own (a photo, a reply asking for an action),
    /// not an item of an album.
    pub request: bool,
}

impl Asking {
    /// A photo or a reply asking for an action.
    pub fn request(chat: ChatId, from: Option<UserId>, update: UpdateId) -> Self {
        Self {
            chat,
            from,
            update,
            request: true,
        }
    }

    /// An item of an album, which is one request however many items.
    pub fn album_item(chat: ChatId, from: Option<UserId>, update: UpdateId) -> Self {
        Self {
            chat,
            from,
            update,
            request: false,
        }
    }
}

impl Intake {
    /// `Some` (how it was answered) when `asking` is over a limit and so
    /// not taken; `None` when it may go on. Counts the photo.
    pub(super) async fn admit(
        &self,
        asking: Asking,
        message_id: i64,
        lang: Lang,
    ) -> Result<Option<Handled>, IntakeError> {
        match self.over_limit(asking).await? {
            Some(limit) => self
                .refuse_over_limit(asking, message_id, limit, lang)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// The limit `asking` runs into, if any. Counts the photo.
    async fn over_limit(&self, asking: Asking) -> Result<Option<Limit>, IntakeError> {
        let limits = self.limits;
        if limits.user_photos_per_minute > 0 {
            // Without a sender (a message on behalf of a channel), the chat
            // stands for it.
            let user = asking.from.map_or(asking.chat.0, |u| u.0);
            let key = WindowKey::UserPhotos(user);
            let member = self.window_member(asking);
            let table = &self.backends.table;
            let count = table.count_in_window(&key, &member, WINDOW).await?;
            if count > u64::from(limits.user_photos_per_minute) {
                return Ok(Some(Limit::UserRate(limits.user_photos_per_minute)));
            }
        }
        if asking.request && limits.chat_pending > 0 {
            let limit = limits.chat_pending as usize;
            // The most recent records are enough: only so many can wait.
            let recent = self
                .backends
                .table
                .list_by_chat(asking.chat, limit * 4 + 8)
                .await?;
            let since = now_epoch() - PENDING_HORIZON.as_secs_f64();
            let waiting = recent
                .iter()
                .filter(|r| r.status == PredictionStatus::Pending && r.created_at >= since)
                .count();
            if waiting >= limit {
                return Ok(Some(Limit::ChatPending(limits.chat_pending)));
            }
        }
        Ok(None)
    }

    /// What a window counts of `asking`: its update, so that a redelivery
    /// (Telegram retrying, or this gateway answering 503 in an outage) is
    /// not a photo more.
    fn window_member(&self, asking: Asking) -> String {
        format!("{}:{}", self.bot, asking.update)
    }

    /// A photo past `limit`: the chat is told to wait, once a window (the
    /// update told is the window's first: if telling it failed, its
    /// redelivery tells it again).
    async fn refuse_over_limit(
        &self,
        asking: Asking,
        message_id: i64,
        limit: Limit,
        lang: Lang,
    ) -> Result<Handled, IntakeError> {
        REFUSED.inc(&[limit.as_str()]);
        let chat = asking.chat;
        let member = self.window_member(asking);
        let told = self
            .backends
            .table
            .count_in_window(&WindowKey::WaitNotices(chat), &member, WINDOW)
            .await?;
        if told > 1 {
            info!(
                limit = limit.as_str(),
                "over a limit; the chat was told this minute"
            );
            return Ok(Handled::Limited);
        }
        info!(
            limit = limit.as_str(),
            "over a limit; telling the chat to wait"
        );
        self.answer(chat, message_id, &limit.user_message(lang))
            .await?;
        Ok(Handled::Limited)
    }
}
