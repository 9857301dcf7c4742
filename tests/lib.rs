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
