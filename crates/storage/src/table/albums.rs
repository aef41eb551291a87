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
    /// Closes the album if no photo joined it for `quiet`, atomically, so
    /// exactly one caller (on any gateway) gets its photos.
    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose>;
}

/// An album being put together: the chat and Telegram's `media_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlbumKey {
    pub chat: ChatId,
    pub album: AlbumId,
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
    /// This call closed the album: its items, by message id. The caller
    /// turns them into one request.
    Closed(Vec<AlbumMember>),
    /// Another caller closed it (or there is no such album).
    AlreadyClosed,
}
