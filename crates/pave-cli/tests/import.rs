//! `kubectl pave import` as users run it: the built `kubectl-pave` binary on the
//! article's Backstage file in `examples/backstage/` and the fixtures in
//! `tests/fixtures/`, checking stdout, stderr and the exit status.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    path.to_str().expect("the fixture path is UTF-8").to_owned()
}

/// The article's `catalog-info.yaml`, as Backstage users have it.
fn article() -> String {
    format!(
        "{}/../../examples/backstage/catalog-info.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs `kubectl-pave import ARGS...` with `stdin` on its standard input.
fn import(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .arg("import")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl-pave starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("kubectl-pave writes UTF-8")
}

#[test]
fn the_articles_catalog_info_becomes_the_expected_component() {
    let out = import(&[&article()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let expected = std::fs::read_to_string(fixture("catalog-info.pave.yaml")).unwrap();
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn standard_input_is_read_for_a_dash_and_the_namespace_can_be_set() {
    let article = std::fs::read_to_string(article()).unwrap();
    let out = import(&["--namespace", "team-payments", "-"], &article);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = std::fs::read_to_string(fixture("catalog-info.pave.yaml"))
        .unwrap()
        .replace(
            "  name: payment-service\n",
            "  name: payment-service\n  namespace: team-payments\n",
        );
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn the_articles_catalog_info_imports_as_the_component_in_examples() {
    let out = import(&["--namespace", "team-payments", &article()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let imported: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let example = format!(
        "{}/../../examples/catalog-payment-service.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let applied: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    assert_eq!(
        imported, applied,
        "examples/catalog-payment-service.yaml says it is what the import makes of the article's file"
    );
}

#[test]
fn every_kind_in_a_file_comes_out_in_its_order() {
    let file = fixture("multi-kind.yaml");
    let out = import(&[&file], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let kinds: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(kinds, ["Component", "API", "System"], "{stdout}");
    for name in ["user-service", "user-api", "identity"] {
        assert!(stdout.contains(&format!("  name: {name}\n")), "{stdout}");
    }
    assert!(
        stdout.contains("  dependencyOf:\n  - component:payment-service\n"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("skipped"), "{stderr}");
    assert!(!stderr.contains("dependencyOf"), "{stderr}");
}

#[test]
fn bad_input_prints_nothing_on_stdout_and_fails() {
    let bad = fixture("bad.yaml");
    // A good file before the bad one must not be printed either.
    let out = import(&[&article(), &bad], "");
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{bad}:14: metadata.name \"BadService\" is valid in Backstage"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{bad}:15: spec.owner is missing")),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("kubectl-pave: 2 errors in the input; no manifests were printed\n"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_and_stdin_errors_are_named() {
    let out = import(&["no-such-catalog-info.yaml", "-"], "kind: [\n");
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-catalog-info.yaml: cannot read: "),
        "{stderr}"
    );
    assert!(stderr.contains("<stdin>:2: not valid YAML: "), "{stderr}");
}

#[test]
fn a_bad_namespace_option_is_refused_before_reading() {
    let out = import(&["--namespace", "Team_Payments", "-"], "");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(
        text(&out.stderr).contains("not a Kubernetes namespace name"),
        "{}",
        text(&out.stderr)
    );
}
