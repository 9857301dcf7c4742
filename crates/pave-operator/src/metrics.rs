//! Prometheus metrics of the controllers, served on `/metrics`.
//!
//! `pave_operator_status_writes_total` is the number benchmarks watch: a steady
//! cluster must leave it flat. `pave_operator_catalog_entities` and
//! `pave_operator_retrying_objects` are the sizes of the state kept per object; they
//! follow what exists and what is failing, so a cluster that deletes what it created
//! sees them return to where they were.
//!
//! Three families are computed when scraped rather than kept up to date: the queue
//! depths (`queue`), and environments by phase and cloud resources by kind and state,
//! counted from the environment controller's store (the statuses pave wrote). A
//! standby has no store and shows none of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use pave_cloud::aws::{CallObserver, CallOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::queue::QueueDepth;

/// The phases an environment's status can show, and `Pending` for one pave has not
/// written a phase for yet. Each series exists from the start, at 0.
pub const PHASES: [&str; 6] = [
    "Pending",
    "Provisioning",
    "Ready",
    "Updating",
    "Deleting",
    "Failed",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    kind: String,
    state: String,
}

/// Counts environments and their cloud resources, for one scrape.
pub struct EnvironmentCensus<'a> {
    phases: &'a Family<PhaseLabel, Gauge>,
    resources: &'a Family<ResourceLabels, Gauge>,
}

impl EnvironmentCensus<'_> {
    /// One environment in `phase` (one of [`PHASES`]).
    pub fn environment(&self, phase: &str) {
        self.phases
            .get_or_create(&PhaseLabel {
                phase: phase.to_owned(),
            })
            .inc();
    }

    /// One cloud resource of `kind` (`Vpc`, `DbInstance`, …) in `state` as the cloud
    /// reported it (`available`, `running`, …; `unknown` before it has one).
    pub fn resource(&self, kind: &str, state: &str) {
        self.resources
            .get_or_create(&ResourceLabels {
                kind: kind.to_owned(),
                state: state.to_owned(),
            })
            .inc();
    }
}

