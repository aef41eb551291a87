//! The reporter: publishes the detector Auto Scaling Group's scaling metric.
//!
//! Every interval (30 s by default) it computes
//!
//! ```text
//! BacklogPerInstance = (messages + extra cost) ÷ InService instances of the ASG
//! ```
//!
//! where `messages` is the jobs queue's visible messages (plus the in-flight
//! ones with `POLYBOT_COUNT_IN_FLIGHT`), and publishes it with
//! `AverageProcessingTime` (Seconds) to CloudWatch, in namespace `Polybot`,
//! dimension `AutoScalingGroupName`. With messages (or extra cost) but no
//! instance it publishes `POLYBOT_NO_INSTANCE_BACKLOG` (99), far above any
//! sensible target, so target tracking scales out from zero; with neither,
//! 0.
//!
//! # Clips count by their cost
//!
//! A message is one job, but not every job is one photo's work: a clip's
//! job runs a detection per sampled frame (up to 30) plus the decoding.
//! Counted as one message, ten clips would look like ten photos and the
//! group would not scale. So the gateway records each such job's cost
//! beyond one photo in the prediction table's backlog
//! ([`polybot_storage::Backlog`]) when it queues it, the detector removes
//! it when the job ends, and `extra cost` above is the sum of what is
//! recorded: every unit of the backlog is then about one photo's work, and
//! the target below stays right whatever the mix. An entry whose removal
//! was lost stops counting at its deadline. The extra cost counts a clip
//! from queued to finished, whether or not in-flight messages are counted.
//!
//! The table is optional ([`Reporter::with_backlog`]): without it the
//! metric counts messages only. A table that fails to read does not stop
//! the metric either: the cycle publishes the queue's figure (extra cost
//! 0) and logs a warning, since the queue alone is still a useful metric.
//!
//! # Choosing the target value
//!
//! Target tracking keeps BacklogPerInstance near a target. A new message
//! waits behind the backlog of its instance, and an instance with `L`
//! inference lanes works through `L` messages per processing time, so
//!
//! ```text
//! target = acceptable latency × lanes ÷ AverageProcessingTime
//! ```
//!
//! e.g. 10 s acceptable, 2 lanes, 0.5 s per photo → target 40. The
//! published `AverageProcessingTime` is there to derive it from real data
//! (per job, so a mix heavy in clips raises it; the backlog is already in
//! photos, so derive the target from photos' processing time).
//!
//! # Where the processing time comes from
//!
//! The reporter cannot derive it from what AWS shows it: SQS does not count
//! completions, and the prediction table can only be listed per chat (a
//! table scan every 30 s would cost more than the whole service). The only
//! party that measures it is the detector, so [`ProcessingTimeSource`] is
//! a port, and the implementation today is [`ProcessingTimes`], an
//! in-process recorder: the detector calls [`ProcessingTimes::record`] per
//! job and each report publishes the mean of the interval's jobs. That
//! works where detector and reporter share a process (the all-in-one
//! runner). The standalone reporter has no source yet and publishes only
//! BacklogPerInstance; an interval without finished jobs publishes no
//! processing time either (CloudWatch "missing data", not a false 0).
//!
//! # Ports
//!
//! The loop ([`Reporter`], [`run`]) sees only ports: the jobs queue
//! ([`polybot_storage::JobQueue::stats`]), an [`InstanceCounter`] (the ASG,
//! or a fixed number), a [`MetricSink`] (CloudWatch, or a log that keeps
//! the values), an optional [`ProcessingTimeSource`] and an optional
//! backlog ([`polybot_storage::Backlog::extra_cost`], the prediction
//! table). [`cli`] builds them from the command line for the `reporter`
//! binary; the all-in-one runner builds a [`Reporter`] from its own
//! embedded queue and table.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use polybot_storage::{Backlog, JobQueue, QueueStats};
use tracing::Instrument as _;

pub mod aws;
pub mod cli;

pub use aws::{AsgInstanceCounter, CloudWatchSink};

