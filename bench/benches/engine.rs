//! The rules alone, no sockets: hardening plus patch building on parsed objects
//! (`harden_object`), and the whole admission handler on AdmissionReview bytes (`review`: parse,
//! harden, build and serialise the response) and the log line it writes (`log_line`), with the
//! binary's allocator (mimalloc). `make bench` runs it; figures in docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kube_harden::admission::{Mode, review};
use kube_harden::config::LogFormat;
use kube_harden::dom::Json;
use kube_harden::harden::{ImageLookup, Policy, WorkloadKind, harden_json, harden_object};
use kube_harden::logging;
use kube_harden_bench::fixture;

/// The kube-harden binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The objects `harden_object` and `harden_json` harden: benchmark name, fixture.
const OBJECTS: [(&str, &str); 3] = [
    ("pod_small", "pod-small.json"),
    ("pod_10_containers", "pod-10-containers.json"),
    ("deployment_50kb", "deployment-large.json"),
];

fn engine(c: &mut Criterion) {
    let policy = Policy::default();
    let mut group = c.benchmark_group("harden_object");
    for (name, file) in OBJECTS {
        let bytes = fixture(file);
        let object: serde_json::Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| harden_object(black_box(&object), &policy).expect("hardens"))
        });
    }
    group.finish();

    // The rules alone on the document the handler reads (`harden_object` above also borrows
    // what they read from the `serde_json::Value`).
    let mut group = c.benchmark_group("harden_json");
    let images = ImageLookup::new();
    for (name, file) in OBJECTS {
        let bytes = fixture(file);
        let object: serde_json::Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        let kind = WorkloadKind::of_object(&object).expect("a workload");
        let dom = Json::from(&object);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| harden_json(black_box(&dom), kind, &policy, &images).expect("hardens"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("review");
    for (name, file) in [
        ("pod_create_5kb", "review-pod-create.json"),
        ("deployment_update_13kb", "review-deployment-update.json"),
        ("pod_3_containers_16kb", "review-pod-3-containers.json"),
    ] {
        let bytes = fixture(file);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| review(black_box(&bytes), Mode::Enforce, &policy))
        });
    }
    group.finish();

    // The log line of one review (`kube-harden serve` writes one per review), formatted as the
    // binary does and written to a sink: what the line costs beside the review above.
    let mut group = c.benchmark_group("log_line");
    let reviewed = review(&fixture("review-pod-create.json"), Mode::Enforce, &policy);
    for (name, format) in [("text", LogFormat::Text), ("json", LogFormat::Json)] {
        let subscriber = logging::subscriber(format, "info", std::io::sink, false).expect("filter");
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function(name, |b| {
                b.iter(|| logging::review(Mode::Enforce, black_box(&reviewed.report), ELAPSED))
            });
        });
    }
    group.finish();
}

/// The duration the benchmarked log line reports.
const ELAPSED: Duration = Duration::from_micros(31);

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine
}
criterion_main!(benches);
