//! The node tier: a real kubelet with containerd and runc, kube-proxy and the bridge
//! CNI, so that pods run, in a network namespace the test bed creates for itself.
//!
//! ```text
//!   host network namespace              network namespace `pave-node`
//!   etcd, kube-apiserver, kcm,          containerd (+ shims), kubelet, kube-proxy
//!   kube-scheduler, moto, the tests     bridge cni0 10.214.0.1/24 ── pods
//!        10.213.0.1 (pave-host) ═══ veth ═══ (pave-node0) 10.213.0.2 = node IP
//! ```
//!
//! The API server and moto listen on the host end of the veth pair, so tests reach
//! them as before and pods reach them through the namespace's default route (the
//! bridge masquerades pod traffic as the node IP, so the host needs no route back).
//! kube-proxy's iptables rules and the pods' bridge live only inside the namespace.
//!
//! One node tier runs at a time on a machine: containerd's shims and runc keep state
//! in fixed paths (`/run/containerd/{runc,s,fifo}`) and the kubelet's pod cgroups are
//! machine-wide. A lock serialises node tiers, and each start first clears what a
//! killed predecessor left (its processes, mounts and namespace).

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::pki::{NodeCerts, Pki, render_kubeconfig_for};
use crate::process::http_at;
use crate::{Error, TestEnv, io_error, write_file};

/// The node's name (the kubelet's `--hostname-override`, its certificate's user).
pub const NODE_NAME: &str = "pave-node";
/// Where the API server and moto listen when there is a node: the host end of the veth.
pub const HOST_IP: &str = "10.213.0.1";
/// The node's InternalIP: the namespace end of the veth.
pub const NODE_IP: &str = "10.213.0.2";
/// Pods' addresses, from the bridge plugin's host-local IPAM.
pub const POD_CIDR: &str = "10.214.0.0/24";
const NETNS: &str = "pave-node";
const HOST_LINK: &str = "pave-host";
const NODE_LINK: &str = "pave-node0";
const LOCK_PATH: &str = "/run/pave-testenv-node.lock";
/// Where the running node tier's state dir is written, for the next start to clean
/// up after a killed one.
const OWNER_PATH: &str = "/run/pave-testenv-node.owner";
const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The sandbox image's archive in the test bed's bin dir (build-testbed.sh node).
pub const PAUSE_ARCHIVE: &str = "pause.oci.tar";
/// The name build-testbed.sh gives it.
const PAUSE_IMAGE: &str = "localhost/pause:testbed";
/// kube-proxy's health port (its default), inside the namespace.
const PROXY_HEALTH_PORT: u16 = 10256;
/// Where the kubelet's cgroupfs driver puts pods, under each hierarchy (v1) or at the
/// root (v2).
const KUBEPODS_CGROUPS: [&str; 3] = [
    "/sys/fs/cgroup/pids/kubepods",
    "/sys/fs/cgroup/kubepods",
    "/sys/fs/cgroup/unified/kubepods",
];
/// Paths containerd and runc use whatever they are configured with.
const FIXED_RUNTIME_DIRS: [&str; 3] = [
    "/run/containerd/runc",
    "/run/containerd/s",
    "/run/containerd/fifo",
];

/// The node tier's host-side resources: the lock, the namespace and the state dir
/// whose mounts must go before it is removed.
#[derive(Debug)]
pub(crate) struct Node {
    _lock: File,
    state_dir: PathBuf,
}

