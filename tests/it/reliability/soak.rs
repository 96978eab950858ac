//! The soak: well-behaved clients at a steady rate for `KUBE_HARDEN_SOAK_SECONDS` (60 s by
//! default, 10 min under `make soak`): no failed review, no error counted, and RSS flat from
//! the warm start to the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::super::support::*;
use super::{Tally, rss_kib, serve, well_behaved};

fn soak_seconds() -> u64 {
    std::env::var("KUBE_HARDEN_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability` (60s) and `make soak` (10 min)"]
async fn soak_at_a_steady_rate() {
    let seconds = soak_seconds();
    let served = serve(&[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    // About 200 reviews/s: 2 x HTTP/1.1 and 2 x HTTP/2 clients, each a review every 20 ms, a
    // new connection every 100 reviews.
    let mut clients = Vec::new();
    for version in [
        Version::Http1,
        Version::Http1,
        Version::Http2,
        Version::Http2,
    ] {
        clients.push(well_behaved(
            &served,
            version,
            Duration::from_millis(20),
            100,
            stop.clone(),
            tally.clone(),
        ));
    }
    // RSS after a tenth of the run (warm), then every few seconds until the end.
    let started = Instant::now();
    let total = Duration::from_secs(seconds);
    tokio::time::sleep(total / 10).await;
    let rss_start = rss_kib(served.child.id());
    let mut samples = vec![rss_start];
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(5).min(total.saturating_sub(started.elapsed())))
            .await;
        samples.push(rss_kib(served.child.id()));
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let rss_end = rss_kib(served.child.id());
    let metrics = http_get(served.metrics, "/metrics").await.1;
    let (sent, failed) = (
        tally.sent.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    let errors = metric_sum(&metrics, "kube_harden_errors_total");
    println!(
        "soak {seconds}s: {sent} reviews ({:.0}/s), {failed} failed, server errors {errors}; \
         RSS start {rss_start} KiB, end {rss_end} KiB, max {} KiB; slowest {:?}",
        sent as f64 / seconds as f64,
        samples.iter().max().unwrap_or(&0),
        Duration::from_micros(tally.max_latency_us.load(Ordering::SeqCst)),
    );
    assert_eq!(failed, 0);
    assert_eq!(errors, 0.0, "kube_harden_errors_total");
    assert!(sent as f64 > seconds as f64 * 100.0, "only {sent} reviews");
    // Flat: the end within 10% (plus 2 MiB of slack for allocator caches) of the start.
    assert!(
        rss_end <= rss_start + rss_start / 10 + 2048,
        "RSS grew from {rss_start} KiB to {rss_end} KiB"
    );
}

/// The sum of every series of a counter.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum::<f64>()
        + 0.0
}
