//! Benchmark support for kube-harden: fixtures, a TLS client for HTTP/1.1 and HTTP/2, load
//! generators (closed loop for saturation, open loop for latency at a fixed arrival rate, new
//! connections), the canned baseline server, /proc readings (RSS, CPU time, open files), and
//! kube-harden beside Kyverno, Gatekeeper and MutatingAdmissionPolicy (`peers`), and
//! kube-apiserver's CPU by the shape of the patch (`patch_shapes`).
//!
//! Everything listens and connects on 127.0.0.1 only; every load loop is bounded in time.

pub mod canned;
pub mod client;
pub mod controlplane;
pub mod load;
pub mod patch_shapes;
pub mod peers;
pub mod pki;
pub mod proc;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bench crate's directory.
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_dir() -> PathBuf {
    bench_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(bench_dir)
}

/// Reads a file under bench/fixtures (made by bench/fixtures/generate.py).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = bench_dir().join("fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The three AdmissionReview bodies the server benchmarks send: (label, file).
pub const REVIEW_BODIES: [(&str, &str); 3] = [
    ("Pod CREATE 5.6 KB", "review-pod-create.json"),
    ("Deployment UPDATE 13.7 KB", "review-deployment-update.json"),
    ("3-container Pod 16.2 KB", "review-pod-3-containers.json"),
];

/// Percentile (0..=100) of sorted durations, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// A free TCP port on 127.0.0.1 (racy by nature; fine for a benchmark).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates `kube-harden-bench-<pid>-<name>`.
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kube-harden-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