/// The scaling metric's name in CloudWatch.
pub const BACKLOG_METRIC: &str = "BacklogPerInstance";
/// The processing time metric's name in CloudWatch.
pub const PROCESSING_TIME_METRIC: &str = "AverageProcessingTime";
/// The dimension both metrics carry.
pub const ASG_DIMENSION: &str = "AutoScalingGroupName";
/// Published when there are messages but no instance, unless configured.
/// It must exceed the scaling policy's target, or target tracking never
/// scales out from zero: the Terraform deployment sets it to twice the
/// target it derives (`terraform/main.tf`), and the deployment test checks
/// the published value against the planned target.
pub const DEFAULT_NO_INSTANCE_BACKLOG: f64 = 99.0;
/// How often the metrics are published, unless configured
/// (`POLYBOT_REPORT_INTERVAL`).
pub const DEFAULT_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Work per in-service instance, `work` being the messages plus the
/// queued jobs' extra cost (in photos).
///
/// No work → 0, whatever the instances; work but no instance →
/// `no_instance_value`, which must be above the scaling target so the
/// group scales out from zero.
pub fn backlog_per_instance(work: u64, instances: u32, no_instance_value: f64) -> f64 {
    match (work, instances) {
        (0, _) => 0.0,
        (_, 0) => no_instance_value,
        // u64 → f64 loses precision only above 2^53 photos.
        (w, n) => w as f64 / f64::from(n),
    }
}

// ----------------------------------------------------------------- ports

/// How many detector instances are serving.
#[async_trait]
pub trait InstanceCounter: Send + Sync + 'static {
    /// Instances in service now.
    async fn in_service(&self) -> anyhow::Result<u32>;
}

/// A fixed count: the all-in-one runner's one in-process detector, or a
/// deployment without an Auto Scaling Group.
#[derive(Debug, Clone, Copy)]
pub struct FixedInstances(pub u32);

#[async_trait]
impl InstanceCounter for FixedInstances {
    async fn in_service(&self) -> anyhow::Result<u32> {
        Ok(self.0)
    }
}

/// The unit of a published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (CloudWatch's `None` unit).
    None,
    Seconds,
}

/// One published value.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

/// Where the values go.
#[async_trait]
pub trait MetricSink: Send + Sync + 'static {
    /// Publishes all of `data` (one request where the backend allows).
    async fn publish(&self, data: &[Datum]) -> anyhow::Result<()>;
}

/// A sink that logs every value and keeps them, for local runs and tests.
#[derive(Debug, Default, Clone)]
pub struct LogSink {
    published: Arc<Mutex<Vec<Datum>>>,
}

impl LogSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything published so far, oldest first.
    pub fn published(&self) -> Vec<Datum> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The latest value of `name`.
    pub fn latest(&self, name: &str) -> Option<f64> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| d.value)
    }
}

#[async_trait]
impl MetricSink for LogSink {
    async fn publish(&self, data: &[Datum]) -> anyhow::Result<()> {
        for d in data {
            tracing::info!(metric = d.name, value = d.value, unit = ?d.unit, "metric");
        }
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(())
    }
}

/// The average time a detector spends on one job.
#[async_trait]
pub trait ProcessingTimeSource: Send + Sync + 'static {
    /// The mean over the jobs finished since the previous call, or `None`
    /// if none finished.
    async fn take_average(&self) -> anyhow::Result<Option<Duration>>;
}

/// An in-process recorder of processing times: the detector records each
/// job's time, the reporter takes the interval's mean. Cheap to clone;
/// clones share the record.
#[derive(Debug, Default, Clone)]
pub struct ProcessingTimes {
    window: Arc<Mutex<(Duration, u32)>>,
}

impl ProcessingTimes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one job's processing time.
    pub fn record(&self, time: Duration) {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        w.0 = w.0.saturating_add(time);
        w.1 = w.1.saturating_add(1);
    }
}

#[async_trait]
impl ProcessingTimeSource for ProcessingTimes {
    async fn take_average(&self) -> anyhow::Result<Option<Duration>> {
        let (sum, count) =
            std::mem::take(&mut *self.window.lock().unwrap_or_else(PoisonError::into_inner));
        Ok((count > 0).then(|| sum / count))
    }
}

// ------------------------------------------------------------------ loop

/// How the backlog is computed and how often.
#[derive(Clone)]
pub struct ReportSettings {
    pub interval: Duration,
    /// Count in-flight (received, not yet deleted) messages as backlog too.
    pub count_in_flight: bool,
    /// Published when there is work but no instance.
    pub no_instance_backlog: f64,
    /// Where the queued jobs' extra cost is read (the prediction table),
    /// added to the messages; `None`: messages only. Set it with
    /// [`Reporter::with_backlog`]. (It lives here rather than beside the
    /// other ports so that a [`Reporter`] written out field by field
    /// still builds.)
    pub backlog: Option<Arc<dyn Backlog>>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_REPORT_INTERVAL,
            count_in_flight: false,
            no_instance_backlog: DEFAULT_NO_INSTANCE_BACKLOG,
            backlog: None,
        }
    }
}

