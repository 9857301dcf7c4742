//! What `kubectl pave import` prints is accepted by a real API server with pave's CRDs
//! installed (the shared test bed), schema and CEL rules included: the import's own
//! checks are only useful if the server agrees with them.
//!
//! Kept apart from `tests/import.rs` so the quick binary tests need no control plane.

use std::process::Command;

use pave_testenv::TestEnv;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn imported_components_pass_server_side_validation() {
    let env = TestEnv::shared();
    let namespace = env.namespace("import");

    let imported = Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .args(["import", "--namespace", namespace.name()])
        .args([
            example("backstage/catalog-info.yaml"),
            fixture("multi-kind.yaml"),
        ])
        .output()
        .expect("kubectl-pave starts");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let applied = env.kubectl_with_input(
        &[
            "apply",
            "-f",
            "-",
            "-n",
            namespace.name(),
            "--dry-run=server",
        ],
        &imported.stdout,
    );
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert!(
        applied.status.success(),
        "the API server refused the import:\n{}\n--- the import ---\n{}",
        String::from_utf8_lossy(&applied.stderr),
        String::from_utf8_lossy(&imported.stdout)
    );
    for name in ["payment-service", "user-service"] {
        assert!(
            stdout.contains(&format!(
                "component.platform.pave.dev/{name} created (server dry run)"
            )),
            "{stdout}"
        );
    }
}
