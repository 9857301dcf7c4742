//! The README's "Things to try while `make demo` runs" is executable truth. This test
//! runs `make demo`'s script (with the workspace's binaries instead of its cargo
//! build), then every command of that section, in order, the way a newcomer pastes
//! them: `bash -c` from the repository's root, after the `export KUBECONFIG=… PATH=…`
//! line the demo printed. Each command is checked for what its README comment says the
//! user will see.
//!
//! The commands are parsed from README.md and compared with [`steps`]: a command the
//! README shows that no step checks fails the test, and so does a step whose command
//! the README no longer shows. The commands the demo's closing lines suggest must be
//! among the README's, so they are checked too.
//!
//! Its own test binary, because the demo brings its own control plane: the README's
//! namespace `team-payments` and the cluster-scoped Scorecard `service-maturity`
//! collide with no other test there.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use pave_tests::{repo_root, workspace_binaries};
use serde_json::Value;

const SECTION: &str = "## Things to try while `make demo` runs";

/// How long the operator gets to reach a state a step waits for.
const EVENTUALLY: Duration = Duration::from_secs(60);

/// How long the demo gets from its start to its closing lines.
const DEMO_START: Duration = Duration::from_secs(300);

/// One README command and what it must show.
struct Step {
    /// The command as the README writes it (comments and line breaks may differ).
    command: &'static str,
    /// Whether the command is repeated until its check passes (within [`EVENTUALLY`]),
    /// for states the operator reaches on its own time. The command is still the
    /// README's, unchanged.
    eventually: bool,
    check: fn(&Ran) -> Result<(), String>,
}

/// The README's commands, in its order, each with what the user must see.
fn steps() -> Vec<Step> {
    vec![
        Step {
            command: "kubectl get pave -A",
            eventually: true,
            check: everything_pave_with_its_columns,
        },
        Step {
            command: "kubectl describe comp -n team-payments payment-service",
            eventually: true,
            check: the_reference_that_dangles,
        },
        Step {
            command: "kubectl apply -f - <<'YAML'\n\
                      apiVersion: platform.pave.dev/v1alpha1\n\
                      kind: DeveloperEnvironment\n\
                      metadata: {name: payments-database, namespace: team-payments}\n\
                      spec: {parameters: {region: ap-northeast-2}}\n\
                      YAML",
            eventually: false,
            check: the_missing_environment_is_created,
        },
        Step {
            command: "kubectl get comp -n team-payments payment-service",
            eventually: true,
            check: payment_service_is_ready,
        },
        Step {
            command: "kubectl get comp -n team-payments user-service -o jsonpath='{.status.relations}'",
            eventually: true,
            check: user_service_is_a_dependency_of_payment_service,
        },
        Step {
            command: "kubectl get group -n team-payments platform -o jsonpath='{.status.members}'",
            eventually: true,
            check: every_member_of_the_department,
        },
        Step {
            command: "kubectl get scard service-maturity -o yaml",
            eventually: true,
            check: levels_and_pass_rates_per_rule,
        },
        Step {
            command: "kubectl pave import examples/backstage/catalog-info.yaml",
            eventually: false,
            check: the_backstage_file_as_a_component,
        },
        Step {
            command: "kubectl pave score --scorecard examples/port/service-maturity.yaml \
                      examples/backstage/catalog-info.yaml --min-level Silver",
            eventually: false,
            check: basic_so_exit_1,
        },
        Step {
            command: "kubectl pave trace devenv -n team-payments feature-payment-v2-env",
            eventually: true,
            check: the_environments_resources_as_a_tree,
        },
        Step {
            command: "kubectl get secret -n team-payments feature-payment-v2-env-connection \
                      -o jsonpath='{.data.endpoint}' | base64 -d",
            eventually: true,
            check: host_and_port_of_the_database,
        },
        Step {
            command: "kubectl explain devenv.spec.parameters",
            eventually: false,
            check: field_documentation,
        },
        Step {
            command: "kubectl apply -f tests/invalid/17-env-region-changed.yaml -n team-payments",
            eventually: false,
            check: a_change_of_region_is_refused_naming_the_field,
        },
        Step {
            command: "kubectl pave new examples/templates/nodejs-service --dry-run \
                      --set name=inventory-service --set owner=payments-team \
                      --remote \"github.com=file://$(dirname \"$KUBECONFIG\")/git/{owner}/{repo}.git\"",
            eventually: false,
            check: the_files_and_steps_it_would_run,
        },
        Step {
            command: "kubectl pave new examples/templates/nodejs-service -n team-payments \
                      --set name=inventory-service --set owner=payments-team \
                      --remote \"github.com=file://$(dirname \"$KUBECONFIG\")/git/{owner}/{repo}.git\"",
            eventually: false,
            check: pushed_and_registered,
        },
        Step {
            command: "kubectl get comp -n team-payments inventory-service",
            eventually: true,
            check: the_new_service_in_the_catalog,
        },
    ]
}