impl std::fmt::Debug for ReportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSettings")
            .field("interval", &self.interval)
            .field("count_in_flight", &self.count_in_flight)
            .field("no_instance_backlog", &self.no_instance_backlog)
            .field("backlog", &self.backlog.is_some())
            .finish()
    }
}

/// What one cycle saw and published.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub queue: QueueStats,
    /// The queued jobs' extra cost that was added (0 without a backlog, or
    /// when reading it failed).
    pub extra_cost: u64,
    pub instances: u32,
    pub backlog_per_instance: f64,
    pub average_processing_time: Option<Duration>,
}

/// The reporter's ports and settings.
#[derive(Clone)]
pub struct Reporter {
    pub queue: Arc<dyn JobQueue>,
    pub instances: Arc<dyn InstanceCounter>,
    pub sink: Arc<dyn MetricSink>,
    pub processing_times: Option<Arc<dyn ProcessingTimeSource>>,
    pub settings: ReportSettings,
}

impl Reporter {
    /// Adds the queued jobs' extra cost, read from `backlog` (the
    /// prediction table: an `Arc<dyn PredictionTable>` coerces), to every
    /// cycle's messages, so a clip counts by its cost.
    #[must_use]
    pub fn with_backlog(mut self, backlog: Arc<dyn Backlog>) -> Self {
        self.settings.backlog = Some(backlog);
        self
    }

    /// The extra cost, 0 without a backlog. A failed read is 0 too, with a
    /// warning: the queue alone is still a useful metric, so the table must
    /// not stop it.
    async fn extra_cost(&self) -> u64 {
        let Some(backlog) = &self.settings.backlog else {
            return 0;
        };
        backlog.extra_cost().await.unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "the backlog's extra cost is unavailable; publishing the queue's figure alone"
            );
            0
        })
    }

    /// One cycle: read the queue, the extra cost and the instance count,
    /// publish.
    pub async fn report_once(&self) -> anyhow::Result<Report> {
        // Independent reads; do them together to keep the snapshot tight.
        let (stats, extra_cost, instances) = tokio::join!(
            self.queue.stats(),
            self.extra_cost(),
            self.instances.in_service()
        );
        let stats = stats.context("reading the jobs queue's depth")?;
        let instances = instances.context("counting in-service instances")?;
        let messages = if self.settings.count_in_flight {
            stats.visible.saturating_add(stats.in_flight)
        } else {
            stats.visible
        };
        let backlog = backlog_per_instance(
            messages.saturating_add(extra_cost),
            instances,
            self.settings.no_instance_backlog,
        );

        let average = match &self.processing_times {
            None => None,
            // A failing source must not stop the scaling metric.
            Some(source) => source.take_average().await.unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "processing time unavailable");
                None
            }),
        };
        let mut data = vec![Datum {
            name: BACKLOG_METRIC,
            value: backlog,
            unit: Unit::None,
        }];
        if let Some(avg) = average {
            data.push(Datum {
                name: PROCESSING_TIME_METRIC,
                value: avg.as_secs_f64(),
                unit: Unit::Seconds,
            });
        }
        self.sink
            .publish(&data)
            .await
            .context("publishing metrics")?;
        // Also on /metrics (and OTLP), for the local Grafana dashboard: the
        // same figures the cycle published, whichever the sink.
        QUEUE_MESSAGES.set(stats.visible as f64, &["visible"]);
        QUEUE_MESSAGES.set(stats.in_flight as f64, &["in_flight"]);
        BACKLOG_GAUGE.set(backlog, &[]);
        tracing::debug!(
            visible = stats.visible,
            in_flight = stats.in_flight,
            extra_cost,
            instances,
            backlog_per_instance = backlog,
            "reported"
        );
        Ok(Report {
            queue: stats,
            extra_cost,
            instances,
            backlog_per_instance: backlog,
            average_processing_time: average,
        })
    }
}

/// Reporting cycles by outcome (`ok`, `failed`, `timeout`), on `/metrics`
/// and over OTLP.
static REPORTS: LazyLock<polybot_telemetry::metrics::Counter> = LazyLock::new(|| {
    polybot_telemetry::metrics::Counter::new(
        "polybot_reporter_reports_total",
        "polybot.reporter.reports",
        "Reporting cycles by outcome",
        &["outcome"],
    )
});

/// The jobs queue's messages by state (`visible`, `in_flight`), as of the
/// latest cycle.
static QUEUE_MESSAGES: LazyLock<polybot_telemetry::metrics::Gauge> = LazyLock::new(|| {
    polybot_telemetry::metrics::Gauge::new(
        "polybot_queue_messages",
        "polybot.queue.messages",
        "Jobs queue messages by state (visible, in_flight), as of the latest reporting cycle",
        &["state"],
    )
});

