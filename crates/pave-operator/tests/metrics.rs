//! `/metrics` after a scenario, read with an OpenMetrics parser and checked against
//! what the others saw: every AWS request the fault proxy handled, by service and
//! operation, and every status write the API server counted. The scenario is a small
//! catalog and an environment created, made Ready through throttling, and deleted.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::devenv::{delete, environment, wait_gone, wait_phase};
use common::proxy::{ProxyLogOnPanic, one_operator_at_a_time, start_behind};
use common::{Operator, eventually, holds_for, kubectl_apply};
use openmetrics_parser::{MetricNumber, OpenMetricsValue, PrometheusValue};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, When};
use serde_json::json;

const REGION: &str = "eu-west-1";
const CONFIG: &str = "allowedRegions: [eu-west-1]\n";
/// The requests the proxy throttles: the SDK retries both, so they are requests
/// without calls of their own.
const THROTTLED: usize = 2;

/// One sample: family name, labels, and its value (a histogram's count).
type Series = Vec<(String, BTreeMap<String, String>, f64)>;

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

/// The operator's `/metrics`, parsed as OpenMetrics (which pave serves).
fn scrape(operator: &Operator) -> Series {
    let (code, text) = operator.get("/metrics");
    assert_eq!(code, 200, "{text}");
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("/metrics is not valid OpenMetrics: {e}\n{text}"));
    let mut series = Series::new();
    for (name, family) in &exposition.families {
        for sample in family.iter_samples() {
            let labels = sample
                .get_labelset()
                .expect("a label set")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &sample.value {
                OpenMetricsValue::Counter(c) => number(&c.value),
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => number(n),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or_default() as f64,
                other => panic!("{name}: unexpected value {other:?}"),
            };
            series.push((name.clone(), labels, value));
        }
    }
    series
}

