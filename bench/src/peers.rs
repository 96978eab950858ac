//! `make bench-peers`: kube-harden beside what a platform team would weigh instead, on one
//! control plane (e2e/controlplane.sh), in one run: no webhook, kube-harden, Kyverno (its
//! ClusterPolicy and its CEL MutatingPolicy, admission reports on, then off), Gatekeeper's
//! mutators, and Kubernetes' own MutatingAdmissionPolicy, each adding the fields kube-harden adds
//! to the bench pod (bench/peers/policies/). Each configuration has its own namespace; the
//! namespaces alternate (forward, then backward) at 1, 10 and 50 clients. Every created pod is
//! checked field by field ([`fields`]), and pods are read back at the end. Then, with
//! `--long-seconds`, long windows of no webhook, kube-harden and Gatekeeper at 1, 10 and 50
//! clients, each with a kube-apiserver CPU profile.
//!
//! Kyverno and Gatekeeper are built from their Go modules and started by bench/peers/peers.sh.

pub(crate) mod fields;
mod shapes;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::client::{Conn, Proto};
use crate::controlplane::{
    Cell, ControlPlane, connect_clients, create, pod, register_webhooks, segment, window,
};
use crate::pki::Pki;
use crate::server::start_kube_harden;
use crate::{Scratch, ms, percentile, proc, repo_dir};

/// Who answers the admission call of a configuration.
#[derive(Clone, Copy, PartialEq)]
enum Webhook {
    None,
    KubeHarden,
    Kyverno,
    Gatekeeper,
}

/// One configuration: a namespace and what mutates pods there.
struct Config {
    name: &'static str,
    namespace: &'static str,
    /// The `bench.kube-harden.io/config` label bench/peers/peers.sh selects on.
    label: Option<&'static str>,
    webhook: Webhook,
}

const PLAIN: Config = Config {
    name: "no webhook",
    namespace: "bench-plain",
    label: None,
    webhook: Webhook::None,
};
const KYVERNO: &str = "bench-kyverno";
const KYVERNO_MP: &str = "bench-kyverno-mp";

/// The configurations of the first pass (Kyverno with its admission reports).
const CONFIGS: [Config; 6] = [
    PLAIN,
    Config {
        name: "kube-harden",
        namespace: "bench-kube-harden",
        label: None,
        webhook: Webhook::KubeHarden,
    },
    Config {
        name: "Kyverno ClusterPolicy",
        namespace: KYVERNO,
        label: Some("kyverno"),
        webhook: Webhook::Kyverno,
    },
    Config {
        name: "Kyverno MutatingPolicy",
        namespace: KYVERNO_MP,
        label: Some("kyverno-mutatingpolicy"),
        webhook: Webhook::Kyverno,
    },
    Config {
        name: "Gatekeeper mutators",
        namespace: "bench-gatekeeper",
        label: Some("gatekeeper"),
        webhook: Webhook::Gatekeeper,
    },
    Config {
        name: "MutatingAdmissionPolicy",
        namespace: "bench-map",
        label: Some("map"),
        webhook: Webhook::None,
    },
];

/// The processes whose CPU time is read: kube-apiserver, etcd, then the webhooks.
struct Pids {
    state: std::path::PathBuf,
    apiserver: u32,
    etcd: u32,
    kube_harden: u32,
}

impl Pids {
    /// Kyverno's PID changes when it restarts: read from its PID file each time.
    fn peer(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.state.join("peers").join(format!("{name}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn webhook(&self, webhook: Webhook) -> u32 {
        match webhook {
            Webhook::None => 0,
            Webhook::KubeHarden => self.kube_harden,
            Webhook::Kyverno => self.peer("kyverno"),
            Webhook::Gatekeeper => self.peer("gatekeeper"),
        }
    }

    /// CPU seconds of kube-apiserver, etcd and the configuration's webhook.
    fn cpu(&self, webhook: Webhook) -> [f64; 3] {
        [self.apiserver, self.etcd, self.webhook(webhook)].map(|pid| {
            (pid != 0)
                .then(|| proc::cpu_seconds(pid))
                .flatten()
                .unwrap_or(0.0)
        })
    }
}

/// Stops Kyverno and Gatekeeper on drop (before the control plane: declared after it), also
/// when the run panics.
struct Peers(String);

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_dir().join("bench/peers/peers.sh"))
            .args(["down", &self.0])
            .status();
    }
}

