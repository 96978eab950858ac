//! `make bench-shapes`: what in a patch drives kube-apiserver's CPU per pod. One control plane
//! (e2e/controlplane.sh), one in-process webhook (the canned server's hyper + rustls stack) that
//! answers each review of the bench pod with one of the patch variants of [`variants`], one
//! namespace per variant plus one without a webhook. The variants of equal effect store the
//! same pod as kube-harden (checked on a stored pod, and field by field on every created pod);
//! they alternate (forward, then backward) at 1 and 10 clients, over several rounds so the
//! noise of the 10 ms CPU ticks shows. Then, optionally, a CPU profile of kube-apiserver
//! (/debug/pprof/profile, as the admin) while it creates pods through each of a few variants.
//!
//! The webhook's own CPU is not measured (it shares this process with the clients): kube-harden's
//! is in `make bench` and `make bench-peers`. Its answers for one object are computed once
//! (`kube_harden::admission::review` on the received body) and reused with each request's uid.

mod variants;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::client::{Proto, Target};
use crate::controlplane::{
    Cell, ControlPlane, connect_clients, create, pod, register_webhooks, segment, window,
};
use crate::peers::fields;
use crate::pki::Pki;
use crate::{ms, percentile, proc, repo_dir};
pub use variants::Variant;

/// The namespace without a webhook.
const PLAIN: &str = "shapes-plain";

/// Options of one run.
pub struct Options {
    /// Pods per configuration, concurrency and round.
    pub pods: usize,
    /// Rounds: each repeats every cell, to show the spread.
    pub rounds: usize,
    /// Seconds of each kube-apiserver CPU profile (0: none).
    pub profile_seconds: u64,
}

fn namespace(variant: Option<Variant>) -> &'static str {
    variant.map_or(PLAIN, Variant::namespace)
}

/// The in-process webhook: answers by path, caches one answer per (variant, object).
#[derive(Default)]
struct Answers {
    cache: Mutex<HashMap<(Variant, String), Value>>,
    sizes: Mutex<HashMap<Variant, (usize, usize)>>,
}

impl Answers {
    fn answer(&self, path: &str, body: &[u8]) -> Bytes {
        let Some(variant) = Variant::from_path(path) else {
            return Bytes::from_static(b"unknown variant");
        };
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let uid = request
            .pointer("/request/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let object = request.pointer("/request/object").unwrap_or(&Value::Null);
        let key = (variant, object.to_string());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        let mut review = cached.unwrap_or_else(|| {
            let kh = kube_harden::admission::review(
                body,
                kube_harden::admission::Mode::Enforce,
                &kube_harden::harden::Policy::default(),
            );
            let review = variants::answer(variant, uid, object, &kh.body);
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() > 64 {
                    cache.clear();
                }
                cache.insert(key, review.clone());
            }
            review
        });
        review["response"]["uid"] = uid.into();
        let bytes = serde_json::to_vec(&review).unwrap_or_default();
        if let Ok(mut sizes) = self.sizes.lock() {
            let ops = review["response"]
                .as_object()
                .map_or(0, |r| variants::patch_of(r).len());
            sizes.insert(variant, (bytes.len(), ops));
        }
        Bytes::from(bytes)
    }
}

/// A stored pod without what the API server makes per object (name, uid, times, version).
fn comparable(pod: &Value) -> Value {
    json!({"spec": pod["spec"], "annotations": pod.pointer("/metadata/annotations"),
           "labels": pod.pointer("/metadata/labels")})
}

/// Whether a created pod came back as `variant` must store it.
fn as_expected(variant: Option<Variant>, created: &Value) -> bool {
    let annotated = created
        .pointer("/metadata/annotations/kube-harden.io~1hardened")
        .is_some();
    match variant {
        None | Some(Variant::Noop) => !annotated && fields::count(created) == 0,
        Some(Variant::Tiny) => created.pointer("/metadata/labels/bench-tiny").is_some(),
        Some(v) => fields::complete(created) && annotated == v.annotated(),
    }
}

/// One round at `clients_n` clients: every configuration forward, then backward.
async fn round(
    api: &Target,
    pids: [u32; 2],
    configs: &[Option<Variant>],
    pods: usize,
    clients_n: usize,
) -> Vec<Cell> {
    let clients = connect_clients(api, clients_n).await;
    let cpu = || {
        let [a, b] = pids.map(|pid| proc::cpu_seconds(pid).unwrap_or(0.0));
        [a, b, 0.0]
    };
    for v in configs {
        let _ = segment(
            &clients,
            namespace(*v),
            clients_n * 2 + 10,
            fields::complete,
        )
        .await;
    }
    let mut cells = vec![Cell::default(); configs.len()];
    for i in (0..configs.len()).chain((0..configs.len()).rev()) {
        let (t0, cpu0) = (Instant::now(), cpu());
        let result = segment(&clients, namespace(configs[i]), pods / 2, fields::complete).await;
        cells[i].add(result, t0.elapsed(), cpu0, cpu());
    }
    for cell in &mut cells {
        cell.latencies.sort();
    }
    cells
}

