//! The reporter against moto through the real AWS SDK: an Auto Scaling
//! Group with real (moto) instances, an SQS queue with real messages, and
//! the published values read back from CloudWatch.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, StandardUnit, Statistic};
use polybot_reporter::{
    ASG_DIMENSION, AsgInstanceCounter, BACKLOG_METRIC, CloudWatchSink, FixedInstances, LogSink,
    PROCESSING_TIME_METRIC, ProcessingTimes, ReportSettings, Reporter,
};
use polybot_storage::aws::{DynamoTable, SqsJobQueue};
use polybot_storage::{Attributes, Backlog, JobQueue};
use polybot_testkit::{MotoServer, install_crypto_provider, unique_name};

struct World {
    sdk: SdkConfig,
    queue: Arc<SqsJobQueue>,
    table: Arc<DynamoTable>,
    asg: String,
    namespace: String,
}

/// A fresh queue, and an ASG with `instances` in-service instances.
async fn world(instances: i32) -> World {
    install_crypto_provider();
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let settings = moto.provision(3, Duration::from_secs(30)).await;
    let queue = Arc::new(SqsJobQueue::from_config(&sdk, settings.queue_url));
    let table = Arc::new(DynamoTable::from_config(&sdk, settings.table));

    // moto's Auto Scaling needs a launch configuration (any image id) and
    // an availability zone; it then starts `DesiredCapacity` instances in
    // its EC2 backend, all InService at once.
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    let asg = unique_name("detectors");
    let lc = format!("{asg}-lc");
    autoscaling
        .create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(&asg)
        .launch_configuration_name(&lc)
        .min_size(0)
        .max_size(10)
        .desired_capacity(instances)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    World {
        sdk,
        queue,
        table,
        asg,
        namespace: unique_name("Polybot"),
    }
}

impl World {
    fn reporter(&self, settings: ReportSettings) -> Reporter {
        Reporter {
            queue: self.queue.clone(),
            instances: Arc::new(AsgInstanceCounter::new(&self.sdk, &self.asg)),
            sink: Arc::new(CloudWatchSink::new(&self.sdk, &self.namespace, &self.asg)),
            processing_times: None,
            settings,
        }
    }

    async fn send(&self, n: usize) {
        for i in 0..n {
            self.queue
                .send(&format!("job {i}"), &Attributes::new())
                .await
                .expect("send");
        }
    }

    /// Every value of `metric` for this world's ASG, as (average, count).
    async fn read_back(&self, metric: &str) -> (f64, f64, Option<StandardUnit>) {
        let now = SystemTime::now();
        let out = aws_sdk_cloudwatch::Client::new(&self.sdk)
            .get_metric_statistics()
            .namespace(&self.namespace)
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name(ASG_DIMENSION)
                    .value(&self.asg)
                    .build(),
            )
            .start_time(DateTime::from(now - Duration::from_secs(600)))
            .end_time(DateTime::from(now + Duration::from_secs(600)))
            .period(60)
            .statistics(Statistic::Sum)
            .statistics(Statistic::SampleCount)
            .send()
            .await
            .expect("GetMetricStatistics");
        let points = out.datapoints();
        let sum: f64 = points.iter().filter_map(|p| p.sum()).sum();
        let count: f64 = points.iter().filter_map(|p| p.sample_count()).sum();
        (sum, count, points.first().and_then(|p| p.unit().cloned()))
    }
}

#[tokio::test]
async fn published_backlog_per_instance_is_the_queue_depth_over_in_service_instances() {
    let w = world(2).await;
    w.send(10).await;
    let report = w
        .reporter(ReportSettings::default())
        .report_once()
        .await
        .expect("report");
    assert_eq!(report.instances, 2);
    assert_eq!(report.queue.visible, 10);
    assert_eq!(report.backlog_per_instance, 5.0);
    let (sum, count, _) = w.read_back(BACKLOG_METRIC).await;
    assert_eq!(
        (sum, count),
        (5.0, 1.0),
        "CloudWatch holds the published backlog"
    );
}

#[tokio::test]
async fn clips_recorded_in_the_table_count_by_their_cost() {
    let w = world(2).await;
    w.send(2).await;
    // A clip of 30 sampled frames: 29 photos more than its one message.
    let later = polybot_domain::now_epoch() + 600.0;
    let (a, b) = (
        polybot_domain::PredictionId::new(),
        polybot_domain::PredictionId::new(),
    );
    w.table.add_cost(a, 29, later).await.expect("add_cost");
    w.table.add_cost(b, 29, later).await.expect("add_cost");
    let reporter = w
        .reporter(ReportSettings::default())
        .with_backlog(w.table.clone());
    let report = reporter.report_once().await.expect("report");
    assert_eq!((report.queue.visible, report.extra_cost), (2, 58));
    assert_eq!(report.backlog_per_instance, 30.0, "(2 + 58) ÷ 2");
    // A clip ends: its cost goes.
    w.table.remove_cost(a).await.expect("remove_cost");
    let report = reporter.report_once().await.expect("report");
    assert_eq!(report.backlog_per_instance, 15.5, "(2 + 29) ÷ 2");
    let (sum, count, _) = w.read_back(BACKLOG_METRIC).await;
    assert_eq!((sum, count), (45.5, 2.0), "both values are in CloudWatch");
}

