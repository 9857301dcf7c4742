//! The API server itself refuses bad input, naming the field: every manifest in
//! `tests/invalid/` must be rejected at admission with its `expect-field` (and
//! `expect-message`, when given) in kubectl's error, and nothing may be stored.
//!
//! A manifest with two documents is an update: the first is created, the second must
//! be refused, and the stored object must be unchanged.

use std::{fs, path::PathBuf, sync::Mutex, thread};

use pave_testenv::TestEnv;
use pave_tests::{kubectl, repo_root};
use serde_json::Value;

struct Case {
    file: String,
    expect_field: String,
    expect_message: Option<String>,
    documents: Vec<Value>,
}

fn load_corpus() -> Vec<Case> {
    let dir: PathBuf = repo_root().join("tests/invalid");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("tests/invalid exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .map(str::to_owned)
            };
            let documents = text
                .split("\n---\n")
                .map(|doc| serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{file}: {e}")))
                .collect();
            Case {
                expect_field: header("expect-field")
                    .unwrap_or_else(|| panic!("{file} has no '# expect-field:'")),
                expect_message: header("expect-message"),
                file,
                documents,
            }
        })
        .collect()
}

/// Places a document in the test's namespace; cluster-scoped Scorecards get the
/// namespace as a name suffix instead, so parallel runs cannot collide.
fn place(mut doc: Value, namespace: &str) -> (Value, Vec<String>) {
    let kind = doc["kind"].as_str().unwrap().to_owned();
    let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
    let target = if kind == "Scorecard" {
        let name = format!("{name}-{namespace}");
        doc["metadata"]["name"] = name.clone().into();
        vec![kind.to_lowercase(), name]
    } else {
        doc["metadata"]["namespace"] = namespace.into();
        vec![kind.to_lowercase(), name, "-n".into(), namespace.into()]
    };
    (doc, target)
}

/// Returns what went wrong with one case, if anything.
fn check(env: &TestEnv, namespace: &str, case: &Case) -> Result<(), String> {
    let (last, earlier) = case.documents.split_last().unwrap();
    let mut stored_before = None;
    let mut target = vec![];
    for doc in earlier {
        let (doc, t) = place(doc.clone(), namespace);
        let out = kubectl(env, &["create", "-f", "-"], &doc.to_string());
        if !out.status.success() {
            return Err(format!(
                "the valid first document was refused: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        target = t;
        stored_before = get(env, &target)?;
    }
    let (doc, t) = place(last.clone(), namespace);
    if target.is_empty() {
        target = t;
    }
    let verb = if earlier.is_empty() {
        "create"
    } else {
        "replace"
    };
    let out = kubectl(env, &[verb, "-f", "-"], &doc.to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Err(format!("the API server accepted it ({verb})"));
    }
    if !stderr.contains("is invalid") {
        return Err(format!("refused, but not by validation: {stderr}"));
    }
    if !stderr.contains(&case.expect_field) {
        return Err(format!(
            "the error does not name {}: {stderr}",
            case.expect_field
        ));
    }
    if let Some(message) = &case.expect_message
        && !stderr.contains(message.as_str())
    {
        return Err(format!("the error does not say '{message}': {stderr}"));
    }
    let stored_after = get(env, &target)?;
    if stored_after != stored_before {
        return Err(format!("something was stored anyway: {stored_after:?}"));
    }
    Ok(())
}

/// The stored object's spec and generation, or `None` when nothing is stored.
fn get(env: &TestEnv, target: &[String]) -> Result<Option<Value>, String> {
    let mut args: Vec<&str> = vec!["get", "-o", "json", "--ignore-not-found"];
    args.extend(target.iter().map(String::as_str));
    let out = kubectl(env, &args, "");
    if !out.status.success() {
        return Err(format!(
            "kubectl get failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if out.stdout.is_empty() {
        return Ok(None);
    }
    let object: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(Some(
        serde_json::json!({"spec": object["spec"], "generation": object["metadata"]["generation"]}),
    ))
}

#[test]
fn invalid_manifests_are_refused_at_admission_naming_the_field() {
    let env = TestEnv::shared();
    let namespace = env.namespace("admission");
    let corpus = load_corpus();
    assert!(
        corpus.len() >= 25,
        "the corpus has only {} manifests",
        corpus.len()
    );

    let failures = Mutex::new(vec![]);
    // kubectl round trips dominate; four at a time keeps this test to a few seconds.
    thread::scope(|scope| {
        for chunk in corpus.chunks(corpus.len().div_ceil(4)) {
            let failures = &failures;
            let namespace = namespace.name();
            scope.spawn(move || {
                for case in chunk {
                    if let Err(why) = check(env, namespace, case) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {why}", case.file));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} invalid manifests were not refused as expected:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}