impl Node {
    /// Checks the prerequisites, takes the machine's node lock (waiting for another
    /// node tier to stop), clears a killed predecessor's leftovers and creates the
    /// network namespace.
    pub fn prepare(state_dir: &Path) -> Result<Self, Error> {
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Prerequisite(
                "the node tier runs containerd and the kubelet, which need root: run the tests as root".into(),
            ));
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(io_error(format!("open {LOCK_PATH}")))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_error(format!("lock {LOCK_PATH}"))(
                io::Error::last_os_error(),
            ));
        }
        if let Ok(previous) = fs::read_to_string(OWNER_PATH) {
            clean_up(Path::new(previous.trim()));
        }
        clean_up(state_dir);
        write_file(Path::new(OWNER_PATH), &state_dir.display().to_string())?;
        let node = Node {
            _lock: lock,
            state_dir: state_dir.to_owned(),
        };
        node.create_network()?;
        Ok(node)
    }

    fn create_network(&self) -> Result<(), Error> {
        let netns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", NETNS];
            all.extend(args);
            run("ip", &all)
        };
        run("ip", &["netns", "add", NETNS])?;
        run(
            "ip",
            &[
                "link", "add", HOST_LINK, "type", "veth", "peer", "name", NODE_LINK, "netns", NETNS,
            ],
        )?;
        run(
            "ip",
            &["addr", "add", &format!("{HOST_IP}/30"), "dev", HOST_LINK],
        )?;
        run("ip", &["link", "set", HOST_LINK, "up"])?;
        netns(&["ip", "link", "set", "lo", "up"])?;
        netns(&[
            "ip",
            "addr",
            "add",
            &format!("{NODE_IP}/30"),
            "dev",
            NODE_LINK,
        ])?;
        netns(&["ip", "link", "set", NODE_LINK, "up"])?;
        netns(&["ip", "route", "add", "default", "via", HOST_IP])?;
        // Pods' traffic is routed through the namespace, and kube-proxy's rules must
        // see traffic between two pods on the bridge (a Service's reply).
        netns(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        netns(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"])?;
        Ok(())
    }

    /// `program` run inside the node's network namespace (and nothing else: it shares
    /// the host's mounts, so containerd sees what the kubelet mounts).
    pub fn command(program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{NETNS}"))
            .arg("--")
            .arg(program);
        cmd
    }

    pub fn containerd_socket(&self) -> PathBuf {
        self.state_dir.join("containerd/containerd.sock")
    }

    /// containerd's configuration: its own root, state and socket in the state dir,
    /// the CRI plugin on the bridge CNI and the locally built pause image.
    pub fn write_containerd_config(&self, pause_image: &str) -> Result<PathBuf, Error> {
        let dir = self.state_dir.join("containerd");
        let cni_conf = self.state_dir.join("cni");
        fs::create_dir_all(&cni_conf)
            .map_err(io_error(format!("create {}", cni_conf.display())))?;
        write_file(
            &cni_conf.join("10-pave.conflist"),
            &cni_config(&self.state_dir.join("cni-ipam")),
        )?;
        let config = dir.join("config.toml");
        fs::create_dir_all(&dir).map_err(io_error(format!("create {}", dir.display())))?;
        // restrict_oom_score_adj: this VM refuses a negative oom_score_adj, and runc
        // then fails every sandbox with "can't get final child's PID from pipe: EOF".
        write_file(
            &config,
            &format!(
                r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf}"
"#,
                dir = dir.display(),
                socket = self.containerd_socket().display(),
                cni_conf = cni_conf.display(),
            ),
        )?;
        Ok(config)
    }

    /// The kubelet's configuration file, for the settings this VM needs.
    pub fn write_kubelet_config(&self, ca_file: &Path) -> Result<PathBuf, Error> {
        let pki = self.state_dir.join("pki");
        let config = self.state_dir.join("kubelet-config.yaml");
        // cgroup v1 on this host (kubelet 1.35 refuses it), PID 1 is not systemd, no
        // cluster DNS; eviction thresholds low, since tests share the machine's disk.
        write_file(
            &config,
            &format!(
                r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
resolvConf: ""
address: {NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
containerRuntimeEndpoint: unix://{socket}
podLogsDir: {logs}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
tlsCertFile: {pki}/kubelet.crt
tlsPrivateKeyFile: {pki}/kubelet.key
evictionHard: {{memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
"#,
                socket = self.containerd_socket().display(),
                logs = self.state_dir.join("pod-logs").display(),
                ca = ca_file.display(),
                pki = pki.display(),
            ),
        )?;
        Ok(config)
    }

    /// kube-proxy in iptables mode; conntrack's table size is the host's to set.
    pub fn write_proxy_config(&self, kubeconfig: &Path) -> Result<PathBuf, Error> {
        let config = self.state_dir.join("kube-proxy-config.yaml");
        write_file(
            &config,
            &format!(
                "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {kubeconfig}}}
mode: iptables
clusterCIDR: {POD_CIDR}
hostnameOverride: {NODE_NAME}
conntrack: {{maxPerCore: 0}}
",
                kubeconfig = kubeconfig.display()
            ),
        )?;
        Ok(config)
    }

    /// Imports an OCI image archive into containerd's `k8s.io` namespace, where the
    /// kubelet finds it (pods then use `imagePullPolicy: Never` or `IfNotPresent`).
    pub fn import_image(&self, archive: &Path) -> Result<(), Error> {
        let socket = self.containerd_socket();
        run(
            "ctr",
            &[
                "--address",
                &socket.to_string_lossy(),
                "-n",
                "k8s.io",
                "images",
                "import",
                &archive.to_string_lossy(),
            ],
        )
        .map(drop)
    }
}

impl TestEnv {
    /// Starts containerd, the kubelet, kube-scheduler and kube-proxy, and returns once
    /// the node is Ready and kube-proxy has programmed its rules.
    pub(crate) fn start_node(
        &mut self,
        pki: &Pki,
        certs: &NodeCerts,
        apiserver_port: u16,
    ) -> Result<(), Error> {
        let node = self
            .node
            .as_ref()
            .expect("start_node runs after Node::prepare");
        let containerd_config = node.write_containerd_config(PAUSE_IMAGE)?;
        let socket = node.containerd_socket();
        let kubelet_config = node.write_kubelet_config(&self.state_dir.join("pki/ca.crt"))?;
        let proxy_config = node.write_proxy_config(&self.kubeconfig)?;
        let server = format!("https://{HOST_IP}:{apiserver_port}");
        let kubelet_kubeconfig = self.state_dir.join("kubelet.kubeconfig");
        write_file(
            &kubelet_kubeconfig,
            &render_kubeconfig_for(
                &format!("system:node:{NODE_NAME}"),
                &server,
                &pki.ca_cert,
                &certs.kubelet_client_cert,
                &certs.kubelet_client_key,
            ),
        )?;

        let mut containerd = Node::command(Path::new("containerd"));
        containerd.arg("--config").arg(&containerd_config);
        self.spawn("containerd", containerd)?;
        self.wait_until("containerd", Duration::from_secs(30), |_| {
            run("ctr", &["--address", &socket.to_string_lossy(), "version"])
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        let node = self.node.as_ref().expect("prepared");
        node.import_image(&self.bin_dir.join(PAUSE_ARCHIVE))?;

        let mut kubelet = Node::command(&self.bin_dir.join("kubelet"));
        kubelet
            .arg(format!("--config={}", kubelet_config.display()))
            .arg(format!("--kubeconfig={}", kubelet_kubeconfig.display()))
            .arg(format!(
                "--root-dir={}",
                self.state_dir.join("kubelet").display()
            ))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg(format!("--node-ip={NODE_IP}"));
        self.spawn("kubelet", kubelet)?;

        let mut scheduler = Command::new(self.bin_dir.join("kube-scheduler"));
        scheduler
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["--leader-elect=false", "--secure-port=0"]);
        self.spawn("kube-scheduler", scheduler)?;

        let mut proxy = Node::command(&self.bin_dir.join("kube-proxy"));
        proxy.arg(format!("--config={}", proxy_config.display()));
        self.spawn("kube-proxy", proxy)?;

        self.wait_until("kubelet", Duration::from_secs(120), |env| {
            let ready = env
                .run_kubectl(&[
                    "get",
                    "node",
                    NODE_NAME,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}"#,
                ])
                .map_err(|e| e.to_string())?;
            if ready.starts_with("True") {
                Ok(())
            } else {
                Err(format!("node {NODE_NAME} is not Ready: {ready}"))
            }
        })?;
        self.wait_until("kube-proxy", Duration::from_secs(60), |_| {
            match http_at(NODE_IP, "GET", PROXY_HEALTH_PORT, "/healthz", "") {
                Ok((200, _)) => Ok(()),
                Ok((status, body)) => Err(format!("GET /healthz answered {status}: {body}")),
                Err(e) => Err(format!("GET /healthz: {e}")),
            }
        })
    }

    /// Gives an imported image a second name (a "new version" of it, for upgrade
    /// tests). Fails without a node.
    pub fn tag_image(&self, from: &str, to: &str) -> Result<(), Error> {
        let Some(node) = &self.node else {
            return Err(Error::Node("this test bed has no node".into()));
        };
        let socket = node.containerd_socket();
        let address = socket.to_string_lossy();
        let args = [
            "--address",
            &address,
            "-n",
            "k8s.io",
            "images",
            "tag",
            "--force",
            from,
            to,
        ];
        run("ctr", &args).map(drop)
    }

    /// Imports an OCI image archive into the node's containerd (for pods to run with
    /// `imagePullPolicy: Never` or `IfNotPresent`). Fails without a node.
    pub fn import_image(&self, archive: &Path) -> Result<(), Error> {
        match &self.node {
            Some(node) => node.import_image(archive),
            None => Err(Error::Node(
                "this test bed has no node: start it with Options { node: true, .. }".into(),
            )),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        clean_up(&self.state_dir);
        let _ = fs::remove_file(OWNER_PATH);
    }
}

/// The bridge CNI with host-local IPAM; pods' traffic leaving the bridge is
/// masqueraded as the node IP.
fn cni_config(ipam_dir: &Path) -> String {
    format!(
        r#"{{"cniVersion": "1.0.0", "name": "pave", "plugins": [
  {{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
    "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{POD_CIDR}"}}]],
              "routes": [{{"dst": "0.0.0.0/0"}}], "dataDir": "{ipam}"}}}},
  {{"type": "portmap", "capabilities": {{"portMappings": true}}}}
]}}
"#,
        ipam = ipam_dir.display()
    )
}

