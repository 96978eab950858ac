//! Table-driven tests of the rules: one case per edge. Here the helpers and what holds for
//! every field (added when missing, kept when written, idempotent, unknown fields kept); by
//! topic beside it: `identity`, `opt_outs`, `volumes`, `workloads`. The property tests live in
//! tests/it/properties.rs.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::*;

mod empty_objects;
mod identity;
mod opt_outs;
mod volumes;
mod workloads;

/// Hardens `object` with `policy`, applies the patch, and returns both.
fn run_with(object: &Value, policy: &Policy) -> (Hardened, Value) {
    let hardened = harden_object(object, policy).expect("hardens");
    let mut patched = object.clone();
    hardened.patch.apply(&mut patched).expect("patch applies");
    (hardened, patched)
}

fn run(object: &Value) -> (Hardened, Value) {
    run_with(object, &Policy::default())
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn pod_with_annotations(annotations: Value, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": annotations}, "spec": spec})
}

fn outcome(h: &Hardened, name: ChangeName, container: Option<&str>) -> Option<Outcome> {
    h.changes
        .iter()
        .find(|c| c.name == name && c.container.as_deref() == container)
        .map(|c| c.outcome)
}

fn skipped(reason: SkipReason) -> Option<Outcome> {
    Some(Outcome::Skipped(reason))
}

const APPLIED: Option<Outcome> = Some(Outcome::Applied);
const ALREADY: Option<Outcome> = Some(Outcome::AlreadySet);

#[test]
fn legacy_pod_gets_every_field() {
    let (h, out) = run(&pod(
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    ));
    let spec = &out["spec"];
    assert_eq!(
        spec["securityContext"],
        json!({"runAsUser": 2866, "runAsGroup": 2866, "runAsNonRoot": true, "fsGroup": 2866,
               "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let c = &spec["containers"][0];
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "kube-harden-tmp", "mountPath": "/tmp"}])
    );
    assert_eq!(c["env"], json!([{"name": "TMPDIR", "value": "/tmp"}]));
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"},
               "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "kube-harden-tmp", "emptyDir": {"sizeLimit": "64Mi"}}])
    );
    let applied: Vec<&str> = h.applied_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        out["metadata"]["annotations"][HARDENED_ANNOTATION],
        applied.join(",")
    );
    assert_eq!(
        applied.len(),
        ChangeName::ALL.len() - 4,
        "all but writablePaths and the image rules (no lookup)"
    );
    assert_eq!(
        h.warnings,
        vec![
            "readOnlyRootFilesystem: the root filesystem is read-only; an app that writes outside \
             /tmp needs kube-harden.io/writable-paths: \"<dir>,<dir>\" on the Pod (or skip \
             readOnlyRootFilesystem)",
            "runAsUser: containers run as UID 2866, not as their image's own USER; an image that \
             needs its own user wants kube-harden.io/skip: \"runAsUser,runAsGroup\" on the Pod \
             (or an explicit runAsUser)",
        ]
    );
}

#[test]
fn explicit_values_are_never_changed() {
    let input = pod(json!({
        "securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"},
                            "fsGroupChangePolicy": "Always", "runAsGroup": 0},
        "containers": [{"name": "app", "image": "app:1", "securityContext": {
            "readOnlyRootFilesystem": false, "allowPrivilegeEscalation": true}}]
    }));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert_eq!(sc["runAsNonRoot"], false);
    assert_eq!(sc["seccompProfile"]["type"], "Unconfined");
    assert_eq!(sc["fsGroupChangePolicy"], "Always");
    assert_eq!(sc["runAsGroup"], 0);
    let csc = &out["spec"]["containers"][0]["securityContext"];
    assert_eq!(csc["readOnlyRootFilesystem"], false);
    assert_eq!(csc["allowPrivilegeEscalation"], true);
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
    let explicit = skipped(SkipReason::ExplicitValue);
    assert_eq!(outcome(&h, ChangeName::RunAsNonRoot, None), explicit);
    assert_eq!(outcome(&h, ChangeName::SeccompProfile, None), explicit);
    assert_eq!(outcome(&h, ChangeName::FsGroupChangePolicy, None), explicit);
    assert_eq!(outcome(&h, ChangeName::RunAsGroup, None), explicit);
    assert_eq!(
        outcome(&h, ChangeName::ReadOnlyRootFilesystem, Some("app")),
        explicit
    );
    assert_eq!(
        outcome(&h, ChangeName::AllowPrivilegeEscalation, Some("app")),
        explicit
    );
}

