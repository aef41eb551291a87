//! The process's own metrics in CloudWatch, without an agent or an API
//! call: every interval, one line of CloudWatch Embedded Metric Format
//! (EMF) JSON on stdout. On AWS the instances ship stdout to CloudWatch
//! Logs (the service's log group), and CloudWatch turns each such line into
//! metrics in the `Polybot` namespace, with the dimension `Service`.
//!
//! What is sent is read from the Prometheus registry (the `/metrics` text),
//! so a metric is defined once: counters as their increase over the
//! interval (labelled ones as their total and one metric per label
//! value: `Replies` and `Replies.Sent`), gauges as their value, and histograms as the interval's
//! observations by bucket (EMF `Values`/`Counts`, so CloudWatch has
//! percentiles). Names drop `polybot_` and `_total` and become CamelCase:
//! `polybot_jobs_succeeded_total` is `JobsSucceeded`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::proto::{MetricFamily, MetricType};
use serde_json::{Map, Value, json};

/// The CloudWatch namespace every service's metrics go to.
pub const NAMESPACE: &str = "Polybot";
/// How often a line is written: CloudWatch's standard resolution.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// EMF allows at most 100 metrics per line.
const MAX_METRICS: usize = 100;

/// Turns registry snapshots into EMF lines, remembering what counters and
/// histograms stood at last time.
pub struct EmfRenderer {
    service: &'static str,
    last: HashMap<String, f64>,
}

impl EmfRenderer {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            last: HashMap::new(),
        }
    }

    /// The EMF lines for `families` at `timestamp_ms`: what changed since
    /// the previous call (gauges always), at most 100 metrics a line; none
    /// when nothing is worth sending.
    pub fn render(&mut self, families: &[MetricFamily], timestamp_ms: u64) -> Vec<String> {
        let mut values: Vec<(String, Value, &'static str)> = Vec::new();
        // A labelled counter's increase over all its labels, sent beside
        // each label's (`JobsFailed` and `JobsFailed.NotAnImage`).
        let mut totals: Vec<(String, f64)> = Vec::new();
        for family in families {
            let Some(base) = metric_name(family.name()) else {
                continue;
            };
            for metric in family.get_metric() {
                let labels: Vec<String> = metric
                    .get_label()
                    .iter()
                    .map(|l| camel(l.value()))
                    .collect();
                let name = std::iter::once(base.clone())
                    .chain(labels)
                    .collect::<Vec<_>>()
                    .join(".");
                match family.get_field_type() {
                    MetricType::COUNTER => {
                        let now = metric.get_counter().get_value();
                        let before = self.last.insert(name.clone(), now).unwrap_or(0.0);
                        let delta = now - before;
                        if delta > 0.0 {
                            if !metric.get_label().is_empty() {
                                match totals.iter_mut().find(|(n, _)| *n == base) {
                                    Some((_, sum)) => *sum += delta,
                                    None => totals.push((base.clone(), delta)),
                                }
                            }
                            values.push((name, json!(delta), "Count"));
                        }
                    }
                    MetricType::GAUGE => {
                        values.push((name, json!(metric.get_gauge().get_value()), "None"));
                    }
                    MetricType::HISTOGRAM => {
                        if let Some(v) = self.histogram(&name, metric.get_histogram()) {
                            values.push((name, v, "Seconds"));
                        }
                    }
                    _ => {}
                }
            }
        }
        values.extend(
            totals
                .into_iter()
                .map(|(name, sum)| (name, json!(sum), "Count")),
        );
        values
            .chunks(MAX_METRICS)
            .map(|chunk| {
                let mut line = Map::new();
                line.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [["Service"]],
                            "Metrics": chunk
                                .iter()
                                .map(|(name, _, unit)| json!({ "Name": name, "Unit": unit }))
                                .collect::<Vec<_>>(),
                        }],
                    }),
                );
                line.insert("Service".into(), json!(self.service));
                for (name, value, _) in chunk {
                    line.insert(name.clone(), value.clone());
                }
                Value::Object(line).to_string()
            })
            .collect()
    }

    /// The interval's observations as EMF `Values`/`Counts`: each bucket's
    /// new observations at its upper bound (those past the last bound
    /// counted at it too, the largest value the histogram can tell).
    fn histogram(&mut self, name: &str, h: &prometheus::proto::Histogram) -> Option<Value> {
        let mut values = Vec::new();
        let mut counts = Vec::new();
        let mut below = 0.0;
        let mut last_bound = 0.0;
        for bucket in h.get_bucket() {
            let cumulative = bucket.cumulative_count() as f64;
            let key = format!("{name}#le{}", bucket.upper_bound());
            let before = self.last.insert(key, cumulative).unwrap_or(0.0);
            let new = (cumulative - before) - below;
            below = cumulative - before;
            last_bound = bucket.upper_bound();
            if new > 0.0 {
                values.push(json!(bucket.upper_bound()));
                counts.push(json!(new));
            }
        }
        let total = h.get_sample_count() as f64;
        let before = self
            .last
            .insert(format!("{name}#count"), total)
            .unwrap_or(0.0);
        let overflow = (total - before) - below;
        if overflow > 0.0 {
            if values.last() == Some(&json!(last_bound)) {
                if let Some(count) = counts.last_mut() {
                    *count = json!(count.as_f64().unwrap_or(0.0) + overflow);
                }
            } else {
                values.push(json!(last_bound));
                counts.push(json!(overflow));
            }
        }
        (!values.is_empty()).then(|| json!({ "Values": values, "Counts": counts }))
    }
}

