//! [`Backlog`] on DynamoDB: the one `backlog#costs` item, holding each
//! queued job's extra cost as a top-level attribute of its own,
//! `c_<prediction id, 32 hex digits>` = `{extra: N, until: N}` (a map).
//!
//! One attribute per job, rather than one map attribute of entries, since
//! `SET costs.<id> = …` fails on an item that has no `costs` map yet:
//! `SET #entry = :entry` needs no map and creates the item if absent, so
//! an add is one unconditional UpdateItem, and a removal one `REMOVE`
//! (nothing to remove is no error). Every call is an UpdateItem or a
//! GetItem: the detectors' role may update items, not put them, and the
//! reporter's may only get this item.
//!
//! The sum is one GetItem (eventually consistent: the metric is sampled
//! every 30 s anyway) adding the entries whose `until` is still ahead.
//! Entries past their `until` (a job whose removal was lost) are pruned on
//! add, since the reporter's role may only read: the add returns the whole
//! item, and if it holds expired entries a second UpdateItem removes up to
//! [`PRUNE_BATCH`] of them, each only if still expired (a job re-added
//! meanwhile keeps its fresh entry; the prune then fails as a whole and is
//! left to the next add). So the item holds the jobs queued or running,
//! plus expired leftovers only until the next add: at about 70 bytes an
//! entry, DynamoDB's 400 KB item limit is thousands of clips away. The
//! item has no `expires_at` (TTL must not delete live entries) nor
//! `chat_id`/`time`, so it stays out of the chat index.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use polybot_domain::{PredictionId, now_epoch};

use super::{DynamoTable, Item, get_n, n};
use crate::{Backlog, Result, StorageError};

/// The hash key of the one item that holds the backlog's extra costs (the
/// reporter's role may read only it: Terraform's `dynamodb:LeadingKeys`).
pub const BACKLOG_PK: &str = "backlog#costs";

/// The prefix of an entry's attribute name; the rest is the job's id.
const ENTRY_PREFIX: &str = "c_";

/// At most this many expired entries are pruned per add, so the prune's
/// expression stays far below DynamoDB's 4 KB limit.
const PRUNE_BATCH: usize = 50;

/// The attribute that holds `id`'s entry.
fn entry_name(id: PredictionId) -> String {
    format!("{ENTRY_PREFIX}{}", id.as_uuid().simple())
}

/// `(extra, until)` of every entry of the item.
fn entries(item: &Item) -> Result<Vec<(&str, u64, f64)>> {
    item.iter()
        .filter(|(name, _)| name.starts_with(ENTRY_PREFIX))
        .map(|(name, value)| {
            let entry = value.as_m().ok();
            let extra = entry.and_then(|m| get_n::<u64>(m, "extra"));
            let until = entry.and_then(|m| get_n::<f64>(m, "until"));
            match (extra, until) {
                (Some(extra), Some(until)) => Ok((name.as_str(), extra, until)),
                _ => Err(StorageError::invalid(format!(
                    "item {BACKLOG_PK}: entry {name} is not {{extra: N, until: N}}"
                ))),
            }
        })
        .collect()
}

impl DynamoTable {
    /// Removes the item's expired entries among `item`'s (up to
    /// [`PRUNE_BATCH`]), each only if it is still expired or gone.
    /// Housekeeping: a failure is logged, not returned.
    async fn prune_backlog(&self, item: &Item) {
        let now = now_epoch();
        let expired: Vec<&str> = match entries(item) {
            Ok(entries) => entries
                .into_iter()
                .filter(|&(_, _, until)| until <= now)
                .map(|(name, _, _)| name)
                .take(PRUNE_BATCH)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "backlog: not pruned");
                return;
            }
        };
        if expired.is_empty() {
            return;
        }
        let mut remove = self
            .update(BACKLOG_PK)
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":now", n(now));
        let mut conditions = Vec::with_capacity(expired.len());
        for (i, name) in expired.iter().enumerate() {
            remove = remove.expression_attribute_names(format!("#e{i}"), *name);
            conditions.push(format!("(attribute_not_exists(#e{i}) OR #e{i}.#u <= :now)"));
        }
        let names: Vec<String> = (0..expired.len()).map(|i| format!("#e{i}")).collect();
        let sent = remove
            .update_expression(format!("REMOVE {}", names.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send();
        match self.conditional("UpdateItem", BACKLOG_PK, sent).await {
            Ok(Some(_)) => {
                tracing::debug!(pruned = expired.len(), "backlog: expired entries removed")
            }
            // One was added again meanwhile: the next add prunes.
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "backlog: expired entries not removed"),
        }
    }
}

#[async_trait]
impl Backlog for DynamoTable {
    async fn add_cost(&self, id: PredictionId, extra: u32, until: f64) -> Result<()> {
        crate::table::check_until(until)?;
        let entry = AttributeValue::M(HashMap::from([
            ("extra".to_owned(), n(extra)),
            ("until".to_owned(), n(until)),
        ]));
        let out = self
            .update(BACKLOG_PK)
            .update_expression("SET #entry = :entry")
            .expression_attribute_names("#entry", entry_name(id))
            .expression_attribute_values(":entry", entry)
            // The whole item, to see whether anything needs pruning.
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(self.err("UpdateItem", BACKLOG_PK))?;
        if let Some(item) = &out.attributes {
            self.prune_backlog(item).await;
        }
        Ok(())
    }

    async fn remove_cost(&self, id: PredictionId) -> Result<()> {
        self.update(BACKLOG_PK)
            .update_expression("REMOVE #entry")
            .expression_attribute_names("#entry", entry_name(id))
            .send()
            .await
            .map_err(self.err("UpdateItem", BACKLOG_PK))?;
        Ok(())
    }

    async fn extra_cost(&self) -> Result<u64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(BACKLOG_PK.to_owned()))
            .send()
            .await
            .map_err(self.err("GetItem", BACKLOG_PK))?;
        let Some(item) = out.item else {
            return Ok(0);
        };
        let now = now_epoch();
        Ok(entries(&item)?
            .into_iter()
            .filter(|&(_, _, until)| until > now)
            .fold(0u64, |sum, (_, extra, _)| sum.saturating_add(extra)))
    }
}