#[test]
fn secure_explicit_values_count_as_already_set() {
    let input = pod(json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
        "containers": [{"name": "app", "image": "app:1", "securityContext": {
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}}}]
    }));
    let (h, out) = run(&input);
    assert_eq!(outcome(&h, ChangeName::RunAsNonRoot, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::RunAsUser, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::SeccompProfile, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::Capabilities, Some("app")), ALREADY);
    assert_eq!(out["spec"]["securityContext"]["runAsUser"], 1000);
    assert_eq!(out["spec"]["securityContext"]["runAsGroup"], 2866);
}

#[test]
fn sys_admin_blocks_allow_privilege_escalation_but_capabilities_grow() {
    let input = pod(
        json!({"containers": [{"name": "app", "image": "a", "securityContext": {
        "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "drop": ["NET_RAW"]}}}]}),
    );
    let (h, out) = run(&input);
    let sc = &out["spec"]["containers"][0]["securityContext"];
    assert!(sc.get("allowPrivilegeEscalation").is_none(), "{sc}");
    assert_eq!(
        sc["capabilities"]["add"],
        json!(["SYS_ADMIN", "NET_BIND_SERVICE"])
    );
    assert_eq!(sc["capabilities"]["drop"], json!(["NET_RAW", "ALL"]));
    assert_eq!(
        outcome(&h, ChangeName::AllowPrivilegeEscalation, Some("app")),
        skipped(SkipReason::Privileged)
    );
}

#[test]
fn resource_defaults_never_contradict_what_is_there() {
    let cases = [
        // (resources in, resources out)
        (
            json!({"limits": {"cpu": "2", "memory": "1Gi"}}),
            json!({"limits": {"cpu": "2", "memory": "1Gi"}}),
        ),
        (
            json!({"requests": {"cpu": "2", "memory": "64Mi"}}),
            json!({"requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}),
        ),
        (
            json!({"requests": {"cpu": "250m"}}),
            json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}),
        ),
        (
            json!({"requests": {"memory": 2147483648u64}}),
            json!({"requests": {"memory": 2147483648u64, "cpu": "100m"},
                   "limits": {"memory": 2147483648u64, "cpu": "500m"}}),
        ),
        (
            json!({"limits": {"memory": "256Mi"}}),
            json!({"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"cpu": "100m"}}),
        ),
    ];
    for (resources, expected) in cases {
        let (_, out) = run(&pod(
            json!({"containers": [{"name": "a", "image": "a", "resources": resources}]}),
        ));
        assert_eq!(
            out["spec"]["containers"][0]["resources"], expected,
            "{resources}"
        );
    }
    let (h, out) = run(&pod(json!({"resources": {"limits": {"cpu": "1"}},
                                    "containers": [{"name": "a", "image": "a"}]})));
    assert!(out["spec"]["containers"][0].get("resources").is_none());
    assert_eq!(
        outcome(&h, ChangeName::Resources, Some("a")),
        skipped(SkipReason::ExplicitValue)
    );
}

#[test]
fn other_kinds_pass_through_and_broken_workloads_are_errors() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": []}});
    assert!(
        !harden_object(&service, &Policy::default())
            .unwrap()
            .is_changed()
    );
    let no_template = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}});
    assert!(matches!(
        harden_object(&no_template, &Policy::default()),
        Err(HardenError::MissingPodSpec { .. })
    ));
    let bad = pod(json!({"containers": [{"name": "a", "securityContext": {"runAsUser": "root"}}]}));
    let err = harden_object(&bad, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.containers[a].securityContext.runAsUser: expected an integer"
    );
}

#[test]
fn hardening_twice_changes_nothing() {
    let inputs = [
        pod(json!({"containers": [{"name": "app", "image": "a"}]})),
        pod_with_annotations(
            json!({WRITABLE_PATHS_ANNOTATION: "/var/run"}),
            json!({"containers": [{"name": "a", "image": "a", "securityContext": {"privileged": true}},
                                   {"name": "b", "image": "b"}]}),
        ),
    ];
    for input in inputs {
        let (_, once) = run(&input);
        let (h, twice) = run(&once);
        assert!(!h.is_changed(), "{:?}", h.patch);
        assert_eq!(once, twice);
        assert!(!h.changes.iter().any(|c| c.outcome == Outcome::Applied));
    }
}

/// A `null` is a missing field, filled where it is: the operations come in the order of a walk
/// of the hardened pod (the object's own key order, whatever order the rules decide in; new keys
/// follow).
#[test]
fn nulls_count_as_missing() {
    let input = pod(json!({"volumes": null, "securityContext": null,
                           "containers": [{"name": "a", "image": "a", "resources": null,
                                           "env": null, "securityContext": null}]}));
    let (h, out) = run(&input);
    assert_eq!(out["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(out["spec"]["volumes"][0]["name"], "kube-harden-tmp");
    assert_eq!(
        super::overlay::tests::paths(&h.patch.0),
        [
            "/spec/volumes",
            "/spec/securityContext",
            "/spec/containers/0/resources",
            "/spec/containers/0/env",
            "/spec/containers/0/securityContext",
            "/spec/containers/0/volumeMounts",
            "/metadata/annotations",
        ]
    );
}

#[test]
fn unknown_fields_survive() {
    let input = pod(json!({"futurePodField": {"x": [1, 2]},
                           "securityContext": {"futureSecurity": true},
                           "containers": [{"name": "a", "image": "a", "futureContainerField": "keep",
                                           "securityContext": {"futureBool": false}}]}));
    let (_, out) = run(&input);
    assert_eq!(out["spec"]["futurePodField"], json!({"x": [1, 2]}));
    assert_eq!(out["spec"]["securityContext"]["futureSecurity"], true);
    assert_eq!(out["spec"]["containers"][0]["futureContainerField"], "keep");
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["futureBool"],
        false
    );
}

#[test]
fn explicit_empty_drop_list_gets_no_all() {
    let input = pod(json!({"containers": [
        {"name": "none", "image": "a", "securityContext": {"capabilities": {"drop": []}}},
        {"name": "some", "image": "b", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
        {"name": "null", "image": "c", "securityContext": {"capabilities": {"drop": null}}}
    ]}));
    let (h, out) = run(&input);
    let caps = |i: usize| out["spec"]["containers"][i]["securityContext"]["capabilities"].clone();
    assert_eq!(caps(0), json!({"drop": []}));
    assert_eq!(
        outcome(&h, ChangeName::Capabilities, Some("none")),
        skipped(SkipReason::ExplicitValue)
    );
    assert_eq!(caps(1), json!({"drop": ["NET_RAW", "ALL"]}));
    assert_eq!(caps(2), json!({"drop": ["ALL"]}));
}

#[test]
fn a_huge_container_name_is_not_copied_into_every_decision() {
    let name = "x".repeat(1_000_000);
    let (h, _) = run(&pod(json!({"containers": [{"name": name, "image": "a"}]})));
    assert!(h.changes.len() > 5);
    for c in &h.changes {
        assert!(
            c.container.as_ref().is_none_or(|n| n.len() <= 66),
            "{}",
            c.name
        );
    }
    assert!(!h.findings.is_empty());
    for f in &h.findings {
        assert!(f.to_string().len() < 1000, "{f}");
    }
}
