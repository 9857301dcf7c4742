//! The article's manifests in `examples/` apply unchanged with the real kubectl, and
//! `kubectl get pave -A` lists them with their columns.

use pave_testenv::TestEnv;
use pave_tests::{kubectl, kubectl_ok, repo_root};

#[test]
fn examples_apply_and_list_under_the_pave_category() {
    let env = TestEnv::shared();
    let examples = repo_root().join("examples");
    let applied = kubectl_ok(env, &["apply", "-f", examples.to_str().unwrap()], "");
    // examples/backstage/ and examples/port/ hold Backstage's and Port's own files, not
    // Kubernetes objects: `apply -f DIR` without -R must leave them alone (it would fail
    // on them), so exactly the sixteen objects of examples/*.yaml are applied.
    assert_eq!(applied.lines().count(), 16, "{applied}");
    for object in [
        "configmap/pave-operator-config",
        "namespace/team-payments",
        "group.platform.pave.dev/platform",
        "group.platform.pave.dev/payments-team",
        "group.platform.pave.dev/identity-team",
        "user.platform.pave.dev/jiwoo",
        "user.platform.pave.dev/minseo",
        "domain.platform.pave.dev/commerce",
        "system.platform.pave.dev/payments",
        "api.platform.pave.dev/payment-api",
        "api.platform.pave.dev/user-api",
        "resource.platform.pave.dev/payments-ledger",
        "component.platform.pave.dev/payment-service",
        "component.platform.pave.dev/user-service",
        "scorecard.platform.pave.dev/service-maturity",
        "developerenvironment.platform.pave.dev/feature-payment-v2-env",
    ] {
        assert!(
            applied.contains(object),
            "kubectl apply did not create {object}:\n{applied}"
        );
    }

    let listed = kubectl_ok(env, &["get", "pave", "-A"], "");
    let has_row = |cells: &[&str]| {
        listed.lines().any(|line| {
            cells.iter().all(|c| {
                line.split_whitespace()
                    .any(|w| w == *c || w.ends_with(&format!("/{c}")))
            })
        })
    };
    let has_header = |cells: &[&str]| {
        listed
            .lines()
            .any(|line| cells.iter().all(|c| line.contains(c)))
    };
    assert!(
        has_header(&["TYPE", "LIFECYCLE", "OWNER", "READY", "LEVEL"]),
        "Component columns missing:\n{listed}"
    );
    assert!(
        has_row(&[
            "team-payments",
            "payment-service",
            "service",
            "production",
            "payments-team"
        ]),
        "{listed}"
    );
    assert!(
        has_header(&["REGION", "DB SIZE", "CLUSTER", "PHASE", "READY", "AGE"]),
        "environment columns missing:\n{listed}"
    );
    assert!(
        has_row(&[
            "feature-payment-v2-env",
            "ap-northeast-2",
            "db.t3.medium",
            "small"
        ]),
        "{listed}"
    );
    assert!(
        has_header(&["TITLE", "EVALUATED", "AGE"]),
        "Scorecard columns missing:\n{listed}"
    );
    assert!(has_row(&["service-maturity", "서비스"]), "{listed}");

    // Short names work (`sc` is StorageClass's in every cluster, so `scard`), and the
    // article's scorecard kept its Korean title and rules.
    let rules = kubectl_ok(
        env,
        &[
            "get",
            "scard",
            "service-maturity",
            "-o",
            "jsonpath={.spec.rules[*].identifier}",
        ],
        "",
    );
    assert_eq!(rules, "has-catalog-info has-owner has-runbook has-alerting");
    let defaults = kubectl_ok(
        env,
        &[
            "get",
            "devenv",
            "-n",
            "team-payments",
            "feature-payment-v2-env",
            "-o",
            "jsonpath={.spec.parameters.dbEngine} {.spec.parameters.dbStorageGiB} {.spec.deletionPolicy}",
        ],
        "",
    );
    assert_eq!(
        defaults, "postgres 20 Delete",
        "the API server applies the documented defaults"
    );

    kubectl_ok(
        env,
        &["delete", "-f", examples.to_str().unwrap(), "--wait=false"],
        "",
    );
}

#[test]
fn kubectl_explain_shows_the_field_documentation() {
    let env = TestEnv::shared();
    let out = kubectl(env, &["explain", "devenv.spec.parameters.dbStorageGiB"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("May grow, never shrink"), "{text}");
    let out = kubectl_ok(env, &["explain", "component.spec.owner"], "");
    assert!(out.contains("entity reference"), "{out}");
}
