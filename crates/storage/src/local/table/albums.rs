//! [`Albums`] on SQLite: the `albums` table, one row an album with its
//! items as JSON (the column keeps its first name, `photos`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::AlbumMember;
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::sqlite::sql_error;
use crate::local::{duration_ms, now_ms};
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums, Result, StorageError, UPDATE_DEDUPE_TTL};

#[async_trait]
impl Albums for LocalTable {
    async fn join_album(&self, key: &AlbumKey, item: &AlbumMember) -> Result<AlbumJoin> {
        let album = key.to_string();
        let item = item.clone();
        self.db
            .write(move |tx| {
                let mut photos = match read(tx, &album)? {
                    Some(stored) if stored.closed => return Ok(AlbumJoin::TooLate),
                    Some(stored) => stored.photos(&album)?,
                    None => BTreeMap::new(),
                };
                photos.insert(item.message_id(), item);
                let json = serde_json::to_string(&photos)
                    .map_err(|e| StorageError::invalid_from(format!("album {album}"), e))?;
                let now = now_ms();
                tx.execute(
                    "INSERT INTO albums (album_key, last_joined, photos, expires_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (album_key) DO UPDATE SET last_joined = ?2, photos = ?3",
                    params![
                        album,
                        now,
                        json,
                        now.saturating_add(duration_ms(UPDATE_DEDUPE_TTL))
                    ],
                )
                .map_err(sql_error)?;
                Ok(AlbumJoin::Joined)
            })
            .await
    }

    async fn close_album(&self, key: &AlbumKey, quiet: Duration) -> Result<AlbumClose> {
        let album = key.to_string();
        self.db
            .write(move |tx| {
                let Some(stored) = read(tx, &album)?.filter(|stored| !stored.closed) else {
                    return Ok(AlbumClose::AlreadyClosed);
                };
                let quiet_ms = duration_ms(quiet);
                let since = now_ms().saturating_sub(stored.last_joined);
                if since < quiet_ms {
                    let wait = u64::try_from(quiet_ms - since).unwrap_or(0);
                    return Ok(AlbumClose::Open {
                        wait: Duration::from_millis(wait),
                    });
                }
                tx.execute(
                    "UPDATE albums SET closed = 1 WHERE album_key = ?1",
                    params![album],
                )
                .map_err(sql_error)?;
                Ok(AlbumClose::Closed(
                    stored.photos(&album)?.into_values().collect(),
                ))
            })
            .await
    }
}

/// An album's row.
struct Stored {
    closed: bool,
    /// When the latest photo joined, in epoch milliseconds.
    last_joined: i64,
    /// JSON of the items by message id (so a redelivered item replaces
    /// itself), parsed only when they are needed.
    photos: String,
}

impl Stored {
    fn photos(&self, album: &str) -> Result<BTreeMap<i64, AlbumMember>> {
        serde_json::from_str(&self.photos)
            .map_err(|e| StorageError::invalid_from(format!("album {album}: stored photos"), e))
    }
}

fn read(tx: &rusqlite::Transaction<'_>, album: &str) -> Result<Option<Stored>> {
    tx.query_row(
        "SELECT closed, last_joined, photos FROM albums WHERE album_key = ?1",
        params![album],
        |r| {
            Ok(Stored {
                closed: r.get(0)?,
                last_joined: r.get(1)?,
                photos: r.get(2)?,
            })
        },
    )
    .optional()
    .map_err(sql_error)
}
