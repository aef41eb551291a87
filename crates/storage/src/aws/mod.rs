//! AWS adapters: S3 objects, SQS jobs (and dead letters), a DynamoDB
//! prediction table, and the Telegram secrets from Secrets Manager.
//!
//! Services call [`connect`] with plain [`AwsSettings`] (their command line
//! parsing fills it from `AWS_REGION`, `AWS_ENDPOINT_URL`, `POLYBOT_BUCKET`,
//! `POLYBOT_QUEUE_URL`, `POLYBOT_DLQ_URL`, `POLYBOT_TABLE`) and get
//! [`Backends`]; no SDK type crosses into business logic. [`connect`]
//! checks every resource once at start-up, so a wrong setting fails the
//! service at once with a message that names the setting and its value,
//! rather than on the first photo.
//!
//! Every SDK call has a deadline: [`AwsSettings::operation_timeout`]
//! (`POLYBOT_AWS_TIMEOUT`, default [`DEFAULT_OPERATION_TIMEOUT`]) bounds
//! each call, retries included, and connecting is bounded by
//! [`CONNECT_TIMEOUT`]; a call that runs out is
//! [`StorageError::Unavailable`], so callers retry or report it.
//!
//! Credentials come from the SDK's default chain (environment, profile,
//! web identity, the instance role). With an endpoint URL set (moto, or
//! another AWS-compatible server) S3 is addressed path-style, since such
//! servers do not serve `bucket.host` names.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::{Backends, Result, Retention, StorageError};

mod dynamo;
mod error;
#[cfg(feature = "test-util")]
mod provision;
mod s3;
pub mod secrets;
mod sqs;

pub use dynamo::{
    BACKLOG_PK, CHAT_INDEX, DynamoTable, MODEL_CLASSES_PK, TTL_ATTRIBUTE, answer_pk, claim_pk,
    notice_pk, prediction_pk, settings_pk,
};
pub use error::describe_error;
#[cfg(feature = "test-util")]
pub use provision::{ProvisionSpec, provision_for_tests};
pub use s3::S3ObjectStore;
pub use secrets::{TELEGRAM_SECRET_FIELDS, TelegramSecrets, telegram_secrets};
pub use sqs::SqsJobQueue;

/// Setting names, as the services spell them; errors quote them.
pub const REGION_SETTING: &str = "AWS_REGION";
pub const ENDPOINT_SETTING: &str = "AWS_ENDPOINT_URL";
pub const BUCKET_SETTING: &str = "POLYBOT_BUCKET";
pub const QUEUE_SETTING: &str = "POLYBOT_QUEUE_URL";
pub const DLQ_SETTING: &str = "POLYBOT_DLQ_URL";
pub const TABLE_SETTING: &str = "POLYBOT_TABLE";
pub const TIMEOUT_SETTING: &str = "POLYBOT_AWS_TIMEOUT";

/// How long one SDK call may take, retries included, unless configured.
/// Above SQS's longest long poll (20 s), which a receive waits out.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection to an AWS endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the AWS resources are. Plain data: the services fill it from
/// their command line and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`; required.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: an AWS-compatible server instead of AWS.
    pub endpoint_url: Option<String>,
    /// `POLYBOT_BUCKET`
    pub bucket: String,
    /// `POLYBOT_QUEUE_URL`
    pub queue_url: String,
    /// `POLYBOT_DLQ_URL`
    pub dlq_url: String,
    /// `POLYBOT_TABLE`
    pub table: String,
    /// `POLYBOT_AWS_TIMEOUT`: the deadline of every SDK call, retries
    /// included; `None` is [`DEFAULT_OPERATION_TIMEOUT`].
    pub operation_timeout: Option<Duration>,
    /// `POLYBOT_RETENTION_DAYS`: how long the table keeps records (their
    /// TTL); the default is [`crate::DEFAULT_RETENTION`].
    pub retention: Retention,
}

impl AwsSettings {
    /// The SDK timeouts these settings ask for.
    pub fn timeouts(&self) -> TimeoutConfig {
        let operation = self.operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT);
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(operation))
            .operation_attempt_timeout(operation)
            .operation_timeout(operation)
            .build()
    }
}

