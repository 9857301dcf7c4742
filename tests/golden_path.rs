//! Golden paths: `kubectl pave new` runs Backstage Software Templates against a real
//! git server on loopback (`git daemon` with receive-pack, standing in for GitHub
//! through `--remote github.com=…`), the shared control plane and the real
//! `pave-operator`:
//!
//! - the article's template (`examples/templates/nodejs-service`) pushes the rendered
//!   skeleton, and the Component its `catalog-info.yaml` describes appears with
//!   pave's status;
//! - three templates from Backstage's public collection render every file of their
//!   skeletons with every `${{ }}` substituted, are pushed and registered;
//! - bad input (a parameter failing its schema, an unknown action, a push the server
//!   refuses, an unreachable cluster) ends with one clear message, a non-zero exit,
//!   nothing pushed that should not be and nothing registered;
//! - on a terminal, a missing parameter is asked for, an OwnerPicker listing the
//!   owners the catalog knows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use pave_testenv::TestEnv;
use pave_testenv::git_daemon::GitDaemon;
use pave_tests::{Operator, kubectl, kubectl_ok, repo_root, wait_for, workspace_binaries};
use serde_json::Value;

const CONFIG: &str = "
allowedRegions: [us-east-1]
resyncInterval: 5s
";

struct Bed {
    env: &'static TestEnv,
    bin: PathBuf,
    git: GitDaemon,
    operator: Operator,
    /// A HOME without the developer's git configuration, so the runs are the same
    /// everywhere.
    home: PathBuf,
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let env = TestEnv::shared();
        let bin = workspace_binaries(&["pave-operator", "kubectl-pave"]);
        let root = env.state_dir().join(format!("git-{}", std::process::id()));
        let git = GitDaemon::start(&root).expect("start git daemon");
        let operator = Operator::start(env, &bin, CONFIG, &env.moto_endpoint());
        let home = env.state_dir().join(format!("home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        Bed {
            env,
            bin,
            git,
            operator,
            home,
        }
    })
}

/// Prints the operator's and the control plane's logs when a test fails.
struct LogsOnPanic(&'static Bed);

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- pave-operator ----\n{}", self.0.operator.log_tail(40));
            eprintln!("---- control plane ----\n{}", self.0.env.logs_tail(20));
        }
    }
}

impl Bed {
    /// `kubectl-pave new ARGS` with stdin closed, against the test bed's cluster.
    fn pave_new(&self, args: &[&str]) -> Output {
        self.pave_new_with(args, self.env.kubeconfig_path())
    }

