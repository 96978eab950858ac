//! The per-review budget (issue 11) over real sockets: annotations that repeat themselves, pods
//! with more containers or mounts than a review may cost, writable paths that would give a pod
//! the API server or the kubelet refuses, and the metrics' namespace label under many distinct
//! namespaces. The heaviest shapes run against the real binary in `make reliability`
//! (tests/it/reliability/budget.rs).

use std::collections::{BTreeSet, HashSet};

use hyper::StatusCode;
use kube_harden_testkit::hostile::{containers, pod_review};
use serde_json::{Value, json};

use super::support::*;

fn warnings(response: &Value) -> Vec<String> {
    response["response"]["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn repeated_annotation_items_are_warned_about_once_and_warnings_are_capped() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    let repeated = |item: &str| vec![item; 150_000].join(",");
    let distinct = (0..20_000)
        .map(|i| format!("x{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        ("kube-harden.io/skip", repeated("a"), 1),
        ("kube-harden.io/writable-paths", repeated("a"), 1),
        ("kube-harden.io/skip", distinct.clone(), 0),
        ("kube-harden.io/writable-paths", distinct, 0),
    ];
    for (annotation, value, expected_about_it) in cases {
        let review = pod_review("team-a", json!({annotation: value}), containers(1));
        let sent = serde_json::to_vec(&review).unwrap().len();
        let (status, bytes) = client
            .request("POST", "/mutate", serde_json::to_vec(&review).unwrap())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let response: Value = serde_json::from_slice(&bytes).unwrap();
        let warnings = warnings(&response);
        // At most 20 about the annotations and one line counting the rest, beside the usual ones
        // (what was added, how to opt out, findings, Pod Security).
        let about_it = warnings
            .iter()
            .filter(|w| w.contains(annotation) && w.ends_with("ignored"))
            .count();
        assert!(
            warnings.len() <= 30,
            "{annotation} ({sent} bytes): {} warnings, first {:?}",
            warnings.len(),
            warnings.first()
        );
        if expected_about_it > 0 {
            assert_eq!(about_it, expected_about_it, "{warnings:#?}");
        } else {
            assert!(
                warnings.iter().any(|w| w.contains("more problems")),
                "a summary line says how many were left out: {warnings:#?}"
            );
        }
        assert!(
            bytes.len() < 64 * 1024,
            "{annotation}: a {sent}-byte request got a {}-byte response",
            bytes.len()
        );
        // The pod is still hardened: the unknown or invalid items are ignored.
        let pod = apply_response_patch(&response, &review["request"]["object"]);
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    }
    server.stop().await;
}

#[tokio::test]
async fn more_containers_or_mounts_than_the_budget_are_admitted_unchanged() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http1).await;
    let paths = |n: usize| {
        (0..n)
            .map(|i| format!("/p{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let cases = [
        // Containers x writable paths: each path is a mount in every container.
        pod_review(
            "team-a",
            json!({"kube-harden.io/writable-paths": paths(50)}),
            containers(200),
        ),
        // Writable paths alone.
        pod_review(
            "team-a",
            json!({"kube-harden.io/writable-paths": paths(1000)}),
            containers(1),
        ),
        // Containers alone.
        pod_review("team-a", json!({}), containers(2000)),
    ];
    for review in &cases {
        let (status, bytes) = client
            .request("POST", "/mutate", serde_json::to_vec(review).unwrap())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let response: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(response["response"]["allowed"], true);
        assert!(
            response["response"]["patch"].is_null(),
            "admitted unchanged, not a {}-byte response",
            bytes.len()
        );
        let warnings = warnings(&response);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("admitted it unchanged") && w.contains("limit")),
            "{warnings:#?}"
        );
        assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    }
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(&metrics, "kube_harden_errors_total{reason=\"budget\"}"),
        3.0
    );
    // Within the budget, the same shapes are hardened as before.
    let review = pod_review(
        "team-a",
        json!({"kube-harden.io/writable-paths": paths(4)}),
        containers(50),
    );
    let (_, response) = client.review("/mutate", &review).await;
    let pod = apply_response_patch(&response, &review["request"]["object"]);
    for c in pod["spec"]["containers"].as_array().unwrap() {
        assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 5, "{c}");
    }
    server.stop().await;
}

/// Mount paths as the kubelet sees them: without trailing slashes.
fn clean(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }.to_owned()
}