/// Loads the SDK configuration: the region and endpoint from `settings`,
/// everything else (credentials, retries) from the SDK's defaults.
///
/// The region is required here rather than looked up by the SDK (profile,
/// instance metadata): an explicit `AWS_REGION` is what the deployment sets,
/// and a missing one is then a clear error instead of a slow probe.
pub async fn load_sdk_config(settings: &AwsSettings) -> Result<SdkConfig> {
    let region = settings
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            StorageError::config(format!(
                "{REGION_SETTING} is not set: the AWS backend needs a region (e.g. {REGION_SETTING}=eu-west-1)"
            ))
        })?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .timeout_config(settings.timeouts());
    if let Some(endpoint) = settings
        .endpoint_url
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(StorageError::config(format!(
                "{ENDPOINT_SETTING}={endpoint}: not an http:// or https:// URL"
            )));
        }
        loader = loader.endpoint_url(endpoint);
    }
    Ok(loader.load().await)
}

/// An S3 client for `sdk`, path-style when a custom endpoint is set.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// `sdk` with the timeouts of `settings` (a caller's own SDK configuration,
/// e.g. a test's, gets them too).
fn with_timeouts(sdk: &SdkConfig, settings: &AwsSettings) -> SdkConfig {
    sdk.to_builder().timeout_config(settings.timeouts()).build()
}

/// Loads the SDK configuration and connects; see [`connect_with`].
pub async fn connect(settings: &AwsSettings) -> Result<Backends> {
    let sdk = load_sdk_config(settings).await?;
    connect_with(&sdk, settings).await
}

/// Builds the adapters on an already loaded SDK configuration (tests bring
/// their own credentials this way) and checks that the bucket, both queues
/// and the table exist and are usable. The region and endpoint in
/// `settings` are not used here: they are in `sdk`.
pub async fn connect_with(sdk: &SdkConfig, settings: &AwsSettings) -> Result<Backends> {
    let sdk = &with_timeouts(sdk, settings);
    let objects = S3ObjectStore::new(s3_client(sdk), &settings.bucket);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let jobs = SqsJobQueue::new(sqs.clone(), &settings.queue_url);
    let dead_letters = SqsJobQueue::new(sqs, &settings.dlq_url);
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table)
        .with_retention(settings.retention);

    // Independent checks: run them together, report the first failure in a
    // fixed order so the message does not depend on timing.
    let (b, q, d, t) = tokio::join!(
        objects.verify(BUCKET_SETTING),
        jobs.arn_and_redrive_target(QUEUE_SETTING),
        dead_letters.arn_and_redrive_target(DLQ_SETTING),
        table.verify(TABLE_SETTING),
    );
    b?;
    let (_, redrive_target) = q?;
    let (dlq_arn, _) = d?;
    t?;
    // A missing or different redrive policy is a deployment mistake but
    // not fatal: jobs still run, failing ones just never reach the DLQ.
    match (redrive_target, dlq_arn) {
        (None, _) => tracing::warn!(
            queue = %settings.queue_url,
            "{QUEUE_SETTING} has no redrive policy: failing jobs will be retried until they expire instead of moving to {DLQ_SETTING}"
        ),
        (Some(target), Some(dlq)) if target != dlq => tracing::warn!(
            queue = %settings.queue_url, %target, dlq = %dlq,
            "{QUEUE_SETTING}'s redrive policy targets another queue than {DLQ_SETTING}"
        ),
        _ => {}
    }

    Ok(Backends {
        objects: Arc::new(objects),
        jobs: Arc::new(jobs),
        dead_letters: Arc::new(dead_letters),
        table: Arc::new(table),
        retention: settings.retention,
    })
}

/// A start-up check failed: name the setting and its value, and the region
/// it was looked up in (a resource that exists in another region than
/// `AWS_REGION` looks missing). An outage stays
/// [`StorageError::Unavailable`] (the setting may be fine; the caller may
/// retry), anything else becomes [`StorageError::Config`].
fn startup_error(
    setting: &str,
    value: &str,
    what: &str,
    region: Option<&Region>,
    err: StorageError,
) -> StorageError {
    match err {
        StorageError::Unavailable {
            backend,
            what,
            source,
        } => StorageError::Unavailable {
            backend,
            what: format!(
                "could not check {setting}={value} (is {ENDPOINT_SETTING}/{REGION_SETTING} right and the service reachable?): {what}"
            ),
            source,
        },
        other => {
            let region = region.map_or_else(|| "(unset)".to_owned(), |r| r.to_string());
            StorageError::config_from(
                format!("{setting}={value}: {what} in {REGION_SETTING}={region}"),
                other,
            )
        }
    }
}