fn run_script(args: &[&str]) {
    let status = Command::new("bash")
        .arg(repo_dir().join("bench/peers/peers.sh"))
        .args(args)
        .status()
        .expect("run bench/peers/peers.sh");
    assert!(status.success(), "bench/peers/peers.sh {args:?} failed");
}

/// One pass: at each concurrency, the configurations forward then backward, `pods` per
/// configuration (a quarter with one client); prints the table.
async fn pass(api: &crate::client::Target, pids: &Pids, configs: &[&Config], pods: usize) {
    println!(
        "| clients | config | pods | pods/s | p50 ms | p99 ms | p50 ratio | p99 ratio | errors | all fields | CPU ms/pod: kube-apiserver | etcd | webhook | sum |"
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for clients_n in [1usize, 10, 50] {
        let pods = if clients_n == 1 { pods / 4 } else { pods };
        let clients = connect_clients(api, clients_n).await;
        for c in configs {
            let _ = segment(&clients, c.namespace, clients_n * 2 + 10, fields::complete).await;
        }
        let mut cells: Vec<Cell> = configs.iter().map(|_| Cell::default()).collect();
        let order = (0..configs.len()).chain((0..configs.len()).rev());
        for i in order {
            let c = configs[i];
            let (t0, cpu0) = (Instant::now(), pids.cpu(c.webhook));
            let result = segment(&clients, c.namespace, pods / 2, fields::complete).await;
            cells[i].add(result, t0.elapsed(), cpu0, pids.cpu(c.webhook));
        }
        for cell in &mut cells {
            cell.latencies.sort();
        }
        let base = |q: f64| percentile(&cells[0].latencies, q).as_secs_f64();
        for (c, cell) in configs.iter().zip(&cells) {
            let n = cell.latencies.len().max(1) as f64;
            let p = |q: f64| percentile(&cell.latencies, q);
            let per_pod = |s: f64| format!("{:.2}", s * 1000.0 / n);
            let webhook = if c.webhook == Webhook::None {
                "-".to_owned()
            } else {
                per_pod(cell.cpu[2])
            };
            println!(
                "| {clients_n} | {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {webhook} | {} |",
                c.name,
                cell.latencies.len(),
                n / cell.wall.as_secs_f64(),
                ms(p(50.0)),
                ms(p(99.0)),
                p(50.0).as_secs_f64() / base(50.0),
                p(99.0).as_secs_f64() / base(99.0),
                cell.errors,
                cell.complete,
                per_pod(cell.cpu[0]),
                per_pod(cell.cpu[1]),
                per_pod(cell.cpu.iter().sum()),
            );
        }
    }
    println!();
}

/// Long windows: no webhook, kube-harden and Gatekeeper (the two webhooks that are close on the
/// API server's CPU), each for `seconds` while a kube-apiserver CPU profile is taken, forward
/// then backward, at 1, 10 and 50 clients: the pass tables' cells last about a second (200 pods
/// at 1 client, 800 at 10 and 50), too short for a GC cycle or two to average out. Prints CPU
/// per pod from /proc; the profiles are in `dir`.
async fn long_windows(api: &crate::client::Target, pids: &Pids, dir: &Path, seconds: u64) {
    let configs = [&PLAIN, &CONFIGS[1], &CONFIGS[4]];
    std::fs::create_dir_all(dir).expect("profiles directory");
    println!(
        "| clients | config | pods | pods/s | kube-apiserver ms/pod: forward | backward | both windows | etcd ms/pod | webhook ms/pod | sum ms/pod |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for clients_n in [1usize, 10, 50] {
        let clients = connect_clients(api, clients_n).await;
        // (pods, wall time, kube-apiserver ms/pod per direction, CPU seconds of the three
        // processes); "both windows" is CPU over pods of the two together.
        let mut cells = vec![(0usize, Duration::ZERO, [0.0f64; 2], [0.0f64; 3]); configs.len()];
        let forward: Vec<usize> = (0..configs.len()).collect();
        let backward: Vec<usize> = forward.iter().rev().copied().collect();
        for (pass, order) in [forward, backward].into_iter().enumerate() {
            for i in order {
                let c = configs[i];
                let slug = c.name.replace(' ', "-");
                let profile = dir.join(format!("{clients_n}c-{slug}-{}.pb.gz", pass + 1));
                let watched = [pids.apiserver, pids.etcd, pids.webhook(c.webhook)];
                let (pods, wall, cpu) = window(
                    api,
                    &watched,
                    c.namespace,
                    &clients,
                    seconds,
                    Some(&profile),
                )
                .await;
                let cell = &mut cells[i];
                cell.0 += pods;
                cell.1 += wall;
                cell.2[pass] = cpu[0] * 1000.0 / pods.max(1) as f64;
                for (sum, used) in cell.3.iter_mut().zip(&cpu) {
                    *sum += used;
                }
            }
        }
        for (c, (pods, wall, apiserver, cpu)) in configs.iter().zip(&cells) {
            let per_pod = |s: f64| s * 1000.0 / (*pods).max(1) as f64;
            let webhook = if c.webhook == Webhook::None {
                "-".to_owned()
            } else {
                format!("{:.2}", per_pod(cpu[2]))
            };
            println!(
                "| {clients_n} | {} | {pods} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {webhook} | {:.2} |",
                c.name,
                *pods as f64 / wall.as_secs_f64(),
                apiserver[0],
                apiserver[1],
                per_pod(cpu[0]),
                per_pod(cpu[1]),
                per_pod(cpu.iter().sum()),
            );
        }
    }
    println!();
}

/// Reads back up to 50 stored pods per configuration and prints, per field, how many have it.
async fn read_back(admin: &mut Conn, configs: &[&Config]) {
    let mut stored = Vec::new();
    for c in configs {
        let path = format!("/api/v1/namespaces/{}/pods?limit=50", c.namespace);
        let (status, body) = admin
            .send("GET", &path, Bytes::new())
            .await
            .expect("list pods");
        assert!(status.is_success(), "{path}: {status}");
        let list: Value = serde_json::from_slice(&body).expect("pod list");
        // The probe pods of bench/peers/peers.sh are not the bench pod.
        let items: Vec<Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p.pointer("/metadata/labels/app") == Some(&json!("bench")))
            .cloned()
            .collect();
        stored.push(items);
    }
    print!("| field |");
    for c in configs {
        print!(" {} |", c.name);
    }
    println!();
    println!("|---|{}", "---|".repeat(configs.len()));
    let row = |name: &str, f: &dyn Fn(&Value) -> bool| {
        print!("| {name} |");
        for items in &stored {
            let n = items.iter().filter(|p| f(p)).count();
            print!(" {n}/{} |", items.len());
        }
        println!();
    };
    for field in &fields::ADDED {
        row(field.name, &field.check);
    }
    row("the pod's own fields kept", &fields::kept);
    row("kube-harden.io/hardened annotation", &|p: &Value| {
        p.pointer("/metadata/annotations/kube-harden.io~1hardened")
            .is_some()
    });
    println!();
}

