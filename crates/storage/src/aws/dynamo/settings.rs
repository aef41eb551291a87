//! [`Preferences`] on DynamoDB: a `settings#<chat>` item per chat that ever
//! chose something, holding its settings as JSON and a `version` that each
//! change raises, and the one `model#classes` item.
//!
//! A change reads the item (strongly consistent), applies the change and
//! puts the item back only if its version is still the one read (an
//! optimistic lock): of two gateways changing one chat at once, one wins and
//! the other reads again and reapplies its change on top, so neither is
//! lost. None of these items carries `chat_id`, `time` or `expires_at`:
//! they stay out of the chat index and are kept until changed.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::{ChatId, ChatSettings, SettingsChange, now_epoch};

use super::{BACKEND, DynamoTable, Item, get_n, get_s, n, s};
use crate::{Preferences, Result, StorageError};

/// How many times a change is tried while other writers keep winning. A
/// loss means another change of the same chat was written in between, so
/// this many writers racing on one chat all get through even in the worst
/// order (far more than people pressing buttons in one chat ever are).
const CHANGE_ATTEMPTS: u32 = 10;

/// The hash key of `chat`'s settings item.
pub fn settings_pk(chat: ChatId) -> String {
    format!("settings#{chat}")
}

/// The hash key of the model's classes item.
pub const MODEL_CLASSES_PK: &str = "model#classes";

/// The settings and version of a `settings#<chat>` item.
fn read_settings(pk: &str, item: &Item) -> Result<(ChatSettings, i64)> {
    let json = get_s(item, "settings")
        .ok_or_else(|| StorageError::invalid(format!("item {pk}: no settings")))?;
    let settings = serde_json::from_str(json)
        .map_err(|e| StorageError::invalid_from(format!("item {pk}: settings"), e))?;
    let version = get_n(item, "version")
        .ok_or_else(|| StorageError::invalid(format!("item {pk}: no numeric version")))?;
    Ok((settings, version))
}

/// A short random pause before attempt `attempt` (from 1), so that writers
/// that just collided do not collide again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let random = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
    Duration::from_millis(random % (10 * u64::from(attempt) + 1))
}

#[async_trait]
impl Preferences for DynamoTable {
    async fn chat_settings(&self, chat: ChatId) -> Result<ChatSettings> {
        let pk = settings_pk(chat);
        // Strongly consistent: a photo sent right after a change is
        // handled with it.
        match self.get_item(&pk).await? {
            Some(item) => read_settings(&pk, &item).map(|(settings, _)| settings),
            None => Ok(ChatSettings::default()),
        }
    }

    async fn change_chat_settings(
        &self,
        chat: ChatId,
        change: SettingsChange,
    ) -> Result<ChatSettings> {
        let pk = settings_pk(chat);
        for attempt in 0..CHANGE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let read = match self.get_item(&pk).await? {
                Some(item) => Some(read_settings(&pk, &item)?),
                None => None,
            };
            let (current, version) = read.unzip();
            let changed = current.unwrap_or_default().with(change.clone());
            let json = serde_json::to_string(&changed)
                .map_err(|e| StorageError::invalid_from(format!("item {pk}: new settings"), e))?;
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("settings", s(json))
                .item("version", n(version.unwrap_or(0).saturating_add(1)));
            // Written only over what was read: nothing (a first change) or
            // the same version.
            let put = match version {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(v) => put
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v)),
            };
            if self
                .conditional("PutItem", &pk, put.send())
                .await?
                .is_some()
            {
                return Ok(changed);
            }
            // Another change came in between: read it and apply ours on top.
        }
        // Contention, which passes: the caller may try again.
        Err(StorageError::Unavailable {
            backend: BACKEND,
            what: format!(
                "PutItem {} {pk}: other changes won {CHANGE_ATTEMPTS} times in a row",
                self.table
            ),
            source: None,
        })
    }

    async fn publish_model_classes(&self, classes: &[String]) -> Result<()> {
        let json = serde_json::to_string(classes).map_err(|e| {
            StorageError::invalid_from(format!("item {MODEL_CLASSES_PK}: classes"), e)
        })?;
        // Unconditional: the last detector to start wins. UpdateItem, not
        // PutItem: the detectors' role may update items, not put them.
        self.update(MODEL_CLASSES_PK)
            .update_expression("SET classes = :c, updated_at = :t")
            .expression_attribute_values(":c", s(json))
            .expression_attribute_values(":t", n(now_epoch()))
            .send()
            .await
            .map_err(self.err("UpdateItem", MODEL_CLASSES_PK))?;
        Ok(())
    }

    async fn model_classes(&self) -> Result<Option<Vec<String>>> {
        let Some(item) = self.get_item(MODEL_CLASSES_PK).await? else {
            return Ok(None);
        };
        let json = get_s(&item, "classes")
            .ok_or_else(|| StorageError::invalid(format!("item {MODEL_CLASSES_PK}: no classes")))?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| StorageError::invalid_from(format!("item {MODEL_CLASSES_PK}: classes"), e))
    }
}
