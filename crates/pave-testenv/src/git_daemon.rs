//! A git server on loopback: `git daemon` with `receive-pack` enabled, serving bare
//! repositories under one directory as `git://127.0.0.1:PORT/<path>`. It stands in
//! for GitHub (or any git host) where a test pushes a new repository.
//!
//! Like a hosted service, it serves only repositories that exist: a test creates
//! them with [`GitDaemon::create`], and can make one refuse every push
//! ([`GitDaemon::refuse_pushes`], a `pre-receive` hook), as a protected repository
//! or a server's policy would.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_ports, spawn_tied};
use crate::{Error, io_error};

/// A running `git daemon`; stopped on drop.
pub struct GitDaemon {
    root: PathBuf,
    port: u16,
    child: Child,
}

impl GitDaemon {
    /// Starts a daemon serving the bare repositories under `root` (created if needed).
    pub fn start(root: impl AsRef<Path>) -> Result<GitDaemon, Error> {
        let root = root.as_ref();
        fs::create_dir_all(root).map_err(io_error(format!("create {}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(io_error(format!("resolve {}", root.display())))?;
        let mut last = String::new();
        // Another process may take the port between picking and binding: retry.
        for _ in 0..3 {
            let [port] = free_ports::<1>().map_err(io_error("pick a port"))?;
            let mut command = Command::new("git");
            command
                .arg("daemon")
                .arg("--reuseaddr")
                .arg("--export-all")
                .arg("--enable=receive-pack")
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", root.display()))
                .arg(&root)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child =
                spawn_tied(command).map_err(io_error("run git daemon (apt-get install git)"))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(GitDaemon { root, port, child });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("git daemon exited with {status}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = format!("git daemon did not listen on 127.0.0.1:{port} within 10 s");
            }
        }
        Err(Error::Git(last))
    }

    /// Creates an empty bare repository at `path` (such as `my-org/payments.git`) and
    /// returns its URL.
    pub fn create(&self, path: &str) -> Result<String, Error> {
        let dir = self.root.join(path);
        fs::create_dir_all(&dir).map_err(io_error(format!("create {}", dir.display())))?;
        git(
            &dir,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        )?;
        Ok(self.url(path))
    }

    /// Makes the repository at `path` refuse every push, with `message`.
    pub fn refuse_pushes(&self, path: &str, message: &str) -> Result<(), Error> {
        let hook = self.root.join(path).join("hooks").join("pre-receive");
        let script = format!(
            "#!/bin/sh\necho '{}' >&2\nexit 1\n",
            message.replace('\'', "")
        );
        fs::write(&hook, script).map_err(io_error(format!("write {}", hook.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&hook, fs::Permissions::from_mode(0o755))
                .map_err(io_error(format!("chmod {}", hook.display())))?;
        }
        Ok(())
    }

    /// `git://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("git://127.0.0.1:{}/{path}", self.port)
    }

    /// The URL template a `--remote github.com=…` flag maps hosted repositories to.
    pub fn remote_template(&self) -> String {
        format!("git://127.0.0.1:{}/{{owner}}/{{repo}}.git", self.port)
    }

    /// The repository's directory on disk, to read what was pushed.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// Runs git in the bare repository at `path` (e.g. `show main:README.md`).
    pub fn git(&self, path: &str, args: &[&str]) -> Result<String, Error> {
        git(&self.root.join(path), args)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .map_err(io_error("run git (apt-get install git)"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Git(format!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
