//! The AdmissionReview bodies kube-harden's tests (tests/it) and benchmarks (bench) send, in one
//! place: the review envelope around an object, and the hostile shapes of the per-review budget
//! (issue 11). Plain JSON values, no kube-harden types, so that any crate of the workspace can use
//! them without building kube-harden twice.

pub mod hostile;

use serde_json::{Value, json};

/// An AdmissionReview (`admission.k8s.io/v1`) asking to `operation` (`CREATE`, `UPDATE`, ...)
/// `object` of `kind` in API group `group` (`""` for core), version v1, as user `tester` in
/// namespace `team-a`. An UPDATE's old object is the object itself.
pub fn review_for(
    object: &Value,
    group: &str,
    kind: &str,
    resource: &str,
    operation: &str,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{kind}-{operation}"),
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "tester"},
            "object": object,
            "oldObject": if operation == "UPDATE" { object.clone() } else { Value::Null },
            "dryRun": false,
        }
    })
}