    fn pave_new_with(&self, args: &[&str], kubeconfig: &Path) -> Output {
        Command::new(self.bin.join("kubectl-pave"))
            .arg("new")
            .args(args)
            .current_dir(repo_root())
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", &self.home)
            .env("USER", "dev-tester")
            .env_remove("PAVE_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .output()
            .expect("kubectl-pave runs")
    }

    fn remote_flag(&self) -> String {
        format!("github.com={}", self.git.remote_template())
    }

    /// The files of `main` in the bare repository `repo`, or none when nothing was
    /// pushed.
    fn pushed_files(&self, repo: &str) -> Vec<String> {
        match self
            .git
            .git(repo, &["ls-tree", "-r", "--name-only", "main"])
        {
            Ok(list) => list.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn pushed(&self, repo: &str, file: &str) -> String {
        self.git
            .git(repo, &["show", &format!("main:{file}")])
            .unwrap_or_else(|e| panic!("{repo}: {file}: {e}"))
    }

    fn component(&self, namespace: &str, name: &str) -> Option<Value> {
        let out = kubectl(
            self.env,
            &["get", "component", name, "-n", namespace, "-o", "json"],
            "",
        );
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file's path and content is free of the scaffolder's syntax.
fn assert_fully_rendered(bed: &Bed, repo: &str, files: &[String]) {
    for file in files {
        assert!(
            !file.contains("${{") && !file.contains("{%"),
            "{repo}: name not rendered: {file}"
        );
        let content = bed.pushed(repo, file);
        for marker in ["${{", "{%", "%}", "{#"] {
            assert!(
                !content.contains(marker),
                "{repo}: {file} holds {marker}:\n{content}"
            );
        }
    }
}

/// The skeleton's files, by path relative to it.
fn skeleton_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_articles_template_pushes_the_skeleton_and_registers_the_component() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    let ns = bed.env.namespace("golden");
    let name = format!("svc-{}", ns.name());
    let repo = format!("my-org/{name}.git");
    bed.git.create(&repo).unwrap();

    let out = bed.pave_new(&[
        "examples/templates/nodejs-service",
        "--set",
        &format!("name={name}"),
        "--set",
        "owner=team-payments",
        "--remote",
        &bed.remote_flag(),
        "--namespace",
        ns.name(),
        "-o",
        "json",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["succeeded"], true, "{report:#}");
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("fetch-template", "done"),
            ("publish", "done"),
            ("register", "done")
        ]
    );
    let publish = &report["steps"][1];
    assert_eq!(publish["output"]["remoteUrl"], bed.git.url(&repo));
    assert!(
        publish["notes"]
            .to_string()
            .contains("publish:github pushes with git to"),
        "{publish:#}"
    );
    let commit = publish["output"]["commitHash"].as_str().unwrap();
    assert_eq!(
        bed.git.git(&repo, &["rev-parse", "main"]).unwrap().trim(),
        commit
    );
    assert_eq!(
        report["steps"][2]["output"]["entityRef"],
        format!("component:{}/{name}", ns.name())
    );

    // The pushed repository holds the rendered skeleton, and nothing else.
    let skeleton = repo_root().join("examples/templates/nodejs-service/skeleton");
    let files = bed.pushed_files(&repo);
    assert_eq!(files, skeleton_files(&skeleton));
    assert_fully_rendered(bed, &repo, &files);
    let catalog_info: Value =
        serde_yaml::from_str(&bed.pushed(&repo, "catalog-info.yaml")).unwrap();
    assert_eq!(catalog_info["metadata"]["name"], name.as_str());
    assert_eq!(catalog_info["spec"]["owner"], "team-payments");
    let package: Value = serde_json::from_str(&bed.pushed(&repo, "package.json")).unwrap();
    assert_eq!(package["name"], name.as_str());

    // The Component is in the cluster with pave's status: its owner relation, and a
    // Ready condition for its generation.
    let component = wait_for(
        "pave's status on the new Component",
        Duration::from_secs(30),
        || {
            let c = bed.component(ns.name(), &name).ok_or("no Component")?;
            let observed = &c["status"]["observedGeneration"];
            (observed.is_i64() && *observed == c["metadata"]["generation"])
                .then_some(c.clone())
                .ok_or_else(|| c["status"].to_string())
        },
    );
    assert_eq!(component["spec"]["owner"], "team-payments");
    let relations = component["status"]["relations"]
        .as_array()
        .expect("relations");
    assert!(
        relations
            .iter()
            .any(|r| r["type"] == "ownedBy"
                && r["target"].as_str().unwrap().ends_with("/team-payments")),
        "{relations:?}"
    );
    let managers = kubectl_ok(
        bed.env,
        &[
            "get",
            "component",
            &name,
            "-n",
            ns.name(),
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
        "",
    );
    assert!(managers.contains("kubectl-pave"), "{managers}");
    // The report names what pave said of it.
    assert!(
        report["steps"][2]["notes"]
            .to_string()
            .contains(&format!("component:{}/{name}: ", ns.name())),
        "{report:#}"
    );
}

#[test]
fn three_public_templates_render_every_file_of_their_skeletons() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    let ns = bed.env.namespace("compat");
    let dir = repo_root().join("tests/templates/third-party");
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "docs-template",
            "docs",
            &["--set", "description=Docs for the team"],
        ),
        (
            "react-ssr-template",
            "web",
            &["--set", "description=The team's website"],
        ),
        (
            "springboot-grpc-template",
            "grpc",
            &["--set", "java_package_name=greeter"],
        ),
    ];
    for (template, short, extra) in cases {
        let name = format!("{short}-{}", ns.name());
        let repo = format!("my-org/{name}.git");
        bed.git.create(&repo).unwrap();
        let name_parameter = if template == "docs-template" {
            "name"
        } else {
            "component_id"
        };
        let mut args = vec![
            dir.join(template).display().to_string(),
            "--set".into(),
            format!("{name_parameter}={name}"),
            "--set".into(),
            "owner=group:team-web".into(),
            "--set".into(),
            format!("repoUrl=github.com?owner=my-org&repo={name}"),
            "--remote".into(),
            bed.remote_flag(),
            "--namespace".into(),
            ns.name().into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bed.pave_new(&args);
        assert!(
            out.status.success(),
            "{template}: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );

        // Every file of the skeleton is there, under its rendered name.
        let skeleton = skeleton_files(&dir.join(template).join("skeleton"));
        let files = bed.pushed_files(&repo);
        let expected: Vec<String> = {
            let mut names: Vec<String> = skeleton
                .iter()
                .map(|f| {
                    f.replace("${{values.artifact_id}}", &name)
                        .replace("${{values.java_package_name}}", "greeter")
                })
                .collect();
            names.sort();
            names
        };
        assert_eq!(files, expected, "{template}");
        assert_fully_rendered(bed, &repo, &files);
        let catalog_info: Value =
            serde_yaml::from_str(&bed.pushed(&repo, "catalog-info.yaml")).unwrap();
        assert_eq!(
            catalog_info["metadata"]["name"],
            name.as_str(),
            "{template}"
        );
        assert_eq!(
            catalog_info["metadata"]["annotations"]["github.com/project-slug"],
            format!("my-org/{name}")
        );
        assert!(
            bed.component(ns.name(), &name).is_some(),
            "{template}: registered"
        );
    }
    // Spot checks of what the skeletons do with their values.
    let grpc = format!("my-org/grpc-{}.git", ns.name());
    let application = bed.pushed(&grpc, "src/main/java/com/example/greeter/Application.java");
    assert!(
        application.starts_with("package com.example.greeter;"),
        "{application}"
    );
    assert!(
        bed.pushed(&grpc, "src/main/resources/application.properties")
            .contains("server.port=8080")
    );
    let web = format!("my-org/web-{}.git", ns.name());
    let catalog_info = bed.pushed(&web, "catalog-info.yaml");
    assert!(
        catalog_info.contains("description: \"The team's website\""),
        "{catalog_info}"
    );
}

#[test]
fn bad_input_ends_with_one_message_and_nothing_half_done() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    let ns = bed.env.namespace("bad");
    let template = repo_root().join("tests/templates/checked-service");
    let template = template.to_str().unwrap();
    let repo = format!("team/{}.git", ns.name());
    let url = bed.git.create(&repo).unwrap();
    let run = |sets: &[&str]| {
        let mut args = vec![template, "--namespace", ns.name()];
        for set in sets {
            args.extend(["--set", set]);
        }
        bed.pave_new(&args)
    };
    let repo_url = format!("repoUrl={url}");

    // A parameter that fails its schema: named with its page, before anything runs.
    let out = run(&["name=Bad_Name", "owner=team-a", &repo_url, "tier=platinum"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "kubectl-pave: parameter `name` (page \"Service\"): \"Bad_Name\" does not match the pattern ^[a-z][a-z0-9-]*$\n\
         kubectl-pave: parameter `tier` (page \"Repository\"): must be one of [\"gold\",\"silver\",\"bronze\"], not \"platinum\"\n\
         kubectl-pave: nothing was run\n"
    );
    // A required parameter, with no terminal to ask on.
    let out = run(&["name=good-name", &repo_url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(
            "kubectl-pave: parameter `owner` (page \"Service\"): is required; give it with --set"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(bed.pushed_files(&repo).is_empty(), "nothing pushed");

    // A template with an unknown action, a missing input and a name that names
    // nothing: all three, each at its line, and nothing run.
    let broken = repo_root().join("tests/templates/broken/template.yaml");
    let source = std::fs::read_to_string(&broken).unwrap();
    let line = |needle: &str| source.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = bed.pave_new(&[broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let file = broken.display();
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "kubectl-pave: {file}:{}: step `fetch`: fetch:plain needs the input url",
            line("input:")
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "kubectl-pave: {file}:{}: step `notify`: unknown action `slack:send-message`",
            line("slack:send-message")
        )),
        "{stderr}"
    );
    assert!(lines[2].starts_with(&format!("kubectl-pave: {file}:{}: step `publish`: repoUrl: `${{{{ parameters.nmae }}}}` names nothing: parameters holds name", line("parameters.nmae"))), "{stderr}");
    assert_eq!(lines[3], "kubectl-pave: nothing was run");

    // A push the server refuses: the run stops there, and nothing is registered.
    bed.git
        .refuse_pushes(&repo, "protected: pushes need a review")
        .unwrap();
    let out = run(&["name=refused", "owner=team-a", &repo_url]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the push to") && stderr.contains("protected: pushes need a review"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the run stopped; done: fetch, shared, notes, api, log; not run: register"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAILED    publish (publish:git)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not run   register (catalog:register)"),
        "{stdout}"
    );
    assert!(bed.pushed_files(&repo).is_empty(), "nothing pushed");
    assert!(
        bed.component(ns.name(), "refused").is_none(),
        "nothing registered"
    );

    // An unreachable cluster: found before the first step, so nothing is pushed.
    let repo2 = format!("team/{}-2.git", ns.name());
    let url2 = bed.git.create(&repo2).unwrap();
    let kubeconfig = bed.home.join(format!("unreachable-{}.yaml", ns.name()));
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let out = bed.pave_new_with(
        &[
            template,
            "--set",
            "name=unreached",
            "--set",
            "owner=team-a",
            "--set",
            &format!("repoUrl={url2}"),
        ],
        &kubeconfig,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("kubectl-pave: cannot reach the API server at https://127.0.0.1:1/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(the template registers in the cluster)\nkubectl-pave: nothing was run\n"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(bed.pushed_files(&repo2).is_empty(), "nothing pushed");
}

#[test]
fn a_dry_run_shows_the_files_and_steps_and_changes_nothing() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    let ns = bed.env.namespace("dry");
    let repo = format!("team/{}.git", ns.name());
    let url = bed.git.create(&repo).unwrap();
    let template = repo_root().join("tests/templates/checked-service");
    let out = bed.pave_new(&[
        template.to_str().unwrap(),
        "--dry-run",
        "--namespace",
        ns.name(),
        "--set",
        "name=dry-one",
        "--set",
        "owner=team-a",
        "--set",
        &format!("repoUrl={url}"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Dry run of checked-service:\n  done      fetch (fetch:template)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would run publish (publish:git)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would run register (catalog:register)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped   gold-notice (debug:log)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("done      log (debug:log)\n            made DRY-ONE for {}\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Files it would write:\n  NOTES.md\n  README.md\n  api/catalog-info.yaml\n  \
             catalog-info.yaml\n  docs/CONTRIBUTING.md\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Tier:\ndry-one is on the silver tier\n"),
        "{stdout}"
    );
    assert!(bed.pushed_files(&repo).is_empty(), "nothing pushed");
    assert!(
        bed.component(ns.name(), "dry-one").is_none(),
        "nothing registered"
    );
}

#[test]
fn on_a_terminal_a_missing_parameter_is_asked_for() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    // An owner the catalog's Components name, for the OwnerPicker to list while the
    // namespace has no org.
    let (screen, catalog_info) = asked(
        bed,
        "ask",
        "apiVersion: platform.pave.dev/v1alpha1\nkind: Component\nmetadata: {name: known}\n\
         spec: {type: service, lifecycle: production, owner: team-known}\n",
    );
    assert!(
        screen.contains("Service — Name\r\n  Lower case, digits and dashes"),
        "{screen}"
    );
    assert!(screen.contains("Service — Owner"), "{screen}");
    assert!(
        screen.contains("owners in the catalog (a number, or any owner):\r\n  1) team-known"),
        "{screen}"
    );
    assert_eq!(catalog_info["metadata"]["name"], "asked-name");
    assert_eq!(catalog_info["spec"]["owner"], "team-known");

    // With an org, the OwnerPicker lists its Groups and Users, as Backstage's does.
    let (screen, catalog_info) = asked(
        bed,
        "ask-org",
        "apiVersion: platform.pave.dev/v1alpha1\nkind: Component\nmetadata: {name: known}\n\
         spec: {type: service, lifecycle: production, owner: team-known}\n---\n\
         apiVersion: platform.pave.dev/v1alpha1\nkind: Group\nmetadata: {name: payments-team}\n\
         spec: {type: team}\n---\n\
         apiVersion: platform.pave.dev/v1alpha1\nkind: User\nmetadata: {name: jiwoo}\n\
         spec: {memberOf: [payments-team]}\n",
    );
    assert!(
        screen.contains(
            "owners in the catalog (a number, or any owner):\r\n  1) payments-team\r\n  2) user:jiwoo\r\n"
        ),
        "{screen}"
    );
    assert_eq!(catalog_info["spec"]["owner"], "payments-team");
}

/// Runs the checked-service template on a terminal in a new namespace holding
/// `manifests`, answering the name and owner 1; returns the screen and the pushed
/// catalog-info.yaml.
fn asked(bed: &Bed, prefix: &str, manifests: &str) -> (String, Value) {
    let ns = bed.env.namespace(prefix);
    kubectl_ok(bed.env, &["apply", "-n", ns.name(), "-f", "-"], manifests);
    let repo = format!("team/{}.git", ns.name());
    let url = bed.git.create(&repo).unwrap();
    let template = repo_root().join("tests/templates/checked-service");
    // `script` gives the command a terminal; the answers come through it.
    let command = format!(
        "{} new {} --namespace {} --set repoUrl={url}",
        bed.bin.join("kubectl-pave").display(),
        template.display(),
        ns.name()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(repo_root())
        .env("KUBECONFIG", bed.env.kubeconfig_path())
        .env("HOME", &bed.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"asked-name\n1\n").unwrap();
        // Kept open until the answers are read, then closed.
        std::thread::sleep(Duration::from_secs(3));
    }
    let out = child.wait_with_output().unwrap();
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}\n{}", text(&out.stderr));
    let catalog_info: Value =
        serde_yaml::from_str(&bed.pushed(&repo, "catalog-info.yaml")).unwrap();
    (screen, catalog_info)
}

#[test]
fn parameters_from_a_file_and_the_workspace_kept_with_output() {
    let bed = bed();
    let _logs = LogsOnPanic(bed);
    let ns = bed.env.namespace("values");
    let repo = format!("team/{}.git", ns.name());
    let url = bed.git.create(&repo).unwrap();
    let name = format!("gold-{}", ns.name());
    let values = bed.home.join(format!("{}-values.yaml", ns.name()));
    std::fs::write(
        &values,
        format!("name: {name}\nowner: team-gold\nrepoUrl: {url}\ntier: gold\n"),
    )
    .unwrap();
    let output = bed.home.join(format!("{}-workspace", ns.name()));
    let template = repo_root().join("tests/templates/checked-service");
    let args = [
        template.to_str().unwrap(),
        "--namespace",
        ns.name(),
        "--values",
        values.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    let out = bed.pave_new(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let notice = format!(
        "done      gold-notice (debug:log)\n            {name} gets the gold on-call rota\n"
    );
    assert!(stdout.contains(&notice), "{stdout}");
    assert!(
        stdout.contains(&format!("Tier:\n{name} is on the gold tier\n")),
        "{stdout}"
    );

    // The workspace stays where --output said, and is what was pushed.
    let read = |file: &str| std::fs::read_to_string(output.join(file)).unwrap();
    assert_eq!(
        read("NOTES.md"),
        format!("# Notes on {name}\n\nMade by dev-tester.\n")
    );
    assert_eq!(
        read("docs/CONTRIBUTING.md"),
        "Shared by every service of the platform: copied as it is, ${{ not rendered }}.\n"
    );
    let api: Value = serde_yaml::from_str(&read("api/catalog-info.yaml")).unwrap();
    assert_eq!(api["metadata"]["name"], format!("{name}-api"));
    assert_eq!(api["spec"]["owner"], "team-gold");
    assert_eq!(
        bed.pushed_files(&repo),
        [
            "NOTES.md",
            "README.md",
            "api/catalog-info.yaml",
            "catalog-info.yaml",
            "docs/CONTRIBUTING.md"
        ]
    );
    assert_eq!(bed.pushed(&repo, "NOTES.md"), read("NOTES.md"));
    let log = bed.git.git(&repo, &["log", "--format=%s", "main"]).unwrap();
    assert_eq!(log, format!("Scaffold {name}\n"));
    assert!(bed.component(ns.name(), &name).is_some(), "registered");

    // A workspace that is not empty is refused before anything runs.
    let out = bed.pave_new(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists and is not empty"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&output);
}
