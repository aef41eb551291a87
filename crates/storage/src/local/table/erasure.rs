//! [`Erasure`] on SQLite: one IMMEDIATE transaction deletes a chat's rows
//! from every table that holds them (predictions, and the claims and
//! notices keyed by their ids; answers; albums keyed `<chat>:…`; deferred
//! updates whose JSON names the chat; settings), so another process sees
//! the chat whole or gone. The sweep deletes the rows whose `expires_at`
//! passed, predictions included: nothing else would, since no TTL runs
//! here.

use std::time::SystemTime;

use async_trait::async_trait;
use polybot_domain::{AnswerExtra, ChatId};
use rusqlite::params;

use super::LocalTable;
use super::leases::claim_key_text;
use crate::local::duration_ms;
use crate::local::sqlite::sql_error;
use crate::table::chat_of_update;
use crate::{ClaimKey, Erasure, Result};

/// Tables whose rows carry `expires_at` (epoch milliseconds), besides
/// `predictions`; their rows are also deleted in passing elsewhere.
const EXPIRING: [&str; 6] = [
    "claims",
    "notices",
    "answers",
    "albums",
    "deferred",
    "window_members",
];

#[async_trait]
impl Erasure for LocalTable {
    async fn erase_chat(&self, chat: ChatId) -> Result<u64> {
        self.db
            .write(move |tx| {
                let ids: Vec<String> = tx
                    .prepare("SELECT prediction_id FROM predictions WHERE chat_id = ?1")
                    .map_err(sql_error)?
                    .query_map(params![chat.0], |r| r.get(0))
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_error)?;
                let mut delete_claim = tx
                    .prepare_cached("DELETE FROM claims WHERE claim_key = ?1")
                    .map_err(sql_error)?;
                let mut delete_notice = tx
                    .prepare_cached("DELETE FROM notices WHERE prediction_id = ?1")
                    .map_err(sql_error)?;
                for text in &ids {
                    // Ids this build cannot read were not written by it.
                    let Ok(id) = text.parse() else { continue };
                    let claims = std::iter::once(ClaimKey::Reply(id))
                        .chain(AnswerExtra::ALL.map(|extra| ClaimKey::Extra(id, extra)));
                    for key in claims {
                        delete_claim
                            .execute(params![claim_key_text(key)])
                            .map_err(sql_error)?;
                    }
                    delete_notice.execute(params![text]).map_err(sql_error)?;
                }
                let erased = tx
                    .execute(
                        "DELETE FROM predictions WHERE chat_id = ?1",
                        params![chat.0],
                    )
                    .map_err(sql_error)?;
                tx.execute("DELETE FROM answers WHERE chat_id = ?1", params![chat.0])
                    .map_err(sql_error)?;
                // Album keys are `<chat>:<media_group_id>`; the colon keeps
                // chat 12 from taking chat 123's.
                let album_prefix = format!("{chat}:");
                tx.execute(
                    "DELETE FROM albums WHERE substr(album_key, 1, length(?1)) = ?1",
                    params![album_prefix],
                )
                .map_err(sql_error)?;
                // Kept updates are few (each is answered within seconds):
                // read them all and delete the chat's.
                let kept: Vec<(i64, i64, String)> = tx
                    .prepare("SELECT bot_id, update_id, body FROM deferred")
                    .map_err(sql_error)?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(sql_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(sql_error)?;
                for (bot, update, body) in kept {
                    if chat_of_update(&body) == Some(chat) {
                        tx.execute(
                            "DELETE FROM deferred WHERE bot_id = ?1 AND update_id = ?2",
                            params![bot, update],
                        )
                        .map_err(sql_error)?;
                    }
                }
                tx.execute(
                    "DELETE FROM chat_settings WHERE chat_id = ?1",
                    params![chat.0],
                )
                .map_err(sql_error)?;
                Ok(erased as u64)
            })
            .await
    }

    async fn sweep_expired(&self, now: SystemTime) -> Result<u64> {
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(duration_ms)
            .unwrap_or_default();
        self.db
            .write(move |tx| {
                let swept = tx
                    .execute(
                        "DELETE FROM predictions WHERE expires_at <= ?1",
                        params![now_ms],
                    )
                    .map_err(sql_error)?;
                for table in EXPIRING {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE expires_at <= ?1"),
                        params![now_ms],
                    )
                    .map_err(sql_error)?;
                }
                Ok(swept as u64)
            })
            .await
    }
}
