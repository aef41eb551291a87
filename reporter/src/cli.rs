//! The `reporter` command line: every flag also reads its environment
//! variable (docs/configuration.md), and `--help` documents them. The service
//! runs on the same skeleton as the gateway and the detector: shared
//! telemetry (JSON logs, OTLP traces and metrics), `/healthz`, `/readyz`
//! and `/metrics` on `POLYBOT_HTTP_LISTEN`, and a `healthcheck` subcommand
//! for the container's HEALTHCHECK.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use polybot_storage::JobQueue;
use polybot_storage::aws::{AwsSettings, DynamoTable, QUEUE_SETTING, SqsJobQueue, TABLE_SETTING};
use polybot_storage::local::{JOBS_QUEUE, LocalQueue, LocalTable, QueueConfig};
use polybot_telemetry::tasks::{Backoff, Supervisor};

use crate::aws::{ASG_SETTING, AsgInstanceCounter, CloudWatchSink};
use crate::{
    FixedInstances, InstanceCounter, LogSink, MetricSink, ReportSettings, ReportStatus, Reporter,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The embedded queue in the data folder; metrics are logged.
    Local,
    /// SQS, the Auto Scaling Group and CloudWatch.
    Aws,
}

/// Where the HEALTHCHECK of docker/reporter.Dockerfile looks by default.
pub const DEFAULT_HEALTH_URL: &str = "http://127.0.0.1:9091/healthz";

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Exit 0 if the URL answers 200 (for container health checks).
    Healthcheck {
        #[arg(long, default_value = DEFAULT_HEALTH_URL)]
        url: String,
    },
}

/// Publishes the detector Auto Scaling Group's scaling metric,
/// BacklogPerInstance = (queued jobs + their extra cost) ÷ in-service
/// instances, and the average processing time, to CloudWatch.
#[derive(Debug, Clone, Parser)]
#[command(name = "reporter", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where the queue is: `local` (embedded, in --data-dir) or `aws` (SQS).
    #[arg(long, env = polybot_storage::config::BACKEND_SETTING, value_enum, default_value = "local")]
    pub backend: Backend,

    /// Data folder of the local backend (shared with the gateway and detector).
    #[arg(long, env = polybot_storage::config::DATA_DIR_SETTING, default_value = polybot_storage::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// AWS region (aws backend).
    #[arg(long, env = polybot_storage::aws::REGION_SETTING)]
    pub region: Option<String>,

    /// An AWS-compatible endpoint to use instead of AWS (e.g. a local moto server).
    #[arg(long, env = polybot_storage::aws::ENDPOINT_SETTING)]
    pub endpoint_url: Option<String>,

    /// URL of the SQS jobs queue whose backlog is reported (aws backend).
    #[arg(long, env = polybot_storage::aws::QUEUE_SETTING)]
    pub queue_url: Option<String>,

    /// DynamoDB table whose backlog item holds the queued clips' extra cost,
    /// added to the queue's messages (aws backend; unset: messages only).
    #[arg(long, env = polybot_storage::aws::TABLE_SETTING)]
    pub table: Option<String>,

    /// Name of the detectors' Auto Scaling Group: its InService instances are
    /// counted, and it is the metrics' AutoScalingGroupName dimension.
    /// Required with the aws backend.
    #[arg(long, env = "POLYBOT_ASG_NAME")]
    pub asg_name: Option<String>,

    /// Seconds between publications.
    #[arg(long, env = "POLYBOT_REPORT_INTERVAL", default_value_t = crate::DEFAULT_REPORT_INTERVAL.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
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

    /// Address for /healthz, /readyz (ready once a report was published,
    /// until one fails) and /metrics.
    #[arg(long, env = "POLYBOT_HTTP_LISTEN", default_value = "0.0.0.0:9091")]
    pub http_listen: SocketAddr,

    #[command(flatten)]
    pub telemetry: polybot_telemetry::TelemetryArgs,
}

