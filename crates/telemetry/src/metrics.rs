//! Metrics recorded twice: in the process-wide Prometheus registry (served
//! at `/metrics`) and as OpenTelemetry instruments (exported over OTLP when
//! an endpoint is configured, see [`crate::init`]; no-ops otherwise).
//!
//! Label sets must stay bounded: status codes, outcome and reason names.

use std::sync::OnceLock;

use opentelemetry::KeyValue;

fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("polybot")
}

enum PromCounter {
    Plain(prometheus::IntCounter),
    Labelled(prometheus::IntCounterVec),
}

/// A monotonic counter, optionally with labels.
pub struct Counter {
    prom: Option<PromCounter>,
    // Built on first use, after `init` has installed the meter provider.
    otel: OnceLock<opentelemetry::metrics::Counter<u64>>,
    otel_name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

impl Counter {
    /// `prom_name` is the Prometheus name (`…_total`), `otel_name` the
    /// OpenTelemetry one (dotted, e.g. `polybot.jobs.received`).
    pub fn new(
        prom_name: &'static str,
        otel_name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        let prom = if labels.is_empty() {
            prometheus::register_int_counter!(prom_name, help)
                .ok()
                .map(PromCounter::Plain)
        } else {
            prometheus::register_int_counter_vec!(prom_name, help, labels)
                .ok()
                .map(PromCounter::Labelled)
        };
        Self {
            prom,
            otel: OnceLock::new(),
            otel_name,
            help,
            labels,
        }
    }

    /// Adds one; `values` match the labels given to [`Counter::new`], in order.
    pub fn inc(&self, values: &[&str]) {
        match &self.prom {
            Some(PromCounter::Plain(c)) => c.inc(),
            Some(PromCounter::Labelled(c)) => {
                if let Ok(c) = c.get_metric_with_label_values(values) {
                    c.inc();
                }
            }
            None => {}
        }
        let otel = self.otel.get_or_init(|| {
            meter()
                .u64_counter(self.otel_name)
                .with_description(self.help)
                .build()
        });
        let attributes: Vec<KeyValue> = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| KeyValue::new(*k, (*v).to_owned()))
            .collect();
        otel.add(1, &attributes);
    }
}

/// A histogram of durations in seconds.
pub struct Histogram {
    prom: Option<prometheus::Histogram>,
    otel: OnceLock<opentelemetry::metrics::Histogram<f64>>,
    otel_name: &'static str,
    help: &'static str,
    buckets: &'static [f64],
}

impl Histogram {
    pub fn seconds(
        prom_name: &'static str,
        otel_name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
    ) -> Self {
        Self {
            prom: prometheus::register_histogram!(prom_name, help, buckets.to_vec()).ok(),
            otel: OnceLock::new(),
            otel_name,
            help,
            buckets,
        }
    }

    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if let Some(h) = &self.prom {
            h.observe(seconds);
        }
        let otel = self.otel.get_or_init(|| {
            meter()
                .f64_histogram(self.otel_name)
                .with_description(self.help)
                .with_unit("s")
                .with_boundaries(self.buckets.to_vec())
                .build()
        });
        otel.record(seconds, &[]);
    }
}

enum PromGauge {
    Plain(prometheus::Gauge),
    Labelled(prometheus::GaugeVec),
}

/// A value that goes up and down (a queue's depth), optionally with labels.
pub struct Gauge {
    prom: Option<PromGauge>,
    otel: OnceLock<opentelemetry::metrics::Gauge<f64>>,
    otel_name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

impl Gauge {
    /// `prom_name` is the Prometheus name, `otel_name` the OpenTelemetry
    /// one (dotted, e.g. `polybot.queue.messages`).
    pub fn new(
        prom_name: &'static str,
        otel_name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        let prom = if labels.is_empty() {
            prometheus::register_gauge!(prom_name, help)
                .ok()
                .map(PromGauge::Plain)
        } else {
            prometheus::register_gauge_vec!(prom_name, help, labels)
                .ok()
                .map(PromGauge::Labelled)
        };
        Self {
            prom,
            otel: OnceLock::new(),
            otel_name,
            help,
            labels,
        }
    }

    /// Sets the value; `values` match the labels given to [`Gauge::new`].
    pub fn set(&self, value: f64, values: &[&str]) {
        match &self.prom {
            Some(PromGauge::Plain(g)) => g.set(value),
            Some(PromGauge::Labelled(g)) => {
                if let Ok(g) = g.get_metric_with_label_values(values) {
                    g.set(value);
                }
            }
            None => {}
        }
        let otel = self.otel.get_or_init(|| {
            meter()
                .f64_gauge(self.otel_name)
                .with_description(self.help)
                .build()
        });
        let attributes: Vec<KeyValue> = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| KeyValue::new(*k, (*v).to_owned()))
            .collect();
        otel.record(value, &attributes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_show_in_the_prometheus_text() {
        let plain = Counter::new(
            "telemetry_test_plain_total",
            "telemetry.test.plain",
            "a plain counter",
            &[],
        );
        let labelled = Counter::new(
            "telemetry_test_labelled_total",
            "telemetry.test.labelled",
            "a labelled counter",
            &["outcome"],
        );
        let h = Histogram::seconds(
            "telemetry_test_seconds",
            "telemetry.test.duration",
            "a histogram",
            &[0.1, 1.0],
        );
        plain.inc(&[]);
        labelled.inc(&["ok"]);
        labelled.inc(&["ok"]);
        h.observe(0.5);
        let gauge = Gauge::new(
            "telemetry_test_gauge",
            "telemetry.test.gauge",
            "a labelled gauge",
            &["state"],
        );
        gauge.set(7.0, &["visible"]);
        gauge.set(3.0, &["visible"]);
        let text = crate::metrics_text();
        assert!(
            text.contains("telemetry_test_gauge{state=\"visible\"} 3"),
            "{text}"
        );
        assert!(text.contains("telemetry_test_plain_total 1"), "{text}");
        assert!(
            text.contains("telemetry_test_labelled_total{outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("telemetry_test_seconds_count 1"), "{text}");
        assert!(
            text.contains("telemetry_test_seconds_bucket{le=\"1\"} 1"),
            "{text}"
        );
    }
}