/// Stops whatever a node tier with this state dir left: every pod's processes, every
/// process in the namespace (containerd, its shims, the kubelet, kube-proxy), the
/// mounts under the state dir and the namespace itself. Best effort: each step goes
/// on when another failed, so a half-started tier is cleared too.
pub(crate) fn clean_up(state_dir: &Path) {
    for root in KUBEPODS_CGROUPS {
        kill_cgroup_tree(Path::new(root));
    }
    let in_namespace = || -> Vec<libc::pid_t> {
        Command::new("ip")
            .args(["netns", "pids", NETNS])
            .stderr(Stdio::null())
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .filter(|&pid| is_alive(pid))
                    .collect()
            })
            .unwrap_or_default()
    };
    for pid in in_namespace() {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // The pods' processes die asynchronously; their cgroups empty out shortly.
    for _ in 0..50 {
        if in_namespace().is_empty()
            && KUBEPODS_CGROUPS
                .iter()
                .all(|root| !has_processes(Path::new(root)))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for root in KUBEPODS_CGROUPS {
        remove_cgroup_tree(Path::new(root));
    }
    unmount_under(state_dir);
    // The pods' network namespaces, which containerd names cni-<uuid> in the fixed
    // /run/netns; a machine that runs the node tier runs no other containerd CRI.
    for entry in fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("cni-") {
            let _ = Command::new("ip")
                .args(["netns", "delete", &name])
                .stderr(Stdio::null())
                .status();
        }
    }
    for dir in FIXED_RUNTIME_DIRS {
        let _ = fs::remove_dir_all(dir);
    }
    let _ = Command::new("ip")
        .args(["netns", "delete", NETNS])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("ip")
        .args(["link", "delete", HOST_LINK])
        .stderr(Stdio::null())
        .status();
}