// ---- the checks: what each README comment promises ----

fn everything_pave_with_its_columns(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let out = &ran.stdout;
    for header in [
        &["TYPE", "LIFECYCLE", "OWNER", "READY", "LEVEL"][..],
        &["REGION", "DB SIZE", "CLUSTER", "PHASE", "READY"],
        &["TITLE", "EVALUATED"],
    ] {
        if !out
            .lines()
            .any(|line| header.iter().all(|h| line.contains(h)))
        {
            return Err(format!("no header with the columns {header:?}"));
        }
    }
    for row in [
        &[
            "team-payments",
            "payment-service",
            "service",
            "production",
            "payments-team",
            "False",
            "Basic",
        ][..],
        &[
            "team-payments",
            "user-service",
            "service",
            "production",
            "identity-team",
            "True",
            "Silver",
        ],
        &[
            "team-payments",
            "feature-payment-v2-env",
            "ap-northeast-2",
            "db.t3.medium",
            "small",
            "Ready",
            "True",
        ],
        &["service-maturity", "서비스", "2"],
    ] {
        has_row(out, row)?;
    }
    Ok(())
}

fn the_reference_that_dangles(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    for shown in [
        "resource:team-payments/payments-database",
        "UnresolvedReference",
        "component:team-payments/user-service",
        "dependsOn",
    ] {
        ran.stdout_has(shown)?;
    }
    Ok(())
}

fn the_missing_environment_is_created(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    ran.stdout_has("developerenvironment.platform.pave.dev/payments-database created")
}

fn payment_service_is_ready(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    has_row(
        &ran.stdout,
        &[
            "payment-service",
            "service",
            "production",
            "payments-team",
            "True",
        ],
    )
}

fn every_member_of_the_department(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let members: Value =
        serde_json::from_str(&ran.stdout).map_err(|e| format!("the members are not JSON ({e})"))?;
    let expected = serde_json::json!(["user:team-payments/jiwoo", "user:team-payments/minseo"]);
    if members == expected {
        Ok(())
    } else {
        Err(format!("members {members}, not {expected}"))
    }
}

fn user_service_is_a_dependency_of_payment_service(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let relations: Value = serde_json::from_str(&ran.stdout)
        .map_err(|e| format!("the relations are not JSON ({e})"))?;
    let found = relations.as_array().into_iter().flatten().any(|r| {
        r["type"] == "dependencyOf" && r["target"] == "component:team-payments/payment-service"
    });
    if found {
        Ok(())
    } else {
        Err("no relation dependencyOf component:team-payments/payment-service".into())
    }
}

fn levels_and_pass_rates_per_rule(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let scorecard: Value =
        serde_yaml::from_str(&ran.stdout).map_err(|e| format!("not YAML ({e})"))?;
    let status = &scorecard["status"];
    // payment-service has no runbook (Basic); user-service has one but no PagerDuty
    // service (Silver).
    let expected = serde_json::json!({
        "evaluated": 2,
        "levels": [
            {"level": "Basic", "count": 1},
            {"level": "Silver", "count": 1},
            {"level": "Gold", "count": 0},
            {"level": "none", "count": 0},
        ],
        "rules": [
            {"identifier": "has-catalog-info", "passed": 2, "failed": 0},
            {"identifier": "has-owner", "passed": 2, "failed": 0},
            {"identifier": "has-runbook", "passed": 1, "failed": 1},
            {"identifier": "has-alerting", "passed": 1, "failed": 1},
        ],
    });
    for field in ["evaluated", "levels", "rules"] {
        if status[field] != expected[field] {
            return Err(format!(
                "status.{field} is {}, not {}",
                status[field], expected[field]
            ));
        }
    }
    Ok(())
}