type Census = Box<dyn Fn(&EnvironmentCensus<'_>) + Send + Sync>;

type Histograms = Family<ControllerLabel, Histogram, fn() -> Histogram>;

/// Every metric of the operator, registered under the prefix `pave_operator`.
pub struct Metrics {
    registry: Registry,
    runs: Family<ControllerLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Histograms,
    status_writes: Family<ControllerLabel, Counter>,
    catalog_entities: Gauge,
    retrying: Family<ControllerLabel, Gauge>,
    leader: Gauge,
    queues: HashMap<&'static str, Arc<QueueDepth>>,
    queue_depth: Family<ControllerLabel, Gauge>,
    aws: Arc<AwsCalls>,
    phases: Family<PhaseLabel, Gauge>,
    resources: Family<ResourceLabels, Gauge>,
    census: OnceLock<Census>,
    /// One scrape at a time recomputes the families counted when scraped.
    scraping: Mutex<()>,
}

/// AWS calls by service, operation and outcome, told by the SDK clients' interceptor.
#[derive(Debug, Default)]
struct AwsCalls {
    calls: Family<CallLabels, Counter>,
    requests: Family<OperationLabels, Counter>,
}

impl CallObserver for AwsCalls {
    fn finished(&self, service: &str, operation: &str, attempts: u32, outcome: CallOutcome) {
        let (service, operation) = (service.to_owned(), operation.to_owned());
        self.requests
            .get_or_create(&OperationLabels {
                service: service.clone(),
                operation: operation.clone(),
            })
            .inc_by(u64::from(attempts));
        self.calls
            .get_or_create(&CallLabels {
                service,
                operation,
                outcome: outcome.as_str(),
            })
            .inc();
    }
}

impl Metrics {
    /// Creates the series of each named controller at zero, so a scrape right after
    /// start already shows every controller and rates start from a known value.
    pub fn new(controllers: &[&'static str]) -> Self {
        let mut registry = Registry::with_prefix("pave_operator");
        let runs = Family::<ControllerLabel, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
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
        registry.register("reconciles", "Reconciles started", runs.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by reason (work still under way in the cloud is \
             not an error)",
            errors.clone(),
        );
        // The unit is in the name only: a `# UNIT` line on a histogram is refused by
        // some OpenMetrics parsers, and Prometheus reads the name anyway.
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, in seconds",
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
        let queue_depth = Family::<ControllerLabel, Gauge>::default();
        registry.register(
            "queue_depth",
            "Objects waiting for a reconcile that is due and has not started",
            queue_depth.clone(),
        );
        let aws = Arc::new(AwsCalls::default());
        registry.register(
            "aws_calls",
            "AWS API calls by service, operation and outcome: ok, retried (answered \
             after the SDK retried it), not_found (the answer to a look-up or delete of \
             what does not exist), throttled (failed, the last answer throttling), failed",
            aws.calls.clone(),
        );
        registry.register(
            "aws_requests",
            "HTTP requests of AWS API calls, by service and operation: each attempt \
             counts, so this minus the calls is the SDK's retries",
            aws.requests.clone(),
        );
        let phases = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "environments",
            "DeveloperEnvironments by phase",
            phases.clone(),
        );
        let resources = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "cloud_resources",
            "Cloud resources of DeveloperEnvironments by kind and state, as their \
             statuses show them",
            resources.clone(),
        );
        let mut queues = HashMap::new();
        for &controller in controllers {
            let label = ControllerLabel { controller };
            runs.get_or_create_owned(&label);
            duration.get_or_create_owned(&label);
            status_writes.get_or_create_owned(&label);
            retrying.get_or_create_owned(&label);
            queue_depth.get_or_create_owned(&label);
            queues.insert(controller, Arc::new(QueueDepth::default()));
        }
        Metrics {
            registry,
            runs,
            errors,
            duration,
            status_writes,
            catalog_entities,
            retrying,
            leader,
            queues,
            queue_depth,
            aws,
            phases,
            resources,
            census: OnceLock::new(),
            scraping: Mutex::new(()),
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

    pub fn reconcile_failed(&self, controller: &'static str, reason: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { controller, reason })
            .inc();
    }

    /// The work queue of `controller`, one of those the metrics were created with.
    pub fn queue(&self, controller: &'static str) -> Arc<QueueDepth> {
        self.queues
            .get(controller)
            .unwrap_or_else(|| panic!("no queue for controller {controller}"))
            .clone()
    }

    /// Where AWS clients report their calls ([`pave_cloud::aws::Aws::observe_calls`]).
    pub fn aws_calls(&self) -> Arc<dyn CallObserver> {
        self.aws.clone()
    }

    /// How to count environments and their resources at each scrape: the environment
    /// controller's store. Set once; a second is ignored.
    pub fn count_environments(
        &self,
        census: impl Fn(&EnvironmentCensus<'_>) + Send + Sync + 'static,
    ) {
        let _ = self.census.set(Box::new(census));
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
        let _scrape = self.scraping.lock().expect("not poisoned");
        for (&controller, queue) in &self.queues {
            let depth = i64::try_from(queue.depth()).unwrap_or(i64::MAX);
            self.queue_depth
                .get_or_create(&ControllerLabel { controller })
                .set(depth);
        }
        if let Some(census) = self.census.get() {
            self.phases.clear();
            self.resources.clear();
            for phase in PHASES {
                self.phases.get_or_create_owned(&PhaseLabel {
                    phase: phase.to_owned(),
                });
            }
            census(&EnvironmentCensus {
                phases: &self.phases,
                resources: &self.resources,
            });
        }
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
        let queue = metrics.queue("pave-catalog");
        queue.retry_in((None, "a".into()), std::time::Duration::ZERO);
        queue.retry_in((None, "b".into()), std::time::Duration::from_secs(60));
        let aws = metrics.aws_calls();
        aws.finished("ec2", "DescribeVpcs", 1, CallOutcome::Ok);
        aws.finished("ec2", "DescribeVpcs", 3, CallOutcome::Throttled);
        metrics.count_environments(|census| {
            census.environment("Ready");
            census.environment("Ready");
            census.resource("Vpc", "available");
        });
        let text = metrics.render();
        for line in [
            r#"pave_operator_reconciles_total{controller="pave-catalog"} 2"#,
            r#"pave_operator_reconciles_total{controller="pave-scorecards"} 0"#,
            r#"pave_operator_status_writes_total{controller="pave-catalog"} 1"#,
            r#"pave_operator_status_writes_total{controller="pave-scorecards"} 0"#,
            r#"pave_operator_reconcile_errors_total{controller="pave-catalog",reason="write_status"} 1"#,
            r#"pave_operator_reconcile_duration_seconds_count{controller="pave-catalog"} 2"#,
            "# TYPE pave_operator_reconcile_duration_seconds histogram",
            "pave_operator_catalog_entities 3",
            "# TYPE pave_operator_catalog_entities gauge",
            r#"pave_operator_retrying_objects{controller="pave-catalog"} 2"#,
            r#"pave_operator_retrying_objects{controller="pave-scorecards"} 0"#,
            r#"pave_operator_queue_depth{controller="pave-catalog"} 1"#,
            r#"pave_operator_queue_depth{controller="pave-scorecards"} 0"#,
            r#"pave_operator_aws_calls_total{service="ec2",operation="DescribeVpcs",outcome="ok"} 1"#,
            r#"pave_operator_aws_calls_total{service="ec2",operation="DescribeVpcs",outcome="throttled"} 1"#,
            r#"pave_operator_aws_requests_total{service="ec2",operation="DescribeVpcs"} 4"#,
            r#"pave_operator_environments{phase="Ready"} 2"#,
            r#"pave_operator_environments{phase="Failed"} 0"#,
            r#"pave_operator_cloud_resources{kind="Vpc",state="available"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
