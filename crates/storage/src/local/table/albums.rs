//! [`Albums`] on SQLite: the `albums` table, one row an album with its
//! items as JSON (the column keeps its first name, `photos`), whether it is
//! closed to new items, which closer holds it until when, and whether it
//! became its request.

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

    async fn close_album(
        &self,
        key: &AlbumKey,
        quiet: Duration,
        lease: Duration,
    ) -> Result<AlbumClose> {
        let album = key.to_string();
        self.db
            .write(move |tx| {
                let Some(stored) = read(tx, &album)?.filter(|stored| !stored.finished) else {
                    return Ok(AlbumClose::AlreadyClosed);
                };
                let now = now_ms();
                let after = |until: i64| {
                    Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0))
                };
                let quiet_until = stored.last_joined.saturating_add(duration_ms(quiet));
                if !stored.closed && now < quiet_until {
                    return Ok(AlbumClose::Open {
                        wait: after(quiet_until),
                    });
                }
                if now < stored.claimed_until {
                    return Ok(AlbumClose::Held {
                        wait: after(stored.claimed_until),
                    });
                }
                tx.execute(
                    "UPDATE albums SET closed = 1, claimed_until = ?2 WHERE album_key = ?1",
                    params![album, now.saturating_add(duration_ms(lease))],
                )
                .map_err(sql_error)?;
                Ok(AlbumClose::Closed(
                    stored.photos(&album)?.into_values().collect(),
                ))
            })
            .await
    }

    async fn finish_album(&self, key: &AlbumKey) -> Result<()> {
        let album = key.to_string();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE albums SET closed = 1, finished = 1 WHERE album_key = ?1",
                    params![album],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn pending_albums(&self, quiet: Duration, limit: usize) -> Result<Vec<AlbumKey>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut query = tx
                    .prepare(
                        "SELECT album_key FROM albums
                         WHERE finished = 0 AND last_joined <= ?1 AND claimed_until <= ?2
                           AND expires_at > ?2
                         ORDER BY last_joined LIMIT ?3",
                    )
                    .map_err(sql_error)?;
                let keys = query
                    .query_map(
                        params![now.saturating_sub(duration_ms(quiet)), now, limit],
                        |r| r.get::<_, String>(0),
                    )
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(sql_error)?;
                // A key this build cannot read is not one it wrote: skipped.
                Ok(keys.iter().filter_map(|k| AlbumKey::parse(k)).collect())
            })
            .await
    }
}

/// An album's row.
struct Stored {
    closed: bool,
    finished: bool,
    /// Until when a closer holds the album, in epoch milliseconds.
    claimed_until: i64,
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
        "SELECT closed, last_joined, photos, finished, claimed_until FROM albums
         WHERE album_key = ?1",
        params![album],
        |r| {
            Ok(Stored {
                closed: r.get(0)?,
                last_joined: r.get(1)?,
                photos: r.get(2)?,
                finished: r.get(3)?,
                claimed_until: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(sql_error)
}
