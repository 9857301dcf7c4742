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
