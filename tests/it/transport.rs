//! The transport under attack (issue 11, items 5, 8 and 9): certificate pairs outside their
//! validity, log injection through request fields, and the limit on open files raised at start.

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::Value;

use super::support::*;

#[tokio::test]
async fn text_logs_escape_request_controlled_strings() {
    let served = serve_logged(&[], &["--log-format", "text", "--log-level", "info"]).await;
    let forged =
        "a\nlevel=ERROR msg=\"forged\" \u{1b}[2J\u{1b}[31mred\r\n2026-01-01T00:00:00Z ERROR x";
    let mut review = fixture("pod-create.json");
    let request = review.get_mut("request").unwrap();
    request["uid"] = Value::from(forged);
    request["namespace"] = Value::from(format!("ns{forged}"));
    request["name"] = Value::from(format!("name{forged}"));
    request["object"]["metadata"]["name"] = Value::from(format!("name{forged}"));
    request["object"]["metadata"]["annotations"] =
        serde_json::json!({"kube-harden.io/writable-paths": format!("/x{forged}")});
    let mut client = Client::connect(served.webhook, &served.pki.ca_pem, Version::Http1, None)
        .await
        .unwrap();
    let (status, answer) = client.review("/mutate", &review).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["response"]["uid"], forged,
        "the uid is echoed as sent"
    );
    // The review's line is written before the answer is sent.
    let log = served.log();
    assert!(log.contains("admission review"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "an escape sequence reached the log: {log:?}"
    );
    assert!(
        !log.contains('\r'),
        "a carriage return reached the log: {log:?}"
    );
    for line in log.lines() {
        let line = line.trim_start();
        assert!(
            !line.starts_with("level=ERROR") && !line.starts_with("2026-01-01T00:00:00Z"),
            "a forged line: {line:?}\n{log}"
        );
    }
    let review_line = log
        .lines()
        .find(|l| l.contains("admission review"))
        .unwrap();
    // Each field is one quoted, escaped value on the review's own line.
    for field in ["uid=", "namespace=", "name="] {
        assert!(
            review_line.contains(&format!(
                r#"{field}"{}"#,
                if field == "uid=" { "a" } else { "" }
            )),
            "{field} quoted: {review_line}"
        );
    }
    assert!(
        review_line.contains(r#"\nlevel=ERROR msg=\"forged\""#),
        "{review_line}"
    );
    assert!(review_line.contains(r"\u{1b}[31m"), "{review_line}");
}

fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

#[tokio::test]
async fn expired_and_not_yet_valid_pairs_are_refused_on_reload() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let good = pki.leaf("good");
    secret_volume_swap(dir.path(), "01", &good);
    let config = config(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let server = Running::start_with(pki, dir, config).await;
    let failures = r#"kube_harden_tls_reloads_total{result="failure"}"#;
    let successes = r#"kube_harden_tls_reloads_total{result="success"}"#;

    let expired = server
        .pki
        .leaf_valid("expired", Some((days_from_now(-30), days_from_now(-1))));
    let not_yet = server
        .pki
        .leaf_valid("not-yet-valid", Some((days_from_now(1), days_from_now(30))));
    for (n, (stamp, pair)) in [("02", &expired), ("03", &not_yet)].into_iter().enumerate() {
        secret_volume_swap(server.dir.path(), stamp, pair);
        let deadline = Instant::now() + Duration::from_secs(5);
        while metric(&server.metrics_text().await, failures) < (n + 1) as f64 {
            assert!(Instant::now() < deadline, "reload failure not counted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Some more polls: counted once, never loaded, the good pair still served.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let metrics = server.metrics_text().await;
        assert_eq!(metric(&metrics, failures), (n + 1) as f64);
        assert_eq!(metric(&metrics, successes), 0.0);
        let fresh = server.client(Version::Http2).await;
        assert_eq!(fresh.peer_cert, good.der, "the good pair is still served");
    }
    // A valid pair after them is served.
    let next = server.pki.leaf("next");
    secret_volume_swap(server.dir.path(), "04", &next);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.client(Version::Http1).await.peer_cert != next.der {
        assert!(
            Instant::now() < deadline,
            "the next valid pair was not served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&server.metrics_text().await, successes), 1.0);
    server.stop().await;
}

#[test]
fn start_up_refuses_a_pair_outside_its_validity() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            pki.leaf_valid("expired", Some((days_from_now(-30), days_from_now(-1)))),
            "expired at",
        ),
        (
            pki.leaf_valid("later", Some((days_from_now(1), days_from_now(30)))),
            "is not valid before",
        ),
    ];
    for (pair, expected) in cases {
        let (cert, key) = write_pair(dir.path(), &pair);
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
            .args(["serve", "--webhook-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a server that starts with the pair would run until killed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{expected}: the server started with this pair");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains("tls.crt"),
            "{expected}: {stderr}"
        );
    }
}

fn soft_nofile(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[tokio::test]
async fn the_soft_limit_on_open_files_is_raised_at_start() {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .expect("prlimit (util-linux) is needed by this test");
    let served = serve_logged(&["prlimit", "--nofile=1024:4096"], &[]).await;
    assert_eq!(soft_nofile(served.child.id()), "4096");
    let log = served.log();
    assert!(log.contains("soft limit raised"), "{log}");
    assert!(!log.contains("lowered"), "{log}");

    // With the hard limit at 1024 it cannot be raised: the default caps are lowered to fit.
    let served = serve_logged(&["prlimit", "--nofile=1024:1024"], &[]).await;
    assert_eq!(soft_nofile(served.child.id()), "1024");
    let log = served.log();
    assert!(log.contains("nothing raised"), "{log}");
    assert!(
        log.contains("lowered") && log.contains("max_connections=928"),
        "{log}"
    );
    let (status, _) = http_get(served.metrics, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
