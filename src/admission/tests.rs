//! `review` called directly: request bytes in, status, answer bytes and report out.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Value, json};

use super::*;

/// An AdmissionReview of `object` (kind from its group and kind) with `operation`.
fn request(group: &str, kind: &str, operation: &str, object: Option<Value>) -> Vec<u8> {
    let mut req = json!({
        "uid": "u-1",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": "x"},
        "name": "web",
        "namespace": "team-a",
        "operation": operation,
        "userInfo": {"username": "admin"},
    });
    if let Some(object) = object {
        req["object"] = object;
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": req,
    }))
    .unwrap()
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
}

fn answer(reviewed: &Reviewed) -> Value {
    serde_json::from_slice(&reviewed.body).unwrap()
}

/// The exact bytes of an allowed answer without patch or warnings.
const ALLOWED_U1: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-1","allowed":true,"status":{}}}"#;

#[test]
fn bodies_that_are_no_usable_review() {
    // (body, HTTP status, error label, start of the message)
    let cases: [(&[u8], u16, &str, &str); 5] = [
        (b"{not json", 400, "malformed_body", "request body is not JSON"),
        (b"[1, 2]", 200, "not_admission_review", "not an AdmissionReview"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#,
            200,
            "wrong_api_version",
            "expected kind AdmissionReview",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            200,
            "missing_request",
            "AdmissionReview has no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#,
            200,
            "missing_object",
            "request.object is missing",
        ),
    ];
    for (body, status, label, message) in cases {
        let reviewed = review(body, Mode::Enforce, &Policy::default());
        let what = String::from_utf8_lossy(body);
        assert_eq!(reviewed.status, status, "{what}");
        let (got_label, got_message) = reviewed.report.error.clone().unwrap();
        assert_eq!(got_label, label, "{what}");
        assert!(got_message.starts_with(message), "{what}: {got_message}");
        if status == 400 {
            assert_eq!(reviewed.body, got_message.as_bytes());
            continue;
        }
        assert_eq!(reviewed.report.outcome, RequestOutcome::Invalid, "{what}");
        let response = &answer(&reviewed)["response"];
        assert_eq!(response["allowed"], false, "{what}");
        assert_eq!(
            response["status"]["message"],
            got_message.as_str(),
            "{what}"
        );
        // The uid is echoed whenever the request had one.
        let uid = if label == "wrong_api_version" || label == "missing_object" {
            "u-1"
        } else {
            ""
        };
        assert_eq!(response["uid"], uid, "{what}");
    }
}

#[test]
fn requests_not_hardened_are_allowed_as_they_are() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
    let cases = [
        (
            "Service CREATE",
            request("", "Service", "CREATE", Some(service)),
        ),
        ("Pod DELETE", request("", "Pod", "DELETE", Some(pod()))),
        ("Pod UPDATE", request("", "Pod", "UPDATE", Some(pod()))),
        (
            "Deployment DELETE",
            request("apps", "Deployment", "DELETE", None),
        ),
    ];
    for (what, body) in cases {
        for mode in [Mode::Enforce, Mode::Audit] {
            let reviewed = review(&body, mode, &Policy::default());
            assert_eq!(reviewed.status, 200, "{what}");
            assert_eq!(
                String::from_utf8_lossy(&reviewed.body),
                ALLOWED_U1,
                "{what}"
            );
            assert_eq!(reviewed.report.outcome, RequestOutcome::Ignored, "{what}");
            assert!(reviewed.report.changes.is_empty(), "{what}");
        }
    }
}

#[test]
fn a_pod_is_patched_on_enforce_and_only_warned_about_on_audit() {
    let body = request("", "Pod", "CREATE", Some(pod()));
    let enforce = review(&body, Mode::Enforce, &Policy::default());
    assert_eq!(enforce.status, 200);
    assert_eq!(enforce.report.outcome, RequestOutcome::Patched);
    assert_eq!(
        (enforce.report.kind, enforce.report.operation),
        ("Pod", "CREATE")
    );
    assert_eq!(
        (
            enforce.report.namespace.as_str(),
            enforce.report.name.as_str()
        ),
        ("team-a", "web")
    );
    let response = &answer(&enforce)["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let warnings = response["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("kube-harden added: ")
    );
    let patch = BASE64_STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut hardened = pod();
    json_patch::patch(&mut hardened, &patch).unwrap();
    assert_eq!(
        hardened.pointer("/spec/containers/0/securityContext/allowPrivilegeEscalation"),
        Some(&json!(false))
    );

    let audit = review(&body, Mode::Audit, &Policy::default());
    assert_eq!(audit.report.outcome, RequestOutcome::WouldPatch);
    let response = &answer(&audit)["response"];
    assert!(
        response.get("patch").is_none(),
        "audit never patches: {response}"
    );
    let first = response["warnings"][0].as_str().unwrap();
    assert!(
        first.starts_with("kube-harden (audit) would add: "),
        "{first}"
    );
    assert_eq!(audit.report.changes.len(), enforce.report.changes.len());

    // The hardened pod, reviewed again, is unchanged: allowed without a patch.
    let again = review(
        &request("", "Pod", "CREATE", Some(hardened)),
        Mode::Enforce,
        &Policy::default(),
    );
    assert_eq!(again.report.outcome, RequestOutcome::Unchanged);
    assert!(answer(&again)["response"].get("patch").is_none());
}

