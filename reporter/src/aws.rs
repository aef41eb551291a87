//! The reporter's AWS adapters: instances from an Auto Scaling Group,
//! metrics to CloudWatch.

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use polybot_storage::aws::describe_error;

use crate::{ASG_DIMENSION, Datum, InstanceCounter, MetricSink, Unit};

/// The setting that names the group, for error messages.
pub const ASG_SETTING: &str = "POLYBOT_ASG_NAME";

/// Counts the `InService` instances of one Auto Scaling Group. Instances
/// still starting (`Pending`), in a lifecycle hook or leaving are not
/// counted: they are not taking jobs.
#[derive(Debug, Clone)]
pub struct AsgInstanceCounter {
    client: aws_sdk_autoscaling::Client,
    group: String,
}

impl AsgInstanceCounter {
    pub fn new(sdk: &SdkConfig, group: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_autoscaling::Client::new(sdk),
            group: group.into(),
        }
    }

    /// Start-up check: the group exists.
    pub async fn verify(&self) -> anyhow::Result<()> {
        self.in_service().await.map(|_| ())
    }
}

#[async_trait]
impl InstanceCounter for AsgInstanceCounter {
    async fn in_service(&self) -> anyhow::Result<u32> {
        if self.group.is_empty() {
            bail!("{ASG_SETTING} is not set");
        }
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.group)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{ASG_SETTING}={}: DescribeAutoScalingGroups failed: {}",
                    self.group,
                    describe_error(&e)
                )
            })?;
        let group = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(self.group.as_str()))
            .ok_or_else(|| anyhow!("{ASG_SETTING}={}: no such Auto Scaling Group", self.group))?;
        let n = group
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
            .count();
        u32::try_from(n).context("instance count")
    }
}

/// Publishes to CloudWatch under `namespace`, every value with the
/// dimension `AutoScalingGroupName=<group>`.
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    group: String,
}

impl CloudWatchSink {
    pub fn new(sdk: &SdkConfig, namespace: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(sdk),
            namespace: namespace.into(),
            group: group.into(),
        }
    }
}

#[async_trait]
impl MetricSink for CloudWatchSink {
    async fn publish(&self, data: &[Datum]) -> anyhow::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let now = DateTime::from(std::time::SystemTime::now());
        let dimension = Dimension::builder()
            .name(ASG_DIMENSION)
            .value(&self.group)
            .build();
        let data = data
            .iter()
            .map(|d| {
                MetricDatum::builder()
                    .metric_name(d.name)
                    .value(d.value)
                    .unit(match d.unit {
                        Unit::None => StandardUnit::None,
                        Unit::Seconds => StandardUnit::Seconds,
                    })
                    .timestamp(now)
                    .dimensions(dimension.clone())
                    .build()
            })
            .collect();
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "CloudWatch PutMetricData to namespace {} failed: {}",
                    self.namespace,
                    describe_error(&e)
                )
            })?;
        Ok(())
    }
}
