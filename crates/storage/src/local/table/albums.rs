//! [`Albums`] on SQLite: the `albums` table, one row an album with its
//! photos as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::AlbumPhoto;
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::sqlite::sql_error;
use crate::local::{duration_ms, now_ms};
use crate::{AlbumClose, AlbumJoin, AlbumKey, Albums, Result, StorageError, UPDATE_DEDUPE_TTL};

#[async_trait]
impl Albums for LocalTable {
    async fn join_album(&self, key: &AlbumKey, photo: &AlbumPhoto) -> Result<AlbumJoin> {
        let album = key.to_string();
        let photo = photo.clone();
        self.db
            .write(move |tx| {
                let row = tx
                    .query_row(
                        "SELECT closed, photos FROM albums WHERE album_key = ?1",
                        params![album],
                        |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)),
                    )
                    .optional()
                    .map_err(sql_error)?;
                let mut photos: BTreeMap<i64, AlbumPhoto> = match row {
                    Some((true, _)) => return Ok(AlbumJoin::TooLate),
                    Some((false, json)) => serde_json::from_str(&json).map_err(|e| {
                        StorageError::invalid_from(format!("album {album}: stored photos"), e)
                    })?,
                    None => Default::default(),
                };
                photos.insert(photo.message_id, photo);
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
                let row = tx
                    .query_row(
                        "SELECT closed, last_joined, photos FROM albums WHERE album_key = ?1",
                        params![album],
                        |r| {
                            Ok((
                                r.get::<_, bool>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, String>(2)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(sql_error)?;
                let Some((false, last_joined, json)) = row else {
                    return Ok(AlbumClose::AlreadyClosed);
                };
                let quiet_ms = duration_ms(quiet);
                let since = now_ms().saturating_sub(last_joined);
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
                let photos: BTreeMap<i64, AlbumPhoto> =
                    serde_json::from_str(&json).map_err(|e| {
                        StorageError::invalid_from(format!("album {album}: stored photos"), e)
                    })?;
                Ok(AlbumClose::Closed(photos.into_values().collect()))
            })
            .await
    }
}
