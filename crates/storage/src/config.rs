//! Choosing and connecting a backend from flags and environment variables:
//! `local` or `aws`, nothing else changes in the services.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Backends, DEFAULT_RETENTION, Result, Retention, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Files and SQLite under the data folder; survives restarts.
    Local,
    /// S3, SQS and DynamoDB.
    Aws,
}

/// The storage settings' environment variables, named once (the AWS ones
/// are in [`crate::aws`]).
pub const BACKEND_SETTING: &str = "POLYBOT_BACKEND";
pub const DATA_DIR_SETTING: &str = "POLYBOT_DATA_DIR";
/// Whole days records are kept for (see [`Retention`]).
pub const RETENTION_SETTING: &str = "POLYBOT_RETENTION_DAYS";
/// Where the local backend keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "polybot-data";

/// Storage settings shared by every service.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Storage backend: `local` (files and SQLite under --data-dir) or `aws` (S3, SQS, DynamoDB).
    #[arg(long, env = BACKEND_SETTING, value_enum, default_value_t = Backend::Local)]
    pub backend: Backend,
    /// Data folder of the local backend.
    #[arg(long, env = DATA_DIR_SETTING, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Local backend: seconds a received job stays invisible before redelivery.
    #[arg(long, env = "POLYBOT_LOCAL_VISIBILITY", default_value_t = 30)]
    pub local_visibility: u64,
    /// Local backend: receives before a job moves to the dead-letter queue
    /// (on AWS, the queue's redrive policy decides).
    #[arg(long, env = "POLYBOT_MAX_RECEIVES", default_value_t = 3)]
    pub max_receives: u32,
    /// Whole days (1 to 3650) that predictions, their claims, notices and
    /// answers are kept, and on the local backend its pictures (on AWS the
    /// bucket's lifecycle rule expires pictures: keep the two equal).
    #[arg(long, env = RETENTION_SETTING, default_value_t = DEFAULT_RETENTION)]
    pub retention_days: Retention,
    /// AWS region (aws backend).
    #[arg(long, env = crate::aws::REGION_SETTING)]
    pub region: Option<String>,
    /// An AWS-compatible endpoint instead of AWS (e.g. a local test server).
    #[arg(long, env = crate::aws::ENDPOINT_SETTING)]
    pub endpoint_url: Option<String>,
    /// S3 bucket for photos (aws backend).
    #[arg(long, env = crate::aws::BUCKET_SETTING)]
    pub bucket: Option<String>,
    /// SQS URL of the jobs queue (aws backend).
    #[arg(long, env = crate::aws::QUEUE_SETTING)]
    pub queue_url: Option<String>,
    /// SQS URL of the jobs queue's dead-letter queue (aws backend).
    #[arg(long, env = crate::aws::DLQ_SETTING)]
    pub dlq_url: Option<String>,
    /// DynamoDB table for predictions (aws backend).
    #[arg(long, env = crate::aws::TABLE_SETTING)]
    pub table: Option<String>,
    /// Seconds any one AWS call may take, retries included (aws backend);
    /// more than SQS's 20 s long poll.
    #[arg(long, env = crate::aws::TIMEOUT_SETTING, default_value_t = crate::aws::DEFAULT_OPERATION_TIMEOUT.as_secs())]
    pub aws_timeout: u64,
}

impl BackendArgs {
    /// A local backend in `data_dir` with default settings.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            backend: Backend::Local,
            data_dir: data_dir.into(),
            local_visibility: 30,
            max_receives: 3,
            retention_days: DEFAULT_RETENTION,
            region: None,
            endpoint_url: None,
            bucket: None,
            queue_url: None,
            dlq_url: None,
            table: None,
            aws_timeout: crate::aws::DEFAULT_OPERATION_TIMEOUT.as_secs(),
        }
    }

    /// The AWS settings, each required one named in the error if missing.
    pub fn aws_settings(&self) -> Result<crate::aws::AwsSettings> {
        fn need(v: &Option<String>, name: &str) -> Result<String> {
            v.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                StorageError::config(format!("{name} must be set for the aws backend"))
            })
        }
        if self.aws_timeout <= 20 {
            return Err(StorageError::config(format!(
                "{}={}: must be more than 20 seconds, SQS's longest long poll",
                crate::aws::TIMEOUT_SETTING,
                self.aws_timeout
            )));
        }
        Ok(crate::aws::AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            bucket: need(&self.bucket, "POLYBOT_BUCKET")?,
            queue_url: need(&self.queue_url, "POLYBOT_QUEUE_URL")?,
            dlq_url: need(&self.dlq_url, "POLYBOT_DLQ_URL")?,
            table: need(&self.table, "POLYBOT_TABLE")?,
            operation_timeout: Some(Duration::from_secs(self.aws_timeout)),
            retention: self.retention_days,
        })
    }

    /// Opens the chosen backend and checks it answers.
    pub async fn connect(&self) -> Result<Backends> {
        match self.backend {
            Backend::Local => {
                let dir = self.data_dir.clone();
                let options = crate::local::LocalOptions {
                    visibility_timeout: Duration::from_secs(self.local_visibility.max(1)),
                    max_receives: self.max_receives.max(1),
                    retention: self.retention_days,
                };
                tokio::task::spawn_blocking(move || crate::local::open(&dir, options))
                    .await
                    .map_err(|e| StorageError::config_from("opening the local backend", e))?
            }
            Backend::Aws => crate::aws::connect(&self.aws_settings()?).await,
        }
    }
}
