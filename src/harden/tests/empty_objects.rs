//! Empty objects (`{}`) in the pod spec: each one that receives fields is written as one `add`
//! of the whole object, and the patched object is what hardening the same object without the
//! `{}` gives (an empty object counts as missing; nothing the author wrote is changed).

use super::*;
use crate::harden::overlay::tests::paths;

/// Hardens `object`, checks the patch gives what hardening `without` (the same object without
/// its `{}`) gives, and returns the operations' paths and values.
fn ops_against(object: &Value, without: &Value) -> Vec<(String, Value)> {
    let (h, out) = run(object);
    let (_, expected) = run(without);
    assert_eq!(out, expected, "{:?}", h.patch);
    paths(&h.patch.0)
        .into_iter()
        .zip(h.patch.0.iter().map(|op| Value::from(op.value.clone())))
        .collect()
}

fn value_at<'a>(ops: &'a [(String, Value)], path: &str) -> Option<&'a Value> {
    ops.iter().find(|(p, _)| p == path).map(|(_, v)| v)
}

#[test]
fn an_empty_pod_security_context_is_one_add() {
    let ops = ops_against(
        &pod(json!({"securityContext": {}, "containers": [{"name": "a", "image": "a"}]})),
        &pod(json!({"containers": [{"name": "a", "image": "a"}]})),
    );
    let context = value_at(&ops, "/spec/securityContext").expect("one add of the object");
    let keys: Vec<&str> = context
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "fsGroup",
            "fsGroupChangePolicy",
            "seccompProfile"
        ]
    );
    assert!(
        !ops.iter()
            .any(|(p, _)| p.starts_with("/spec/securityContext/")),
        "{ops:?}"
    );
}

#[test]
fn empty_container_resources_and_security_context_are_one_add_each() {
    let ops = ops_against(
        &pod(
            json!({"containers": [{"name": "a", "image": "a", "resources": {}, "securityContext": {}}]}),
        ),
        &pod(json!({"containers": [{"name": "a", "image": "a"}]})),
    );
    let resources = value_at(&ops, "/spec/containers/0/resources").expect("resources whole");
    assert!(
        resources["requests"].is_object() && resources["limits"].is_object(),
        "{resources}"
    );
    let context = value_at(&ops, "/spec/containers/0/securityContext").expect("context whole");
    assert_eq!(context["readOnlyRootFilesystem"], true);
    assert!(
        !ops.iter()
            .any(|(p, _)| p.starts_with("/spec/containers/0/resources/")
                || p.starts_with("/spec/containers/0/securityContext/")),
        "{ops:?}"
    );
}

/// An empty object under a non-empty one is added whole; the non-empty one keeps an `add` per
/// missing member, and a non-empty object's operations are as before.
#[test]
fn an_empty_object_under_a_kept_one_and_non_empty_objects() {
    let input = pod(json!({"securityContext": {"runAsUser": 1000},
                           "containers": [{"name": "a", "image": "a",
                                           "securityContext": {"privileged": false, "capabilities": {}},
                                           "resources": {"requests": {}, "limits": {"memory": "1Gi"}}}]}));
    let without = pod(json!({"securityContext": {"runAsUser": 1000},
                             "containers": [{"name": "a", "image": "a",
                                             "securityContext": {"privileged": false},
                                             "resources": {"limits": {"memory": "1Gi"}}}]}));
    let ops = ops_against(&input, &without);
    assert_eq!(
        value_at(&ops, "/spec/containers/0/securityContext/capabilities"),
        Some(&json!({"drop": ["ALL"]}))
    );
    assert!(
        value_at(
            &ops,
            "/spec/containers/0/securityContext/readOnlyRootFilesystem"
        )
        .is_some(),
        "{ops:?}"
    );
    assert!(
        value_at(&ops, "/spec/securityContext/runAsNonRoot").is_some(),
        "{ops:?}"
    );
    assert!(
        value_at(&ops, "/spec/containers/0/resources/requests").is_some(),
        "{ops:?}"
    );
    assert!(
        value_at(&ops, "/spec/containers/0/resources/limits/cpu").is_some(),
        "{ops:?}"
    );
    assert!(
        !ops.iter()
            .any(|(p, _)| p.starts_with("/spec/containers/0/resources/requests/"))
    );
}

#[test]
fn a_templates_empty_objects_are_one_add_each() {
    let deployment = |spec: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
               "spec": {"template": {"metadata": {}, "spec": spec}}})
    };
    let ops = ops_against(
        &deployment(
            json!({"securityContext": {}, "containers": [{"name": "a", "image": "a", "resources": {}}]}),
        ),
        &deployment(json!({"containers": [{"name": "a", "image": "a"}]})),
    );
    for path in [
        "/spec/template/spec/securityContext",
        "/spec/template/spec/containers/0/resources",
        // The template's empty metadata gets its annotation as before: one `add` of `annotations`.
        "/spec/template/metadata/annotations",
    ] {
        assert!(value_at(&ops, path).is_some(), "{path}: {ops:?}");
    }
    assert!(
        !ops.iter()
            .any(|(p, _)| p.starts_with("/spec/template/spec/securityContext/"))
    );
}
