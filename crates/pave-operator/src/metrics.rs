//! Prometheus metrics of the controllers, served on `/metrics`.
//!
//! `pave_operator_status_writes_total` is the number benchmarks watch: a steady
//! cluster must leave it flat. `pave_operator_catalog_entities` and
//! `pave_operator_retrying_objects` are the sizes of the state kept per object; they
//! follow what exists and what is failing, so a cluster that deletes what it created
//! sees them return to where they were.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    controller: &'static str,
    error: &'static str,
}

type Histograms = Family<ControllerLabel, Histogram, fn() -> Histogram>;

/// Every metric of the operator, registered under the prefix `pave_operator`.
pub struct Metrics {
    registry: Registry,
    runs: Family<ControllerLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Histograms,
    status_writes: Family<ControllerLabel, Counter>,
    catalog_entities: Gauge,
    retrying: Family<ControllerLabel, Gauge>,
    leader: Gauge,
}

impl Metrics {
    /// Creates the series of each named controller at zero, so a scrape right after
    /// start already shows every controller and rates start from a known value.
    pub fn new(controllers: &[&'static str]) -> Self {
        let mut registry = Registry::with_prefix("pave_operator");
        let runs = Family::<ControllerLabel, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        // 5 ms to ~40 s: a status write takes milliseconds, a cloud call can take seconds.
        let duration: Histograms =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        let status_writes = Family::<ControllerLabel, Counter>::default();
        let catalog_entities = Gauge::default();
        let retrying = Family::<ControllerLabel, Gauge>::default();
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (holds the leader lease, or runs \
             without leader election), 0 while it stands by",
            leader.clone(),
        );
        registry.register("reconcile_runs", "Reconciles started", runs.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that returned an error, by error label",
            failures.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "How long reconciles took",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes sent to the API server",
            status_writes.clone(),
        );
        registry.register(
            "catalog_entities",
            "Entities in the catalog graph: Components and environments that exist, and \
             whatever they reference",
            catalog_entities.clone(),
        );
        registry.register(
            "retrying_objects",
            "Objects whose last reconcile failed transiently and that wait for a retry",
            retrying.clone(),
        );
        for &controller in controllers {
            let label = ControllerLabel { controller };
            runs.get_or_create_owned(&label);
            duration.get_or_create_owned(&label);
            status_writes.get_or_create_owned(&label);
            retrying.get_or_create_owned(&label);
        }
        Metrics {
            registry,
            runs,
            failures,
            duration,
            status_writes,
            catalog_entities,
            retrying,
            leader,
        }
    }

    /// Counts a reconcile and measures it until the returned guard is dropped.
    pub fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer {
        let label = ControllerLabel { controller };
        self.runs.get_or_create(&label).inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.get_or_create_owned(&label),
        }
    }

    pub fn reconcile_failed(&self, controller: &'static str, error: &'static str) {
        self.failures
            .get_or_create(&FailureLabels { controller, error })
            .inc();
    }

    pub fn status_written(&self, controller: &'static str) {
        self.status_writes
            .get_or_create(&ControllerLabel { controller })
            .inc();
    }

    pub fn set_catalog_entities(&self, entities: usize) {
        self.catalog_entities
            .set(i64::try_from(entities).unwrap_or(i64::MAX));
    }

    pub fn set_retrying(&self, controller: &'static str, objects: usize) {
        self.retrying
            .get_or_create(&ControllerLabel { controller })
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Observes the reconcile's duration when dropped, so early returns are measured too.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_controller_and_counts() {
        let metrics = Metrics::new(&["pave-catalog", "pave-scorecards"]);
        drop(metrics.reconcile_started("pave-catalog"));
        drop(metrics.reconcile_started("pave-catalog"));
        metrics.status_written("pave-catalog");
        metrics.reconcile_failed("pave-catalog", "write_status");
        metrics.set_catalog_entities(3);
        metrics.set_retrying("pave-catalog", 2);
        let text = metrics.render();
        for line in [
            r#"pave_operator_reconcile_runs_total{controller="pave-catalog"} 2"#,
            r#"pave_operator_reconcile_runs_total{controller="pave-scorecards"} 0"#,
            r#"pave_operator_status_writes_total{controller="pave-catalog"} 1"#,
            r#"pave_operator_status_writes_total{controller="pave-scorecards"} 0"#,
            r#"pave_operator_reconcile_failures_total{controller="pave-catalog",error="write_status"} 1"#,
            r#"pave_operator_reconcile_duration_seconds_count{controller="pave-catalog"} 2"#,
            "# TYPE pave_operator_reconcile_duration_seconds histogram",
            "pave_operator_catalog_entities 3",
            "# TYPE pave_operator_catalog_entities gauge",
            r#"pave_operator_retrying_objects{controller="pave-catalog"} 2"#,
            r#"pave_operator_retrying_objects{controller="pave-scorecards"} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
