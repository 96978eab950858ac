//! Pod creation through a real kube-apiserver (e2e/controlplane.sh: kube-apiserver + etcd on
//! 127.0.0.1), in a namespace the webhook serves and in one it does not, from 10 and 100
//! concurrent clients. The two namespaces alternate (ABBA) so drift hits both alike; the ratio of
//! their create latencies is what the webhook costs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::client::{Conn, Proto, Target};
use crate::pki::Pki;
use crate::server::start_kube_harden;
use crate::{Scratch, ms, percentile, proc, repo_dir};

const PLAIN: &str = "bench-plain";
/// Served by the webhook's /audit endpoint: the same call, never a patch.
const AUDITED: &str = "bench-audit";
const HARDENED: &str = "bench-webhook";
/// The namespaces, in the order of the table.
const NAMESPACES: [&str; 3] = [PLAIN, AUDITED, HARDENED];

/// The control plane of e2e/controlplane.sh in its own state directory; stopped on drop.
pub(crate) struct ControlPlane {
    pub(crate) state: PathBuf,
    url: String,
}

impl ControlPlane {
    pub(crate) fn start(state: PathBuf) -> Self {
        Self::start_with(state, "")
    }

    /// [`ControlPlane::start`] with extra kube-apiserver flags (`E2E_APISERVER_ARGS`).
    pub(crate) fn start_with(state: PathBuf, apiserver_args: &str) -> Self {
        let status = Command::new("bash")
            .arg(repo_dir().join("e2e/controlplane.sh"))
            .arg("start")
            .env("E2E_STATE_DIR", &state)
            .env("E2E_APISERVER_ARGS", apiserver_args)
            .env("E2E_WATCH_PID", std::process::id().to_string())
            .status()
            .expect("run e2e/controlplane.sh");
        assert!(status.success(), "e2e/controlplane.sh start failed");
        let env = std::fs::read_to_string(state.join("env")).expect("control plane env file");
        let url = env
            .lines()
            .find_map(|l| l.strip_prefix("export E2E_APISERVER_URL='"))
            .and_then(|l| l.strip_suffix('\''))
            .expect("E2E_APISERVER_URL")
            .to_owned();
        Self { state, url }
    }

    pub(crate) fn target(&self) -> Target {
        let read = |name: &str| std::fs::read(self.state.join("certs").join(name)).expect(name);
        let addr = self
            .url
            .trim_start_matches("https://")
            .parse()
            .expect("API server address");
        Target::new(
            addr,
            &read("ca.crt"),
            Some((&read("admin.crt"), &read("admin.key"))),
        )
    }

    pub(crate) fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.state.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_dir().join("e2e/controlplane.sh"))
            .arg("stop")
            .env("E2E_STATE_DIR", &self.state)
            .status();
    }
}

/// POSTs `body` to `path`; the created object, or the status and body of a refusal.
pub(crate) async fn create(conn: &mut Conn, path: &str, body: &Value) -> Result<Value, String> {
    let (status, bytes) = conn
        .post(
            path,
            Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?),
        )
        .await?;
    if status != StatusCode::CREATED {
        return Err(format!(
            "{path}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// The bench pod: one container, no security context, no resources.
pub(crate) fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "bench-", "labels": {"app": "bench"}},
        "spec": {"containers": [{
            "name": "web",
            "image": "registry.example.com/shop/web:1.27.3",
            "ports": [{"containerPort": 8080, "name": "http"}],
            "env": [{"name": "MODE", "value": "production"}]
        }]}
    })
}

/// `n` clients of the API server, each on its own HTTP/2 connection.
pub(crate) async fn connect_clients(api: &Target, n: usize) -> Vec<Conn> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(api.connect(Proto::H2).await.expect("client connection"));
    }
    clients
}

