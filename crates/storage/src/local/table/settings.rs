//! [`Preferences`] on SQLite: the `chat_settings` table, one row per chat
//! that ever chose something (its settings as JSON), and the one-row
//! `model_classes` table. A change is one IMMEDIATE transaction (read,
//! apply, write), which holds the database's write lock from the read on,
//! so two processes changing one chat cannot lose either change.

use async_trait::async_trait;
use polybot_domain::{ChatId, ChatSettings, SettingsChange};
use rusqlite::{OptionalExtension, params};

use super::LocalTable;
use crate::local::now_ms;
use crate::local::sqlite::sql_error;
use crate::{Preferences, Result, StorageError};

/// The stored settings of `chat`, read from their JSON.
fn parse_settings(chat: ChatId, json: &str) -> Result<ChatSettings> {
    serde_json::from_str(json)
        .map_err(|e| StorageError::invalid_from(format!("the settings of chat {chat}"), e))
}

#[async_trait]
impl Preferences for LocalTable {
    async fn chat_settings(&self, chat: ChatId) -> Result<ChatSettings> {
        let json: Option<String> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT settings FROM chat_settings WHERE chat_id = ?1",
                    params![chat.0],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error)
            })
            .await?;
        // No row: the chat never chose, so it has the defaults.
        json.map_or_else(|| Ok(ChatSettings::default()), |j| parse_settings(chat, &j))
    }

    async fn change_chat_settings(
        &self,
        chat: ChatId,
        change: SettingsChange,
    ) -> Result<ChatSettings> {
        self.db
            .write(move |tx| {
                let row: Option<(String, i64)> = tx
                    .query_row(
                        "SELECT settings, version FROM chat_settings WHERE chat_id = ?1",
                        params![chat.0],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql_error)?;
                let (current, version) = match row {
                    // Unreadable settings fail the change rather than being
                    // replaced by the defaults plus one change.
                    Some((json, version)) => (parse_settings(chat, &json)?, version),
                    None => (ChatSettings::default(), 0),
                };
                let changed = current.with(change);
                let json = serde_json::to_string(&changed).map_err(|e| {
                    StorageError::invalid_from(format!("the new settings of chat {chat}"), e)
                })?;
                // The version is not needed for atomicity here (the
                // transaction is); it counts changes as DynamoDB's does.
                tx.execute(
                    "INSERT INTO chat_settings (chat_id, settings, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (chat_id) DO UPDATE SET settings = ?2, version = ?3",
                    params![chat.0, json, version.saturating_add(1)],
                )
                .map_err(sql_error)?;
                Ok(changed)
            })
            .await
    }

    async fn publish_model_classes(&self, classes: &[String]) -> Result<()> {
        let json = serde_json::to_string(classes)
            .map_err(|e| StorageError::invalid_from("the model's classes", e))?;
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO model_classes (id, classes, updated_at) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET classes = ?1, updated_at = ?2",
                    params![json, now_ms()],
                )
                .map_err(sql_error)
                .map(drop)
            })
            .await
    }

    async fn model_classes(&self) -> Result<Option<Vec<String>>> {
        let json: Option<String> = self
            .db
            .call(|conn| {
                conn.query_row("SELECT classes FROM model_classes WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql_error)
            })
            .await?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StorageError::invalid_from("the model's classes", e))
        })
        .transpose()
    }
}
