//! Reliability under abuse and over time, against the real binary in its own process (so its
//! memory and open files can be read from /proc): hostile clients, the connection limit, and a
//! soak at a steady rate. Ignored in `make test`; `make reliability` runs them (one at a time),
//! `make soak` runs the soak for 10 minutes. Every loop is bounded in time. This file holds what
//! the tests share (the server in a child process, its RSS and open files, the benchmark bodies
//! and a well-behaved client); the tests are in the modules below, by topic.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;

use super::support::*;

mod budget;
mod connections;
mod hostile;
mod soak;

/// `kube-harden serve` in a child process (its log at `warn`), killed on drop.
async fn serve(flags: &[&str]) -> Logged {
    serve_logged(&[], &[&["--log-level", "warn"], flags].concat()).await
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The benchmark bodies (bench/fixtures): a Pod CREATE, a Deployment UPDATE, a 3-container Pod.
fn bodies() -> Vec<Bytes> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/fixtures");
    [
        "review-pod-create.json",
        "review-deployment-update.json",
        "review-pod-3-containers.json",
    ]
    .iter()
    .map(|f| Bytes::from(std::fs::read(dir.join(f)).unwrap()))
    .collect()
}

/// What a well-behaved client saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
    max_latency_us: AtomicU64,
}

/// A well-behaved client until `stop`: a review every `pause` on a kept-alive connection, and
/// every `fresh_every`th on a new connection (as the API server does when it reconnects).
fn well_behaved(
    served: &Logged,
    version: Version,
    pause: Duration,
    fresh_every: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    let (addr, ca) = (served.webhook, served.pki.ca_pem.clone());
    let bodies = bodies();
    tokio::spawn(async move {
        let mut kept: Option<Client> = None;
        let mut n = 0u64;
        // A steady rate: one review per tick whatever the latency (ticks missed are not caught up).
        let mut ticker = tokio::time::interval(pause);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::SeqCst) {
            ticker.tick().await;
            n += 1;
            let body = bodies[(n as usize) % bodies.len()].clone();
            let started = Instant::now();
            let fresh = fresh_every > 0 && n.is_multiple_of(fresh_every);
            if fresh || kept.is_none() {
                kept = None;
            }
            let mut client = match kept.take() {
                Some(client) => client,
                None => match Client::connect(addr, &ca, version, None).await {
                    Ok(client) => client,
                    Err(_) => {
                        tally.sent.fetch_add(1, Ordering::SeqCst);
                        tally.failed.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                },
            };
            let ok = matches!(
                client.request("POST", "/mutate", body).await,
                Ok((StatusCode::OK, ref answer)) if answer.starts_with(b"{\"apiVersion\"")
            );
            tally.sent.fetch_add(1, Ordering::SeqCst);
            if ok {
                kept = Some(client);
            } else {
                tally.failed.fetch_add(1, Ordering::SeqCst);
            }
            tally
                .max_latency_us
                .fetch_max(started.elapsed().as_micros() as u64, Ordering::SeqCst);
        }
    })
}
