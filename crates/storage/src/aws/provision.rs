//! Creating the AWS resources the adapters expect, for tests and local
//! development against an AWS-compatible server (moto). Production
//! resources come from Terraform; this mirrors what it creates, with a
//! short visibility timeout and a small receive limit so tests are quick.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::dynamo::{CHAT_INDEX, TTL_ATTRIBUTE};
use super::error::classify;
use super::{AwsSettings, s3_client};
use crate::{Result, StorageError};

/// What to create. Names derive from `prefix`, which must be lowercase
/// letters, digits and dashes (it becomes a bucket name).
#[derive(Debug, Clone)]
pub struct ProvisionSpec {
    pub prefix: String,
    /// The jobs queue's redrive policy: receives before dead-lettering.
    pub max_receives: u32,
    /// The jobs queue's default visibility timeout.
    pub visibility_timeout: Duration,
}

impl ProvisionSpec {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            max_receives: 3,
            visibility_timeout: Duration::from_secs(60),
        }
    }
}

/// Creates bucket `<prefix>-images` (versioned), queues `<prefix>-jobs` and
/// `<prefix>-jobs-dlq` (with the redrive policy) and table
/// `<prefix>-predictions` (hash key `pk`, GSI, TTL on `expires_at`), and
/// returns the settings that point at them.
pub async fn provision_for_tests(sdk: &SdkConfig, spec: &ProvisionSpec) -> Result<AwsSettings> {
    let bucket = format!("{}-images", spec.prefix);
    let table = format!("{}-predictions", spec.prefix);

    // S3: outside us-east-1 a bucket needs its region as location constraint.
    let s3 = s3_client(sdk);
    let region = sdk.region().map(|r| r.as_ref().to_owned());
    let mut create = s3.create_bucket().bucket(&bucket);
    if let Some(r) = region.as_deref().filter(|r| *r != "us-east-1") {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(r))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| classify("S3", &format!("CreateBucket {bucket}"), e))?;
    // Versioned, as Terraform's images bucket is: erasing a chat must take
    // the noncurrent versions and delete markers too, and the tests see it.
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("S3", &format!("PutBucketVersioning {bucket}"), e))?;

    // SQS: the DLQ first, so the jobs queue's redrive policy can name it.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq_name = format!("{}-jobs-dlq", spec.prefix);
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await
        .map_err(|e| classify("SQS", &format!("CreateQueue {dlq_name}"), e))?
        .queue_url
        .ok_or_else(|| StorageError::invalid(format!("CreateQueue {dlq_name} returned no URL")))?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify("SQS", &format!("GetQueueAttributes {dlq_url}"), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| StorageError::invalid(format!("{dlq_url} has no QueueArn")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receives.to_string(),
    })
    .to_string();
    let queue_name = format!("{}-jobs", spec.prefix);
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .set_attributes(Some(HashMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                spec.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ])))
        .send()
        .await
        .map_err(|e| classify("SQS", &format!("CreateQueue {queue_name}"), e))?
        .queue_url
        .ok_or_else(|| {
            StorageError::invalid(format!("CreateQueue {queue_name} returned no URL"))
        })?;

    // DynamoDB: on-demand, so no capacity to size.
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |name: &str, ty: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
    };
    let key = |name: &str, ty: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(ty)
            .build()
    };
    let invalid =
        |e: aws_sdk_dynamodb::error::BuildError| StorageError::invalid_from("a stored path", e);
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S).map_err(invalid)?)
        .attribute_definitions(attr("chat_id", ScalarAttributeType::N).map_err(invalid)?)
        .attribute_definitions(attr("time", ScalarAttributeType::N).map_err(invalid)?)
        .key_schema(key("pk", KeyType::Hash).map_err(invalid)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(CHAT_INDEX)
                .key_schema(key("chat_id", KeyType::Hash).map_err(invalid)?)
                .key_schema(key("time", KeyType::Range).map_err(invalid)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(|e| classify("DynamoDB", &format!("CreateTable {table}"), e))?;
    ddb.update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(|e| classify("DynamoDB", &format!("UpdateTimeToLive {table}"), e))?;

    Ok(AwsSettings {
        region,
        endpoint_url: sdk.endpoint_url().map(str::to_owned),
        bucket,
        queue_url,
        dlq_url,
        table,
        operation_timeout: None,
        retention: crate::DEFAULT_RETENTION,
    })
}