fn the_backstage_file_as_a_component(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let component: Value =
        serde_yaml::from_str(&ran.stdout).map_err(|e| format!("not YAML ({e})"))?;
    let expected = [
        ("/apiVersion", "platform.pave.dev/v1alpha1"),
        ("/kind", "Component"),
        ("/metadata/name", "payment-service"),
        ("/spec/owner", "payments-team"),
        ("/spec/dependsOn/1", "resource:payments-database"),
        ("/metadata/annotations/pagerduty.com~1service-id", "P12345"),
    ];
    for (pointer, value) in expected {
        if component.pointer(pointer) != Some(&Value::from(value)) {
            return Err(format!("{pointer} is not {value:?}"));
        }
    }
    Ok(())
}

fn the_files_and_steps_it_would_run(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    for shown in [
        "Dry run of nodejs-service-template:",
        "would run publish (publish:github)",
        "would run register (catalog:register)",
        "Files it would write:",
        "  src/index.js",
        "  catalog-info.yaml",
    ] {
        if !ran.stdout.contains(shown) {
            return Err(format!("no {shown:?}"));
        }
    }
    Ok(())
}

fn pushed_and_registered(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    for shown in [
        "  done      publish (publish:github)",
        "publish:github pushes with git to file://",
        "/git/my-org/inventory-service.git",
        "component:team-payments/inventory-service: Ready",
        "  done      register (catalog:register)",
    ] {
        if !ran.stdout.contains(shown) {
            return Err(format!("no {shown:?}"));
        }
    }
    Ok(())
}

fn the_new_service_in_the_catalog(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    has_row(
        &ran.stdout,
        &[
            "inventory-service",
            "service",
            "experimental",
            "payments-team",
            "True",
        ],
    )
}

fn basic_so_exit_1(ran: &Ran) -> Result<(), String> {
    ran.exited_with(1)?;
    has_row(&ran.stdout, &["payment-service", "Basic", "has-runbook"])?;
    if !ran.stderr.contains("below Silver: payment-service") {
        return Err("stderr does not say who is below Silver".into());
    }
    Ok(())
}

fn the_environments_resources_as_a_tree(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    for shown in [
        "feature-payment-v2-env",
        "Ready",
        "VPC",
        "vpc-",
        "Subnet",
        "subnet-",
        "SecurityGroup",
        "sg-",
        "DBSubnetGroup",
        "DBInstance",
        "Instance",
        "i-",
        "feature-payment-v2-env-connection",
    ] {
        ran.stdout_has(shown)?;
    }
    Ok(())
}

fn host_and_port_of_the_database(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    let endpoint = ran.stdout.trim();
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| format!("{endpoint:?} is not host:port"))?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !host_ok || port != "5432" {
        return Err(format!(
            "{endpoint:?} is not a host with PostgreSQL's port 5432"
        ));
    }
    Ok(())
}

fn field_documentation(ran: &Ran) -> Result<(), String> {
    ran.succeeded()?;
    for shown in [
        "FIELDS:",
        "region",
        "Immutable: an environment cannot move",
        "dbSize",
        "Omit for no database",
        "dbStorageGiB",
        "May grow, never shrink",
        "clusterSize",
    ] {
        ran.stdout_has(shown)?;
    }
    Ok(())
}

fn a_change_of_region_is_refused_naming_the_field(ran: &Ran) -> Result<(), String> {
    if ran.code == Some(0) {
        return Err("kubectl apply succeeded: the change of region was accepted".into());
    }
    ran.stdout_has("developerenvironment.platform.pave.dev/env-region-changed created")?;
    for shown in ["spec.parameters.region", "immutable"] {
        if !ran.stderr.contains(shown) {
            return Err(format!("the refusal does not name {shown:?}"));
        }
    }
    Ok(())
}

