//! The albums concern: the items Telegram sent as one album (photos, and
//! others the answer names), collected until the album goes quiet and then
//! turned into one request.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{AlbumId, AlbumMember, ChatId};

use crate::Result;

/// Albums being put together.
#[async_trait]
pub trait Albums: Send + Sync + 'static {
    /// Adds an item to an album that is still open (idempotent for the
    /// same item: its message id); `TooLate` once the album was closed.
    async fn join_album(&self, key: &AlbumKey, item: &AlbumMember) -> Result<AlbumJoin>;
    /// Claims the album for `lease` if no item joined it for `quiet` and
    /// nobody holds it, atomically, so one caller (on any gateway) at a
    /// time has its items. The first claim closes the album (later items
    /// are too late), so every claim gets the same items. A claim the
    /// album is not [finished](Albums::finish_album) under lapses after
    /// `lease`: a closer that failed or died leaves the album to another.
    async fn close_album(
        &self,
        key: &AlbumKey,
        quiet: Duration,
        lease: Duration,
    ) -> Result<AlbumClose>;
    /// The album became its request (queued, or answered): it is no longer
    /// pending, and a later claim finds it [`AlbumClose::AlreadyClosed`].
    async fn finish_album(&self, key: &AlbumKey) -> Result<()>;
    /// Up to `limit` albums not finished, quiet for `quiet` and held by
    /// nobody, oldest first: what a gateway closes when the one that took
    /// their items stopped before it could (their closes lived in its
    /// memory only).
    async fn pending_albums(&self, quiet: Duration, limit: usize) -> Result<Vec<AlbumKey>>;
}

/// An album being put together: the chat and Telegram's `media_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlbumKey {
    pub chat: ChatId,
    pub album: AlbumId,
}

impl AlbumKey {
    /// The key from its [`Display`](std::fmt::Display) form, `chat:album`.
    pub fn parse(text: &str) -> Option<Self> {
        let (chat, album) = text.split_once(':')?;
        Some(Self {
            chat: ChatId(chat.parse().ok()?),
            album: AlbumId::parse(album.to_owned()).ok()?,
        })
    }
}

impl std::fmt::Display for AlbumKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.chat, self.album)
    }
}

/// What [`Albums::join_album`] did with a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbumJoin {
    /// The photo is part of the album (again, for a redelivery).
    Joined,
    /// The album was closed before this photo came: it is on its own.
    TooLate,
}

/// What [`Albums::close_album`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlbumClose {
    /// A photo came less than the quiet window ago: try again after `wait`.
    Open { wait: Duration },
    /// This call holds the album: its items, by message id. The caller
    /// turns them into one request, then finishes the album.
    Closed(Vec<AlbumMember>),
    /// Another caller holds it: its claim lapses after `wait` unless it
    /// finishes the album first.
    Held { wait: Duration },
    /// The album is finished (or there is no such album).
    AlreadyClosed,
}
