//! The node: a real single-node cluster (etcd, kube-apiserver, kube-scheduler,
//! kube-controller-manager, containerd with Debian's runc and CNI plugins, a kubelet, and
//! kube-harden registered for opted-in namespaces), started and stopped through
//! `e2e/cluster.sh` (docs/node.md). The script's watchdog runs `down` when the test process
//! dies, so even a killed run leaves nothing behind (the killed-run test checks exactly that).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::controlplane::read_env_file;
use crate::{Result, process};

/// How long `cluster.sh up` may take: about a minute, but it builds the binaries first when
/// they are missing (a cold build of the control plane and the node takes 15-30 min here).
fn up_timeout() -> Duration {
    let secs = std::env::var("E2E_START_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45 * 60);
    Duration::from_secs(secs)
}

/// The environment `cluster.sh up` hands to the tests and the script itself.
pub fn up_command(repo: &Path, state_dir: &Path, kube_harden: &Path) -> Command {
    let mut cmd = Command::new(repo.join("e2e/cluster.sh"));
    cmd.arg("up")
        .env("E2E_NODE_STATE_DIR", state_dir)
        .env("KUBE_HARDEN_BIN", kube_harden);
    cmd
}

/// A running node.
pub struct Node {
    repo: PathBuf,
    /// `E2E_NODE_STATE_DIR`: kubeconfig, env, certs/, logs/, containerd/, kubelet/.
    pub state_dir: PathBuf,
    /// The admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The kubectl v1.36.3 built with the control plane.
    pub kubectl: PathBuf,
    /// The node's address on its bridge (the pods' subnet is the same /24).
    pub node_ip: IpAddr,
    /// What `cluster.sh env` prints (`E2E_WEBCHECK_IMAGE`, `E2E_NODE_SUBNET`, ...).
    pub env: HashMap<String, String>,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    namespaces: AtomicU32,
    stopped: AtomicBool,
}

impl Node {
    /// Brings the node up with its state in `state_dir` and waits until it is Ready. Fails
    /// (never skips) when anything is missing or does not start.
    pub fn start(state_dir: PathBuf) -> Result<Self> {
        Self::start_with(state_dir, &[])
    }

    /// [`Node::start`] with more variables for `cluster.sh up` (e.g. `E2E_NODE_WEBHOOK`).
    pub fn start_with(state_dir: PathBuf, env: &[(&str, &str)]) -> Result<Self> {
        let repo = crate::repo_root();
        let target = crate::target_dir(&repo);
        let bin = crate::kube_harden_binary(&repo, &target)?;
        eprintln!("node: e2e/cluster.sh up ({})", state_dir.display());
        let status = process::run_visible(
            up_command(&repo, &state_dir, &bin)
                .envs(env.iter().copied())
                .env("E2E_WATCH_PID", std::process::id().to_string()),
            up_timeout(),
        )?;
        if !status.success() {
            // `up` tears down what it started when it fails.
            return Err(format!(
                "e2e/cluster.sh up failed ({status}); its output is above, the logs are in {}/logs",
                state_dir.display()
            )
            .into());
        }
        let node = Self::attach(state_dir)?;
        node.stopped.store(false, Ordering::SeqCst);
        Ok(node)
    }

    /// A client for a node someone else brought up with its state in `state_dir`. Dropping it
    /// does not bring the node down ([`Node::start`]'s does).
    pub fn attach(state_dir: PathBuf) -> Result<Self> {
        let repo = crate::repo_root();
        let env = read_env_file(&state_dir.join("env"))?;
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .ok_or_else(|| format!("{key} missing from {}/env", state_dir.display()))
        };
        let kubeconfig = PathBuf::from(get("KUBECONFIG")?);
        let kubectl = PathBuf::from(get("KUBECTL_BIN")?);
        let node_ip: IpAddr = get("E2E_NODE_IP")?.parse()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let client = runtime.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                Kubeconfig::read_from(&kubeconfig)?,
                &KubeConfigOptions::default(),
            )
            .await?;
            Ok::<_, crate::Error>(kube::Client::try_from(config)?)
        })?;
        Ok(Self {
            repo,
            state_dir,
            kubeconfig,
            kubectl,
            node_ip,
            env,
            runtime,
            client,
            namespaces: AtomicU32::new(0),
            stopped: AtomicBool::new(true),
        })
    }

    /// `cluster.sh down` (idempotent; also on drop). Detached from this process's group and
    /// bounded in time, so an interrupted test still finishes the tear-down.
    pub fn down(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let log = self.state_dir.join("logs/down.log");
        let result = process::run_detached(
            Command::new(self.repo.join("e2e/cluster.sh"))
                .arg("down")
                .env("E2E_NODE_STATE_DIR", &self.state_dir),
            &log,
            Duration::from_secs(120),
        );
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match result {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("node: cluster.sh down: {status}\n{output}"),
            Err(e) => eprintln!("node: cluster.sh down: {e}\n{output}"),
        }
    }

    /// Runs a test's future on the node's runtime (the client belongs to it).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A client with the admin kubeconfig.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A value of `cluster.sh env`.
    pub fn env(&self, key: &str) -> Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("{key} missing from the node's env").into())
    }

    /// containerd's registry hosts directory (`config_path` of its CRI image service): a
    /// registry's `hosts.toml` goes in `<this>/<host>/` ([`crate::registry::Registry::containerd_hosts`]).
    pub fn registry_hosts_dir(&self) -> PathBuf {
        self.state_dir.join("containerd/certs.d")
    }

    /// Runs kubectl v1.36.3 with the admin kubeconfig, for at most 60 s.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<process::Output> {
        process::run(
            Command::new(&self.kubectl)
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig),
            stdin.map(str::as_bytes),
            Duration::from_secs(60),
        )
    }

    /// Creates a fresh namespace `node-<n>-<prefix>` with `labels` and returns its name.
    pub async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
        let n = self.namespaces.fetch_add(1, Ordering::SeqCst) + 1;
        let name = format!("node-{n}-{prefix}");
        crate::create_namespace(self.client(), &name, labels).await?;
        Ok(name)
    }

    /// Waits until pod `name` in `namespace` is Ready and returns it. Fails at once when a
    /// container restarted or terminated: a crash-looping container shows Running between
    /// restarts, so Ready alone proves nothing.
    pub async fn wait_ready(&self, namespace: &str, name: &str) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client(), namespace);
        process::poll(
            &format!("pod {namespace}/{name} Ready"),
            Duration::from_secs(120),
            Duration::from_millis(500),
            || async {
                let pod = pods.get(name).await?;
                check_no_restarts(&pod)?;
                Ok(is_ready(&pod).then_some(pod))
            },
        )
        .await
        .map_err(|e| format!("{e}\n{}", self.describe(namespace)).into())
    }

    /// Waits until the controller has observed Deployment `name`'s latest spec in `namespace` and
    /// all its replicas are updated, ready and available, with exactly that many pods of its
    /// selector Ready (no old pod left), and returns them. Fails at once when a container of one
    /// restarted.
    pub async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Vec<Pod>> {
        let deployments: Api<Deployment> = Api::namespaced(self.client(), namespace);
        let pods: Api<Pod> = Api::namespaced(self.client(), namespace);
        process::poll(
            &format!("deployment {namespace}/{name} available"),
            timeout,
            Duration::from_millis(250),
            || async {
                let d = deployments.get(name).await?;
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                // As `kubectl rollout status`: until the controller has seen the latest spec
                // (right after a change), the status still describes the previous one.
                let generation = d.metadata.generation;
                let s = d.status.unwrap_or_default();
                let observed =
                    s.observed_generation.is_some() && s.observed_generation >= generation;
                let selector = d
                    .spec
                    .and_then(|s| s.selector.match_labels)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let list = pods.list(&ListParams::default().labels(&selector)).await?;
                for pod in &list.items {
                    check_no_restarts(pod)?;
                }
                let done = observed
                    && [s.updated_replicas, s.ready_replicas, s.available_replicas]
                        .iter()
                        .all(|n| *n == Some(want))
                    && list.items.len() == want as usize
                    && list.items.iter().all(is_ready);
                Ok(done.then_some(list.items))
            },
        )
        .await
        .map_err(|e| format!("{e}\n{}", self.describe(namespace)).into())
    }

    /// `ctr -n k8s.io <args>` against the node's containerd; its stdout.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        let out = process::run(
            Command::new(self.env("CTR_BIN")?)
                .args(["--address", self.env("CONTAINERD_ADDRESS")?, "-n", "k8s.io"])
                .args(args),
            None,
            Duration::from_secs(60),
        )?
        .ok("ctr")?;
        Ok(out.stdout)
    }

    /// `kubectl describe pods` and the events of `namespace`, for failure messages.
    pub fn describe(&self, namespace: &str) -> String {
        let mut text = String::new();
        for args in [
            &["-n", namespace, "describe", "pods"][..],
            &["-n", namespace, "get", "events", "--sort-by=.lastTimestamp"][..],
        ] {
            if let Ok(out) = self.kubectl(args, None) {
                text.push_str(&out.stdout);
                text.push_str(&out.stderr);
            }
        }
        text
    }

    /// `GET path` on `pod`'s IP and `port`, from the host (over the node's bridge).
    pub fn http_get_pod(&self, pod: &Pod, port: u16, path: &str) -> Result<(u16, String)> {
        let ip: IpAddr = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .ok_or("the pod has no IP")?
            .parse()?;
        process::http_get(SocketAddr::new(ip, port), path)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.down();
    }
}

