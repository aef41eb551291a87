//! [`Leases`] on DynamoDB: `update#<bot>#<update_id>` and `reply#<uuid>`
//! items, taken and given up with conditional writes on `done`,
//! `lease_until` and `holder`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use polybot_domain::now_epoch;

use super::{DynamoTable, expiry, get_bool, n, s};
use crate::{Claim, ClaimKey, LeaseId, Leases, Result, UPDATE_DEDUPE_TTL};

/// The hash key of a claim's item.
pub fn claim_pk(key: ClaimKey) -> String {
    match key {
        ClaimKey::Update(bot, u) => format!("update#{bot}#{u}"),
        ClaimKey::Reply(p) => format!("reply#{p}"),
        ClaimKey::Extra(p, extra) => format!("extra#{p}#{extra}"),
    }
}

impl DynamoTable {
    /// How long a claim's item is kept once the work is done: an update's
    /// while Telegram may deliver it again, a reply's or an extra's as long
    /// as its prediction.
    fn kept_for(&self, key: ClaimKey) -> Duration {
        match key {
            ClaimKey::Update(..) => UPDATE_DEDUPE_TTL,
            ClaimKey::Reply(_) | ClaimKey::Extra(..) => self.retention.as_duration(),
        }
    }
}

#[async_trait]
impl Leases for DynamoTable {
    async fn claim(&self, key: ClaimKey, lease: Duration) -> Result<Claim> {
        let pk = claim_pk(key);
        let holder = LeaseId::new();
        let now = now_epoch();
        let lease_until = now + lease.as_secs_f64();
        let expires = match key {
            // An abandoned lease cleans itself up like a finished one.
            ClaimKey::Update(..) => expiry(lease_until, self.kept_for(key)),
            ClaimKey::Reply(_) | ClaimKey::Extra(..) => expiry(now, self.kept_for(key)),
        };
        let update = self
            .update(&pk)
            .update_expression(
                "SET lease_until = :until, done = :false, holder = :holder, expires_at = :expires",
            )
            // DynamoDB deletes expired items only eventually (within days):
            // an expired claim counts as gone, so a reused update id (after
            // a week without updates Telegram numbers them afresh) is
            // handled, not dropped as a duplicate until the item is deleted.
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at <= :now \
                 OR (done = :false AND lease_until <= :now)",
            )
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(lease_until))
            .expression_attribute_values(":holder", s(holder.to_string()))
            .expression_attribute_values(":expires", expires)
            .send();
        if self.conditional("UpdateItem", &pk, update).await?.is_some() {
            return Ok(Claim::Acquired(holder));
        }
        // If the item vanished (released) in between, a retry can take it;
        // "in progress" makes the caller try again later.
        let item = self.get_item(&pk).await?;
        Ok(if get_bool(item.as_ref(), "done") {
            Claim::Done
        } else {
            Claim::InProgress
        })
    }

    async fn finish(&self, key: ClaimKey) -> Result<()> {
        let pk = claim_pk(key);
        self.update(&pk)
            .update_expression("SET done = :true, expires_at = :expires REMOVE lease_until")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":expires", expiry(now_epoch(), self.kept_for(key)))
            .send()
            .await
            .map(|_| ())
            .map_err(self.err("UpdateItem", &pk))
    }

    async fn release(&self, key: ClaimKey, lease: LeaseId) -> Result<()> {
        let pk = claim_pk(key);
        // Deleting (rather than expiring) the lease lets the next claim
        // succeed at once; the condition keeps a finished claim finished and
        // a newer holder's lease held.
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .condition_expression("done = :false AND holder = :holder")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":holder", s(lease.to_string()))
            .send();
        // A failed condition: done already, taken by someone else, or
        // nothing to release.
        self.conditional("DeleteItem", &pk, delete).await.map(drop)
    }

    async fn renew(&self, key: ClaimKey, lease: LeaseId, duration: Duration) -> Result<bool> {
        let pk = claim_pk(key);
        let update = self
            .update(&pk)
            .update_expression("SET lease_until = :until")
            .condition_expression("done = :false AND holder = :holder")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":holder", s(lease.to_string()))
            .expression_attribute_values(":until", n(now_epoch() + duration.as_secs_f64()))
            .send();
        Ok(self.conditional("UpdateItem", &pk, update).await?.is_some())
    }
}