/// Registers the bench's MutatingWebhookConfiguration (below) with the API server through `conn`.
pub(crate) async fn register_webhooks(
    conn: &mut Conn,
    addr: &str,
    ca_pem: &str,
    hooks: &[(&str, &str)],
) {
    create(
        conn,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &webhook_configuration(addr, ca_pem, hooks),
    )
    .await
    .expect("webhook configuration");
}

/// The MutatingWebhookConfiguration of kube-harden at `addr` for the bench: one webhook per
/// (mode, path), for Pod CREATE in the namespaces labelled `kube-harden.io/mode=<mode>`.
fn webhook_configuration(addr: &str, ca_pem: &str, hooks: &[(&str, &str)]) -> Value {
    let hook = |(mode, path): &(&str, &str)| {
        json!({
            "name": format!("{mode}.kube-harden.io"),
            "clientConfig": {
                "url": format!("https://{addr}{path}"),
                "caBundle": BASE64_STANDARD.encode(ca_pem),
            },
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kube-harden.io/mode": mode}},
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        })
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kube-harden-bench"},
        "webhooks": hooks.iter().map(hook).collect::<Vec<_>>(),
    })
}

fn is_hardened(created: &Value) -> bool {
    created
        .pointer("/metadata/annotations/kube-harden.io~1hardened")
        .is_some()
}

/// Creates `total` pods in `namespace` from the clients (each sends its share in sequence);
/// returns the latencies, the errors and how many came back as `accept` wants (e.g. hardened).
pub(crate) async fn segment(
    clients: &[Conn],
    namespace: &'static str,
    total: usize,
    accept: fn(&Value) -> bool,
) -> (Vec<Duration>, usize, usize) {
    let per_client = total.div_ceil(clients.len());
    let path = format!("/api/v1/namespaces/{namespace}/pods");
    let mut tasks = Vec::new();
    for conn in clients {
        let (mut conn, path) = (conn.share().expect("HTTP/2"), path.clone());
        tasks.push(tokio::spawn(async move {
            let body = pod();
            let (mut latencies, mut errors, mut hardened) = (Vec::new(), 0, 0);
            for _ in 0..per_client {
                let t0 = Instant::now();
                match create(&mut conn, &path, &body).await {
                    Ok(created) => {
                        latencies.push(t0.elapsed());
                        hardened += usize::from(accept(&created));
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors, hardened)
        }));
    }
    let mut out = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, e, h) = task.await.expect("client task");
        out.0.extend(l);
        out.1 += e;
        out.2 += h;
    }
    out
}

/// One long window: `clients` create pods in `namespace` for `seconds` (with a `profile`: after
/// a forced full GC of kube-apiserver, while a CPU profile of that length is taken and written
/// there); returns the pods created, the wall time they took (the segment in flight when the
/// time is up finishes, so a little over `seconds`) and the CPU seconds each of `pids` used
/// meanwhile (/proc).
pub(crate) async fn window(
    api: &Target,
    pids: &[u32],
    namespace: &'static str,
    clients: &[Conn],
    seconds: u64,
    profile: Option<&Path>,
) -> (usize, Duration, Vec<f64>) {
    // kube-apiserver ends a request after 60 s (--request-timeout): a longer profile would fail.
    assert!(
        seconds < 60,
        "a window of {seconds} s: at most 59 (kube-apiserver's request timeout)"
    );
    let cpu = || -> Vec<f64> {
        pids.iter()
            .map(|&pid| proc::cpu_seconds(pid).unwrap_or(0.0))
            .collect()
    };
    let mut fetch = None;
    if profile.is_some() {
        let mut admin = api.connect(Proto::H2).await.expect("API server connection");
        // A full GC first (Go's heap profile with `gc=1` runs one), so that every window starts
        // from the same point of the GC's cycle: the watch cache holds every pod created, and a
        // cycle that marks it lands in whichever window it falls into.
        let (status, _) = admin
            .send("GET", "/debug/pprof/heap?gc=1", Bytes::new())
            .await
            .expect("heap profile request");
        assert!(status.is_success(), "/debug/pprof/heap?gc=1: {status}");
        fetch = Some(tokio::spawn(async move {
            admin
                .send(
                    "GET",
                    &format!("/debug/pprof/profile?seconds={seconds}"),
                    Bytes::new(),
                )
                .await
        }));
    }
    let (t0, cpu0) = (Instant::now(), cpu());
    let (length, deadline) = (
        Duration::from_secs(seconds),
        Duration::from_secs(seconds + 30),
    );
    let mut created = 0;
    let running = |fetch: &Option<tokio::task::JoinHandle<_>>| match fetch {
        Some(fetch) => !fetch.is_finished(),
        None => t0.elapsed() < length,
    };
    while running(&fetch) {
        assert!(
            t0.elapsed() < deadline,
            "no kube-apiserver profile {} s after a window of {seconds} s",
            deadline.as_secs()
        );
        created += segment(clients, namespace, 5 * clients.len(), |_| true)
            .await
            .0
            .len();
    }
    let wall = t0.elapsed();
    let used = cpu().iter().zip(cpu0).map(|(b, a)| b - a).collect();
    if let (Some(fetch), Some(path)) = (fetch, profile) {
        let (status, body) = fetch.await.expect("profile task").expect("profile request");
        assert!(status.is_success(), "/debug/pprof/profile: {status}");
        std::fs::write(path, &body).expect("write the profile");
    }
    (created, wall, used)
}

