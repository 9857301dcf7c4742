//! `kubectl pave score` on the article's files as they are (the bare Port scorecard in
//! `examples/port/`, the Backstage catalog-info.yaml in `examples/backstage/`), and on
//! pave's own objects from `examples/`.

use std::process::{Command, Output};

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn score(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .arg("score")
        .args(args)
        .output()
        .expect("kubectl-pave runs")
}

#[test]
fn the_articles_files_score_basic_with_the_runbook_blocking_silver() {
    let out = score(&[
        "--scorecard",
        &example("port/service-maturity.yaml"),
        &example("backstage/catalog-info.yaml"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["COMPONENT", "LEVEL", "FAILED", "RULES"]);
    assert_eq!(rows[1], ["payment-service", "Basic", "has-runbook"]);
}

#[test]
fn json_output_for_machines() {
    let out = score(&[
        "--scorecard",
        &example("scorecard-service-maturity.yaml"),
        &example("catalog-payment-service.yaml"),
        &example("catalog-user-service.yaml"),
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        results,
        serde_json::json!([
            {"component": "team-payments/payment-service", "scorecard": "service-maturity", "level": "Basic",
             "passed": ["has-catalog-info", "has-owner", "has-alerting"], "failed": ["has-runbook"],
             "nextLevel": "Silver", "blocking": ["has-runbook"]},
            {"component": "team-payments/user-service", "scorecard": "service-maturity", "level": "Silver",
             "passed": ["has-catalog-info", "has-owner", "has-runbook"], "failed": ["has-alerting"],
             "nextLevel": "Gold", "blocking": ["has-alerting"]},
        ])
    );
}

#[test]
fn min_level_fails_the_check_and_names_who_is_below() {
    let files = [
        example("catalog-payment-service.yaml"),
        example("catalog-user-service.yaml"),
    ];
    let scorecard = example("scorecard-service-maturity.yaml");
    let out = score(&[
        "--scorecard",
        &scorecard,
        &files[0],
        &files[1],
        "--min-level",
        "Silver",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("below Silver: team-payments/payment-service"),
        "{stderr}"
    );
    let out = score(&[
        "--scorecard",
        &scorecard,
        &files[0],
        &files[1],
        "--min-level",
        "Basic",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = score(&[
        "--scorecard",
        &scorecard,
        &files[0],
        "--min-level",
        "Platinum",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a level of service-maturity"));
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Each component's level, from `-o json`.
fn levels(out: &Output) -> Vec<(String, Option<String>)> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["component"].as_str().unwrap().to_owned(),
                r["level"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn owners_are_checked_offline_once_the_org_is_given() {
    let owned = |name: &str, level: &str| (name.to_owned(), Some(level.to_owned()));
    // With the org: the typo's owner does not exist, the team and the person do.
    let with_org = score(&[
        "--scorecard",
        &fixture("org/owners.yaml"),
        &fixture("org/org.yaml"),
        &fixture("org/services.yaml"),
        "-o",
        "json",
    ]);
    assert_eq!(
        levels(&with_org),
        [
            owned("payment-service", "Owned"),
            owned("refund-service", "Unowned"),
            owned("ledger", "Owned"),
        ]
    );
    // Without it nothing can be checked, so no owner counts as existing: as in a
    // namespace without Groups.
    let without = score(&[
        "--scorecard",
        &fixture("org/owners.yaml"),
        &fixture("org/services.yaml"),
        "-o",
        "json",
    ]);
    assert!(
        levels(&without)
            .iter()
            .all(|(_, level)| level.as_deref() == Some("Unowned")),
        "{:?}",
        levels(&without)
    );
}
