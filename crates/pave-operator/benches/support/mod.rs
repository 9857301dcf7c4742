//! What the cluster benchmarks share: creating many Components, and the operator
//! binary as a child process with its metrics and peak memory.
#![allow(dead_code)] // each benchmark uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::PostParams;
use pave_api::Component;
use pave_testenv::TestEnv;

/// Requests in flight at once: what the operator's catalog controller uses, so a
/// bare client compared with it gets the same.
pub const CONCURRENCY: usize = 32;

/// Creates `components`, `CONCURRENCY` at a time; returns how long it took.
pub async fn create_all(api: &Api<Component>, components: Vec<Component>) -> Duration {
    let started = Instant::now();
    stream::iter(components)
        .map(|component| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &component)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .expect("create the Components");
    started.elapsed()
}

/// A number from the environment variable `name`, or `default` when it is unset or
/// not a number (the benchmarks' sizes: `PAVE_BENCH_COMPONENTS` and the like).
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh test bed (control plane and moto) with this checkout's CRDs installed.
pub fn start_test_bed() -> TestEnv {
    start_test_bed_with(false)
}

/// As [`start_test_bed`], with moto's EC2 tag look-ups indexed or not
/// (`pave_testenv::Options::moto_tag_index`).
pub fn start_test_bed_with(moto_tag_index: bool) -> TestEnv {
    TestEnv::start(pave_testenv::Options {
        crd_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds").into()),
        moto_tag_index,
        ..Default::default()
    })
    .expect("start the test bed")
}

pub struct Operator {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Operator {
    pub fn start(env: &TestEnv) -> Operator {
        Operator::start_with(env, None, &env.moto_endpoint())
    }

    /// Starts the operator with `config` (a path to its YAML configuration) and AWS at
    /// `aws_endpoint` with moto's test credentials.
    pub fn start_with(
        env: &TestEnv,
        config: Option<&std::path::Path>,
        aws_endpoint: &str,
    ) -> Operator {
        Operator::spawn(env, config, aws_endpoint, &[])
    }

    /// A replica taking part in leader election on the Lease `default/pave-bench`,
    /// with the chart's lease duration unless `lease_seconds` says otherwise.
    pub fn start_replica(
        env: &TestEnv,
        config: Option<&std::path::Path>,
        aws_endpoint: &str,
        identity: &str,
        lease_seconds: u64,
    ) -> Operator {
        let duration = lease_seconds.to_string();
        let args = [
            "--leader-elect",
            "--lease-name",
            "pave-bench",
            "--lease-namespace",
            "default",
            "--lease-duration",
            &duration,
            "--leader-identity",
            identity,
        ];
        Operator::spawn(env, config, aws_endpoint, &args)
    }

    fn spawn(
        env: &TestEnv,
        config: Option<&std::path::Path>,
        aws_endpoint: &str,
        args: &[&str],
    ) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pave-operator"));
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .env("KUBECONFIG", env.kubeconfig_path())
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "warn,pave_operator=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = pave_testenv::spawn_tied(command).expect("start pave-operator");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // PAVE_BENCH_OPERATOR_LOG=FILE keeps the operator's log, to see where time went.
        let mut log = std::env::var_os("PAVE_BENCH_OPERATOR_LOG")
            .and_then(|path| std::fs::File::create(path).ok());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
                if let Some(at) = line.find("listening on http://") {
                    let addr = line[at + 20..]
                        .split(|c: char| c.is_whitespace() || c == '"')
                        .next()
                        .unwrap_or("");
                    let _ = tx.send(addr.parse::<SocketAddr>().ok());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .flatten()
            .expect("operator listening");
        Operator { child, addr }
    }

    /// The operator's status writes, summed over its controllers or for one.
    pub fn status_writes(&self) -> f64 {
        self.writes_of("pave-catalog")
    }

    /// Status writes of one controller (its field manager name).
    pub fn writes_of(&self, controller: &str) -> f64 {
        self.metric(&format!(
            "pave_operator_status_writes_total{{controller=\"{controller}\"}}"
        ))
    }

    /// Whether this replica runs the controllers (`pave_operator_leader`).
    pub fn leading(&self) -> bool {
        self.metric("pave_operator_leader") == 1.0
    }

    /// The value of one series (name and labels as `/metrics` prints them); NaN if
    /// absent or the operator does not answer.
    pub fn metric(&self, series: &str) -> f64 {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return f64::NAN;
        };
        let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut body = String::new();
        if write!(stream, "{request}").is_err() || stream.read_to_string(&mut body).is_err() {
            return f64::NAN;
        }
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as the kubelet stops a pod, and waits for the exit (a leader releases
    /// its Lease).
    pub fn terminate(&mut self) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// Peak resident set size in MiB, from the kernel's high-water mark.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two replicas as the chart runs them (leader election on one Lease, the chart's
/// 15 s lease): the first started leads before the second starts, so benchmarks know
/// which one works.
pub struct Replicas {
    pub leader: Operator,
    pub standby: Operator,
}

impl Replicas {
    pub fn start(env: &TestEnv, config: Option<&std::path::Path>, aws_endpoint: &str) -> Replicas {
        let leader = Operator::start_replica(env, config, aws_endpoint, "replica-a", LEASE_SECONDS);
        wait_until(Duration::from_secs(60), "replica-a leading", || {
            leader.leading()
        });
        let standby =
            Operator::start_replica(env, config, aws_endpoint, "replica-b", LEASE_SECONDS);
        wait_until(Duration::from_secs(60), "replica-b answering", || {
            standby.metric("pave_operator_leader") == 0.0
        });
        Replicas { leader, standby }
    }

    /// Stops both cleanly, so the Lease is free for the next pair at once.
    pub fn stop(mut self) {
        self.standby.terminate();
        self.leader.terminate();
    }

    /// Both replicas' peak RSS, for the report.
    pub fn report_rss(&self, target: &str) {
        println!(
            "operator peak RSS: leader {:.1} MiB (target {target}), standby {:.1} MiB",
            self.leader.peak_rss_mib(),
            self.standby.peak_rss_mib()
        );
    }
}

/// The chart's default lease duration.
pub const LEASE_SECONDS: u64 = 15;

/// Polls `check` every 50 ms until it holds; panics naming `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