/// The figures of one configuration at one concurrency: latencies, errors, created pods that
/// came back as wanted, wall time, and CPU seconds of up to three processes.
#[derive(Default, Clone)]
pub(crate) struct Cell {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: usize,
    pub(crate) complete: usize,
    pub(crate) wall: Duration,
    pub(crate) cpu: [f64; 3],
}

impl Cell {
    /// Adds one [`segment`]'s result, its wall time and the CPU readings before and after it.
    pub(crate) fn add(
        &mut self,
        (latencies, errors, complete): (Vec<Duration>, usize, usize),
        wall: Duration,
        cpu0: [f64; 3],
        cpu1: [f64; 3],
    ) {
        self.latencies.extend(latencies);
        self.errors += errors;
        self.complete += complete;
        self.wall += wall;
        for (used, (a, b)) in self.cpu.iter_mut().zip(cpu0.iter().zip(cpu1)) {
            *used += b - a;
        }
    }

    /// Milliseconds of process `k`'s CPU per created pod.
    pub(crate) fn per_pod(&self, k: usize) -> f64 {
        self.cpu[k] * 1000.0 / self.latencies.len().max(1) as f64
    }
}

/// Runs the control-plane benchmark and prints its table. `bin`: the kube-harden binary;
/// `pods`: pods per segment (four segments per concurrency level, two per namespace).
pub async fn run(bin: &Path, pods: usize) {
    let state = repo_dir().join("target/bench-controlplane");
    let scratch = Scratch::new("controlplane");
    let pki = Pki::new();
    println!("## Pod creation through kube-apiserver\n");
    println!("machine: {}", proc::machine());
    let cp = ControlPlane::start(state);
    let kh = start_kube_harden(bin, &scratch.0, &pki, &[]);
    let api = cp.target();
    let mut admin = api.connect(Proto::H2).await.expect("API server connection");
    for (name, labels) in [
        (PLAIN, json!({})),
        (AUDITED, json!({"kube-harden.io/mode": "audit"})),
        (HARDENED, json!({"kube-harden.io/mode": "enforce"})),
    ] {
        create(
            &mut admin,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels}}),
        )
        .await
        .expect("namespace");
    }
    register_webhooks(
        &mut admin,
        &kh.addr.to_string(),
        &pki.ca_pem,
        &[("enforce", "/mutate"), ("audit", "/audit")],
    )
    .await;
    // The API server picks the configuration up within a second or so.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let created = create(
            &mut admin,
            &format!("/api/v1/namespaces/{HARDENED}/pods"),
            &pod(),
        )
        .await
        .expect("probe pod");
        if is_hardened(&created) {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!(
        "\nkube-apiserver v1.36.3 + etcd v3.6.16 (--unsafe-no-fsync) + kube-harden on 127.0.0.1; webhook: failurePolicy Ignore, HTTP/2 from the API server. {pods} pods per namespace ({} with one client) in two segments, in the order plain, audit, webhook, webhook, audit, plain; each client on its own HTTP/2 connection. bench-audit: the webhook is called (/audit) but returns no patch; bench-webhook: the webhook hardens every pod (/mutate). Ratios are to bench-plain in the same run.\n",
        pods / 4,
    );
    println!(
        "| clients | namespace | pods | pods/s | p50 ms | p99 ms | errors | hardened | p50 ratio | p99 ratio | CPU ms/pod: kube-apiserver | etcd | kube-harden |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let pids = [
        cp.pid("kube-apiserver").unwrap_or(0),
        cp.pid("etcd").unwrap_or(0),
        kh.pid,
    ];
    let cpu = || pids.map(|pid| proc::cpu_seconds(pid).unwrap_or(0.0));
    for clients_n in [1usize, 10, 100] {
        let pods = if clients_n == 1 { pods / 4 } else { pods };
        let clients = connect_clients(&api, clients_n).await;
        // Warm-up in both namespaces, not recorded.
        for ns in NAMESPACES {
            let _ = segment(&clients, ns, clients_n * 2 + 10, is_hardened).await;
        }
        let mut results: [(Vec<Duration>, usize, usize, Duration); 3] = Default::default();
        let mut cpu_used = [[0.0f64; 3]; 3];
        for ns in [PLAIN, AUDITED, HARDENED, HARDENED, AUDITED, PLAIN] {
            let (t0, cpu0) = (Instant::now(), cpu());
            let (l, e, h) = segment(&clients, ns, pods / 2, is_hardened).await;
            let slot = NAMESPACES.iter().position(|n| *n == ns).unwrap_or(0);
            let cpu1 = cpu();
            for (k, used) in cpu_used[slot].iter_mut().enumerate() {
                *used += cpu1[k] - cpu0[k];
            }
            let slot = &mut results[slot];
            slot.0.extend(l);
            slot.1 += e;
            slot.2 += h;
            slot.3 += t0.elapsed();
        }
        for r in &mut results {
            r.0.sort();
        }
        let p = |i: usize, q: f64| percentile(&results[i].0, q);
        for (i, ns) in NAMESPACES.into_iter().enumerate() {
            let (latencies, errors, hardened, wall) = &results[i];
            let ratios = if i > 0 {
                format!(
                    "{:.3} | {:.3}",
                    p(i, 50.0).as_secs_f64() / p(0, 50.0).as_secs_f64(),
                    p(i, 99.0).as_secs_f64() / p(0, 99.0).as_secs_f64()
                )
            } else {
                "- | -".into()
            };
            let per_pod = |k: usize| cpu_used[i][k] * 1000.0 / latencies.len().max(1) as f64;
            println!(
                "| {clients_n} | {ns} | {} | {:.0} | {} | {} | {errors} | {hardened} | {ratios} | {:.2} | {:.2} | {:.2} |",
                latencies.len(),
                latencies.len() as f64 / wall.as_secs_f64(),
                ms(p(i, 50.0)),
                ms(p(i, 99.0)),
                per_pod(0),
                per_pod(1),
                per_pod(2),
            );
        }
    }
    if let (Some(api_pid), Some(rss)) = (cp.pid("kube-apiserver"), proc::rss_kib(kh.pid)) {
        println!(
            "\nkube-harden RSS after the run: {:.1} MiB, {} open files (kube-apiserver: {:.0} MiB)",
            rss as f64 / 1024.0,
            proc::open_fds(kh.pid).unwrap_or(0),
            proc::rss_kib(api_pid).unwrap_or(0) as f64 / 1024.0
        );
    }
    println!();
    drop(kh);
    drop(cp);
}
