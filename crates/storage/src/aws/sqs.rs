//! [`JobQueue`] on an SQS standard queue; the same type serves the jobs
//! queue and its dead-letter queue.
//!
//! - `receive` long-polls (SQS caps the wait at 20 s and a batch at 10
//!   messages, so larger requests are capped, not refused) and asks for the
//!   `ApproximateReceiveCount` and `SentTimestamp` system attributes.
//! - Message attributes travel as SQS `String` attributes. SQS refuses empty
//!   values, so an attribute with an empty value is left out (an empty
//!   attribute carries nothing a consumer could tell from an absent one);
//!   more than 10 attributes is reported as [`StorageError::Invalid`].
//! - Dead-lettering is the queue's redrive policy (set up by Terraform or
//!   [`super::provision`]): after `maxReceiveCount` receives SQS moves the
//!   message itself, so no code here counts receives.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};

use super::error::{classify, service_code};
use crate::{Attributes, Delivery, JobQueue, QueueStats, Receipt, Result, StorageError, Tenant};

const BACKEND: &str = "SQS";
/// SQS's limits.
const MAX_WAIT_SECS: u64 = 20;
const MAX_BATCH: usize = 10;
const MAX_ATTRIBUTES: usize = 10;
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;

/// One SQS queue, by URL.
#[derive(Debug, Clone)]
pub struct SqsJobQueue {
    client: Client,
    url: String,
}

impl SqsJobQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            url: queue_url.into(),
        }
    }

    /// A queue with a client of its own, for callers that need no other
    /// AWS service (the reporter).
    pub fn from_config(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Start-up check: the queue exists and we may use it. `setting` names
    /// where the URL came from (e.g. `POLYBOT_QUEUE_URL`) for the error.
    pub async fn verify(&self, setting: &str) -> Result<()> {
        self.attributes(setting, &[QueueAttributeName::QueueArn])
            .await
            .map(|_| ())
    }

    /// The queue's ARN (for a redrive policy) and its redrive policy's
    /// target ARN, if any; used to warn when the jobs queue is not wired
    /// to the configured DLQ.
    pub(crate) async fn arn_and_redrive_target(
        &self,
        setting: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let attrs = self
            .attributes(
                setting,
                &[
                    QueueAttributeName::QueueArn,
                    QueueAttributeName::RedrivePolicy,
                ],
            )
            .await?;
        let arn = attrs.get(&QueueAttributeName::QueueArn).cloned();
        let target = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_owned));
        Ok((arn, target))
    }

    async fn attributes(
        &self,
        setting: &str,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, String>> {
        if self.url.is_empty() {
            return Err(StorageError::config(format!("{setting} is not set")));
        }
        match self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
        {
            Ok(out) => Ok(out.attributes.unwrap_or_default()),
            Err(e) => Err(super::startup_error(
                setting,
                &self.url,
                "the queue does not exist or is not accessible",
                self.client.config().region(),
                classify(BACKEND, &format!("GetQueueAttributes {}", self.url), e),
            )),
        }
    }

    /// Maps "this receipt is stale" answers to `NotFound`, so callers can
    /// tell a lost lease from an outage.
    fn receipt_error(
        &self,
        call: &str,
        receipt: &Receipt,
        err: aws_sdk_sqs::error::SdkError<
            impl aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
            aws_sdk_sqs::config::http::HttpResponse,
        >,
    ) -> StorageError {
        match service_code(&err) {
            Some(
                "ReceiptHandleIsInvalid"
                | "InvalidReceiptHandle"
                | "MessageNotInflight"
                | "AWS.SimpleQueueService.MessageNotInflight",
            ) => StorageError::NotFound(format!("receipt {} on {}", short(&receipt.0), self.url)),
            _ => classify(BACKEND, &format!("{call} on {}", self.url), err),
        }
    }
}

/// SQS message attributes for `attributes`; `None` when there are none.
/// Empty values are dropped (SQS refuses them), not refused.
fn to_sqs_attributes(
    attributes: &Attributes,
) -> Result<Option<HashMap<String, MessageAttributeValue>>> {
    let present: Vec<(&String, &String)> =
        attributes.iter().filter(|(_, v)| !v.is_empty()).collect();
    for (name, _) in attributes.iter().filter(|(_, v)| v.is_empty()) {
        tracing::debug!(attribute = %name, "dropping an empty message attribute (SQS refuses them)");
    }
    if present.is_empty() {
        return Ok(None);
    }
    if present.len() > MAX_ATTRIBUTES {
        return Err(StorageError::invalid(format!(
            "SQS allows at most {MAX_ATTRIBUTES} message attributes, got {}",
            present.len()
        )));
    }
    let mut out = HashMap::with_capacity(present.len());
    for (name, value) in present {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| StorageError::invalid_from(format!("message attribute {name:?}"), e))?;
        out.insert(name.clone(), value);
    }
    Ok(Some(out))
}

