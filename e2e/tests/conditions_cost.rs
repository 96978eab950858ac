//! What a `matchConditions` skip would save the API server: its CPU per Pod CREATE when no
//! webhook matches, when kube-harden is called and answers without a patch (the Pods carry
//! `kube-harden.io/skip: "true"`), and when a copy of the enforce webhook with a condition on that
//! annotation skips the call. Prints figures, asserts none (docs/operations.md, "Requests
//! kube-harden is not spared"). Run by `make conditions-cost` on a machine with nothing
//! else running, not by `cargo test`.
//!
//! One control plane, one kube-harden (the e2e harness); the three cells alternate in rounds of
//! `CONDITIONS_COST_PODS` creates each (default 200), `CONDITIONS_COST_ROUNDS` rounds
//! (default 6); API server CPU from `/proc/<pid>/stat` (10 ms ticks) around each cell.

use std::process::ExitCode;
use std::time::Instant;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_harden_e2e::{Harness, MODE_LABEL, Result, process};
use serde_json::{Value, json};

const CANDIDATE_LABEL: &str = "e2e.kube-harden.io/candidate";
/// Skip objects opted out entirely.
const SKIP_OPTED_OUT: &str = "!has(object.metadata.annotations) || \
    !('kube-harden.io/skip' in object.metadata.annotations)";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User plus system CPU of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').ok_or("no ')' in stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |i: usize| -> Result<u64> { Ok(fields.get(i).ok_or("short stat")?.parse::<u64>()?) };
    Ok(field(11)? + field(12)?)
}

fn pod(opted_out: bool) -> Result<Pod> {
    let annotations = if opted_out {
        json!({"kube-harden.io/skip": "true"})
    } else {
        json!({})
    };
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "p-", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}
    }))?)
}

#[derive(Default)]
struct Cell {
    pods: usize,
    ticks: u64,
    latencies: Vec<f64>,
}

async fn measure(h: &Harness) -> Result<()> {
    let none = h.namespace("cost-none", &[]).await?;
    let called = h
        .namespace("cost-called", &[(MODE_LABEL, "enforce")])
        .await?;
    let skipped = h
        .namespace("cost-skipped", &[(CANDIDATE_LABEL, "skip")])
        .await?;

    let api: Api<MutatingWebhookConfiguration> = Api::all(h.client());
    let shipped = serde_json::to_value(api.get("kube-harden").await?)?;
    let mut enforce: Value = shipped["webhooks"][0].clone();
    enforce["name"] = json!("candidate.e2e.kube-harden.io");
    enforce["namespaceSelector"] = json!({"matchLabels": {CANDIDATE_LABEL: "skip"}});
    enforce["matchConditions"] = json!([{"name": "not-opted-out", "expression": SKIP_OPTED_OUT}]);
    let candidate: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kube-harden-candidate"},
        "webhooks": [enforce],
    }))?;
    api.create(&PostParams::default(), &candidate).await?;
    // In effect once a Pod without the annotation comes back hardened.
    let probe: Api<Pod> = Api::namespaced(h.client(), &skipped);
    let plain = pod(false)?;
    process::poll(
        "the candidate configuration to take effect",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(200),
        || async {
            let stored = probe.create(&PostParams::default(), &plain).await?;
            Ok(stored
                .metadata
                .annotations
                .is_some_and(|a| a.contains_key("kube-harden.io/hardened"))
                .then_some(()))
        },
    )
    .await?;

    let pid: u32 = std::fs::read_to_string(h.controlplane().state_dir.join("kube-apiserver.pid"))?
        .trim()
        .parse()?;
    let per_cell = env_or("CONDITIONS_COST_PODS", 200);
    let rounds = env_or("CONDITIONS_COST_ROUNDS", 6);
    let opted_out = pod(true)?;
    let names = [
        ("no webhook matches", none),
        ("kube-harden called, no patch", called),
        ("matchConditions skip", skipped),
    ];
    let mut cells: Vec<Cell> = names.iter().map(|_| Cell::default()).collect();
    // Warm-up: one batch in each, not counted.
    for (_, ns) in &names {
        let pods: Api<Pod> = Api::namespaced(h.client(), ns);
        for _ in 0..50 {
            pods.create(&PostParams::default(), &opted_out).await?;
        }
    }
    for round in 0..rounds {
        for k in 0..names.len() {
            let i = (round + k) % names.len();
            let pods: Api<Pod> = Api::namespaced(h.client(), &names[i].1);
            let before = cpu_ticks(pid)?;
            for _ in 0..per_cell {
                let t = Instant::now();
                pods.create(&PostParams::default(), &opted_out).await?;
                cells[i].latencies.push(t.elapsed().as_secs_f64() * 1e3);
            }
            cells[i].ticks += cpu_ticks(pid)? - before;
            cells[i].pods += per_cell;
        }
    }
    println!("| cell | pods | kube-apiserver CPU ms/pod | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- |");
    for ((name, _), cell) in names.iter().zip(cells.iter_mut()) {
        cell.latencies.sort_by(f64::total_cmp);
        let q = |p: f64| cell.latencies[((cell.latencies.len() - 1) as f64 * p) as usize];
        println!(
            "| {name} | {} | {:.3} | {:.2} | {:.2} |",
            cell.pods,
            cell.ticks as f64 * 10.0 / cell.pods as f64,
            q(0.5),
            q(0.99)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = Harness::start().and_then(|h| {
        let out = h.block_on(measure(&h));
        h.shutdown();
        out
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conditions-cost: {e}");
            ExitCode::FAILURE
        }
    }
}
