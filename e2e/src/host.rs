//! What a node run may change on the host, read before and after: processes, mounts, network
//! interfaces, iptables rules and chains, the kubelet's sysctls, cgroups and fixed directories
//! (docs/node.md lists them). The killed-run test compares two snapshots. Mounts and interfaces
//! are read where a node makes them (other work on a shared machine makes its own); one node
//! runs per host, so a node of another suite running meanwhile would show.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Result, process};

/// The sysctls the kubelet sets, and the one the CNI bridge plugin would (as a gateway).
pub const SYSCTLS: [&str; 7] = [
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
];

/// The fixed paths the kubelet and containerd write to whatever their flags say.
pub const FIXED_DIRS: [&str; 7] = [
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/run/containerd",
    "/run/nri",
    "/var/run/netns",
];

/// The bridge `cluster.sh up` creates: the node address, the pods' veths, and the host-wide lock.
pub const BRIDGE: &str = "kh-node0";

/// The cgroup name `cluster.sh` gives the kubelet (`cgroupRoot`) in every hierarchy.
pub const CGROUP_ROOT: &str = "kube-harden-node";

/// One reading of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Processes (`pid: command line`) that mention the state dir, or run in the node's cgroups.
    pub processes: BTreeSet<String>,
    /// Mount points in the state dir or a fixed directory.
    pub mounts: BTreeSet<String>,
    /// The node's bridge and the veths on the host.
    pub links: BTreeSet<String>,
    /// `iptables-save` lines without counters or comments (tables, chains, rules).
    pub iptables: BTreeSet<String>,
    /// `name=value` of each of [`SYSCTLS`].
    pub sysctls: BTreeSet<String>,
    /// The node's cgroup directories that exist.
    pub cgroups: BTreeSet<String>,
    /// Which of [`FIXED_DIRS`] exist.
    pub fixed_dirs: BTreeSet<String>,
}

impl Snapshot {
    /// Reads the host. `state_dir` identifies the run's processes (every one of them has it
    /// in its command line, except containers, which are found by their cgroup).
    pub fn take(state_dir: &Path) -> Result<Self> {
        let state = state_dir.to_string_lossy().into_owned();
        let mut processes = BTreeSet::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            if cmdline.contains(&state) || cgroup.contains(&format!("/{CGROUP_ROOT}")) {
                processes.insert(format!("{name}: {}", cmdline.trim()));
            }
        }
        // Only where a node mounts (its state dir, the fixed paths) and what it adds to the
        // network (its bridge, veths): other work on a shared machine mounts and unmounts too.
        // Mount points are reported with symlinks resolved (a CI clone's target/ may be one).
        let real_state = resolved(state_dir).to_string_lossy().into_owned();
        let ours = |mp: &str| {
            [state.as_str(), real_state.as_str()]
                .into_iter()
                .chain(FIXED_DIRS)
                .any(|root| mp == root || mp.starts_with(&format!("{root}/")))
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let mounts = mountinfo
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|mp| ours(mp))
            .map(str::to_owned)
            .collect();
        let links = std::fs::read_dir("/sys/class/net")?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name == BRIDGE || name.starts_with("veth"))
            .collect();
        let out = process::run(
            &mut Command::new("iptables-save"),
            None,
            Duration::from_secs(30),
        )?
        .ok("iptables-save")?;
        let iptables = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            // ":CHAIN POLICY [packets:bytes]": keep the chain and its policy only.
            .map(|l| match l.rsplit_once(" [") {
                Some((head, _)) if l.starts_with(':') => head.to_owned(),
                _ => l.to_owned(),
            })
            .collect();
        let mut sysctls = BTreeSet::new();
        for name in SYSCTLS {
            let value = std::fs::read_to_string(Path::new("/proc/sys").join(name))?;
            sysctls.insert(format!("{}={}", name.replace('/', "."), value.trim()));
        }
        let mut cgroups = BTreeSet::new();
        for line in std::fs::read_to_string("/proc/mounts")?.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 2 && (fields[2] == "cgroup" || fields[2] == "cgroup2") {
                let dir = Path::new(fields[1]).join(CGROUP_ROOT);
                if dir.exists() {
                    cgroups.insert(dir.to_string_lossy().into_owned());
                }
            }
        }
        let fixed_dirs = FIXED_DIRS
            .iter()
            .filter(|d| Path::new(d).exists())
            .map(|d| (*d).to_owned())
            .collect();
        Ok(Self {
            processes,
            mounts,
            links,
            iptables,
            sysctls,
            cgroups,
            fixed_dirs,
        })
    }

    /// What differs from `before`, one line per item (`+` new, `-` gone); empty when equal.
    pub fn diff(&self, before: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut section = |what: &str, b: &BTreeSet<String>, a: &BTreeSet<String>| {
            out.extend(a.difference(b).map(|x| format!("{what}: + {x}")));
            out.extend(b.difference(a).map(|x| format!("{what}: - {x}")));
        };
        section("process", &before.processes, &self.processes);
        section("mount", &before.mounts, &self.mounts);
        section("link", &before.links, &self.links);
        section("iptables", &before.iptables, &self.iptables);
        section("sysctl", &before.sysctls, &self.sysctls);
        section("cgroup", &before.cgroups, &self.cgroups);
        section("dir", &before.fixed_dirs, &self.fixed_dirs);
        out
    }
}

/// `path` with symlinks resolved, also when its last part does not exist yet.
fn resolved(path: &Path) -> std::path::PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolved(parent).join(name),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_what_was_added_and_removed() {
        let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let before = Snapshot {
            processes: set(&[]),
            mounts: set(&["/", "/proc"]),
            links: set(&["lo", "eth0"]),
            iptables: set(&["*filter", ":INPUT ACCEPT"]),
            sysctls: set(&["kernel.panic=1"]),
            cgroups: set(&[]),
            fixed_dirs: set(&[]),
        };
        assert!(before.diff(&before).is_empty());
        let mut after = before.clone();
        after.links.insert("kh-node0".into());
        after.sysctls = set(&["kernel.panic=10"]);
        let diff = after.diff(&before);
        assert_eq!(
            diff,
            vec![
                "link: + kh-node0",
                "sysctl: + kernel.panic=10",
                "sysctl: - kernel.panic=1",
            ]
        );
    }
}
