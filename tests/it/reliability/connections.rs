//! The connection limit against the real binary: it bounds open files, trickling connections do
//! not hold slots from good reviews, and a metrics-port flood under `ulimit -n 1024` does not stop
//! reviews. Each review is checked against the API server's 5 s webhook timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::super::support::*;
use super::{bodies, open_fds, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability`"]
async fn the_connection_limit_bounds_open_files() {
    let served = serve(&["--max-connections", "64", "--handshake-timeout", "10s"]).await;
    let (addr, ca) = (served.webhook, served.pki.ca_pem.clone());
    let fds0 = open_fds(served.child.id());
    // A busy well-behaved connection opened before the flood keeps working through it (idle
    // ones may be closed at the limit: see below).
    let mut kept = Client::connect(addr, &ca, Version::Http2, None)
        .await
        .unwrap();
    let body = bodies()[0].clone();
    let busy = {
        let body = body.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                match kept.request("POST", "/mutate", body.clone()).await {
                    Ok((StatusCode::OK, _)) => ok += 1,
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ok, failed)
        })
    };
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(tcp) = TcpStream::connect(addr).await {
            flood.push(tcp);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(served.child.id());
    assert!(
        fds <= fds0 + 65,
        "{fds} open files with --max-connections 64 ({fds0} before)"
    );
    // At the limit the server closes connections that have sat idle for a second (here: the
    // flood, still before its TLS handshake), so a new client gets in well before the flood's
    // handshake timeout.
    let started = Instant::now();
    let mut fresh = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(addr, &ca, Version::Http1, None),
    )
    .await
    .expect("a new connection within 5s")
    .unwrap();
    assert_eq!(
        fresh.request("POST", "/mutate", body).await.unwrap().0,
        StatusCode::OK
    );
    let (ok, failed) = busy.await.unwrap();
    assert_eq!(
        failed, 0,
        "the busy client failed during the flood ({ok} ok)"
    );
    println!(
        "connection limit 64: {fds} open files during a 300-connection flood ({fds0} before); \
         a new client got in after {:?}",
        started.elapsed()
    );
    drop(flood);
}

/// One review on a fresh connection, as the API server sends it: `Ok(latency)` when it is
/// answered within the webhook's `timeoutSeconds: 5` (the API server gives up after that), the
/// failure otherwise.
async fn review_within_api_server_timeout(
    addr: SocketAddr,
    ca: &str,
    body: Bytes,
) -> Result<Duration, String> {
    let started = Instant::now();
    let attempt = async {
        let mut client = Client::connect(addr, ca, Version::Http1, None)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        match client.request("POST", "/mutate", body).await {
            Ok((StatusCode::OK, answer)) if answer.starts_with(b"{\"apiVersion\"") => Ok(()),
            Ok((status, _)) => Err(format!("status {status}")),
            Err(e) => Err(format!("request: {e}")),
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within the API server's 5s".to_owned()),
    }
}

/// min / median / max of some latencies, for the report.
fn spread(latencies: &mut [Duration]) -> String {
    latencies.sort();
    match (latencies.first(), latencies.last()) {
        (Some(min), Some(max)) => format!(
            "min {min:?}, median {:?}, max {max:?}",
            latencies[latencies.len() / 2]
        ),
        _ => "none".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability`"]
async fn trickling_connections_do_not_hold_slots_from_good_reviews() {
    // Default timeouts: only the cap is lowered, as in the issue's measurement.
    let served = serve(&["--max-connections", "64"]).await;
    let (addr, ca) = (served.webhook, served.pki.ca_pem.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let trickled = Arc::new(AtomicU64::new(0));
    // 80 clients that each keep a connection trickling a body (headers at once, then a byte every
    // 100 ms of a declared 5000), reconnecting whenever the server closes it.
    let mut tricklers = Vec::new();
    for _ in 0..80 {
        let (ca, stop, trickled) = (ca.clone(), stop.clone(), trickled.clone());
        tricklers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Ok(Ok(mut tls)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    tls_connect(addr, &ca, b"http/1.1", None),
                )
                .await
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                trickled.fetch_add(1, Ordering::SeqCst);
                let head = "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{";
                if tls.write_all(head.as_bytes()).await.is_err() {
                    continue;
                }
                while !stop.load(Ordering::SeqCst) {
                    let _ = tls.flush().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if tls.write_all(b" ").await.is_err() || tls.flush().await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Good reviews, each on a new connection, one every 250 ms for 10 s.
    let body = bodies()[0].clone();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match review_within_api_server_timeout(addr, &ca, body.clone()).await {
            Ok(latency) => latencies.push(latency),
            Err(e) => failures.push(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tricklers {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let metrics = http_get(served.metrics, "/metrics").await.1;
    println!(
        "80 trickling connections (reconnecting: {} connections), --max-connections 64: \
         {} good reviews answered ({}), {} failed; server body_timeout errors {}",
        trickled.load(Ordering::SeqCst),
        latencies.len(),
        spread(&mut latencies),
        failures.len(),
        metric(
            &metrics,
            r#"kube_harden_errors_total{reason="body_timeout"}"#
        ),
    );
    assert!(failures.is_empty(), "good reviews failed: {failures:?}");
    assert!(
        latencies.len() >= 10,
        "only {} good reviews",
        latencies.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability`"]
async fn a_metrics_port_flood_under_nofile_1024_does_not_stop_reviews() {
    // The default caps, in a process whose limit on open files is 1024 and cannot be raised.
    let served = serve_logged(&["prlimit", "--nofile=1024:1024"], &["--log-level", "info"]).await;
    let (addr, ca) = (served.webhook, served.pki.ca_pem.clone());
    // 1,100 idle connections to the metrics port (some may wait in the listen backlog).
    let metrics_addr = served.metrics;
    let mut opening = Vec::new();
    for _ in 0..1100 {
        opening.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(metrics_addr))
                .await
                .ok()
                .and_then(Result::ok)
        }));
    }
    let mut flood = Vec::new();
    for o in opening {
        if let Some(tcp) = o.await.unwrap() {
            flood.push(tcp);
        }
    }
    let pid = served.child.id();
    let fds = open_fds(pid);
    let body = bodies()[0].clone();
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let latency = review_within_api_server_timeout(addr, &ca, body.clone())
            .await
            .unwrap_or_else(|e| panic!("a review during the flood failed: {e}\n{}", served.log()));
        latencies.push(latency);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Probed as the kubelet does (manifests/base/deployment.yaml: timeoutSeconds 2,
    // failureThreshold 3: a restart takes three failed probes in a row). The flood fills the
    // metrics port's accept queue in the kernel, where a new connection's SYN is dropped and
    // sent again after a second: one probe can take 1.5-2.5 s (measured: 0.46, 1.47 or 2.44 s,
    // by how many SYNs were dropped), three in a row must not fail. Probed back to back, not
    // 10 s apart as the kubelet does, which gives the queue less time to drain.
    let mut probes = Vec::new();
    let mut health = None;
    for _ in 0..3 {
        let started = Instant::now();
        let probe =
            tokio::time::timeout(Duration::from_secs(2), http_get(metrics_addr, "/healthz")).await;
        probes.push(started.elapsed());
        if let Ok((status, _)) = probe {
            health = Some(status);
            break;
        }
    }
    let health = health
        .unwrap_or_else(|| panic!("/healthz failed three probes in a row (2 s each): {probes:?}"));
    assert_eq!(health, StatusCode::OK);
    let log = served.log();
    assert!(
        log.contains("lowered"),
        "the caps are lowered to fit: {log}"
    );
    println!(
        "nofile 1024:1024, {} idle connections to the metrics port: server open files {fds}; \
         5 reviews answered ({}), /healthz {health} (probes {probes:?})",
        flood.len(),
        spread(&mut latencies)
    );
    drop(flood);
}