/// The node of a suite's tests: brought up by the first test that needs it, kept for the
/// next, brought down by [`SharedNode::down`] (at the end of the suite, or before a test that
/// needs the host to itself).
pub struct SharedNode {
    state_dir: PathBuf,
    env: Vec<(String, String)>,
    node: Mutex<Option<Result<Node, String>>>,
}

impl SharedNode {
    /// A node with its state in `state_dir` and `env` for `cluster.sh up` ([`Node::start_with`]);
    /// nothing starts yet.
    pub fn new(state_dir: PathBuf, env: &[(&str, &str)]) -> Self {
        Self {
            state_dir,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            node: Mutex::new(None),
        }
    }

    /// Runs `test` on the node, bringing it up first if needed. If it cannot come up, every
    /// test that needs it fails with the reason (the suites never skip).
    pub fn with(&self, test: impl FnOnce(&Node) -> Result<()>) -> Result<(), String> {
        let mut guard = self.node.lock().unwrap_or_else(|p| p.into_inner());
        let node = guard.get_or_insert_with(|| {
            let env: Vec<(&str, &str)> = self
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Node::start_with(self.state_dir.clone(), &env).map_err(|e| e.to_string())
        });
        match node {
            Ok(node) => test(node).map_err(|e| e.to_string()),
            Err(e) => Err(format!("the node could not come up: {e}")),
        }
    }

    /// Brings the node down if it is up, and waits until `down` has finished.
    pub fn down(&self) {
        let mut guard = self.node.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Ok(node)) = guard.take() {
            node.down();
        }
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// An error naming the container, its restart count and its last exit, if any container of
/// `pod` has restarted or terminated.
pub fn check_no_restarts(pod: &Pod) -> Result<()> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    for status in statuses {
        let terminated = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or_else(|| {
                status
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
            });
        if status.restart_count > 0 || terminated.is_some() {
            return Err(format!(
                "container {} restarted {} times, last exit {:?} ({:?}): {:?}",
                status.name,
                status.restart_count,
                terminated.map(|t| t.exit_code),
                terminated.and_then(|t| t.reason.clone()),
                terminated.and_then(|t| t.message.clone()),
            )
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_restarted_container_is_an_error() {
        let pod: Pod = serde_json::from_value(json!({
            "status": {"containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 2,
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                "state": {"running": {}}
            }]}
        }))
        .unwrap();
        let err = check_no_restarts(&pod).unwrap_err().to_string();
        assert!(err.contains("restarted 2 times"), "{err}");
        assert!(err.contains("Some(1)"), "{err}");
    }
}
