//! Operators behind a `pave_testenv::FaultProxy`: one at a time per test binary, the
//! proxy's request log printed when a test fails, and which cloud resources the
//! logged delete calls named.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{FaultProxy, Seen};

use super::{Operator, eventually};

/// The calls that take something away in the cloud, in the order a teardown makes
/// them (RevokeSecurityGroupIngress only when one group names another).
pub const DELETES: [&str; 7] = [
    "TerminateInstances",
    "DeleteDBInstance",
    "DeleteDBSubnetGroup",
    "RevokeSecurityGroupIngress",
    "DeleteSecurityGroup",
    "DeleteSubnet",
    "DeleteVpc",
];

/// Every operator watches the same control plane; two at once would both act on
/// every environment. The tests of a binary that start their own take turns.
static ONE_OPERATOR: Mutex<()> = Mutex::new(());

pub fn one_operator_at_a_time() -> MutexGuard<'static, ()> {
    ONE_OPERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the operator with `config` (YAML), AWS behind `proxy`, and waits until it
/// is ready.
pub fn start_behind(env: &TestEnv, proxy: &FaultProxy, config: Option<&str>) -> Operator {
    let operator = Operator::start_with(env, config, &proxy.endpoint());
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });
    operator
}

/// The cloud resources (ids, DB identifiers, DB subnet group names) a delete call in
/// [`DELETES`] named; nothing for any other call.
pub fn named_by_delete(seen: &Seen) -> Vec<&str> {
    let one = |name| seen.param(name).into_iter().collect();
    match seen.action.as_str() {
        "TerminateInstances" => seen.values("InstanceId"),
        "DeleteDBInstance" => one("DBInstanceIdentifier"),
        "DeleteDBSubnetGroup" => one("DBSubnetGroupName"),
        "RevokeSecurityGroupIngress" | "DeleteSecurityGroup" => one("GroupId"),
        "DeleteSubnet" => one("SubnetId"),
        "DeleteVpc" => one("VpcId"),
        _ => Vec::new(),
    }
}

/// One line for a logged request: action, answer, fault, and for a delete what it
/// named.
pub fn describe(seen: &Seen) -> String {
    let named = named_by_delete(seen);
    format!(
        "{} {}{} -> {} {}{}",
        seen.service,
        seen.action,
        if named.is_empty() {
            String::new()
        } else {
            format!(" {named:?}")
        },
        seen.status
            .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
        if seen.forwarded { "(moto)" } else { "(proxy)" },
        seen.fault
            .as_ref()
            .map_or_else(String::new, |f| format!(" {f:?}"))
    )
}

/// When a test fails, prints what the proxy saw (the operators print their own logs
/// as they drop): everything but describes and listings, which would drown the rest
/// in a test with many environments, unless there are few requests in all.
pub struct ProxyLogOnPanic<'a>(pub &'a FaultProxy);

impl Drop for ProxyLogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let seen = self.0.requests();
            let all = seen.len() <= 500;
            eprintln!(
                "---- requests through the fault proxy ({} in all{}) ----",
                seen.len(),
                if all { "" } else { "; describes left out" }
            );
            for s in seen.iter().filter(|s| {
                all || !(s.action.starts_with("Describe") || s.action.starts_with("List"))
            }) {
                eprintln!("{}", describe(s));
            }
        }
    }
}