/// Runs [`clean_up`] for `state_dir` when the process exits normally (a test
/// binary's end), for a node tier that is never dropped.
pub(crate) fn clean_up_at_exit(state_dir: &Path) {
    static STATE_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    extern "C" fn at_exit() {
        if let Some(dir) = STATE_DIR.get() {
            clean_up(dir);
            let _ = fs::remove_file(OWNER_PATH);
        }
    }
    if STATE_DIR.set(state_dir.to_owned()).is_ok() {
        // SAFETY: registers a plain function; it only touches the file system and
        // sends signals.
        unsafe { libc::atexit(at_exit) };
    }
}

fn kill_cgroup_tree(dir: &Path) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    for child in subdirs(dir) {
        kill_cgroup_tree(&child);
    }
}

/// Not yet exited; a zombie has (only its parent can reap it).
fn is_alive(pid: libc::pid_t) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name's closing parenthesis.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

fn has_processes(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        || subdirs(dir).iter().any(|child| has_processes(child))
}

/// cgroups are removed with rmdir, leaves first.
fn remove_cgroup_tree(dir: &Path) {
    for child in subdirs(dir) {
        remove_cgroup_tree(&child);
    }
    let _ = fs::remove_dir(dir);
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Lazily unmounts every mount under `dir` (the kubelet's volumes, containerd's
/// root file systems and snapshots), deepest first.
pub(crate) fn unmount_under(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter(|target| target.starts_with(&prefix))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for target in targets {
        // /proc/self/mounts escapes spaces as \040; none of our paths has one.
        let Ok(path) = std::ffi::CString::new(target) else {
            continue;
        };
        // SAFETY: umount2 with a valid C string.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Runs a setup command; its stderr becomes the error.
fn run(program: &str, args: &[&str]) -> Result<String, Error> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!(
            "run {program} (run crates/pave-testenv/scripts/install-node.sh as root)"
        )))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Node(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_config_is_json_on_the_pod_cidr() {
        let conf: serde_json::Value =
            serde_json::from_str(&cni_config(Path::new("/tmp/x/ipam"))).unwrap();
        let bridge = &conf["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_CIDR);
        assert_eq!(bridge["ipam"]["dataDir"], "/tmp/x/ipam");
    }
}
