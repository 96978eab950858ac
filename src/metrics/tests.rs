//! Tests of the namespace label cap.

use super::*;
use std::time::Duration;

#[test]
fn namespace_labels_are_capped_and_validated() {
    let namespaces = Namespaces {
        limit: 2,
        known: Mutex::new(HashSet::new()),
    };
    assert_eq!(namespaces.label("team-a"), "team-a");
    assert_eq!(namespaces.label("team-b"), "team-b");
    assert_eq!(namespaces.label("team-c"), OTHER_NAMESPACE);
    assert_eq!(
        namespaces.label("team-a"),
        "team-a",
        "a known one keeps its place"
    );
    assert_eq!(namespaces.label(""), "");
    for forged in ["Team", "a\nb", "-a", "a-", "a\"b", &"n".repeat(64)] {
        assert!(!is_namespace_name(forged), "{forged:?}");
    }
    assert!(is_namespace_name(&"n".repeat(63)));
    assert!(is_namespace_name("kube-system"));
    assert!(is_namespace_name("0"));
}

#[test]
fn each_family_is_exposed_with_its_labels_in_place() {
    let metrics = Metrics::with_max_namespaces(1);
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "team-a", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod",
                "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    });
    let reviewed = crate::admission::review(
        &serde_json::to_vec(&body).unwrap(),
        Mode::Audit,
        &crate::harden::Policy::default(),
    );
    metrics.record_review(Mode::Audit, &reviewed.report, Duration::from_millis(3));
    metrics.error("accept");
    metrics.tls_reload(false);
    metrics.cert_check(true);
    metrics.cert_renewal("serving", WriteResult::Conflict);
    metrics.ca_bundle_update(WriteResult::Failure);
    let images = metrics.registry();
    images.lookup(true);
    images.lookup(true);
    images.lookup(false);
    images.fetched(
        Duration::from_millis(7),
        Some(crate::registry::Reason::NotFound),
    );
    images.fetched(Duration::from_millis(40), None);
    images.fallback(crate::registry::Reason::Timeout);
    images.cache_size(2, 1234);
    let text = String::from_utf8(metrics.encode()).unwrap();
    for line in [
        r#"kube_harden_admission_requests_total{kind="Pod",mode="audit",operation="CREATE",outcome="would_patch"} 1"#,
        r#"kube_harden_changes_total{change="seccompProfile",kind="Pod",namespace="team-a",outcome="would_apply"} 1"#,
        r#"kube_harden_admission_duration_seconds_bucket{mode="audit",le="0.005"} 1"#,
        r#"kube_harden_admission_duration_seconds_bucket{mode="audit",le="0.0025"} 0"#,
        r#"kube_harden_errors_total{reason="accept"} 1"#,
        r#"kube_harden_tls_reloads_total{result="failure"} 1"#,
        r#"kube_harden_cert_checks_total{result="success"} 1"#,
        r#"kube_harden_cert_renewals_total{kind="serving",result="conflict"} 1"#,
        r#"kube_harden_ca_bundle_updates_total{result="failure"} 1"#,
        r#"kube_harden_restricted_compliant_total{compliant="true",kind="Pod",namespace="team-a"} 1"#,
        r#"kube_harden_image_cache_lookups_total{result="hit"} 2"#,
        r#"kube_harden_image_cache_lookups_total{result="miss"} 1"#,
        r#"kube_harden_image_fetch_duration_seconds_bucket{le="0.005"} 0"#,
        r#"kube_harden_image_fetch_duration_seconds_bucket{le="0.01"} 1"#,
        r#"kube_harden_image_fetch_duration_seconds_bucket{le="0.05"} 2"#,
        r#"kube_harden_image_fetch_duration_seconds_bucket{le="30"} 2"#,
        r#"kube_harden_image_fetch_duration_seconds_count 2"#,
        r#"kube_harden_image_fetch_errors_total{reason="not_found"} 1"#,
        r#"kube_harden_image_fallbacks_total{reason="timeout"} 1"#,
        r#"kube_harden_image_cache_entries 2"#,
        r#"kube_harden_image_cache_bytes 1234"#,
        &format!(
            r#"kube_harden_build_info{{version="{}"}} 1"#,
            crate::VERSION
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
}
