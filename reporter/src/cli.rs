//! The `reporter` command line: every flag also reads its environment
//! variable (docs/CONFIG-SPEC.md), and `--help` documents them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use polybot_storage::JobQueue;
use polybot_storage::aws::{AwsSettings, QUEUE_SETTING, SqsJobQueue};
use polybot_storage::local::{JOBS_QUEUE, LocalQueue, QueueConfig};

use crate::aws::{ASG_SETTING, AsgInstanceCounter, CloudWatchSink};
use crate::{FixedInstances, InstanceCounter, LogSink, MetricSink, ReportSettings, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The embedded queue in the data folder; metrics are logged.
    Local,
    /// SQS, the Auto Scaling Group and CloudWatch.
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Publishes the detector Auto Scaling Group's scaling metric,
/// BacklogPerInstance = queued jobs ÷ in-service instances, and the average
/// processing time, to CloudWatch.
#[derive(Debug, Clone, Parser)]
#[command(name = "reporter", version)]
pub struct Args {
    /// Where the queue is: `local` (embedded, in --data-dir) or `aws` (SQS).
    #[arg(long, env = "POLYBOT_BACKEND", value_enum, default_value = "local")]
    pub backend: Backend,

    /// Data folder of the local backend (shared with the gateway and detector).
    #[arg(long, env = "POLYBOT_DATA_DIR", default_value = "./polybot-data")]
    pub data_dir: PathBuf,

    /// AWS region (aws backend).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// An AWS-compatible endpoint to use instead of AWS (e.g. a local moto server).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// URL of the SQS jobs queue whose backlog is reported (aws backend).
    #[arg(long, env = "POLYBOT_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// Name of the detectors' Auto Scaling Group: its InService instances are
    /// counted, and it is the metrics' AutoScalingGroupName dimension.
    /// Required with the aws backend.
    #[arg(long, env = "POLYBOT_ASG_NAME")]
    pub asg_name: Option<String>,

    /// Seconds between publications.
    #[arg(long, env = "POLYBOT_REPORT_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,

    /// CloudWatch namespace of the metrics.
    #[arg(long, env = "POLYBOT_METRIC_NAMESPACE", default_value = "Polybot")]
    pub namespace: String,

    /// Value published when there are queued jobs but no instance in service;
    /// keep it above the scaling target so the group scales out from zero.
    #[arg(long, env = "POLYBOT_NO_INSTANCE_BACKLOG", default_value_t = 99.0)]
    pub no_instance_backlog: f64,

    /// Also count in-flight jobs (received, not yet finished) as backlog.
    #[arg(
        long,
        env = "POLYBOT_COUNT_IN_FLIGHT",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub count_in_flight: bool,

    /// Report once, print the result and exit (for checking a deployment).
    #[arg(long)]
    pub once: bool,

    /// Log format.
    #[arg(long, env = "POLYBOT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Args {
    pub fn settings(&self) -> ReportSettings {
        ReportSettings {
            interval: Duration::from_secs(self.interval),
            count_in_flight: self.count_in_flight,
            no_instance_backlog: self.no_instance_backlog,
        }
    }
}

/// Builds the reporter's ports from the command line and checks them.
pub async fn build(args: &Args) -> anyhow::Result<Reporter> {
    let (queue, instances, sink): (
        Arc<dyn JobQueue>,
        Arc<dyn InstanceCounter>,
        Arc<dyn MetricSink>,
    ) = match args.backend {
        Backend::Local => {
            let data_dir = args.data_dir.clone();
            // Opening SQLite is blocking file IO.
            let queue = tokio::task::spawn_blocking(move || {
                LocalQueue::open(&data_dir, JOBS_QUEUE, QueueConfig::default())
            })
            .await
            .context("opening the local queue")?
            .with_context(|| format!("POLYBOT_DATA_DIR={}", args.data_dir.display()))?;
            // Locally the detector runs beside the gateway: one instance.
            (
                Arc::new(queue),
                Arc::new(FixedInstances(1)),
                Arc::new(LogSink::new()),
            )
        }
        Backend::Aws => {
            let Some(asg) = args.asg_name.clone().filter(|s| !s.is_empty()) else {
                bail!(
                    "{ASG_SETTING} is not set: the aws backend reports for an Auto Scaling Group"
                );
            };
            let queue_url = args.queue_url.clone().unwrap_or_default();
            let sdk = polybot_storage::aws::load_sdk_config(&AwsSettings {
                region: args.region.clone(),
                endpoint_url: args.endpoint_url.clone(),
                ..AwsSettings::default()
            })
            .await?;
            let queue = SqsJobQueue::from_config(&sdk, queue_url);
            queue.verify(QUEUE_SETTING).await?;
            let counter = AsgInstanceCounter::new(&sdk, &asg);
            counter.verify().await?;
            let sink = CloudWatchSink::new(&sdk, &args.namespace, &asg);
            (Arc::new(queue), Arc::new(counter), Arc::new(sink))
        }
    };
    Ok(Reporter {
        queue,
        instances,
        sink,
        // No source outside the all-in-one runner yet (see the crate docs).
        processing_times: None,
        settings: args.settings(),
    })
}

/// The `reporter` binary.
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let reporter = build(&args).await?;
    if args.once {
        let report = reporter.report_once().await?;
        println!(
            "visible={} in_flight={} instances={} BacklogPerInstance={}",
            report.queue.visible,
            report.queue.in_flight,
            report.instances,
            report.backlog_per_instance
        );
        return Ok(());
    }
    crate::run(reporter, shutdown_signal()).await
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Another subscriber already set (e.g. by an embedding process) is fine.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Completes on SIGINT or SIGTERM (what `docker stop` and ECS send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_documented_in_help() {
        let cmd = Args::command();
        for arg in cmd.get_arguments() {
            if arg.get_id() == "help" || arg.get_id() == "version" {
                continue;
            }
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
        cmd.debug_assert();
    }

    #[test]
    fn defaults_follow_the_config_spec() {
        let args = Args::try_parse_from(["reporter"]).expect("parse");
        assert_eq!(args.backend, Backend::Local);
        assert_eq!(args.interval, 30);
        assert_eq!(args.namespace, "Polybot");
        assert_eq!(args.no_instance_backlog, 99.0);
        assert!(!args.count_in_flight);
        let args = Args::try_parse_from(["reporter", "--count-in-flight"]).expect("parse");
        assert!(args.count_in_flight);
        let args = Args::try_parse_from(["reporter", "--count-in-flight", "false"]).expect("parse");
        assert!(!args.count_in_flight);
    }
}