/// The BacklogPerInstance the latest cycle published.
static BACKLOG_GAUGE: LazyLock<polybot_telemetry::metrics::Gauge> = LazyLock::new(|| {
    polybot_telemetry::metrics::Gauge::new(
        "polybot_backlog_per_instance",
        "polybot.backlog_per_instance",
        "Work per in-service detector (BacklogPerInstance), as of the latest reporting cycle",
        &[],
    )
});

/// Whether the reporter is doing its work, for `/readyz`: the latest cycle
/// published, and shutdown has not begun. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct ReportStatus {
    last_ok: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
}

impl ReportStatus {
    pub fn is_ready(&self) -> bool {
        self.last_ok.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }
}

/// Reports every `settings.interval` until `shutdown` completes.
///
/// A failed cycle (AWS briefly unreachable) is logged and the next one
/// tried on time: the scaling metric must not stop for good because of one
/// error. A cycle that hangs is cut off after one interval.
pub async fn run(reporter: Reporter, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with_status(reporter, shutdown, ReportStatus::default()).await
}

/// [`run`], keeping `status` up to date for `/readyz`.
pub async fn run_with_status(
    reporter: Reporter,
    shutdown: impl Future<Output = ()>,
    status: ReportStatus,
) -> anyhow::Result<()> {
    let interval = reporter.settings.interval.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    tracing::info!(interval_secs = interval.as_secs_f64(), "reporter started");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {
                let span = tracing::info_span!("report", backlog_per_instance = tracing::field::Empty, instances = tracing::field::Empty);
                let outcome = tokio::time::timeout(interval, reporter.report_once())
                    .instrument(span.clone())
                    .await;
                let ok = match outcome {
                    Ok(Ok(report)) => {
                        span.record("backlog_per_instance", report.backlog_per_instance);
                        span.record("instances", report.instances);
                        REPORTS.inc(&["ok"]);
                        true
                    }
                    Ok(Err(e)) => {
                        REPORTS.inc(&["failed"]);
                        tracing::warn!(parent: &span, error = %format!("{e:#}"), "report failed; trying again next interval");
                        false
                    }
                    Err(_) => {
                        REPORTS.inc(&["timeout"]);
                        tracing::warn!(parent: &span, "report took longer than the interval; trying again next interval");
                        false
                    }
                };
                status.last_ok.store(ok, Ordering::SeqCst);
            }
        }
    }
    status.stopping.store(true, Ordering::SeqCst);
    tracing::info!("reporter stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_without_instances_publish_the_scale_out_value() {
        assert_eq!(backlog_per_instance(100, 0, 99.0), 99.0);
        assert_eq!(backlog_per_instance(1, 0, 500.0), 500.0);
    }

    #[test]
    fn no_messages_publish_zero_whatever_the_instances() {
        assert_eq!(backlog_per_instance(0, 0, 99.0), 0.0);
        assert_eq!(backlog_per_instance(0, 3, 99.0), 0.0);
    }

    #[test]
    fn backlog_is_messages_per_instance() {
        assert_eq!(backlog_per_instance(50, 2, 99.0), 25.0);
        assert_eq!(backlog_per_instance(5, 2, 99.0), 2.5);
    }

    /// A queue that only knows its depth.
    struct Depth(QueueStats);

    #[async_trait]
    impl JobQueue for Depth {
        async fn send_for(
            &self,
            _: Option<&polybot_storage::Tenant>,
            _: &str,
            _: &polybot_storage::Attributes,
        ) -> polybot_storage::Result<()> {
            unreachable!("the reporter only reads the depth")
        }
        async fn receive(
            &self,
            _: usize,
            _: Duration,
        ) -> polybot_storage::Result<Vec<polybot_storage::Delivery>> {
            unreachable!("the reporter only reads the depth")
        }
        async fn delete(&self, _: &polybot_storage::Receipt) -> polybot_storage::Result<()> {
            unreachable!("the reporter only reads the depth")
        }
        async fn set_visibility(
            &self,
            _: &polybot_storage::Receipt,
            _: Duration,
        ) -> polybot_storage::Result<()> {
            unreachable!("the reporter only reads the depth")
        }
        async fn stats(&self) -> polybot_storage::Result<QueueStats> {
            Ok(self.0)
        }
        async fn check(&self) -> polybot_storage::Result<()> {
            Ok(())
        }
        fn messaging_system(&self) -> &'static str {
            "fake"
        }
    }

    /// A backlog whose sum is fixed, or whose reads fail.
    struct ExtraCost(Option<u64>);

    #[async_trait]
    impl Backlog for ExtraCost {
        async fn add_cost(
            &self,
            _: polybot_domain::PredictionId,
            _: u32,
            _: f64,
        ) -> polybot_storage::Result<()> {
            unreachable!("the reporter only reads the sum")
        }
        async fn remove_cost(
            &self,
            _: polybot_domain::PredictionId,
        ) -> polybot_storage::Result<()> {
            unreachable!("the reporter only reads the sum")
        }
        async fn extra_cost(&self) -> polybot_storage::Result<u64> {
            self.0.ok_or_else(|| {
                polybot_storage::StorageError::unavailable(
                    "DynamoDB",
                    "GetItem backlog#costs",
                    "timed out",
                )
            })
        }
    }

    /// A reporter on `visible` queued messages and `instances`, logging to
    /// the returned sink.
    fn fake_reporter(visible: u64, instances: u32) -> (Reporter, LogSink) {
        let sink = LogSink::new();
        let reporter = Reporter {
            queue: Arc::new(Depth(QueueStats {
                visible,
                in_flight: 0,
            })),
            instances: Arc::new(FixedInstances(instances)),
            sink: Arc::new(sink.clone()),
            processing_times: None,
            settings: ReportSettings::default(),
        };
        (reporter, sink)
    }

    #[tokio::test]
    async fn a_clip_counts_by_its_extra_cost() {
        let (reporter, sink) = fake_reporter(2, 2);
        let report = reporter
            .with_backlog(Arc::new(ExtraCost(Some(58))))
            .report_once()
            .await
            .expect("report");
        assert_eq!(report.extra_cost, 58);
        assert_eq!(report.backlog_per_instance, 30.0, "(2 messages + 58) ÷ 2");
        assert_eq!(sink.latest(BACKLOG_METRIC), Some(30.0));
    }

    #[tokio::test]
    async fn a_failing_backlog_read_publishes_the_queues_figure() {
        let (reporter, sink) = fake_reporter(2, 2);
        let report = reporter
            .with_backlog(Arc::new(ExtraCost(None)))
            .report_once()
            .await
            .expect("the metric is still published");
        assert_eq!(report.extra_cost, 0);
        assert_eq!(sink.latest(BACKLOG_METRIC), Some(1.0), "2 messages ÷ 2");
    }

    #[tokio::test]
    async fn extra_cost_alone_is_work_and_nothing_at_all_is_zero() {
        let (reporter, sink) = fake_reporter(0, 0);
        reporter
            .clone()
            .with_backlog(Arc::new(ExtraCost(Some(29))))
            .report_once()
            .await
            .expect("report");
        assert_eq!(
            sink.latest(BACKLOG_METRIC),
            Some(99.0),
            "cost but no instance: scale out from zero"
        );
        reporter
            .with_backlog(Arc::new(ExtraCost(Some(0))))
            .report_once()
            .await
            .expect("report");
        assert_eq!(
            sink.latest(BACKLOG_METRIC),
            Some(0.0),
            "no messages and no cost"
        );
        let (reporter, sink) = fake_reporter(3, 2);
        reporter.report_once().await.expect("report");
        assert_eq!(
            sink.latest(BACKLOG_METRIC),
            Some(1.5),
            "no backlog port: messages only, 3 ÷ 2"
        );
    }

    #[tokio::test]
    async fn a_cycle_shows_the_queue_and_backlog_on_metrics() {
        let (reporter, _sink) = fake_reporter(4, 2);
        reporter.report_once().await.expect("report");
        // Other tests run cycles in this process at the same time and set
        // the same process-wide gauges, so only the series are checked
        // here; report_once's own values are checked through the sink.
        let text = polybot_telemetry::metrics_text();
        for series in [
            "polybot_queue_messages{state=\"visible\"}",
            "polybot_queue_messages{state=\"in_flight\"}",
            "polybot_backlog_per_instance ",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }

    #[tokio::test]
    async fn processing_times_average_the_interval_and_then_start_over() {
        let times = ProcessingTimes::new();
        let detector_side = times.clone();
        detector_side.record(Duration::from_millis(100));
        detector_side.record(Duration::from_millis(300));
        assert_eq!(
            times.take_average().await.ok().flatten(),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            times.take_average().await.ok().flatten(),
            None,
            "a new interval starts empty"
        );
    }
}
