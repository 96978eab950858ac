//! Start-up, certificate rotation and shutdown, with clients sending all along.

use std::convert::Infallible;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

use super::support::*;

#[tokio::test]
async fn certificate_rotation_by_symlink_swap_under_load() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let first = pki.leaf("first");
    secret_volume_swap(dir.path(), "2026_11_26_01", &first);
    let config = config(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let server = Running::start_with(pki, dir, config).await;
    let review = fixture("pod-create.json");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let mut load = Vec::new();
    for (i, version) in VERSIONS.into_iter().enumerate() {
        let (stop, sent, failed, seen) = (stop.clone(), sent.clone(), failed.clone(), seen.clone());
        let (addr, ca) = (server.webhook, server.pki.ca_pem.clone());
        let review = review.clone();
        load.push(tokio::spawn(async move {
            // A kept-alive connection, and a new connection every few requests.
            let mut kept = Client::connect(addr, &ca, version, None).await.unwrap();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let result = if (n + i).is_multiple_of(4) {
                    match Client::connect(addr, &ca, version, None).await {
                        Ok(mut fresh) => {
                            seen.lock().unwrap().push(fresh.peer_cert.clone());
                            Ok(fresh.review("/mutate", &review).await.0)
                        }
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    Ok(kept.review("/mutate", &review).await.0)
                };
                sent.fetch_add(1, Ordering::SeqCst);
                if result != Ok(StatusCode::OK) {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = server.pki.leaf("second");
    secret_volume_swap(server.dir.path(), "2026_11_26_02", &second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.lock().unwrap().contains(&second.der) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 5s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A broken pair (this key does not belong to this certificate): the old pair keeps serving.
    let third = server.pki.leaf("third");
    let broken = Pair {
        cert_pem: third.cert_pem.clone(),
        key_pem: server.pki.leaf("other").key_pem,
        der: third.der.clone(),
    };
    secret_volume_swap(server.dir.path(), "2026_11_26_03", &broken);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = server.client(Version::Http1).await;
    assert_eq!(
        fresh.peer_cert, second.der,
        "the last good certificate is still served"
    );

    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent > 50, "only {sent} requests sent");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests during rotation"
    );
    assert!(!seen.lock().unwrap().contains(&third.der));

    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_tls_reloads_total{result="success"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_tls_reloads_total{result="failure"}"#
        ),
        1.0
    );
    println!("rotation under load: {sent} requests, 0 failed");
    server.stop().await;
}

/// A request body fed through a channel, so a test controls when it ends.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let mut served =
        serve_logged(&[], &["--shutdown-timeout", "10s", "--log-format", "json"]).await;
    let (webhook, metrics, pki) = (served.webhook, served.metrics, &served.pki);

    let body = serde_json::to_vec(&fixture("pod-create.json")).unwrap();
    let (head, tail) = body.split_at(body.len() / 2);
    // Three HTTP/1.1 requests and two HTTP/2 streams, each with half its body sent.
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        let mut stream = tls_connect(webhook, &pki.ca_pem, b"http/1.1", None)
            .await
            .unwrap();
        let (head, tail) = (head.to_vec(), tail.to_vec());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        in_flight.push((
            go,
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let request_head = format!(
                    "POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    head.len() + tail.len()
                );
                stream.write_all(request_head.as_bytes()).await.unwrap();
                stream.write_all(&head).await.unwrap();
                stream.flush().await.unwrap();
                let _ = wait.await;
                let answer = raw_http1(&mut stream, &[(&tail, Duration::ZERO)]).await;
                answer.starts_with("HTTP/1.1 200") && answer.contains("\"allowed\":true")
            }),
        ));
    }
    let tls = tls_connect(webhook, &pki.ca_pem, b"h2", None)
        .await
        .unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        tx.send(Bytes::copy_from_slice(head)).await.unwrap();
        let request = hyper::Request::post("https://127.0.0.1/mutate")
            .body(ChannelBody(rx))
            .unwrap();
        let mut sender = sender.clone();
        let response = tokio::spawn(async move { sender.send_request(request).await });
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let tail = Bytes::copy_from_slice(tail);
        in_flight.push((
            go,
            tokio::spawn(async move {
                let _ = wait.await;
                tx.send(tail).await.unwrap();
                drop(tx);
                let Ok(Ok(response)) = response.await else {
                    return false;
                };
                let ok = response.status() == StatusCode::OK;
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                ok && review["response"]["allowed"] == true
            }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: not ready, no new connections, but the process is still up.
    assert_eq!(
        http_get(metrics, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        tls_connect(webhook, &pki.ca_pem, b"http/1.1", None)
            .await
            .is_err()
    );
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "exited with requests in flight"
    );

    let mut completed = 0;
    for (go, task) in in_flight {
        let _ = go.send(());
        assert!(task.await.unwrap(), "an in-flight request failed");
        completed += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let logs = served.log();
    let reviews = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "admission review" && l["outcome"] == "patched")
        .count();
    assert_eq!(reviews, 5, "one structured log line per review:\n{logs}");
    println!("SIGTERM with {completed} requests in flight: all completed with 200, exit 0");
}

#[test]
fn start_up_fails_fast_with_a_clear_message() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &pki.leaf("kube-harden"));
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, pki.leaf("other").key_pem).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let missing = dir.path().join("missing.crt");
    let cases = [
        (missing.as_path(), key.as_path(), "missing.crt"),
        (
            cert.as_path(),
            other_key.as_path(),
            "do not form a usable pair",
        ),
        (garbage.as_path(), key.as_path(), "no CERTIFICATE"),
    ];
    for (cert, key, expected) in cases {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
            .args([
                "serve",
                "--webhook-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--webhook-addr",
        "--tls-cert-file",
        "KUBE_HARDEN_METRICS_ADDR",
        "--max-body-bytes",
        "--shutdown-timeout",
    ] {
        assert!(help.contains(flag), "serve --help lists {flag}");
    }
}

#[test]
fn out_of_range_flags_are_refused_before_start() {
    let cases: [(&[&str], &str); 6] = [
        (&["--max-body-bytes", "1023"], "1023 is not in 1024.."),
        (&["--request-timeout", "0s"], "must be greater than zero"),
        (
            &["--tls-reload-interval", "0ms"],
            "must be greater than zero",
        ),
        (&["--max-connections", "0"], "0 is not in 1.."),
        (&["--metrics-max-connections", "0"], "0 is not in 1.."),
        (&["--manage-certs"], "--cert-namespace"),
    ];
    for (flags, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
            .args(["serve", "--tls-cert-file", "c", "--tls-key-file", "k"])
            .args(flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(flags[0]), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_sustained_load_fails_no_request() {
    let mut served = serve_logged(
        &[],
        &[
            "--shutdown-delay",
            "2s",
            "--shutdown-timeout",
            "10s",
            "--log-level",
            "warn",
        ],
    )
    .await;
    let (webhook, metrics, pki) = (served.webhook, served.metrics, &served.pki);

    // Six clients, a review every 10 ms each: kept-alive HTTP/1.1 and HTTP/2, and clients that
    // open a new connection for every review (as the API server does past its idle pool).
    let review = fixture("pod-create.json");
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicBool::new(false));
    let (sent, after_term, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut load = Vec::new();
    for (i, version) in [VERSIONS, VERSIONS, VERSIONS]
        .concat()
        .into_iter()
        .enumerate()
    {
        let fresh_each_time = i >= 4;
        let (stop, terminated, sent, after_term, failed) = (
            stop.clone(),
            terminated.clone(),
            sent.clone(),
            after_term.clone(),
            failed.clone(),
        );
        let (ca, review) = (pki.ca_pem.clone(), review.clone());
        load.push(tokio::spawn(async move {
            let mut kept: Option<Client> = None;
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::SeqCst) {
                ticker.tick().await;
                let during_shutdown = terminated.load(Ordering::SeqCst);
                let client = match kept.take() {
                    Some(client) if !fresh_each_time => Ok(client),
                    _ => Client::connect(webhook, &ca, version, None).await,
                };
                let ok = match client {
                    Ok(mut client) => {
                        let answer = client
                            .request("POST", "/mutate", serde_json::to_vec(&review).unwrap())
                            .await;
                        let ok = matches!(answer, Ok((StatusCode::OK, _)));
                        kept = Some(client);
                        ok
                    }
                    Err(_) => false,
                };
                sent.fetch_add(1, Ordering::SeqCst);
                if during_shutdown {
                    after_term.fetch_add(1, Ordering::SeqCst);
                }
                if !ok {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let pid = served.child.id().to_string();
    terminated.store(true, Ordering::SeqCst);
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The API server stops calling this pod once the endpoints drop it, which readiness drives:
    // the clients stop half a second after /readyz fails, well inside the shutdown delay.
    while http_get(metrics, "/readyz").await.0 == StatusCode::OK {
        assert!(signalled.elapsed() < Duration::from_secs(2), "still ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (sent, after_term, failed) = (
        sent.load(Ordering::SeqCst),
        after_term.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
    );
    println!(
        "SIGTERM under load: {sent} reviews, {after_term} after the signal, {failed} failed; exit {status:?} after {:?}",
        signalled.elapsed()
    );
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(failed, 0, "failed requests around SIGTERM");
    assert!(after_term >= 100, "only {after_term} reviews after SIGTERM");
}
