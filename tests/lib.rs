//! Helpers shared by pave's integration tests: running the real kubectl against the
//! shared test bed, and waiting with a deadline instead of sleeping.

use std::{
    path::{Path, PathBuf},
    process::Output,
    thread,
    time::{Duration, Instant},
};

use pave_testenv::TestEnv;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `cargo test --workspace` (what `make test` runs) put the workspace's binaries:
/// the `debug/` next to the running test's `deps/`. Panics, saying how to build them,
/// when one of `names` is not there.
pub fn workspace_binaries(names: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/debug/deps")
        .to_owned();
    for bin in names {
        assert!(
            dir.join(bin).is_file(),
            "{bin} is not in {}: run this test through `make test` or after `cargo build --workspace`",
            dir.display()
        );
    }
    dir
}

/// Runs the real kubectl with `args`, feeding `stdin` to it, and returns what it did.
pub fn kubectl(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    env.kubectl_with_input(args, stdin.as_bytes())
}

/// Runs kubectl and returns its stdout; panics with its stderr if it failed.
pub fn kubectl_ok(env: &TestEnv, args: &[&str], stdin: &str) -> String {
    let out = kubectl(env, args, stdin);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the last observation.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The real `pave-operator`, as a child process of the test, with its log kept.
pub struct Operator {
    child: std::process::Child,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Operator {
    /// Starts the operator from `bin` against the test bed, with `config` as its
    /// configuration file and AWS at `aws_endpoint`.
    pub fn start(env: &TestEnv, bin: &Path, config: &str, aws_endpoint: &str) -> Operator {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let test = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let file =
            std::env::temp_dir().join(format!("pave-{test}-config-{}.yaml", std::process::id()));
        std::fs::write(&file, config).unwrap();
        let mut command = Command::new(bin.join("pave-operator"));
        command
            .arg("--config")
            .arg(&file)
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "text"])
            .env("KUBECONFIG", env.kubeconfig_path())
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("PAVE_CLUSTER_ID", format!("{test}-{}", std::process::id()))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = pave_testenv::spawn_tied(command).expect("spawn pave-operator");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Operator { child, log }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
