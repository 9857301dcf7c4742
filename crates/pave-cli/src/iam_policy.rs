//! `kubectl pave iam-policy`: the AWS IAM policy pave's operator needs, as the chart
//! ships it (`charts/pave/aws-iam-policy.json`): exactly the EC2 and RDS actions the
//! driver calls (`crates/pave-operator/tests/aws_permissions.rs` fails when one is
//! missing or one is never called). Describes and creates cannot be scoped by tag
//! before the resource exists; every call that changes or deletes something is
//! limited to resources carrying the `pave.dev/cluster-id` tag, with `--cluster-id`
//! to this cluster's value (what the operator's `PAVE_CLUSTER_ID` or its default
//! says), so one cluster's pave cannot touch another's, or anything else, in a shared
//! account.

use serde_json::{Value, json};

/// The policy document as the chart ships it.
pub const POLICY: &str = include_str!("../../../charts/pave/aws-iam-policy.json");

/// The tag every cloud resource of a pave cluster carries.
const CLUSTER_TAG: &str = "aws:ResourceTag/pave.dev/cluster-id";

/// The policy, with the tag condition narrowed to `cluster_id` when given.
pub fn render(cluster_id: Option<&str>) -> String {
    let mut policy: Value = serde_json::from_str(POLICY).expect("the shipped policy is JSON");
    if let Some(id) = cluster_id {
        for statement in policy["Statement"].as_array_mut().into_iter().flatten() {
            if statement["Condition"]["StringLike"][CLUSTER_TAG].is_string() {
                statement["Condition"] = json!({"StringEquals": {CLUSTER_TAG: id}});
            }
        }
    }
    serde_json::to_string_pretty(&policy).expect("JSON") + "\n"
}

/// Every action the policy allows.
#[cfg(test)]
fn actions() -> Vec<String> {
    let policy: Value = serde_json::from_str(POLICY).expect("the shipped policy is JSON");
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_id_narrows_every_changing_call() {
        let policy: Value = serde_json::from_str(&render(Some("k8s-1234"))).unwrap();
        let scoped: Vec<&Value> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["Condition"].is_null())
            .collect();
        assert_eq!(scoped.len(), 1);
        assert_eq!(
            scoped[0]["Condition"]["StringEquals"][CLUSTER_TAG],
            "k8s-1234"
        );
        for action in scoped[0]["Action"].as_array().unwrap() {
            let action = action.as_str().unwrap();
            assert!(
                ["Delete", "Terminate", "Modify", "Revoke", "Authorize"]
                    .iter()
                    .any(|verb| action.contains(verb)),
                "{action}"
            );
        }
        // No wildcard action anywhere.
        assert!(actions().iter().all(|a| !a.contains('*')));
    }
}
