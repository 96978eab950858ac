//! The webhook server over real sockets: TLS on 127.0.0.1 with certificates made here, real
//! HTTP/1.1 and HTTP/2 clients, real AdmissionReview bodies. Every returned patch is applied to
//! the request's object and the result checked.

use std::time::Duration;

use hyper::StatusCode;
use kube_harden::harden::WorkloadKind;
use serde_json::{Value, json};

use super::support::*;

fn legacy_pod() -> Value {
    fixture("pod-create.json")["request"]["object"].clone()
}

/// A workload of `kind` with one container, its template where the kind keeps it.
fn workload(kind: WorkloadKind) -> Value {
    let spec = json!({"containers": [{"name": "app", "image": "app:1", "futureField": "kept"}]});
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let mut object = json!({"apiVersion": kind.api_version(), "kind": kind.as_str(),
                            "metadata": {"name": "w", "namespace": "team-a"}});
    let path = kind
        .template_path()
        .expect("a workload kind has a pod template");
    *path.iter().fold(&mut object, |v, k| &mut v[*k]) = template;
    object
}

fn lookup<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, k| &v[*k])
}

#[tokio::test]
async fn pod_create_is_hardened_over_http1_and_http2() {
    let server = Running::start(|_| {}).await;
    for version in VERSIONS {
        let mut client = server.client(version).await;
        let review = fixture("pod-create.json");
        let (status, response) = client.review("/mutate", &review).await;
        assert_eq!(status, StatusCode::OK, "{version:?}");
        assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(response["kind"], "AdmissionReview");
        assert_eq!(response["response"]["uid"], review["request"]["uid"]);
        assert_eq!(response["response"]["allowed"], true);
        let pod = apply_response_patch(&response, &review["request"]["object"]);
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["spec"]["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
        assert_eq!(c["env"], json!([{"name": "TMPDIR", "value": "/tmp"}]));
        assert!(pod["metadata"]["annotations"]["kube-harden.io/hardened"].is_string());
        // Nothing outside what kube-harden owns changed: metadata and status are as sent.
        let mut sent_meta = review["request"]["object"]["metadata"].clone();
        let mut got_meta = pod["metadata"].clone();
        got_meta["annotations"] = Value::Null;
        sent_meta["annotations"] = Value::Null;
        assert_eq!(got_meta, sent_meta);
        assert_eq!(pod["status"], review["request"]["object"]["status"]);
        // Untouched fields are still there.
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        let warnings = response["response"]["warnings"].as_array().unwrap();
        assert!(
            warnings[0]
                .as_str()
                .unwrap()
                .starts_with("kube-harden added: "),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("kube-harden.io/skip"))
        );
        // The same connection serves a second request (keep-alive / multiplexing).
        let (status, again) = client.review("/mutate", &review).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["response"]["patch"], response["response"]["patch"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_workload_kind_is_hardened_on_create_and_update() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    for kind in WorkloadKind::all().filter(|k| *k != WorkloadKind::Pod) {
        let (group, resource) = (kind.group(), kind.plural());
        for operation in ["CREATE", "UPDATE"] {
            let object = workload(kind);
            let review = review_for(&object, group, kind.as_str(), resource, operation);
            let (status, response) = client.review("/mutate", &review).await;
            assert_eq!(status, StatusCode::OK);
            let hardened = apply_response_patch(&response, &object);
            let spec = lookup(&hardened, kind.pod_spec_path());
            assert_eq!(
                spec["securityContext"]["runAsNonRoot"], true,
                "{kind} {operation}"
            );
            assert_eq!(spec["containers"][0]["futureField"], "kept");
            let template = lookup(&hardened, kind.template_path().unwrap());
            assert!(template["metadata"]["annotations"]["kube-harden.io/hardened"].is_string());
            // Deterministic: the same template yields the same patch (GitOps diffs settle).
            let (_, again) = client.review("/mutate", &review).await;
            assert_eq!(again["response"]["patch"], response["response"]["patch"]);
            // The hardened template needs nothing more.
            let review = review_for(&hardened, group, kind.as_str(), resource, "UPDATE");
            let (_, settled) = client.review("/mutate", &review).await;
            assert!(
                settled["response"].get("patch").is_none(),
                "{kind}: {settled}"
            );
        }
    }
    let metrics = server.metrics_text().await;
    let patched = metric(
        &metrics,
        r#"kube_harden_admission_requests_total{kind="CronJob",mode="enforce",operation="UPDATE",outcome="patched"}"#,
    );
    assert_eq!(patched, 2.0);
    server.stop().await;
}

#[tokio::test]
async fn pod_updates_status_and_other_kinds_are_ignored() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http1).await;
    let pod = legacy_pod();
    let mut update = review_for(&pod, "", "Pod", "pods", "UPDATE");
    let (_, response) = client.review("/mutate", &update).await;
    assert!(response["response"].get("patch").is_none());
    assert_eq!(response["response"]["allowed"], true);
    update["request"]["subResource"] = json!("status");
    let (_, response) = client.review("/mutate", &update).await;
    assert!(response["response"].get("patch").is_none());
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
    let (_, response) = client
        .review(
            "/mutate",
            &review_for(&service, "", "Service", "services", "CREATE"),
        )
        .await;
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"].get("patch").is_none());
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_admission_requests_total{kind="other",mode="enforce",operation="CREATE",outcome="ignored"}"#
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn ephemeral_containers_subresource_hardens_only_new_ones() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    let pod = legacy_pod();
    let (_, created) = client
        .review("/mutate", &review_for(&pod, "", "Pod", "pods", "CREATE"))
        .await;
    let mut old = apply_response_patch(&created, &pod);
    old["spec"]["ephemeralContainers"] = json!([{"name": "debugger-1", "image": "busybox"}]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debugger-2", "image": "busybox", "stdin": true}));
    let mut review = review_for(&new, "", "Pod", "pods", "UPDATE");
    review["request"]["subResource"] = json!("ephemeralcontainers");
    review["request"]["oldObject"] = old.clone();
    let (status, response) = client.review("/mutate", &review).await;
    assert_eq!(status, StatusCode::OK);
    let patched = apply_response_patch(&response, &new);
    assert_eq!(
        patched["spec"]["ephemeralContainers"][0],
        old["spec"]["ephemeralContainers"][0]
    );
    let debug = &patched["spec"]["ephemeralContainers"][1];
    assert_eq!(debug["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(debug["volumeMounts"][0]["mountPath"], "/tmp");
    assert!(debug.get("resources").is_none());
    // Nothing but the new ephemeral container changed.
    let mut rest = patched.clone();
    rest["spec"]["ephemeralContainers"] = Value::Null;
    let mut before = new.clone();
    before["spec"]["ephemeralContainers"] = Value::Null;
    assert_eq!(rest, before);
    server.stop().await;
}

#[tokio::test]
async fn audit_never_patches_and_says_what_it_would_do() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http1).await;
    let review = fixture("pod-create.json");
    let (status, response) = client.review("/audit", &review).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"].get("patch").is_none());
    assert!(response["response"].get("patchType").is_none());
    let warning = response["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("kube-harden (audit) would add: runAsNonRoot"),
        "{warning}"
    );
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_changes_total{change="readOnlyRootFilesystem",kind="Pod",namespace="team-a",outcome="would_apply"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_admission_requests_total{kind="Pod",mode="audit",operation="CREATE",outcome="would_patch"}"#
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn opted_out_and_dry_run_requests() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    let mut pod = legacy_pod();
    pod["metadata"]["annotations"] = json!({"kube-harden.io/skip": "true"});
    let (_, response) = client
        .review("/mutate", &review_for(&pod, "", "Pod", "pods", "CREATE"))
        .await;
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"].get("patch").is_none());

    let mut dry = fixture("pod-create.json");
    dry["request"]["dryRun"] = json!(true);
    let (_, dry_response) = client.review("/mutate", &dry).await;
    let (_, real_response) = client.review("/mutate", &fixture("pod-create.json")).await;
    assert_eq!(
        dry_response["response"]["patch"],
        real_response["response"]["patch"]
    );

    let metrics = server.metrics_text().await;
    // Opted out: every change that would have applied is counted as skipped_optout.
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_changes_total{change="seccompProfile",kind="Pod",namespace="team-a",outcome="skipped_optout"}"#
        ),
        1.0
    );
    // The dry run is a request but not a change: only the real CREATE counts as applied.
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_changes_total{change="seccompProfile",kind="Pod",namespace="team-a",outcome="applied"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_admission_requests_total{kind="Pod",mode="enforce",operation="CREATE",outcome="patched"}"#
        ),
        2.0
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer() {
    let server = Running::start(|c| {
        c.max_body_bytes = 64 * 1024;
        c.request_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = server.client(Version::Http1).await;
    let status_of = |r: &(StatusCode, bytes::Bytes)| r.0;

    // Not JSON, invalid UTF-8: 400 with a reason.
    for body in [
        b"not json".to_vec(),
        vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'],
    ] {
        let r = client.request("POST", "/mutate", body).await.unwrap();
        assert_eq!(status_of(&r), StatusCode::BAD_REQUEST);
        assert!(
            String::from_utf8_lossy(&r.1).contains("not JSON"),
            "{:?}",
            r.1
        );
    }
    // JSON that is not a usable AdmissionReview: an invalid AdmissionResponse.
    let mut wrong_version = fixture("pod-create.json");
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_object = fixture("pod-create.json");
    no_object["request"]["object"] = Value::Null;
    let cases = [
        (json!({"hello": "world"}), "expected kind AdmissionReview"),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "no request",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}),
            "not an AdmissionReview",
        ),
        (wrong_version, "admission.k8s.io/v1beta1"),
        (no_object, "request.object is missing"),
    ];
    for (body, message) in cases {
        let (status, response) = client.review("/mutate", &body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(response["response"]["allowed"], false, "{body}");
        let text = response["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains(message), "{body}: {text}");
    }
    // An object the rules cannot read: admitted unchanged with a warning (fail-open).
    let mut broken = fixture("pod-create.json");
    broken["request"]["object"]["spec"]["containers"] = json!("not a list");
    let (status, response) = client.review("/mutate", &broken).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"].get("patch").is_none());
    let warning = response["response"]["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("admitted it unchanged") && warning.contains("spec.containers"),
        "{warning}"
    );

    // Too large: 413, by Content-Length and by actual size.
    let big = vec![b' '; 65 * 1024];
    let r = client.request("POST", "/mutate", big).await.unwrap();
    assert_eq!(status_of(&r), StatusCode::PAYLOAD_TOO_LARGE);
    let mut client = server.client(Version::Http2).await;
    let r = client
        .request("POST", "/mutate", vec![b' '; 65 * 1024])
        .await
        .unwrap();
    assert_eq!(status_of(&r), StatusCode::PAYLOAD_TOO_LARGE);
    // Wrong method and path.
    let r = client.request("GET", "/mutate", Vec::new()).await.unwrap();
    assert_eq!(status_of(&r), StatusCode::METHOD_NOT_ALLOWED);
    let r = client
        .request("POST", "/elsewhere", Vec::new())
        .await
        .unwrap();
    assert_eq!(status_of(&r), StatusCode::NOT_FOUND);

    // A client that stalls mid-body gets 408 and the connection is closed.
    let mut stream = tls_connect(server.webhook, &server.pki.ca_pem, b"http/1.1", None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let head = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"kind\":";
    let answer = raw_http1(&mut stream, &[(head, Duration::ZERO)]).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A client that stalls in the headers is disconnected.
    let mut stream = tls_connect(server.webhook, &server.pki.ca_pem, b"http/1.1", None)
        .await
        .unwrap();
    let answer = raw_http1(
        &mut stream,
        &[(b"POST /mutate HTTP/1.1\r\nhost:", Duration::ZERO)],
    )
    .await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(8));

    // The server still answers well-formed requests.
    let mut client = server.client(Version::Http1).await;
    let (status, _) = client.review("/mutate", &fixture("pod-create.json")).await;
    assert_eq!(status, StatusCode::OK);

    let metrics = server.metrics_text().await;
    for (reason, count) in [
        ("malformed_body", 2.0),
        ("not_admission_review", 1.0),
        ("missing_request", 1.0),
        ("wrong_api_version", 2.0),
        ("missing_object", 1.0),
        ("harden", 1.0),
        ("body_too_large", 2.0),
        ("body_timeout", 1.0),
    ] {
        let line = format!(r#"kube_harden_errors_total{{reason="{reason}"}}"#);
        assert_eq!(metric(&metrics, &line), count, "{line}\n{metrics}");
    }
    assert_eq!(
        metric(
            &metrics,
            r#"kube_harden_admission_requests_total{kind="Pod",mode="enforce",operation="CREATE",outcome="error"}"#
        ),
        1.0
    );
    server.stop().await;
}

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