impl Args {
    pub fn settings(&self) -> ReportSettings {
        ReportSettings {
            interval: Duration::from_secs(self.interval),
            count_in_flight: self.count_in_flight,
            no_instance_backlog: self.no_instance_backlog,
            // Set by `build`, which opens the table.
            backlog: None,
        }
    }
}

/// Builds the reporter's ports from the command line and checks them.
pub async fn build(args: &Args) -> anyhow::Result<Reporter> {
    // The backlog (the table) is set per backend below.
    let mut settings = args.settings();
    let (queue, instances, sink): (
        Arc<dyn JobQueue>,
        Arc<dyn InstanceCounter>,
        Arc<dyn MetricSink>,
    ) = match args.backend {
        Backend::Local => {
            let data_dir = args.data_dir.clone();
            // Opening SQLite is blocking file IO.
            let (queue, table) = tokio::task::spawn_blocking(move || {
                let queue = LocalQueue::open(&data_dir, JOBS_QUEUE, QueueConfig::default())?;
                Ok::<_, polybot_storage::StorageError>((queue, LocalTable::open(&data_dir)?))
            })
            .await
            .context("opening the local queue and table")?
            .with_context(|| format!("POLYBOT_DATA_DIR={}", args.data_dir.display()))?;
            settings.backlog = Some(Arc::new(table));
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
            // Not checked at start-up: the role may read only the backlog
            // item (no DescribeTable), and a table that fails to read must
            // not stop the metric; each cycle warns instead.
            match args.table.as_deref().filter(|t| !t.is_empty()) {
                Some(table) => {
                    settings.backlog = Some(Arc::new(DynamoTable::from_config(&sdk, table)));
                }
                None => tracing::warn!(
                    "{TABLE_SETTING} is not set: clips count as one message each, not by their cost"
                ),
            }
            (Arc::new(queue), Arc::new(counter), Arc::new(sink))
        }
    };
    Ok(Reporter {
        queue,
        instances,
        sink,
        // No source outside the all-in-one runner yet (see the crate docs).
        processing_times: None,
        settings,
    })
}

/// The `reporter` binary.
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Healthcheck { url }) = &args.command {
        return polybot_telemetry::healthcheck(url)
            .await
            .map_err(anyhow::Error::msg);
    }
    let mut telemetry = polybot_telemetry::init_from("reporter", &args.telemetry)?;
    let reporter = build(&args).await?;
    if args.once {
        let report = reporter.report_once().await?;
        println!(
            "visible={} in_flight={} extra_cost={} instances={} BacklogPerInstance={}",
            report.queue.visible,
            report.queue.in_flight,
            report.extra_cost,
            report.instances,
            report.backlog_per_instance
        );
        telemetry.shutdown();
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("POLYBOT_HTTP_LISTEN={}: cannot listen", args.http_listen))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    let status = ReportStatus::default();
    let supervisor = Supervisor::default();
    let ready = (status.clone(), supervisor.components().clone());
    // Ready while the latest cycle published and every task runs.
    let ops =
        polybot_telemetry::ops::router(Arc::new(move || ready.0.is_ready() && ready.1.all_ok()));
    let cancel = supervisor.cancel_token();
    supervisor.spawn_critical("http_server", async move {
        let served = axum::serve(listener, ops)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the HTTP server stopped with an error");
        }
    });
    let cancel = supervisor.cancel_token();
    supervisor.supervise("report", Backoff::default(), move || {
        let run = crate::run_with_status(
            reporter.clone(),
            cancel.clone().cancelled_owned(),
            status.clone(),
        );
        async move {
            if let Err(e) = run.await {
                tracing::warn!(error = %format!("{e:#}"), "the reporting loop stopped");
            }
        }
    });
    polybot_telemetry::shutdown_signal().await;
    supervisor.shutdown(STOP_GRACE).await;
    telemetry.shutdown();
    Ok(())
}

/// How long the HTTP server and the loop get to stop on SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

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