/// `polybot_jobs_succeeded_total` → `JobsSucceeded`; other registries'
/// metrics (the process collector's) are not sent.
fn metric_name(prom: &str) -> Option<String> {
    let rest = prom.strip_prefix("polybot_")?;
    let rest = rest.strip_suffix("_total").unwrap_or(rest);
    Some(camel(rest))
}

fn camel(snake: &str) -> String {
    snake
        .split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The thread that writes a line every [`INTERVAL`], and once more when
/// stopped, so the last interval's counts are not lost at shutdown.
pub(crate) struct EmfThread {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl EmfThread {
    pub(crate) fn start(service: &'static str, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("emf-metrics".into())
            .spawn(move || {
                let mut renderer = EmfRenderer::new(service);
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(interval),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    let lines = renderer.render(&prometheus::gather(), now_ms());
                    let mut out = std::io::stdout().lock();
                    for line in lines {
                        // stdout gone (a closed pipe): nothing to tell.
                        let _ = writeln!(out, "{line}");
                    }
                    let _ = out.flush();
                    if last {
                        return;
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }

    /// Writes the last line and waits for the thread.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmfThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (
        prometheus::Registry,
        prometheus::IntCounterVec,
        prometheus::Histogram,
        prometheus::Gauge,
    ) {
        let r = prometheus::Registry::new();
        let c = prometheus::IntCounterVec::new(
            prometheus::Opts::new("polybot_replies_total", "replies"),
            &["outcome"],
        )
        .expect("counter");
        let h = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("polybot_detection_seconds", "detection")
                .buckets(vec![0.1, 0.5]),
        )
        .expect("histogram");
        let g = prometheus::Gauge::new("polybot_backlog_per_instance", "backlog").expect("gauge");
        let other = prometheus::IntCounter::new("process_cpu_total", "not ours").expect("c");
        r.register(Box::new(c.clone())).expect("register");
        r.register(Box::new(h.clone())).expect("register");
        r.register(Box::new(g.clone())).expect("register");
        r.register(Box::new(other.clone())).expect("register");
        other.inc();
        (r, c, h, g)
    }

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).expect("an EMF line is JSON")
    }

    #[test]
    fn a_line_is_valid_emf_with_counter_increases_gauges_and_histogram_buckets() {
        let (r, replies, detection, backlog) = registry();
        let mut emf = EmfRenderer::new("detector");
        replies.with_label_values(&["sent"]).inc_by(3);
        detection.observe(0.05);
        detection.observe(0.3);
        detection.observe(0.3);
        detection.observe(2.0);
        backlog.set(4.5);
        let lines = emf.render(&r.gather(), 1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let v = parse(&lines[0]);
        let meta = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(meta["Namespace"], "Polybot");
        assert_eq!(meta["Dimensions"], json!([["Service"]]));
        assert_eq!(v["Service"], "detector");
        // Every metric named in the metadata has a value at the top level,
        // as CloudWatch requires.
        for m in meta["Metrics"].as_array().expect("metrics") {
            let name = m["Name"].as_str().expect("a name");
            assert!(v.get(name).is_some(), "{name} has no value: {v}");
        }
        assert_eq!(v["Replies.Sent"], 3.0);
        assert_eq!(v["Replies"], 3.0, "a labelled counter's total");
        assert_eq!(v["BacklogPerInstance"], 4.5);
        assert_eq!(
            v["DetectionSeconds"],
            json!({ "Values": [0.1, 0.5], "Counts": [1.0, 3.0] })
        );
        assert!(v.get("ProcessCpu").is_none(), "{v}");
    }

    #[test]
    fn the_next_line_holds_only_what_happened_since() {
        let (r, replies, detection, _) = registry();
        let mut emf = EmfRenderer::new("gateway");
        replies.with_label_values(&["sent"]).inc_by(2);
        detection.observe(0.3);
        emf.render(&r.gather(), 1);
        replies.with_label_values(&["sent"]).inc();
        replies.with_label_values(&["error"]).inc();
        let v = parse(&emf.render(&r.gather(), 2)[0]);
        assert_eq!(v["Replies.Sent"], 1.0);
        assert_eq!(v["Replies.Error"], 1.0);
        assert_eq!(v["Replies"], 2.0);
        assert!(
            v.get("DetectionSeconds").is_none(),
            "no new observation: {v}"
        );
        detection.observe(0.05);
        let v = parse(&emf.render(&r.gather(), 3)[0]);
        assert_eq!(
            v["DetectionSeconds"],
            json!({ "Values": [0.1], "Counts": [1.0] })
        );
        assert!(v.get("Replies.Sent").is_none(), "unchanged: {v}");
    }

    #[test]
    fn many_metrics_are_split_into_lines_of_at_most_a_hundred() {
        let r = prometheus::Registry::new();
        let c = prometheus::IntCounterVec::new(
            prometheus::Opts::new("polybot_many_total", "many"),
            &["n"],
        )
        .expect("counter");
        r.register(Box::new(c.clone())).expect("register");
        for i in 0..150 {
            c.with_label_values(&[&i.to_string()]).inc();
        }
        // 150 labels and their total.
        let lines = EmfRenderer::new("x").render(&r.gather(), 1);
        assert_eq!(lines.len(), 2);
        let first = parse(&lines[0]);
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(Vec::len),
            Some(100)
        );
    }
}
