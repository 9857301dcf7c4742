//! What a pod on the node tier used, read from the kubelet's cgroups (cgroupfs
//! driver; cgroup v1 or v2) and its processes' `/proc` entries: for reporting how
//! much memory and CPU pave's pod took during a scenario, not for assertions.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, TestEnv};

/// A pod's use of the node so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodUsage {
    /// The largest peak resident set (VmHWM) of the pod's processes, in MiB.
    pub peak_rss_mib: f64,
    /// The resident set of those processes now (VmRSS, summed), in MiB.
    pub rss_mib: f64,
    /// CPU time used by the whole pod, in seconds.
    pub cpu_seconds: f64,
}

/// The pod cgroup's directory under each place the kubelet may have put it, by QoS
/// class: Guaranteed pods directly under `kubepods`, the others one level down.
fn pod_dirs(root: &str, uid: &str) -> impl Iterator<Item = PathBuf> {
    let pod = format!("pod{uid}");
    ["", "burstable", "besteffort"]
        .into_iter()
        .map(move |qos| Path::new(root).join("kubepods").join(qos).join(&pod))
}

fn find(root: &str, uid: &str) -> Option<PathBuf> {
    pod_dirs(root, uid).find(|dir| dir.is_dir())
}

/// Every process id in `dir` and the cgroups below it.
fn procs(dir: &Path, into: &mut Vec<u32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        into.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            procs(&entry.path(), into);
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl TestEnv {
    /// SIGKILLs the processes named `comm` (as `/proc/<pid>/comm` says) in the pod with
    /// `uid`, as the OOM killer or a crash would end them: the kubelet sees the
    /// container die and restarts it. Returns the pids killed; fails if none was found.
    pub fn kill_in_pod(&self, uid: &str, comm: &str) -> Result<Vec<u32>, Error> {
        let dir = find("/sys/fs/cgroup/pids", uid)
            .or_else(|| find("/sys/fs/cgroup", uid))
            .ok_or_else(|| Error::Node(format!("no cgroup for pod {uid} on this machine")))?;
        let mut pids = Vec::new();
        procs(&dir, &mut pids);
        pids.retain(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        });
        if pids.is_empty() {
            return Err(Error::Node(format!("no process {comm} in pod {uid}")));
        }
        for &pid in &pids {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .map_err(|e| Error::Node(format!("kill -KILL {pid}: {e}")))?;
            if !status.success() {
                return Err(Error::Node(format!("kill -KILL {pid}: {status}")));
            }
        }
        Ok(pids)
    }

    /// What the pod with `uid` has used so far. Fails if its cgroup is not on this
    /// machine (no node tier, or the pod is gone).
    pub fn pod_usage(&self, uid: &str) -> Result<PodUsage, Error> {
        let missing = || Error::Node(format!("no cgroup for pod {uid} on this machine"));
        let cpu_seconds = if let Some(dir) = find("/sys/fs/cgroup/cpuacct", uid) {
            let ns: f64 = fs::read_to_string(dir.join("cpuacct.usage"))
                .map_err(|e| Error::Node(e.to_string()))?
                .trim()
                .parse()
                .map_err(|_| missing())?;
            ns / 1e9
        } else {
            let dir = find("/sys/fs/cgroup", uid).ok_or_else(missing)?;
            let stat = fs::read_to_string(dir.join("cpu.stat")).map_err(|_| missing())?;
            let usec: f64 = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(missing)?;
            usec / 1e6
        };
        let dir = find("/sys/fs/cgroup/pids", uid)
            .or_else(|| find("/sys/fs/cgroup", uid))
            .ok_or_else(missing)?;
        let mut pids = Vec::new();
        procs(&dir, &mut pids);
        let peak_rss_mib = pids
            .iter()
            .filter_map(|&pid| status_mib(pid, "VmHWM:"))
            .fold(0.0, f64::max);
        let rss_mib = pids
            .iter()
            .filter_map(|&pid| status_mib(pid, "VmRSS:"))
            .sum();
        Ok(PodUsage {
            peak_rss_mib,
            rss_mib,
            cpu_seconds,
        })
    }
}