#[tokio::test]
async fn a_missing_table_publishes_the_queue_alone() {
    let w = world(2).await;
    w.send(4).await;
    let report = w
        .reporter(ReportSettings::default())
        .with_backlog(Arc::new(DynamoTable::from_config(&w.sdk, "no-such-table")))
        .report_once()
        .await
        .expect("the metric does not depend on the table");
    assert_eq!(report.extra_cost, 0);
    assert_eq!(report.backlog_per_instance, 2.0);
}

#[tokio::test]
async fn published_backlog_forces_scale_out_when_no_instance_is_in_service() {
    let w = world(0).await;
    w.send(3).await;
    let report = w
        .reporter(ReportSettings::default())
        .report_once()
        .await
        .expect("report");
    assert_eq!(report.instances, 0);
    assert_eq!(report.backlog_per_instance, 99.0);
    let (sum, count, _) = w.read_back(BACKLOG_METRIC).await;
    assert_eq!((sum, count), (99.0, 1.0));
}

#[tokio::test]
async fn in_flight_messages_count_only_when_asked() {
    let w = world(2).await;
    w.send(10).await;
    let mut taken = 0;
    while taken < 4 {
        taken += w
            .queue
            .receive(4 - taken, Duration::from_secs(2))
            .await
            .expect("receive")
            .len();
    }
    let visible_only = w
        .reporter(ReportSettings::default())
        .report_once()
        .await
        .expect("report");
    assert_eq!(visible_only.backlog_per_instance, 3.0, "6 visible ÷ 2");
    let with_in_flight = w
        .reporter(ReportSettings {
            count_in_flight: true,
            ..ReportSettings::default()
        })
        .report_once()
        .await
        .expect("report");
    assert_eq!(with_in_flight.backlog_per_instance, 5.0, "(6 + 4) ÷ 2");
    let (sum, count, _) = w.read_back(BACKLOG_METRIC).await;
    assert_eq!((sum, count), (8.0, 2.0), "both values are in CloudWatch");
}

#[tokio::test]
async fn average_processing_time_is_published_in_seconds_when_jobs_finished() {
    let w = world(1).await;
    let times = ProcessingTimes::new();
    let mut reporter = w.reporter(ReportSettings::default());
    reporter.processing_times = Some(Arc::new(times.clone()));

    // No job finished: no value (missing data, not a false zero).
    reporter.report_once().await.expect("report");
    assert_eq!(w.read_back(PROCESSING_TIME_METRIC).await.1, 0.0);

    times.record(Duration::from_millis(400));
    times.record(Duration::from_millis(600));
    let report = reporter.report_once().await.expect("report");
    assert_eq!(
        report.average_processing_time,
        Some(Duration::from_millis(500))
    );
    let (sum, count, unit) = w.read_back(PROCESSING_TIME_METRIC).await;
    assert_eq!((sum, count), (0.5, 1.0));
    assert_eq!(unit, Some(StandardUnit::Seconds));
}

#[tokio::test]
async fn missing_auto_scaling_group_is_reported_naming_the_setting() {
    let w = world(1).await;
    let counter = AsgInstanceCounter::new(&w.sdk, "no-such-group");
    let err = counter.verify().await.expect_err("no such group");
    assert!(
        err.to_string().contains("POLYBOT_ASG_NAME=no-such-group"),
        "{err:#}"
    );
}

#[tokio::test]
async fn run_reports_every_interval_and_stops_on_shutdown() {
    let w = world(1).await;
    w.send(4).await;
    let sink = LogSink::new();
    let reporter = Reporter {
        queue: w.queue.clone(),
        instances: Arc::new(FixedInstances(2)),
        sink: Arc::new(sink.clone()),
        processing_times: None,
        settings: ReportSettings {
            interval: Duration::from_millis(200),
            ..ReportSettings::default()
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(polybot_reporter::run(reporter, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run stops on shutdown")
        .expect("join")
        .expect("run");
    let published = sink.published();
    assert!(
        published.len() >= 3,
        "published {} values in 900 ms at 200 ms",
        published.len()
    );
    assert!(
        published
            .iter()
            .all(|d| d.name == BACKLOG_METRIC && d.value == 2.0)
    );
}