/// The sum of `family`'s samples whose labels include every pair of `with`.
fn sum(series: &Series, family: &str, with: &[(&str, &str)]) -> f64 {
    series
        .iter()
        .filter(|(name, labels, _)| {
            name == family
                && with
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| value)
        .sum()
}

/// Status writes to pave's kinds the API server has answered, from its own metrics
/// (Prometheus text): server-side applies and patches of the `status` subresource.
fn status_writes_seen_by_api_server(env: &TestEnv) -> f64 {
    let text = env
        .run_kubectl(&["get", "--raw", "/metrics"])
        .expect("the API server's metrics");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total") || l.starts_with('#'))
        .filter(|l| !l.starts_with('#') || l.contains("apiserver_request_total"))
        .map(str::to_owned)
        .collect();
    let exposition = openmetrics_parser::prometheus::parse_prometheus(&(lines.join("\n") + "\n"))
        .expect("the API server's request counter parses");
    let family = &exposition.families["apiserver_request_total"];
    family
        .iter_samples()
        .filter(|sample| {
            let labels = sample.get_labelset().expect("a label set");
            labels.get_label_value("group") == Some("platform.pave.dev")
                && labels.get_label_value("subresource") == Some("status")
                && matches!(labels.get_label_value("verb"), Some("APPLY" | "PATCH"))
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(c) => number(&c.value),
            other => panic!("apiserver_request_total: unexpected value {other:?}"),
        })
        .sum()
}

/// AWS requests the proxy handled, by `(service, action)`.
fn requests_seen_by_proxy(proxy: &FaultProxy) -> BTreeMap<(String, String), usize> {
    let mut seen = BTreeMap::new();
    for request in proxy.requests() {
        *seen
            .entry((request.service.clone(), request.action.clone()))
            .or_default() += 1;
    }
    seen
}

/// The operator's `pave_operator_aws_requests_total`, by `(service, operation)`.
fn requests_counted(series: &Series) -> BTreeMap<(String, String), usize> {
    series
        .iter()
        .filter(|(name, _, _)| name == "pave_operator_aws_requests")
        .map(|(_, labels, value)| {
            (
                (labels["service"].clone(), labels["operation"].clone()),
                *value as usize,
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn metrics_match_what_the_proxy_and_the_api_server_saw() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let ns = env.namespace("metrics");
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    proxy.set_rules(vec![Rule::new(
        ["DescribeVpcs"],
        When::First(THROTTLED),
        Fault::Throttle,
    )]);
    let writes_before = status_writes_seen_by_api_server(env);
    let operator = start_behind(env, &proxy, Some(CONFIG));

    for (name, depends_on) in [("api", json!([])), ("web", json!(["component:api"]))] {
        kubectl_apply(
            env,
            &json!({
                "apiVersion": "platform.pave.dev/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": ns.name()},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team",
                         "dependsOn": depends_on},
            }),
        );
    }
    let parameters = json!({"region": REGION, "dbSize": "db.t3.micro", "clusterSize": "small"});
    let manifest = environment(
        ns.name(),
        "measured",
        parameters,
        json!({"compositeDeletePolicy": "Foreground"}),
    );
    kubectl_apply(env, &manifest);
    let ready = wait_phase(env, ns.name(), "measured", "Ready");
    let resources = ready["status"]["resources"].as_array().expect("resources");

    // While it is Ready: one environment in that phase, its resources by kind.
    let series = eventually(Duration::from_secs(20), "the census", || {
        let series = scrape(&operator);
        (sum(&series, "pave_operator_environments", &[("phase", "Ready")]) == 1.0).then_some(series)
    });
    assert_eq!(sum(&series, "pave_operator_environments", &[]), 1.0);
    assert_eq!(
        sum(&series, "pave_operator_cloud_resources", &[]),
        resources.len() as f64,
        "{resources:?}"
    );
    for resource in resources {
        let kind = resource["kind"].as_str().unwrap();
        let in_status = resources.iter().filter(|r| r["kind"] == kind).count();
        assert_eq!(
            sum(&series, "pave_operator_cloud_resources", &[("kind", kind)]),
            in_status as f64,
            "{kind}"
        );
    }

    delete(env, ns.name(), "measured");
    wait_gone(env, ns.name(), "measured", Duration::from_secs(60));

    // At rest: the operator's counts of AWS requests are the proxy's, and its status
    // writes are the API server's. Read between two equal looks at both, so that no
    // call or write is in flight.
    let series = eventually(Duration::from_secs(30), "metrics at rest", || {
        let (proxy_before, writes) = (
            requests_seen_by_proxy(&proxy),
            status_writes_seen_by_api_server(env),
        );
        let series = scrape(&operator);
        let settled = requests_seen_by_proxy(&proxy) == proxy_before
            && status_writes_seen_by_api_server(env) == writes
            && requests_counted(&series) == proxy_before
            && sum(&series, "pave_operator_status_writes", &[]) == writes - writes_before;
        settled.then_some(series)
    });

    let seen = requests_seen_by_proxy(&proxy);
    assert!(
        seen.keys().any(|(_, action)| action == "CreateVpc")
            && seen.keys().any(|(_, action)| action == "DeleteVpc"),
        "the scenario created and deleted: {seen:?}"
    );
    // Each call ends once; the throttled requests were retried inside their calls.
    let requests: f64 = seen.values().sum::<usize>() as f64;
    let calls = sum(&series, "pave_operator_aws_calls", &[]);
    assert_eq!(calls, requests - THROTTLED as f64, "{series:#?}");
    let describe_vpcs = [("service", "ec2"), ("operation", "DescribeVpcs")];
    let retried = sum(
        &series,
        "pave_operator_aws_calls",
        &[describe_vpcs[0], describe_vpcs[1], ("outcome", "retried")],
    );
    assert!(
        (1.0..=THROTTLED as f64).contains(&retried),
        "DescribeVpcs retried after throttling: {retried}"
    );
    assert_eq!(
        sum(&series, "pave_operator_aws_calls", &[("outcome", "failed")])
            + sum(
                &series,
                "pave_operator_aws_calls",
                &[("outcome", "throttled")]
            ),
        0.0,
        "no call failed for good: {:?}",
        series
            .iter()
            .filter(|(name, labels, v)| name == "pave_operator_aws_calls"
                && *v > 0.0
                && matches!(labels["outcome"].as_str(), "failed" | "throttled"))
            .collect::<Vec<_>>()
    );

    // Reconciles: counted, each one timed, none failed, nothing waiting.
    for controller in ["pave-catalog", "pave-environments"] {
        let label = [("controller", controller)];
        let runs = sum(&series, "pave_operator_reconciles", &label);
        assert!(runs > 0.0, "{controller} reconciled");
        assert_eq!(
            sum(&series, "pave_operator_reconcile_duration_seconds", &label),
            runs,
            "{controller}: one duration per reconcile"
        );
        assert_eq!(sum(&series, "pave_operator_queue_depth", &label), 0.0);
    }
    assert_eq!(
        sum(&series, "pave_operator_reconcile_errors", &[]),
        0.0,
        "{:?}",
        series
            .iter()
            .filter(|(name, _, v)| name == "pave_operator_reconcile_errors" && *v > 0.0)
            .collect::<Vec<_>>()
    );
    assert_eq!(sum(&series, "pave_operator_environments", &[]), 0.0);
    assert_eq!(sum(&series, "pave_operator_cloud_resources", &[]), 0.0);
    assert_eq!(sum(&series, "pave_operator_leader", &[]), 1.0);

    // Names follow Prometheus conventions: pave's prefix, counters' samples in
    // `_total`, histograms in seconds.
    let (_, text) = operator.get("/metrics");
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (family, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(family.starts_with("pave_"), "{line}");
        match kind {
            "histogram" => assert!(family.ends_with("_seconds"), "{line}"),
            "counter" => {
                let samples: Vec<&str> = text
                    .lines()
                    .filter(|l| l.split(['{', ' ']).next() == Some(family))
                    .chain(text.lines().filter(|l| {
                        l.starts_with(&format!("{family}_"))
                            && !l.starts_with(&format!("{family}_total"))
                    }))
                    .collect();
                assert!(
                    samples.is_empty(),
                    "{family}: samples not in _total: {samples:?}"
                );
            }
            _ => {}
        }
    }
    holds_for(Duration::from_secs(3), "no writes at rest", || {
        let now = status_writes_seen_by_api_server(env);
        let counted = sum(&scrape(&operator), "pave_operator_status_writes", &[]);
        if now - writes_before == counted {
            Ok(())
        } else {
            Err(format!(
                "the API server saw {} status writes, the operator counted {counted}",
                now - writes_before
            ))
        }
    });
}