fn label(variant: Option<Variant>) -> &'static str {
    variant.map_or("no webhook", Variant::slug)
}

/// Mean, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, min, max)
}

/// Long windows, each profiled ([`window`]: a full kube-apiserver GC first, since 2026-11-30
/// 16:26): every configuration for `seconds`, forward then backward, at 1 and 10 clients;
/// prints CPU per pod from /proc over each window and where the profiles are.
async fn profiles(
    api: &Target,
    pids: [u32; 2],
    dir: &std::path::Path,
    configs: &[Option<Variant>],
    seconds: u64,
) {
    std::fs::create_dir_all(dir).expect("profiles directory");
    println!(
        "### Long windows: {seconds} s per configuration, forward then backward, each with a kube-apiserver CPU profile\n"
    );
    println!(
        "Profiles: {}/<clients>c-<variant>-<1|2>.pb.gz (`go tool pprof -top -cum FILE...` merges several).\n",
        dir.display()
    );
    println!(
        "| clients | variant | pods | kube-apiserver ms/pod: forward | backward | mean | added vs no-op | etcd ms/pod |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for clients_n in [1usize, 10] {
        let clients = connect_clients(api, clients_n).await;
        let mut cells = vec![(0usize, [0.0f64; 2], [0.0f64; 2]); configs.len()];
        for (pass, order) in [
            (1, (0..configs.len()).collect::<Vec<_>>()),
            (2, (0..configs.len()).rev().collect()),
        ] {
            for i in order {
                let name = format!(
                    "{clients_n}c-{}-{pass}.pb.gz",
                    label(configs[i]).replace(' ', "-")
                );
                let ns = namespace(configs[i]);
                let profile = Some(dir.join(name));
                let (pods, _, cpu) =
                    window(api, &pids, ns, &clients, seconds, profile.as_deref()).await;
                let cell = &mut cells[i];
                cell.0 += pods;
                cell.1[pass - 1] = cpu[0] * 1000.0 / pods.max(1) as f64;
                cell.2[pass - 1] = cpu[1] * 1000.0 / pods.max(1) as f64;
            }
        }
        let mean = |c: &(usize, [f64; 2], [f64; 2])| (c.1[0] + c.1[1]) / 2.0;
        let noop = mean(&cells[1]);
        for (v, cell) in configs.iter().zip(&cells) {
            println!(
                "| {clients_n} | {} | {} | {:.3} | {:.3} | {:.3} | {:+.3} | {:.3} |",
                label(*v),
                cell.0,
                cell.1[0],
                cell.1[1],
                mean(cell),
                mean(cell) - noop,
                (cell.2[0] + cell.2[1]) / 2.0,
            );
        }
    }
    println!();
}

