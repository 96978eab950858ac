//! The webhook server over real sockets: TLS on 127.0.0.1 with certificates made here, real
//! HTTP/1.1 and HTTP/2 clients, real AdmissionReview bodies. Every returned patch is applied to
//! the request's object and the result checked. This file holds the shared fixtures and the
//! reviews themselves (every kind, updates, subresources, audit, opt-out, dry run); bad input
//! and the other endpoints are in the modules below.

use hyper::StatusCode;
use kube_harden::harden::WorkloadKind;
use serde_json::{Value, json};

use super::support::*;

mod bad_input;
mod endpoints;

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
