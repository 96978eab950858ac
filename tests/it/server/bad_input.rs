//! Bad input to the webhook over real sockets: bodies that are not JSON or not an
//! AdmissionReview, too large or too slow, wrong methods and paths. Each gets a clear answer,
//! never a crash or a hang.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::super::support::*;

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
