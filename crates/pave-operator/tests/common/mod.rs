//! Shared by the operator's integration tests: the real `pave-operator` binary as a
//! child process, and small polling and kubectl helpers.
#![allow(dead_code)] // each test binary uses a different part

pub mod application;
pub mod devenv;
pub mod proxy;
pub mod refusal;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pave_testenv::TestEnv;
use serde_json::Value;

pub const CATALOG: &str = "pave-catalog";

/// How an operator logs: `--log-format` and `RUST_LOG`.
#[derive(Clone, Copy)]
struct Log<'a> {
    format: &'a str,
    rust_log: &'a str,
}

impl Log<'static> {
    const TEXT: Log<'static> = Log {
        format: "text",
        rust_log: "info",
    };
}

/// A running operator. Dropping it kills the process, so a failed assertion never
/// leaves one behind; when the test is panicking its log is printed first.
pub struct Operator {
    child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    /// Copies stderr into `log` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Operator {
    pub fn start(env: &TestEnv) -> Operator {
        Operator::start_with_config(env, None)
    }

    /// Starts the operator with `config` (YAML) as its configuration file, talking to
    /// moto for AWS with test credentials.
    pub fn start_with_config(env: &TestEnv, config: Option<&str>) -> Operator {
        Operator::start_with(env, config, &env.moto_endpoint())
    }

    /// As [`Operator::start_with_config`], with AWS at `aws_endpoint` (e.g. a
    /// `pave_testenv::FaultProxy` in front of moto).
    pub fn start_with(env: &TestEnv, config: Option<&str>, aws_endpoint: &str) -> Operator {
        let cluster_id = format!("test-{}", std::process::id());
        Operator::spawn(
            env,
            config,
            aws_endpoint,
            Some(&cluster_id),
            None,
            &[],
            Log::TEXT,
        )
    }

    /// As [`Operator::start_with`], logging in `format` (`text`, `json`) at `rust_log`
    /// (an `EnvFilter` spec such as `debug`).
    pub fn start_logging(
        env: &TestEnv,
        config: Option<&str>,
        aws_endpoint: &str,
        format: &str,
        rust_log: &str,
    ) -> Operator {
        let cluster_id = format!("test-{}", std::process::id());
        let log = Log { format, rust_log };
        Operator::spawn(env, config, aws_endpoint, Some(&cluster_id), None, &[], log)
    }

    /// As [`Operator::start`], with the API server at `kubeconfig`'s address and
    /// `args` added: a replica taking part in leader election.
    pub fn start_with_args(env: &TestEnv, kubeconfig: &std::path::Path, args: &[&str]) -> Operator {
        let cluster_id = format!("test-{}", std::process::id());
        let moto = env.moto_endpoint();
        Operator::spawn(
            env,
            None,
            &moto,
            Some(&cluster_id),
            Some(kubeconfig),
            args,
            Log::TEXT,
        )
    }

    /// As [`Operator::start`], without `PAVE_CLUSTER_ID`: the operator picks its
    /// default cluster id itself.
    pub fn start_with_default_cluster_id(env: &TestEnv) -> Operator {
        Operator::spawn(env, None, &env.moto_endpoint(), None, None, &[], Log::TEXT)
    }

    fn spawn(
        env: &TestEnv,
        config: Option<&str>,
        aws_endpoint: &str,
        cluster_id: Option<&str>,
        kubeconfig: Option<&std::path::Path>,
        args: &[&str],
        log: Log<'_>,
    ) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pave-operator"));
        if let Some(config) = config {
            let path = std::env::temp_dir().join(format!(
                "pave-operator-config-{}-{}.yaml",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::write(&path, config).expect("write the operator configuration");
            command.arg("--config").arg(path);
        }
        command
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", log.format])
            .args(args)
            .env("KUBECONFIG", kubeconfig.unwrap_or(env.kubeconfig_path()))
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", log.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match cluster_id {
            Some(id) => command.env("PAVE_CLUSTER_ID", id),
            None => command.env_remove("PAVE_CLUSTER_ID"),
        };
        // Tied to this process: a shared operator is never dropped.
        let mut child = pave_testenv::spawn_tied(command).expect("spawn pave-operator");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_address(&line) {
                    let _ = addr_tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Operator {
                child,
                addr,
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "pave-operator did not start listening ({status}):\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// `GET path` on the operator's HTTP server: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the operator");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (code, body)
    }

    /// The value of one counter series, e.g. `pave_operator_status_writes_total`
    /// for `controller="pave-catalog"`.
    pub fn counter(&self, name: &str, controller: &str) -> f64 {
        self.metric(&format!("{name}{{controller=\"{controller}\"}}"))
    }

    /// The value of one series as `/metrics` writes it, labels and all, e.g.
    /// `pave_operator_catalog_entities`.
    pub fn metric(&self, series: &str) -> f64 {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "{body}");
        let prefix = format!("{series} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited (by itself or by a signal), without
    /// waiting: `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .expect("wait(2) on the operator's pid")
    }

    /// Waits up to `within` for the process to exit by itself (or by another's signal).
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Everything it wrote before it exited is in `log` once the reader
                // has seen the pipe close; a test reading the log next sees it all.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if started.elapsed() >= within {
                // Copied first: a guard held while panicking would poison the log for Drop.
                let log = self.log.lock().unwrap().clone();
                panic!("pave-operator did not exit within {within:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        self.wait_for_exit(within)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- pave-operator log ----\n{}", self.log.lock().unwrap());
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the operator's `listening on http://ADDR` log line.
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Polls `check` until it returns `Some`, for at most `within`.
pub fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts that `check` holds every 200 ms for `period`: for things that must *not*
/// happen (a sweep, a garbage collection), given time in which they would.
pub fn holds_for(period: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    while started.elapsed() < period {
        if let Err(why) = check() {
            panic!(
                "{what} stopped holding after {:?}: {why}",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn kubectl_apply(env: &TestEnv, manifest: &Value) {
    let output = env.kubectl_with_input(&["apply", "-f", "-"], manifest.to_string().as_bytes());
    assert!(
        output.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The operator shared by this binary's tests, started once the control plane is up.
static OPERATOR: OnceLock<Operator> = OnceLock::new();

pub fn operator() -> &'static Operator {
    operator_with_config(None)
}

/// The shared operator, started with `config` (YAML) if this is the first call; a
/// test binary passes the same configuration everywhere.
pub fn operator_with_config(config: Option<&str>) -> &'static Operator {
    OPERATOR.get_or_init(|| {
        let operator = Operator::start_with_config(TestEnv::shared(), config);
        eventually(Duration::from_secs(30), "/readyz answering 200", || {
            (operator.get("/readyz").0 == 200).then_some(())
        });
        operator
    })
}

/// Prints the operator's log when a test fails; the shared operator is never dropped.
pub struct LogOnPanic;

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        // Never starts an operator: this runs while a test is already failing.
        if let (true, Some(operator)) = (std::thread::panicking(), OPERATOR.get()) {
            let log = operator.log.lock().unwrap();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- pave-operator log (last 40 lines) ----");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
