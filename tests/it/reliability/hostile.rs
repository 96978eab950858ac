//! Hostile clients against the real binary while well-behaved clients keep reviewing: stalled
//! and half-done TLS handshakes, slowloris headers, idle HTTP/1.1 and HTTP/2 connections, and
//! oversized, endless or stalled bodies. None starves the well-behaved clients, each is gone once
//! its deadline passed, and memory and open files stay bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::support::*;
use super::{Tally, bodies, open_fds, rss_kib, serve, well_behaved};

/// Reads until EOF or `limit`; what the server answered, if anything.
async fn read_answer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reliability: run by `make reliability`"]
async fn hostile_clients_do_not_starve_well_behaved_ones() {
    let served = serve(&[
        "--max-connections",
        "1024",
        "--handshake-timeout",
        "2s",
        "--request-timeout",
        "2s",
        "--idle-timeout",
        "3s",
        "--max-body-bytes",
        "1048576",
    ])
    .await;
    let (addr, ca) = (served.webhook, served.pki.ca_pem.clone());
    // Warm up, then the baseline.
    let mut warm = Client::connect(addr, &ca, Version::Http2, None)
        .await
        .unwrap();
    for body in bodies() {
        assert_eq!(
            warm.request("POST", "/mutate", body).await.unwrap().0,
            StatusCode::OK
        );
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss0, fds0) = (rss_kib(served.child.id()), open_fds(served.child.id()));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = vec![
        well_behaved(
            &served,
            Version::Http1,
            Duration::from_millis(20),
            10,
            stop.clone(),
            tally.clone(),
        ),
        well_behaved(
            &served,
            Version::Http2,
            Duration::from_millis(20),
            10,
            stop.clone(),
            tally.clone(),
        ),
    ];

    let mut attackers = Vec::new();
    let hold = Duration::from_secs(8);
    // 200 TCP connections that never start TLS, and 100 that stop inside the ClientHello.
    for i in 0..300 {
        attackers.push(tokio::spawn(async move {
            let Ok(mut tcp) = TcpStream::connect(addr).await else {
                return "refused".to_owned();
            };
            if i % 3 == 0 {
                let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;
            }
            let answer = read_answer(&mut tcp, hold).await;
            if answer.is_empty() {
                "closed"
            } else {
                "answered"
            }
            .to_owned()
        }));
    }
    // 100 slowloris: TLS done, then request headers one byte every 300 ms.
    for _ in 0..100 {
        let ca = ca.clone();
        attackers.push(tokio::spawn(async move {
            let Ok(mut tls) = tls_connect(addr, &ca, b"http/1.1", None).await else {
                return "refused".to_owned();
            };
            let head = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
            let deadline = Instant::now() + hold;
            for byte in head {
                if Instant::now() > deadline || tls.write_all(&[*byte]).await.is_err() {
                    return "closed".to_owned();
                }
                let _ = tls.flush().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            "not closed".to_owned()
        }));
    }
    // 100 idle HTTP/2 connections (no stream ever), 50 idle HTTP/1.1 after one request.
    for i in 0..150 {
        let ca = ca.clone();
        attackers.push(tokio::spawn(async move {
            if i < 100 {
                let Ok(tls) = tls_connect(addr, &ca, b"h2", None).await else {
                    return "refused".to_owned();
                };
                let handshake = hyper::client::conn::http2::handshake::<
                    _,
                    _,
                    http_body_util::Full<Bytes>,
                >(TokioExecutor::new(), TokioIo::new(tls));
                let Ok((_sender, conn)) = handshake.await else {
                    return "refused".to_owned();
                };
                match tokio::time::timeout(hold, conn).await {
                    Ok(_) => "closed".to_owned(),
                    Err(_) => "not closed".to_owned(),
                }
            } else {
                let Ok(mut client) = Client::connect(addr, &ca, Version::Http1, None).await else {
                    return "refused".to_owned();
                };
                let _ = client.request("POST", "/mutate", bodies()[0].clone()).await;
                let deadline = Instant::now() + hold;
                // The server closes the idle connection; the next request then fails.
                tokio::time::sleep(Duration::from_secs(4)).await;
                while Instant::now() < deadline {
                    if client.request("GET", "/x", Bytes::new()).await.is_err() {
                        return "closed".to_owned();
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                "not closed".to_owned()
            }
        }));
    }
    // 50 connections that finish the TLS handshake and then send nothing at all.
    for _ in 0..50 {
        let ca = ca.clone();
        attackers.push(tokio::spawn(async move {
            let Ok(mut tls) = tls_connect(addr, &ca, b"h2", None).await else {
                return "refused".to_owned();
            };
            let mut buf = [0u8; 64];
            match tokio::time::timeout(hold, tls.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => "closed".to_owned(),
                Ok(Ok(_)) => "answered".to_owned(),
                Err(_) => "not closed".to_owned(),
            }
        }));
    }
    // 20 oversized bodies (declared 100 MB), 10 endless chunked bodies, 20 stalled bodies.
    for i in 0..50 {
        let ca = ca.clone();
        attackers.push(tokio::spawn(async move {
            let Ok(mut tls) = tls_connect(addr, &ca, b"http/1.1", None).await else {
                return "refused".to_owned();
            };
            let head = match i {
                0..20 => "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n",
                20..30 => "POST /mutate HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
                _ => "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n{\"apiVersion\"",
            };
            if tls.write_all(head.as_bytes()).await.is_err() {
                return "closed".to_owned();
            }
            let _ = tls.flush().await;
            if (20..30).contains(&i) {
                // 64 KiB chunks until the server stops reading (at most `hold`).
                let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                let deadline = Instant::now() + hold;
                while Instant::now() < deadline {
                    if tls.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
            let answer = read_answer(&mut tls, Duration::from_secs(5)).await;
            answer.lines().next().unwrap_or("closed").to_owned()
        }));
    }

    // Sample the server while the attack runs.
    let (mut max_rss, mut max_fds) = (0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        max_rss = max_rss.max(rss_kib(served.child.id()));
        max_fds = max_fds.max(open_fds(served.child.id()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for attacker in attackers {
        let outcome = tokio::time::timeout(Duration::from_secs(20), attacker)
            .await
            .expect("attacker finished")
            .unwrap();
        *outcomes.entry(outcome).or_default() += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    // Every hostile connection is gone once its deadline passed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(served.child.id()) > fds0 + 4 {
        assert!(
            Instant::now() < deadline,
            "connections left open: {} fds, {fds0} before",
            open_fds(served.child.id())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (sent, failed) = (
        tally.sent.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    let max_latency = Duration::from_micros(tally.max_latency_us.load(Ordering::SeqCst));
    println!(
        "hostile clients: {outcomes:?}; well-behaved: {sent} reviews, {failed} failed, slowest {max_latency:?}; \
         server RSS {rss0} KiB before, {max_rss} KiB at most; open files {fds0} before, {max_fds} at most"
    );
    assert_eq!(failed, 0, "well-behaved requests failed");
    assert!(sent > 200, "only {sent} well-behaved requests");
    assert!(
        max_latency < Duration::from_secs(5),
        "a well-behaved request took {max_latency:?}"
    );
    assert_eq!(outcomes.get("not closed"), None, "{outcomes:?}");
    assert_eq!(
        outcomes.get("HTTP/1.1 413 Payload Too Large"),
        Some(&30),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.get("HTTP/1.1 408 Request Timeout"),
        Some(&20),
        "{outcomes:?}"
    );
    // One file per connection at most (--max-connections 1024), plus the server's own.
    assert!(max_fds <= fds0 + 1024, "{max_fds} open files");
    assert!(
        max_rss < rss0 + 96 * 1024,
        "RSS grew from {rss0} KiB to {max_rss} KiB"
    );
}
