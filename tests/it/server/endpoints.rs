//! The server's other endpoints and what they report: `/healthz`, `/readyz` and `/metrics`,
//! client certificates when configured, and findings reaching the review's warnings and the
//! metrics.

use hyper::StatusCode;
use serde_json::json;

use super::super::support::*;
use super::legacy_pod;

#[tokio::test]
async fn health_and_metrics_endpoints() {
    let server = Running::start(|_| {}).await;
    assert_eq!(
        http_get(server.metrics, "/healthz").await,
        (StatusCode::OK, "ok\n".into())
    );
    assert_eq!(
        http_get(server.metrics, "/readyz").await,
        (StatusCode::OK, "ok\n".into())
    );
    assert_eq!(
        http_get(server.metrics, "/nope").await.0,
        StatusCode::NOT_FOUND
    );
    let metrics = server.metrics_text().await;
    assert!(metrics.contains(&format!(
        "kube_harden_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        metric(
            &metrics,
            "kube_harden_tls_certificate_expiry_timestamp_seconds"
        ) > 1.7e9
    );
    assert!(metrics.contains("process_resident_memory_bytes"));

    // One review: its duration is one observation in its mode's histogram, with every bucket.
    let mut client = server.client(Version::Http1).await;
    let (status, _) = client.review("/mutate", &fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = server.metrics_text().await;
    for series in [
        r#"kube_harden_admission_duration_seconds_count{mode="enforce"}"#,
        r#"kube_harden_admission_duration_seconds_bucket{mode="enforce",le="+Inf"}"#,
    ] {
        assert_eq!(metric(&metrics, series), 1.0, "{series}\n{metrics}");
    }
    assert!(
        metrics.contains(
            "kube_harden_admission_duration_seconds_bucket{mode=\"enforce\",le=\"0.0001\"} "
        ),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_are_verified_when_configured() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &pki.leaf("kube-harden"));
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let client_pair = pki.client("kube-apiserver");
    let stranger = Pki::new().client("stranger");
    let mut config = config(cert, key);
    config.client_ca_file = Some(ca_file);
    let server = Running::start_with(pki, dir, config).await;

    let mut good = Client::connect(
        server.webhook,
        &server.pki.ca_pem,
        Version::Http2,
        Some(&client_pair),
    )
    .await
    .expect("a client certificate from the CA is accepted");
    let (status, _) = good.review("/mutate", &fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::OK);
    for cert in [None, Some(&stranger)] {
        let result = async {
            let mut c =
                Client::connect(server.webhook, &server.pki.ca_pem, Version::Http1, cert).await?;
            c.request("POST", "/mutate", "{}")
                .await
                .map_err(std::io::Error::other)
        }
        .await;
        assert!(
            result.is_err(),
            "a client without a trusted certificate is refused"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn findings_reach_warnings_and_metrics() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    let mut agent = legacy_pod();
    agent["spec"]["hostNetwork"] = json!(true);
    agent["spec"]["hostPID"] = json!(true);
    agent["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    agent["spec"]["containers"][0]["image"] = json!("example.com/agent");
    let side = json!({"name": "side", "image": "example.com/side:latest"});
    agent["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(side);
    for path in ["/mutate", "/audit"] {
        let (_, response) = client
            .review(path, &review_for(&agent, "", "Pod", "pods", "CREATE"))
            .await;
        let warnings: Vec<&str> = response["response"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        for expected in [
            "kube-harden finding: noLivenessProbe (container web): no livenessProbe: a hung process is never restarted",
            "kube-harden finding: imageLatest (container web): image example.com/agent has no tag or is :latest: what runs can change under you",
            // The sixth finding (side's imageLatest) is only counted: at most five become warnings.
            "kube-harden: 1 more findings (kube-harden harden --findings lists them all)",
        ] {
            assert!(
                warnings.contains(&expected),
                "{path}: {expected}\n{warnings:#?}"
            );
        }
        // What Pod Security reports is warned about once, by its check, not again as a finding.
        let last = warnings.last().unwrap();
        assert_eq!(
            *last,
            "kube-harden: still fails Pod Security restricted: hostNamespaces, privileged, \
             allowPrivilegeEscalation, runAsNonRoot, capabilities_restricted",
            "{path}"
        );
        for check in ["privileged", "hostNetwork", "hostPID"] {
            let naming = warnings.iter().filter(|w| w.contains(check)).count();
            assert!(
                naming <= 1,
                "{path}: {check} warned {naming} times\n{warnings:#?}"
            );
        }
    }
    // A plain legacy pod is compliant once hardened.
    let (_, response) = client.review("/mutate", &fixture("pod-create.json")).await;
    let warnings = response["response"]["warnings"].as_array().unwrap();
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("still fails")),
        "{warnings:?}"
    );

    let metrics = server.metrics_text().await;
    for (series, value) in [
        (
            r#"kube_harden_findings_total{finding="imageLatest",kind="Pod",namespace="team-a"}"#,
            4.0,
        ),
        // Counted by kube_harden_restricted_compliant_total, not again as a finding.
        (
            r#"kube_harden_findings_total{finding="privileged",kind="Pod",namespace="team-a"}"#,
            0.0,
        ),
        (
            r#"kube_harden_findings_total{finding="noLivenessProbe",kind="Pod",namespace="team-a"}"#,
            5.0,
        ),
        (
            r#"kube_harden_restricted_compliant_total{compliant="false",kind="Pod",namespace="team-a"}"#,
            2.0,
        ),
        (
            r#"kube_harden_restricted_compliant_total{compliant="true",kind="Pod",namespace="team-a"}"#,
            1.0,
        ),
    ] {
        assert_eq!(metric(&metrics, series), value, "{series}");
    }
    server.stop().await;
}