/// A line of `table` holding every one of `cells` as a whole word.
fn has_row(table: &str, cells: &[&str]) -> Result<(), String> {
    let found = table.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        cells.iter().all(|cell| {
            let cell_words: Vec<&str> = cell.split_whitespace().collect();
            words.windows(cell_words.len()).any(|w| {
                w.iter()
                    .zip(&cell_words)
                    .all(|(word, cell)| word == cell || word.ends_with(&format!("/{cell}")))
            })
        })
    });
    if found {
        Ok(())
    } else {
        Err(format!("no row with {cells:?}"))
    }
}

// ---- running a command as the user does ----

/// What one command did.
struct Ran {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

impl Ran {
    fn succeeded(&self) -> Result<(), String> {
        self.exited_with(0)
    }

    fn exited_with(&self, code: i32) -> Result<(), String> {
        if self.code == Some(code) {
            Ok(())
        } else {
            Err(format!("exit code {:?}, not {code}", self.code))
        }
    }

    fn stdout_has(&self, text: &str) -> Result<(), String> {
        if self.stdout.contains(text) {
            Ok(())
        } else {
            Err(format!("the output does not show {text:?}"))
        }
    }
}

/// Runs `script` with bash from the repository's root, after `setup` (the line the demo
/// told the user to paste). kubectl's discovery cache goes to `cache`, not `~/.kube`.
fn run(setup: &str, script: &str, cache: &Path) -> Ran {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{setup}\n{script}"))
        .current_dir(repo_root())
        .env("KUBECACHEDIR", cache)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

// ---- the demo ----

/// `crates/pave-testenv/scripts/demo.sh`, running. Dropping it stops it the way Ctrl-C
/// does (its cleanup trap), and, when the test is failing, prints what it printed and
/// the tails of its logs first.
struct Demo {
    child: Child,
    state_dir: PathBuf,
    output: Arc<Mutex<String>>,
}

impl Demo {
    fn start(bin_dir: &Path) -> Demo {
        let state_dir = env::temp_dir().join(format!("pave-readme-demo-{}", std::process::id()));
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("crates/pave-testenv/scripts/demo.sh"))
            .env("PAVE_DEMO_BIN", bin_dir)
            .env("PAVE_DEMO_DIR", &state_dir)
            // A throwaway cluster's discovery cache stays out of ~/.kube.
            .env("KUBECACHEDIR", state_dir.join("kubectl-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, and gone with this process even if it is killed.
        let mut child = pave_testenv::spawn_tied(command).expect("bash runs demo.sh");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        copy_lines(stdout, output.clone());
        copy_lines(stderr, output.clone());
        Demo {
            child,
            state_dir,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits for the demo's closing lines and returns them: from "pave is running"
    /// to "Ctrl-C stops everything.".
    fn wait_until_running(&mut self) -> String {
        let deadline = Instant::now() + DEMO_START;
        loop {
            let output = self.output();
            if let Some(start) = output.find("pave is running")
                && let Some(end) = output[start..].find("Ctrl-C stops everything.")
            {
                return output[start..start + end].to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("make demo's script exited ({status}) before pave was running");
            }
            assert!(
                Instant::now() < deadline,
                "make demo's script did not say \"pave is running\" within {DEMO_START:?}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to the demo's process group: its trap stops the operator and the test
    /// bed. SIGKILL if that takes too long.
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let failing = thread::panicking();
        if failing {
            eprintln!(
                "---- what make demo's script printed ----\n{}",
                self.output()
            );
        }
        self.stop();
        if failing {
            for log in [
                "testenv.out",
                "operator.log",
                "kube-apiserver.log",
                "kube-controller-manager.log",
                "moto.log",
            ] {
                let path = self.state_dir.join(log);
                let text = fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("---- {} (last 40 lines) ----\n{tail}", path.display());
            }
            eprintln!(
                "---- the demo's state is kept in {} ----",
                self.state_dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.state_dir);
        }
    }
}

fn copy_lines(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}

// ---- the test ----

#[test]
fn every_command_the_readme_shows_does_what_it_says() {
    let readme = fs::read_to_string(repo_root().join("README.md")).expect("README.md exists");
    let shown = things_to_try(&readme).unwrap_or_else(|e| panic!("README.md: {e}"));
    let steps = steps();
    let keys: Vec<String> = steps.iter().map(|s| key_of(s.command)).collect();
    if let Err(e) = same_commands(&shown, &keys) {
        panic!("README.md's \"Things to try\" and tests/readme.rs disagree:\n{e}");
    }

    let mut demo = Demo::start(&workspace_binaries(&[
        "pave-testenv",
        "pave-operator",
        "kubectl-pave",
    ]));
    let closing = demo.wait_until_running();
    let setup = demo_checks(&closing, &shown).unwrap_or_else(|e| panic!("{e}"));

    for (number, (step, shown)) in steps.iter().zip(&shown).enumerate() {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let ran = run(&setup, &shown.script, &demo.state_dir.join("kubectl-cache"));
            let Err(problem) = (step.check)(&ran) else {
                break;
            };
            if !step.eventually || Instant::now() >= deadline {
                panic!(
                    "README.md line {}, command {} of \"Things to try\":\n  {}\n\
                     it promises: {}\n\
                     but {problem}{}\n\
                     ---- stdout ----\n{}\n---- stderr ----\n{}",
                    shown.line,
                    number + 1,
                    shown.script.trim_end().replace('\n', "\n  "),
                    shown.comment,
                    if step.eventually {
                        format!(" (still, after {EVENTUALLY:?})")
                    } else {
                        String::new()
                    },
                    ran.stdout,
                    ran.stderr
                );
            }
            thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Checks the demo's closing lines: its two timings, and that every command it suggests
/// is one the README shows (so a step checks it). Returns the `export …` line.
fn demo_checks(closing: &str, shown: &[Shown]) -> Result<String, String> {
    let first = closing.lines().next().unwrap_or_default();
    let timed = |label: &str| {
        first
            .split_once(label)
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|t| t.trim_end_matches(['.', ';']).strip_suffix('s'))
            .is_some_and(|t| t.parse::<f64>().is_ok())
    };
    if !first.contains("no build") && !timed("built in ") {
        return Err(format!(
            "the demo does not say how long it built: {first:?}"
        ));
    }
    if !timed("first catalog ") {
        return Err(format!(
            "the demo does not say how long the test bed took to the first catalog: {first:?}"
        ));
    }
    let mut setup = None;
    for line in closing.lines().filter(|l| l.starts_with("  ")) {
        let line = line.trim();
        if line.starts_with("export KUBECONFIG=") {
            setup = Some(line.to_owned());
        } else if !shown.iter().any(|s| s.key == key_of(line)) {
            return Err(format!(
                "the demo suggests `{line}`, which README.md's \"Things to try\" does not show, \
                 so nothing checks it: add it there (and to tests/readme.rs), or drop it from demo.sh"
            ));
        }
    }
    setup.ok_or_else(|| format!("the demo printed no `export KUBECONFIG=…` line:\n{closing}"))
}

/// Whether the README shows exactly the steps' commands, in the same order; if not,
/// says which are missing on which side.
fn same_commands(shown: &[Shown], keys: &[String]) -> Result<(), String> {
    let shown_keys: Vec<&String> = shown.iter().map(|s| &s.key).collect();
    if shown_keys.iter().copied().eq(keys.iter()) {
        return Ok(());
    }
    let mut problems = Vec::new();
    for s in shown {
        if !keys.contains(&s.key) {
            problems.push(format!(
                "README.md line {} shows `{}`, which the test does not run: add a step for it to tests/readme.rs",
                s.line, s.key
            ));
        }
    }
    for key in keys {
        if !shown_keys.contains(&key) {
            problems.push(format!(
                "tests/readme.rs checks `{key}`, which README.md no longer shows: remove the step, or put the command back"
            ));
        }
    }
    if problems.is_empty() {
        problems.push(format!(
            "the same commands, in another order:\n  README: {shown_keys:?}\n  test:   {keys:?}"
        ));
    }
    Err(problems.join("\n"))
}

// ---- reading the README ----

/// One command of the README's block.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    /// The README line it starts on (1-based).
    line: usize,
    /// The command as written, for bash.
    script: String,
    /// The command without comments, line continuations joined and runs of blanks made
    /// one; a here-document's lines follow, each after a newline. What steps match.
    key: String,
    /// What the README says of it: its comments, joined.
    comment: String,
}

/// The commands of the one `sh` block in the README's "Things to try" section.
fn things_to_try(readme: &str) -> Result<Vec<Shown>, String> {
    let lines: Vec<(usize, &str)> = readme
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect();
    let start = lines
        .iter()
        .position(|(_, l)| *l == SECTION)
        .ok_or_else(|| format!("no section {SECTION:?}"))?;
    let section: Vec<(usize, &str)> = lines[start + 1..]
        .iter()
        .copied()
        .take_while(|(_, l)| !l.starts_with("## "))
        .collect();
    let mut blocks = Vec::new();
    let mut open: Option<Vec<(usize, &str)>> = None;
    for (n, line) in section {
        match (&mut open, line.trim_start()) {
            (None, fence) if fence.starts_with("```") => {
                if fence != "```sh" {
                    return Err(format!("line {n}: the section's code blocks are ```sh"));
                }
                open = Some(Vec::new());
            }
            (Some(_), "```") => blocks.push(open.take().unwrap()),
            (Some(block), _) => block.push((n, line)),
            (None, _) => {}
        }
    }
    match blocks.as_slice() {
        [block] => parse_block(block),
        _ => Err(format!(
            "the section has {} ```sh blocks, not one",
            blocks.len()
        )),
    }
}

/// Splits a shell block into commands: a line that is not indented starts one, a
/// trailing `\` continues it onto the next line, a here-document runs to its
/// terminator, and indented `#` lines are comments on the command before them.
fn parse_block(block: &[(usize, &str)]) -> Result<Vec<Shown>, String> {
    let mut commands: Vec<Shown> = Vec::new();
    let mut lines = block.iter().copied();
    while let Some((n, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let Some(comment) = line.trim_start().strip_prefix('#') else {
                return Err(format!(
                    "line {n}: an indented line that is neither a comment nor a continued command"
                ));
            };
            let last = commands
                .last_mut()
                .ok_or_else(|| format!("line {n}: a comment before any command"))?;
            append_comment(&mut last.comment, comment);
            continue;
        }
        let mut command = Shown {
            line: n,
            script: String::new(),
            key: String::new(),
            comment: String::new(),
        };
        let mut words = Vec::new();
        let mut current = line;
        let heredoc = loop {
            command.script.push_str(current);
            command.script.push('\n');
            let (code, comment) = split_comment(current);
            if let Some(comment) = comment {
                append_comment(&mut command.comment, comment);
            }
            let code = code.trim_end();
            match code.strip_suffix('\\') {
                Some(continued) => {
                    words.push(continued.to_owned());
                    current = lines
                        .next()
                        .ok_or_else(|| format!("line {n}: the block ends after a `\\`"))?
                        .1;
                }
                None => {
                    words.push(code.to_owned());
                    break heredoc_terminator(code);
                }
            }
        };
        command.key = words
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(terminator) = heredoc {
            loop {
                let (_, body) = lines.next().ok_or_else(|| {
                    format!("line {n}: the here-document never reaches its terminator {terminator}")
                })?;
                command.script.push_str(body);
                command.script.push('\n');
                command.key.push('\n');
                command.key.push_str(body);
                if body == terminator {
                    break;
                }
            }
        }
        commands.push(command);
    }
    Ok(commands)
}

fn append_comment(to: &mut String, comment: &str) {
    if !to.is_empty() {
        to.push(' ');
    }
    to.push_str(comment.trim());
}

/// A shell line's code and its comment: a `#` at the start of a word, outside quotes.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return (&line[..i], Some(&line[i + 1..])),
            _ => {}
        }
        previous = c;
    }
    (line, None)
}

/// The terminator of a here-document the line starts (`<<'YAML'`, `<<EOF`, `<<-"X"`).
fn heredoc_terminator(code: &str) -> Option<String> {
    let (_, rest) = code.split_once("<<")?;
    let word = rest.trim_start_matches('-').split_whitespace().next()?;
    Some(word.trim_matches(['\'', '"']).to_owned())
}

/// A step's command in the form the README's commands are matched in.
fn key_of(command: &str) -> String {
    let lines: Vec<(usize, &str)> = command.lines().enumerate().collect();
    match parse_block(&lines).as_deref() {
        Ok([one]) => one.key.clone(),
        _ => panic!("a step's command must be one shell command: {command:?}"),
    }
}

// ---- the reader's own tests ----

#[test]
fn commands_comments_continuations_and_heredocs_are_read_as_bash_reads_them() {
    let readme = "\
intro

## Things to try while `make demo` runs

```sh
kubectl get pave -A            # everything
kubectl describe comp x
    # what dangles
    # and more
kubectl apply -f - <<'YAML'    # create it
kind: X  # not a comment: YAML's
YAML
kubectl get x -o jsonpath='{.a#b}' | base64 -d
kubectl pave score --scorecard a.yaml \\
  b.yaml --min-level Silver
    # exit 1
```

## Next
```sh
not read
```
";
    let shown = things_to_try(readme).unwrap();
    let keys: Vec<&str> = shown.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kubectl get pave -A",
            "kubectl describe comp x",
            "kubectl apply -f - <<'YAML'\nkind: X  # not a comment: YAML's\nYAML",
            "kubectl get x -o jsonpath='{.a#b}' | base64 -d",
            "kubectl pave score --scorecard a.yaml b.yaml --min-level Silver",
        ]
    );
    let comments: Vec<&str> = shown.iter().map(|s| s.comment.as_str()).collect();
    assert_eq!(
        comments,
        [
            "everything",
            "what dangles and more",
            "create it",
            "",
            "exit 1"
        ]
    );
    assert_eq!(shown[1].line, 7);
    assert_eq!(
        shown[4].script,
        "kubectl pave score --scorecard a.yaml \\\n  b.yaml --min-level Silver\n"
    );
    assert_eq!(
        key_of("kubectl pave score --scorecard a.yaml   b.yaml --min-level Silver"),
        shown[4].key
    );
}

#[test]
fn a_readme_command_without_a_step_and_a_step_without_a_command_are_named() {
    let shown = parse_block(&[(10, "kubectl get pave -A"), (11, "kubectl new thing")]).unwrap();
    let keys = [
        "kubectl get pave -A".to_owned(),
        "kubectl old thing".to_owned(),
    ];
    let problem = same_commands(&shown, &keys).unwrap_err();
    assert!(
        problem
            .contains("README.md line 11 shows `kubectl new thing`, which the test does not run"),
        "{problem}"
    );
    assert!(
        problem.contains(
            "tests/readme.rs checks `kubectl old thing`, which README.md no longer shows"
        ),
        "{problem}"
    );
    let swapped = [
        "kubectl new thing".to_owned(),
        "kubectl get pave -A".to_owned(),
    ];
    assert!(
        same_commands(&shown, &swapped)
            .unwrap_err()
            .contains("another order")
    );
    let same = [
        "kubectl get pave -A".to_owned(),
        "kubectl new thing".to_owned(),
    ];
    assert_eq!(same_commands(&shown, &same), Ok(()));
}

#[test]
fn indented_lines_that_are_not_comments_are_refused() {
    let problem = parse_block(&[(3, "kubectl get x"), (4, "  --output yaml")]).unwrap_err();
    assert!(problem.contains("line 4"), "{problem}");
}

#[test]
fn the_demo_must_suggest_only_what_the_readme_shows() {
    let shown = parse_block(&[(1, "kubectl get pave -A")]).unwrap();
    let closing = "pave is running: built in 12.3s; test bed start to first catalog 8.1s.\n\
                   In another terminal:\n\n  export KUBECONFIG=/k PATH=/b:$PATH\n  kubectl get pave -A\n";
    assert_eq!(
        demo_checks(closing, &shown),
        Ok("export KUBECONFIG=/k PATH=/b:$PATH".to_owned())
    );
    let extra = format!("{closing}  kubectl pave crds | head\n");
    assert!(
        demo_checks(&extra, &shown)
            .unwrap_err()
            .contains("`kubectl pave crds | head`")
    );
    let untimed = closing.replace("first catalog 8.1s", "first catalog soon");
    assert!(demo_checks(&untimed, &shown).is_err());
}