/// Receipt handles are long; messages show their start.
fn short(s: &str) -> &str {
    s.get(..16).unwrap_or(s)
}

/// SQS takes whole seconds; round up so a short wait or a heartbeat is never
/// turned into "no wait" or "visible now".
fn ceil_secs(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    // `max` is well below i32::MAX.
    i32::try_from(secs.min(max)).unwrap_or(i32::MAX)
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    fn messaging_system(&self) -> &'static str {
        "aws_sqs"
    }

    async fn send_for(
        &self,
        tenant: Option<&Tenant>,
        body: &str,
        attributes: &Attributes,
    ) -> Result<()> {
        let attrs = to_sqs_attributes(attributes)?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_message_attributes(attrs)
            // On a standard queue the group id names the tenant of a fair
            // queue; it orders nothing.
            .set_message_group_id(tenant.map(|t| t.as_str().to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(BACKEND, &format!("SendMessage to {}", self.url), e))
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let batch = i32::try_from(max.min(MAX_BATCH)).unwrap_or(1);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(batch)
            .wait_time_seconds(ceil_secs(wait, MAX_WAIT_SECS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| classify(BACKEND, &format!("ReceiveMessage from {}", self.url), e))?;

        let mut deliveries = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let Some(receipt) = m.receipt_handle else {
                // Without a handle the message can be neither deleted nor
                // extended; SQS always sends one, so this is not expected.
                tracing::warn!(queue = %self.url, message_id = ?m.message_id, "SQS message without a receipt handle; skipped");
                continue;
            };
            let system = m.attributes.unwrap_or_default();
            let receive_count = system
                .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let sent_at = system
                .get(&MessageSystemAttributeName::SentTimestamp)
                .and_then(|v| v.parse::<f64>().ok())
                .map(|ms| ms / 1000.0)
                .unwrap_or_default();
            let attributes = m
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            deliveries.push(Delivery {
                body: m.body.unwrap_or_default(),
                attributes,
                receipt: Receipt(receipt),
                receive_count,
                sent_at,
            });
        }
        Ok(deliveries)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&receipt.0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.receipt_error("DeleteMessage", receipt, e))
    }

    async fn set_visibility(&self, receipt: &Receipt, timeout: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&receipt.0)
            .visibility_timeout(ceil_secs(timeout, MAX_VISIBILITY_SECS))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.receipt_error("ChangeMessageVisibility", receipt, e))
    }

    async fn stats(&self) -> Result<QueueStats> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| classify(BACKEND, &format!("GetQueueAttributes {}", self.url), e))?;
        let attrs = out.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| -> Result<u64> {
            match attrs.get(name) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| {
                    StorageError::invalid(format!("{} of {} is {v:?}", name.as_str(), self.url))
                }),
            }
        };
        Ok(QueueStats {
            visible: count(&QueueAttributeName::ApproximateNumberOfMessages)?,
            in_flight: count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
        })
    }

    async fn settings(&self) -> Result<crate::QueueSettings> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| classify(BACKEND, &format!("GetQueueAttributes {}", self.url), e))?;
        let attrs = out.attributes.unwrap_or_default();
        let visibility = attrs
            .get(&QueueAttributeName::VisibilityTimeout)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let max_receives = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| match p.get("maxReceiveCount")? {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .and_then(|n| u32::try_from(n).ok());
        Ok(crate::QueueSettings {
            visibility,
            max_receives,
        })
    }

    async fn check(&self) -> Result<()> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(BACKEND, &format!("GetQueueAttributes {}", self.url), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_timeouts_round_up_to_whole_seconds_within_sqs_limits() {
        assert_eq!(ceil_secs(Duration::ZERO, 20), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1), 20), 1);
        assert_eq!(ceil_secs(Duration::from_secs(5), 20), 5);
        assert_eq!(ceil_secs(Duration::from_secs(60), 20), 20);
    }

    #[test]
    fn empty_attribute_values_are_dropped_not_refused() {
        let mut attrs = Attributes::new();
        attrs.insert("traceparent".into(), "00-abc-def-01".into());
        attrs.insert("tracestate".into(), String::new());
        let out = to_sqs_attributes(&attrs)
            .expect("an empty value is no error")
            .expect("the non-empty attribute is kept");
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out["traceparent"].string_value(),
            Some("00-abc-def-01"),
            "{out:?}"
        );
        let only_empty: Attributes = [("tracestate".to_owned(), String::new())].into();
        assert!(to_sqs_attributes(&only_empty).expect("no error").is_none());
    }
}