#[tokio::test]
async fn writable_paths_never_give_a_pod_the_api_server_or_the_kubelet_refuses() {
    let server = Running::start(|_| {}).await;
    let mut client = server.client(Version::Http2).await;
    let annotation = "/tmp,/tmp/,/data,/data/,/cache,/proc,/proc/sys,/sys,/sys/fs/cgroup,/dev,\
                      /dev/shm,relative,/a/../b,/var/run,/var/run/,/var//run,/var/./run,/srv/x";
    let containers = json!([
        {"name": "app", "image": "app:1",
         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                          {"name": "cache", "mountPath": "/cache/"}]},
        {"name": "side", "image": "side:1"}
    ]);
    let mut review = pod_review(
        "team-a",
        json!({"kube-harden.io/writable-paths": annotation}),
        containers,
    );
    review["request"]["object"]["spec"]["volumes"] =
        json!([{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]);
    let (status, response) = client.review("/mutate", &review).await;
    assert_eq!(status, StatusCode::OK);
    let pod = apply_response_patch(&response, &review["request"]["object"]);
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes.iter().collect::<HashSet<_>>().len(),
        volumes.len(),
        "volume names are unique: {volumes:?}"
    );
    for c in pod["spec"]["containers"].as_array().unwrap() {
        let mounts: Vec<String> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| clean(m["mountPath"].as_str().unwrap()))
            .collect();
        let unique: BTreeSet<&String> = mounts.iter().collect();
        assert_eq!(unique.len(), mounts.len(), "unique mount paths: {mounts:?}");
        for m in &mounts {
            for kernel in ["/proc", "/sys", "/dev"] {
                assert!(
                    m != kernel && !m.starts_with(&format!("{kernel}/")),
                    "{m} in {mounts:?}"
                );
            }
            assert!(m.starts_with('/') && !m.contains(".."), "{m}");
        }
        assert!(mounts.contains(&"/tmp".to_owned()), "{mounts:?}");
        assert!(mounts.contains(&"/var/run".to_owned()), "{mounts:?}");
        assert!(mounts.contains(&"/srv/x".to_owned()), "{mounts:?}");
    }
    let warnings = warnings(&response);
    for refused in ["/tmp", "/proc", "/sys", "/dev", "relative", "/a/../b"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("\"{refused}")) && w.contains("ignored")),
            "{refused} is refused with a warning: {warnings:#?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_namespace_label_stays_bounded_whatever_namespaces_clients_send() {
    // --metrics-max-namespaces 20 (the default is 500).
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &pki.leaf("kube-harden"));
    let metrics = kube_harden::metrics::Metrics::with_max_namespaces(20);
    let server = Running::start_with_metrics(pki, dir, config(cert, key), metrics).await;
    let mut client = server.client(Version::Http2).await;
    let long = "n".repeat(10_000);
    let forged = ["Team\"A", "a\nb", long.as_str(), "-x", "UPPER"];
    let namespaces: Vec<String> = forged
        .iter()
        .map(|s| (*s).to_owned())
        .chain((0..40).map(|i| format!("ns-{i}")))
        .collect();
    for namespace in &namespaces {
        let review = pod_review(namespace, json!({}), containers(1));
        let (status, _) = client.review("/mutate", &review).await;
        assert_eq!(status, StatusCode::OK);
    }
    let metrics = server.metrics_text().await;
    let mut values = BTreeSet::new();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.split("namespace=\"").nth(1) {
            values.insert(rest.split('"').next().unwrap().to_owned());
        }
    }
    let expected: BTreeSet<String> = (0..20)
        .map(|i| format!("ns-{i}"))
        .chain(["_other".to_owned()])
        .collect();
    assert_eq!(
        values, expected,
        "the first 20 valid namespaces, then _other"
    );
    // Every review is still counted, whichever label it got.
    let changes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("kube_harden_changes_total{") && l.contains("change=\"fsGroup\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(changes, namespaces.len() as f64);
    assert_eq!(
        metric(
            &metrics,
            "kube_harden_changes_total{change=\"fsGroup\",kind=\"Pod\",namespace=\"_other\",outcome=\"applied\"}"
        ),
        25.0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_review_past_its_deadline_is_admitted_unchanged() {
    // A deadline no review can meet: every review is answered without its result.
    let server = Running::start(|c| c.review_timeout = std::time::Duration::from_nanos(1)).await;
    let mut client = server.client(Version::Http1).await;
    let paths = "/a,/b,/c,/d";
    let review = pod_review(
        "team-a",
        json!({"kube-harden.io/writable-paths": paths}),
        containers(250),
    );
    let (status, response) = client.review("/mutate", &review).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["uid"], review["request"]["uid"]);
    assert_eq!(response["response"]["allowed"], true);
    assert!(response["response"]["patch"].is_null(), "{response}");
    let warnings = warnings(&response);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("admitted it unchanged") && w.contains("did not finish within")),
        "{warnings:#?}"
    );
    assert_eq!(
        http_get(server.metrics, "/healthz").await,
        (StatusCode::OK, "ok\n".into())
    );
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(&metrics, "kube_harden_errors_total{reason=\"deadline\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "kube_harden_admission_requests_total{kind=\"Pod\",mode=\"enforce\",operation=\"CREATE\",outcome=\"error\"}"
        ),
        1.0
    );
    server.stop().await;
}
