//! `make bench`: from `git commit` of an environment manifest to the environment
//! Ready, through real Argo CD (application-controller and repo-server from its Go
//! module) and the real operator on moto.
//!
//! One Application syncs a local git repository's `environments/` directory
//! (automated, prune). Each round commits one more DeveloperEnvironment manifest, asks
//! Argo CD to refresh as a webhook would (the `argocd.argoproj.io/refresh` annotation),
//! and times until that environment is Ready. Reported: each round, and the median of
//! `PAVE_BENCH_GITOPS_ROUNDS` (default 5). Asserted, so a number is never measured on
//! a broken run: every environment becomes Ready and is deleted again when its
//! manifest is removed from Git.

mod support;

use std::time::{Duration, Instant};

use pave_testenv::argocd::{ArgoCd, ArgoOptions, GitRepo};
use serde_json::{Value, json};

const CONFIG: &str = "allowedRegions: [us-east-1]\nresyncInterval: 60s\n";

fn manifest(i: usize) -> String {
    format!(
        "apiVersion: platform.pave.dev/v1alpha1\nkind: DeveloperEnvironment\nmetadata:\n  name: bench-{i}\n  namespace: gitops-bench\nspec:\n  parameters:\n    region: us-east-1\n    dbSize: db.t3.micro\n    clusterSize: small\n"
    )
}

fn phase(env: &pave_testenv::TestEnv, i: usize) -> Option<String> {
    let out = env
        .run_kubectl(&[
            "get",
            "devenv",
            &format!("bench-{i}"),
            "-n",
            "gitops-bench",
            "-o",
            "json",
        ])
        .ok()?;
    let obj: Value = serde_json::from_str(&out).ok()?;
    obj["status"]["phase"].as_str().map(str::to_owned)
}

fn wait(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let rounds: usize = support::env_number("PAVE_BENCH_GITOPS_ROUNDS", 5);
    let env = support::start_test_bed();
    let argo = ArgoCd::start(&env, ArgoOptions::default()).expect("start Argo CD");
    let config = env.state_dir().join("operator-config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let _operator = support::Operator::start_with(&env, Some(&config), &env.moto_endpoint());
    env.run_kubectl(&["create", "namespace", "gitops-bench"])
        .unwrap();

    let repo = GitRepo::init(env.state_dir().join("environments-repo")).unwrap();
    repo.write("environments/README", "environments, one manifest each\n")
        .unwrap();
    repo.commit("empty").unwrap();
    let application = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "environments", "namespace": argo.namespace()},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url(), "path": "environments", "targetRevision": "HEAD",
                       "directory": {"include": "*.yaml"}},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "gitops-bench"},
            // allowEmpty: the last round removes every manifest, which Argo CD
            // otherwise refuses to prune as a likely mistake.
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true, "allowEmpty": true}},
        },
    });
    let out = env.kubectl_with_input(&["apply", "-f", "-"], application.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut times = Vec::new();
    for i in 0..rounds {
        repo.write(format!("environments/bench-{i}.yaml"), &manifest(i))
            .unwrap();
        let committed = Instant::now();
        repo.commit(&format!("environment bench-{i}")).unwrap();
        argo.refresh("environments").unwrap();
        wait(
            &format!("bench-{i} Ready"),
            Duration::from_secs(120),
            || phase(&env, i).as_deref() == Some("Ready"),
        );
        let took = committed.elapsed();
        println!(
            "gitops: round {i}: commit → Ready {:.2} s",
            took.as_secs_f64()
        );
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "gitops: commit of an environment manifest → environment Ready, median of {rounds}: {:.2} s (range {:.2}–{:.2} s)",
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );

    // Removing the manifests from Git deletes the environments (prune).
    for i in 0..rounds {
        std::fs::remove_file(repo.path().join(format!("environments/bench-{i}.yaml"))).unwrap();
    }
    repo.commit("no environments").unwrap();
    argo.refresh("environments").unwrap();
    wait(
        "every environment deleted",
        Duration::from_secs(180),
        || {
            (0..rounds).all(|i| {
                phase(&env, i).is_none()
                    && env
                        .run_kubectl(&[
                            "get",
                            "devenv",
                            &format!("bench-{i}"),
                            "-n",
                            "gitops-bench",
                        ])
                        .is_err()
            })
        },
    );
    println!("gitops: every environment deleted after its manifest left Git");
}