fn rss(pid: u32) -> String {
    proc::rss_kib(pid).map_or("-".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

/// Runs the comparison and prints its tables. `bin`: the kube-harden binary; `pods`: pods per
/// configuration and concurrency (a quarter with one client); `long_seconds`: the length of
/// each long window (0: none).
pub async fn run(bin: &Path, pods: usize, long_seconds: u64) {
    let state = repo_dir().join("target/bench-peers");
    let scratch = Scratch::new("peers");
    let pki = Pki::new();
    println!("## kube-harden and its peers: pod creation through kube-apiserver\n");
    println!("machine: {}", proc::machine());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load.trim());
    // /debug/pprof (e2e/controlplane.sh turns it off) for the long windows' profiles: on for
    // every cell alike, served only when asked.
    let cp = ControlPlane::start_with(state.clone(), "--profiling=true");
    let kh = start_kube_harden(bin, &scratch.0, &pki, &[]);
    let api = cp.target();
    let mut admin = api.connect(Proto::H2).await.expect("API server connection");
    let kh_ns = CONFIGS[1].namespace;
    for ns in [PLAIN.namespace, kh_ns] {
        let labels = if ns == kh_ns {
            json!({"kube-harden.io/mode": "enforce"})
        } else {
            json!({})
        };
        create(
            &mut admin,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}),
        )
        .await
        .expect("namespace");
    }
    register_webhooks(
        &mut admin,
        &kh.addr.to_string(),
        &pki.ca_pem,
        &[("enforce", "/mutate")],
    )
    .await;
    let state_arg = state.to_string_lossy().into_owned();
    let mut up = vec!["up".to_owned(), state_arg.clone()];
    up.extend(
        CONFIGS
            .iter()
            .filter_map(|c| c.label.map(|l| format!("{}={l}", c.namespace))),
    );
    run_script(&up.iter().map(String::as_str).collect::<Vec<_>>());
    let peers = Peers(state_arg.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fields::complete(
        &create(
            &mut admin,
            &format!("/api/v1/namespaces/{kh_ns}/pods"),
            &pod(),
        )
        .await
        .expect("probe pod"),
    ) {
        assert!(Instant::now() < deadline, "kube-harden never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pids = Pids {
        state: state.clone(),
        apiserver: cp.pid("kube-apiserver").unwrap_or(0),
        etcd: cp.pid("etcd").unwrap_or(0),
        kube_harden: kh.pid,
    };
    let version = |name: &str| {
        let out = Command::new("bash")
            .arg(repo_dir().join("bench/peers/build.sh"))
            .arg("--print-env")
            .output()
            .expect("bench/peers/build.sh --print-env");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name}_VERSION="))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    println!(
        "\nkube-apiserver v1.36.3 + etcd v3.6.16 (--unsafe-no-fsync) on 127.0.0.1; kube-harden (this tree), Kyverno {} (admission controller only), Gatekeeper {} (webhook + mutation-webhook operations): each a local process on 127.0.0.1 reached by URL, failurePolicy Ignore, HTTP/2 from the clients. {pods} pods per configuration ({} with one client) in two segments, the configurations forward then backward; each client on its own HTTP/2 connection. Ratios are to no webhook in the same pass. \"all fields\": created pods that came back with every field of the table below and their own fields intact. CPU ms/pod: per created pod, of kube-apiserver, etcd and the configuration's own webhook process (the others idle meanwhile; their background work, e.g. Kyverno's report writing, lands in the segment it falls into).\n",
        version("KYVERNO"),
        version("GATEKEEPER"),
        pods / 4,
    );
    println!("### Pass 1: Kyverno with admission reports (its default)\n");
    let all: Vec<&Config> = CONFIGS.iter().collect();
    pass(&api, &pids, &all, pods).await;
    println!("Fields read back (stored pods, up to 50 per namespace):\n");
    // A new connection: the API server may have closed the idle one meanwhile.
    let mut reader = api.connect(Proto::H2).await.expect("API server connection");
    read_back(&mut reader, &all).await;
    println!(
        "Other pods (kube-harden's examples/, the pod of each workload; harder shapes), one of each per namespace, against what kube-harden stored (leaf paths of spec and annotations; list elements by name or mountPath):\n"
    );
    let shape_namespaces: Vec<(&str, &str)> =
        CONFIGS[1..].iter().map(|c| (c.name, c.namespace)).collect();
    shapes::run(&mut reader, &shape_namespaces).await;
    let mut rss_line = format!(
        "RSS after pass 1: kube-apiserver {}, etcd {}, kube-harden {}, Kyverno {}, Gatekeeper {}",
        rss(pids.apiserver),
        rss(pids.etcd),
        rss(pids.kube_harden),
        rss(pids.peer("kyverno")),
        rss(pids.peer("gatekeeper")),
    );
    println!("{rss_line}\n");

    run_script(&["kyverno", &state_arg, "false", KYVERNO]);
    println!("### Pass 2: Kyverno restarted with --admissionReports=false\n");
    let second: Vec<&Config> = [0, 2, 3].iter().map(|&i| &CONFIGS[i]).collect();
    pass(&api, &pids, &second, pods).await;
    rss_line = format!("RSS after pass 2: Kyverno {}", rss(pids.peer("kyverno")));
    println!("{rss_line}\n");
    if long_seconds > 0 {
        println!(
            "### Long windows: {long_seconds} s per configuration, forward then backward, each with a kube-apiserver CPU profile\n"
        );
        let dir = state.join("profiles");
        println!(
            "Profiles: {}/<clients>c-<config>-<1|2>.pb.gz (`go tool pprof -top FILE...` merges several).\n",
            dir.display()
        );
        long_windows(&api, &pids, &dir, long_seconds).await;
    }
    drop(peers);
    drop(kh);
    drop(cp);
}
