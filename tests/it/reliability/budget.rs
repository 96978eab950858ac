//! The per-review budget against the real binary (issue 11, items 1 and 2): the four worst memory
//! shapes and thousands of colliding writable paths, each sent once with `--max-body-bytes` at
//! its default (6 MiB), while `/healthz` is polled. Checked: every answer within the webhook's
//! 5 s timeout and small, `/healthz` never stalls, and the process's peak RSS stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use kube_harden_testkit::hostile;

use super::super::support::*;
use super::serve;

/// Peak RSS (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability`"]
async fn hostile_reviews_stay_within_the_budget() {
    let served = serve(&[]).await;
    let mut shapes = hostile::worst_shapes();
    shapes.push(("4,000 colliding paths", hostile::colliding_review(4000)));
    shapes.push(("8,000 colliding paths", hostile::colliding_review(8000)));

    // /healthz, polled every 50 ms while the reviews run: its slowest answer.
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_health_us = Arc::new(AtomicU64::new(0));
    let poller = {
        let (stop, slowest, metrics) = (
            Arc::clone(&stop),
            Arc::clone(&slowest_health_us),
            served.metrics,
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let answered =
                    tokio::time::timeout(Duration::from_secs(30), http_get(metrics, "/healthz"))
                        .await;
                let took = started.elapsed().as_micros() as u64;
                slowest.fetch_max(took, Ordering::SeqCst);
                assert!(
                    matches!(answered, Ok((StatusCode::OK, _))),
                    "/healthz answered"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut client = Client::connect(served.webhook, &served.pki.ca_pem, Version::Http1, None)
        .await
        .unwrap();
    for (label, body) in shapes {
        let sent = body.len();
        let started = Instant::now();
        let (status, answer) = client.request("POST", "/mutate", body).await.unwrap();
        let took = started.elapsed();
        println!(
            "{label}: {sent} bytes in, {} bytes out, {:.0} ms, peak RSS {} KiB",
            answer.len(),
            took.as_secs_f64() * 1000.0,
            peak_rss_kib(served.child.id())
        );
        assert_eq!(status, StatusCode::OK, "{label}");
        assert!(took < Duration::from_secs(5), "{label}: {took:?}");
        assert!(
            answer.len() < 1024 * 1024,
            "{label}: {} bytes",
            answer.len()
        );
    }
    stop.store(true, Ordering::SeqCst);
    poller.await.unwrap();
    let slowest = Duration::from_micros(slowest_health_us.load(Ordering::SeqCst));
    let peak = peak_rss_kib(served.child.id());
    println!("slowest /healthz {slowest:?}, peak RSS {peak} KiB");
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz stalled for {slowest:?}"
    );
    assert!(peak < 192 * 1024, "peak RSS {peak} KiB");
}