#[test]
fn unreadable_objects_are_admitted_unchanged_with_a_warning() {
    let broken = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "nope"}});
    let ephemeral = {
        let mut body: Value =
            serde_json::from_slice(&request("", "Pod", "UPDATE", Some(pod()))).unwrap();
        body["request"]["subResource"] = json!("ephemeralcontainers");
        serde_json::to_vec(&body).unwrap()
    };
    let cases = [
        (
            "containers not a list",
            request("", "Pod", "CREATE", Some(broken)),
        ),
        ("ephemeral without oldObject", ephemeral),
    ];
    for (what, body) in cases {
        let reviewed = review(&body, Mode::Enforce, &Policy::default());
        assert_eq!(reviewed.status, 200, "{what}");
        assert_eq!(reviewed.report.outcome, RequestOutcome::Error, "{what}");
        let (_, message) = reviewed.report.error.clone().unwrap();
        let response = &answer(&reviewed)["response"];
        assert_eq!(response["allowed"], true, "{what}");
        assert!(response.get("patch").is_none(), "{what}");
        assert_eq!(
            response["warnings"],
            json!([format!(
                "kube-harden could not harden this object and admitted it unchanged: {message}"
            )]),
            "{what}"
        );
    }
}

#[test]
fn admit_unchanged_reads_only_the_envelope() {
    let body = request("apps", "Deployment", "CREATE", Some(json!({"spec": 1})));
    let reviewed = admit_unchanged(&body, "timeout", "too slow".into());
    assert_eq!(reviewed.status, 200);
    assert_eq!(reviewed.report.kind, "Deployment");
    assert_eq!(
        reviewed.report.error,
        Some(("timeout", "too slow".to_owned()))
    );
    assert_eq!(
        String::from_utf8_lossy(&reviewed.body),
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-1","allowed":true,"status":{},"warnings":["kube-harden could not harden this object and admitted it unchanged: too slow"]}}"#
    );
    // Not JSON at all: still an answer, without a uid.
    let reviewed = admit_unchanged(b"{", "timeout", "too slow".into());
    assert_eq!(reviewed.report.kind, "");
    assert_eq!(answer(&reviewed)["response"]["uid"], "");
}

#[test]
fn change_labels_say_would_apply_in_audit() {
    assert_eq!(change_label(Mode::Audit, Outcome::Applied), "would_apply");
    assert_eq!(
        change_label(Mode::Enforce, Outcome::Applied),
        Outcome::Applied.label()
    );
}

/// A body that is not UTF-8 is read as bytes, as the parser always read it: invalid UTF-8 in a
/// member the parser skips (here `request.userInfo`) still makes a valid review, answered as if it
/// were valid; in a string of the object it is the parser's own error, with its position.
#[test]
fn bodies_that_are_not_utf8() {
    let with_user = |user: &[u8]| {
        let body = request("", "Pod", "CREATE", Some(pod()));
        let at = body.windows(7).position(|w| w == b"\"admin\"").unwrap() + 1;
        [&body[..at], user, &body[at + 5..]].concat()
    };
    let valid = review(&with_user(b"ok"), Mode::Enforce, &Policy::default());
    let invalid = review(&with_user(&[0xff, 0xfe]), Mode::Enforce, &Policy::default());
    assert_eq!(valid.status, 200);
    assert_eq!(invalid.status, valid.status);
    assert_eq!(invalid.body, valid.body);
    assert_eq!(invalid.report.outcome, RequestOutcome::Patched);

    let mut object = pod();
    object["spec"]["containers"][0]["image"] = json!("@");
    let body = request("", "Pod", "CREATE", Some(object));
    let at = body.iter().position(|b| *b == b'@').unwrap();
    let body = [&body[..at], &[0xff], &body[at + 1..]].concat();
    let reviewed = review(&body, Mode::Enforce, &Policy::default());
    let expected = serde_json::from_slice::<ReviewIn>(&body).err().unwrap();
    assert!(
        expected.to_string().contains("invalid unicode"),
        "{expected}"
    );
    assert_eq!(reviewed.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&reviewed.body),
        format!("request body is not JSON: {expected}")
    );
}
