//! The per-review budget (issue 11): the admission handler on hostile bodies, no sockets. Prints
//! figures (not a timed test): for the four worst memory shapes, the body, the response and how
//! much the process's peak RSS grew during one review (VmHWM, reset before each review); for 1k/2k/4k/8k colliding writable paths, the CPU time of one review
//! and its time per path (flat when the cost is linear). `make bench` runs it; figures in
//! docs/performance.md.
//!
//! `BUDGET_PATHS=1000,2000` changes the colliding-path sizes.

use std::time::{Duration, Instant};

use kube_harden::admission::{Mode, review};
use kube_harden::harden::Policy;
use kube_harden_testkit::hostile;

/// The kube-harden binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0, `clear_refs` value 5).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One review: response bytes, warnings, whether patched, peak RSS growth, time.
struct Measured {
    response: usize,
    warnings: usize,
    patched: bool,
    peak: usize,
    time: Duration,
}

fn measure(body: &[u8], policy: &Policy) -> Measured {
    reset_peak_rss();
    let before = status_kib("VmRSS:") * 1024;
    let started = Instant::now();
    let reviewed = review(body, Mode::Enforce, policy);
    let time = started.elapsed();
    let peak = (status_kib("VmHWM:") * 1024).saturating_sub(before);
    let answer: serde_json::Value = serde_json::from_slice(&reviewed.body).unwrap_or_default();
    let warnings = answer
        .pointer("/response/warnings")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    Measured {
        response: reviewed.body.len(),
        warnings,
        patched: answer.pointer("/response/patch").is_some(),
        peak,
        time,
    }
}

fn mib(bytes: usize) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// The memory shapes: the four worst of issue 11 and the largest within the budget.
fn shapes() -> Vec<(&'static str, Vec<u8>)> {
    let mut shapes = hostile::worst_shapes();
    shapes.push((
        "largest answer in budget: 256 containers x 4 paths of 255 B",
        hostile::largest_answer(),
    ));
    shapes.push((
        "largest spec in budget: env of 90,000 values",
        hostile::largest_spec(),
    ));
    shapes
}

/// One memory shape, in this process: a fresh one that reads the body from stdin and allocates
/// nothing else first (memory the allocator kept from building the body or from an earlier
/// shape would hide the peak).
fn one_shape(label: &str, policy: &Policy) {
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).expect("the body on stdin");
    let m = measure(&body, policy);
    println!(
        "| {label} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
        mib(body.len()),
        mib(m.response),
        m.warnings,
        m.patched,
        mib(m.peak),
        m.peak as f64 / body.len() as f64,
        m.time.as_secs_f64() * 1000.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let policy = Policy::default();
    if let Ok(label) = std::env::var("BUDGET_SHAPE") {
        one_shape(&label, &policy);
        return;
    }
    println!(
        "## Worst memory shapes (one review each, in a fresh process: peak RSS growth during it)"
    );
    println!(
        "| shape | body | response | warnings | patched | peak RSS growth | growth / body | time ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (label, body) in shapes() {
        // Each shape in a process of its own (this benchmark, run again), body on stdin.
        let exe = std::env::current_exe().expect("the benchmark's path");
        let mut child = std::process::Command::new(exe)
            .env("BUDGET_SHAPE", label)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the benchmark runs again");
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, &body).expect("body written");
        }
        let out = child.wait_with_output().expect("the shape's figures");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }

    let sizes: Vec<usize> = std::env::var("BUDGET_PATHS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 2000, 4000, 8000]);
    cpu_rows(
        "## Colliding writable paths (/_, /-, /~, ...: one volume name), one container",
        "| paths | body | response | patched | time ms (best of 3) | µs per path |",
        &sizes,
        hostile::colliding_review,
        &policy,
    );
    cpu_rows(
        "## 64 colliding writable paths on a pod that has kube-harden-path, -2, ..., -N",
        "| N taken | body | response | patched | time ms (best of 3) | µs per taken name |",
        &[1000, 2000, 4000, 8000],
        hostile::colliding_taken_review,
        &policy,
    );
}

/// A table of CPU times: one row per size `n`, the best of three reviews of `body(n)`.
fn cpu_rows(
    title: &str,
    header: &str,
    sizes: &[usize],
    body: fn(usize) -> Vec<u8>,
    policy: &Policy,
) {
    println!();
    println!("{title}");
    println!("{header}");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &n in sizes {
        let body = body(n);
        let runs: Vec<Measured> = (0..3).map(|_| measure(&body, policy)).collect();
        let best = runs.iter().map(|m| m.time).min().unwrap_or_default();
        let last = runs.last().expect("three runs");
        println!(
            "| {n} | {} | {} | {} | {:.2} | {:.2} |",
            mib(body.len()),
            mib(last.response),
            last.patched,
            best.as_secs_f64() * 1000.0,
            best.as_secs_f64() * 1e6 / n as f64
        );
    }
}
