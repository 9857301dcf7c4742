//! Child processes that cannot outlive the test process, plus the small pieces of
//! plumbing the components need: free loopback ports, log tails and plain HTTP probes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// Spawns `command` from one long-lived thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
/// process. Test threads come and go, so every child is forked by a thread that lives
/// as long as the process: the children then die exactly when the test process does,
/// even on panic=abort or SIGKILL.
fn spawn_from_spawner_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("pave-testenv-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("the OS refused to start the pave-testenv spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let gone = || io::Error::other("the pave-testenv spawner thread is gone");
    spawner.send((command, reply_tx)).map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())?
}

/// Spawns `command` so that the child cannot outlive this process: it gets SIGKILL
/// when the process exits, even on a panic with `panic=abort` or a SIGKILL. The child
/// gets its own process group, so a terminal's Ctrl-C reaches only its owner, which
/// stops it in order. For test helpers that start long-lived programs, such as the
/// operator under test.
pub fn spawn_tied(mut command: Command) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    spawn_from_spawner_thread(command)
}

/// One started component: its child process and the log its stdout and stderr go to.
#[derive(Debug)]
pub(crate) struct Process {
    pub name: &'static str,
    pub log: PathBuf,
    child: Child,
}

impl Process {
    pub fn spawn(name: &'static str, command: Command, log: &Path) -> io::Result<Self> {
        Self::spawn_into(name, command, log, File::create(log)?)
    }

    /// As [`Process::spawn`], appending to `log`: a component started again keeps what
    /// its predecessor logged, so a test can read both lives.
    pub fn respawn(name: &'static str, command: Command, log: &Path) -> io::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        Self::spawn_into(name, command, log, out)
    }

    fn spawn_into(
        name: &'static str,
        mut command: Command,
        log: &Path,
        out: File,
    ) -> io::Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = spawn_tied(command)?;
        Ok(Self {
            name,
            log: log.to_owned(),
            child,
        })
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// SIGTERM, then up to `grace` for the process to exit by itself, then SIGKILL.
    /// Returns whether it had to be killed; either way it is reaped.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if self.exited().is_none() {
            // SAFETY: plain kill(2) on a child we have not reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let killed = self.exited().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        killed
    }
}

/// Stops every process: SIGTERM to all at once, a short grace period, then SIGKILL,
/// and reaps each so none is left as a zombie. Those named in `kill_at_once` get
/// SIGKILL straight away: kube-apiserver drains watches for a minute after SIGTERM,
/// and a throwaway cluster has nothing worth a graceful shutdown.
pub(crate) fn stop_all(processes: &mut [Process], grace: Duration, kill_at_once: &[&str]) {
    for p in processes.iter_mut() {
        if p.exited().is_none() {
            let signal = if kill_at_once.contains(&p.name) {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            // SAFETY: plain kill(2) on a child we have not reaped yet.
            unsafe { libc::kill(p.child.id() as libc::pid_t, signal) };
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && processes.iter_mut().any(|p| p.exited().is_none()) {
        thread::sleep(Duration::from_millis(50));
    }
    for p in processes.iter_mut() {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
}

/// `n` distinct free ports on 127.0.0.1. The listeners are held until all are picked so
/// the same port is not handed out twice; another process may still take one before
/// the component binds it, which callers handle by retrying.
pub(crate) fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<_>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// The last `lines` lines of a log file; only its end is read, since an apiserver log
/// can grow large.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A minimal HTTP/1.0 request to a loopback port; returns the status code and body.
/// Enough for etcd's and moto's plain-HTTP endpoints without an HTTP client crate.
pub(crate) fn http(method: &str, port: u16, path: &str, body: &str) -> io::Result<(u16, String)> {
    http_at("127.0.0.1", method, port, path, body)
}

/// [`http`] to another address (the node tier's).
pub(crate) fn http_at(
    ip: &str,
    method: &str,
    port: u16,
    path: &str,
    body: &str,
) -> io::Result<(u16, String)> {
    let ip: std::net::IpAddr = ip.parse().map_err(io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {ip}:{port}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {:.80}", response)))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        // Whether a port is still free when used is racy by nature (hence the retries
        // in start); what must hold is that one call never hands out a port twice.
        for _ in 0..20 {
            let [a, b, c] = free_ports::<3>().unwrap();
            assert!(a != 0 && a != b && b != c && a != c);
        }
    }

    #[test]
    fn tail_returns_the_last_lines() {
        let path = std::env::temp_dir().join(format!("pave-testenv-tail-{}", std::process::id()));
        std::fs::write(&path, "one\ntwo\nthree\nfour\n").unwrap();
        assert_eq!(tail(&path, 2), "three\nfour");
        assert_eq!(tail(&path, 10), "one\ntwo\nthree\nfour");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path, 2), "");
    }

    #[test]
    fn children_are_spawned_and_stopped() {
        let log =
            std::env::temp_dir().join(format!("pave-testenv-child-{}.log", std::process::id()));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 600"]);
        let mut processes = [Process::spawn("sleeper", cmd, &log).unwrap()];
        thread::sleep(Duration::from_millis(200));
        assert!(processes[0].exited().is_none());
        let started = Instant::now();
        stop_all(&mut processes, Duration::from_secs(5), &[]);
        assert!(processes[0].exited().is_some());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "SIGTERM should stop sleep at once"
        );
        assert_eq!(processes[0].tail(5), "started");
        std::fs::remove_file(&log).unwrap();
    }
}