/// Runs the benchmark and prints its tables.
pub async fn run(options: &Options) {
    let state = repo_dir().join("target/bench-shapes");
    let pki = Pki::new();
    println!(
        "## Patch shapes: kube-apiserver's CPU per pod by the shape of the webhook's answer\n"
    );
    println!("machine: {}", proc::machine());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load.trim());
    // /debug/pprof (e2e/controlplane.sh turns it off): on for every cell alike, served only
    // when asked.
    let cp = ControlPlane::start_with(state.clone(), "--profiling=true");
    let answers = Arc::new(Answers::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("address").to_string();
    let (cert, key) = (
        pki.cert_pem.clone().into_bytes(),
        pki.key_pem.clone().into_bytes(),
    );
    let served = Arc::clone(&answers);
    tokio::spawn(async move {
        crate::canned::serve_with(listener, &cert, &key, move |path, body| {
            served.answer(path, &body)
        })
        .await;
    });
    let api = cp.target();
    let mut admin = api.connect(Proto::H2).await.expect("API server connection");
    let configs: Vec<Option<Variant>> = std::iter::once(None)
        .chain(Variant::ALL.map(Some))
        .collect();
    for v in &configs {
        let labels = v.map_or(json!({}), |v| json!({"kube-harden.io/mode": v.slug()}));
        create(
            &mut admin,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": namespace(*v), "labels": labels}}),
        )
        .await
        .expect("namespace");
    }
    let hooks: Vec<(&str, String)> = Variant::ALL
        .iter()
        .map(|v| (v.slug(), format!("/{}", v.slug())))
        .collect();
    let hooks: Vec<(&str, &str)> = hooks.iter().map(|(m, p)| (*m, p.as_str())).collect();
    register_webhooks(&mut admin, &addr, &pki.ca_pem, &hooks).await;
    // Each namespace answers as its variant must before anything is measured; the pods
    // stored then are compared with kube-harden's.
    let mut stored = Vec::new();
    for v in &configs {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = format!("/api/v1/namespaces/{}/pods", namespace(*v));
        loop {
            let created = create(&mut admin, &path, &pod()).await.expect("probe pod");
            if as_expected(*v, &created) {
                stored.push(created);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: never answered as expected: {created}",
                label(*v)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let reference = comparable(&stored[2]);
    let mut unannotated = reference.clone();
    unannotated["annotations"] = Value::Null;
    println!(
        "\nkube-apiserver v1.36.3 + etcd v3.6.16 (--unsafe-no-fsync) on 127.0.0.1; one webhook process (this one, hyper + rustls, HTTP/2 from the API server, failurePolicy Ignore) answering each namespace's reviews with its variant. The answers:\n"
    );
    println!("| variant | ops | response bytes | stored pod (spec, labels, annotations) |");
    println!("| --- | --- | --- | --- |");
    let sizes = answers.sizes.lock().map(|s| s.clone()).unwrap_or_default();
    for (v, created) in configs.iter().zip(&stored) {
        let (bytes, ops) = v.and_then(|v| sizes.get(&v).copied()).unwrap_or((0, 0));
        let c = comparable(created);
        let same = if c == reference {
            "= kube-harden's"
        } else if c == unannotated {
            "= kube-harden's without the annotation"
        } else if v.is_some_and(Variant::same_fields) {
            "**differs: not of equal effect**"
        } else {
            "not hardened (not of equal effect, as meant)"
        };
        println!("| {} | {ops} | {bytes} | {same} |", label(*v));
    }
    let pids = [
        cp.pid("kube-apiserver").unwrap_or(0),
        cp.pid("etcd").unwrap_or(0),
    ];
    println!(
        "\n{} pods per configuration, concurrency and round, in two segments (forward, then backward); {} rounds. CPU from /proc (10 ms ticks: ±{:.3} ms/pod per cell). \"all fields\": created pods with every field kube-harden adds (fields.rs).\n",
        options.pods,
        options.rounds,
        20.0 / options.pods.max(1) as f64,
    );
    let mut summary: HashMap<(usize, usize), Vec<Cell>> = HashMap::new();
    for r in 1..=options.rounds {
        println!("### Round {r}\n");
        println!(
            "| clients | variant | pods | p50 ms | p99 ms | p50 ratio | errors | all fields | CPU ms/pod: kube-apiserver | etcd |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for clients_n in [1usize, 10] {
            let cells = round(&api, pids, &configs, options.pods, clients_n).await;
            let base = percentile(&cells[0].latencies, 50.0).as_secs_f64();
            for (i, (v, cell)) in configs.iter().zip(&cells).enumerate() {
                let p50 = percentile(&cell.latencies, 50.0);
                println!(
                    "| {clients_n} | {} | {} | {} | {} | {:.2} | {} | {} | {:.3} | {:.3} |",
                    label(*v),
                    cell.latencies.len(),
                    ms(p50),
                    ms(percentile(&cell.latencies, 99.0)),
                    p50.as_secs_f64() / base,
                    cell.errors,
                    cell.complete,
                    cell.per_pod(0),
                    cell.per_pod(1),
                );
                summary
                    .entry((clients_n, i))
                    .or_default()
                    .push(cell.clone());
            }
        }
        println!();
    }
    if options.rounds > 0 {
        summarise(&configs, &summary);
    }
    if options.profile_seconds > 0 {
        let dir = state.join("profiles");
        profiles(&api, pids, &dir, &configs, options.profile_seconds).await;
    }
    drop(cp);
}

/// The summary table over the rounds: mean, min and max per cell.
fn summarise(configs: &[Option<Variant>], summary: &HashMap<(usize, usize), Vec<Cell>>) {
    println!(
        "### Summary over the rounds: kube-apiserver CPU ms/pod, mean (min-max), and added over the no-op webhook\n"
    );
    println!(
        "| clients | variant | kube-apiserver ms/pod | added vs no-op | etcd ms/pod | p50 ratio (mean) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for clients_n in [1usize, 10] {
        let stat = |i: usize, k: usize| {
            let v: Vec<f64> = summary[&(clients_n, i)]
                .iter()
                .map(|c| c.per_pod(k))
                .collect();
            spread(&v)
        };
        let ratio = |i: usize| {
            let v: Vec<f64> = summary[&(clients_n, i)]
                .iter()
                .zip(&summary[&(clients_n, 0)])
                .map(|(c, b)| {
                    percentile(&c.latencies, 50.0).as_secs_f64()
                        / percentile(&b.latencies, 50.0).as_secs_f64()
                })
                .collect();
            spread(&v).0
        };
        let noop = stat(1, 0).0;
        for (i, v) in configs.iter().enumerate() {
            let (mean, min, max) = stat(i, 0);
            println!(
                "| {clients_n} | {} | {mean:.3} ({min:.3}-{max:.3}) | {:+.3} | {:.3} | {:.2} |",
                label(*v),
                mean - noop,
                stat(i, 1).0,
                ratio(i),
            );
        }
    }
    println!();
}
