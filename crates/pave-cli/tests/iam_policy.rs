//! `kubectl pave iam-policy` prints the chart's policy document, narrowed to a
//! cluster's id when given one.

use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .arg("iam-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn it_prints_the_charts_policy() {
    let shipped: Value =
        serde_json::from_str(include_str!("../../../charts/pave/aws-iam-policy.json")).unwrap();
    assert_eq!(run(&[]), shipped);
}

#[test]
fn a_cluster_id_limits_changes_to_that_clusters_resources() {
    let policy = run(&["--cluster-id", "k8s-0a1b2c"]);
    let text = policy.to_string();
    assert!(
        text.contains(r#""StringEquals":{"aws:ResourceTag/pave.dev/cluster-id":"k8s-0a1b2c"}"#),
        "{text}"
    );
    assert!(!text.contains("StringLike"), "{text}");
}
