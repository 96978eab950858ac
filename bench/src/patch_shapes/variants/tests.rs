use serde_json::{Value, json};

use super::*;
use crate::controlplane::pod;

/// The bench pod with the empty objects the API server defaults (`securityContext: {}` on the
/// pod, `resources: {}` on the container), as the webhook receives it.
fn defaulted() -> Value {
    let mut pod = pod();
    pod["spec"]["securityContext"] = json!({});
    pod["spec"]["containers"][0]["resources"] = json!({});
    pod["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    pod
}

/// kube-harden's answer for `object`, through the library.
fn kube_harden(object: &Value) -> Vec<u8> {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE", "namespace": "ns", "userInfo": {"username": "admin"},
            "object": object}});
    let policy = kube_harden::harden::Policy::default();
    kube_harden::admission::review(
        &serde_json::to_vec(&body).expect("JSON"),
        kube_harden::admission::Mode::Enforce,
        &policy,
    )
    .body
}

/// The pod each variant's answer stores.
fn stored(variant: Variant) -> (Value, Value) {
    let object = defaulted();
    let review = answer(variant, "u-1", &object, &kube_harden(&object));
    let response = review["response"].as_object().expect("response").clone();
    let mut pod = object;
    apply(&mut pod, &patch_of(&response)).expect("the variant's patch applies");
    (pod, review)
}

fn ops(variant: Variant) -> usize {
    patch_of(stored(variant).1["response"].as_object().expect("response")).len()
}

#[test]
fn equal_effect_variants_store_kube_hardens_pod() {
    let (reference, _) = stored(Variant::KubeHarden);
    assert!(crate::peers::fields::complete(&reference));
    for variant in [
        Variant::PerMember,
        Variant::NoWarnings,
        Variant::Leaf,
        Variant::Fewest,
    ] {
        assert_eq!(stored(variant).0, reference, "{variant:?}");
    }
    let mut unannotated = reference.clone();
    let annotations = unannotated["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("annotations")
        .expect("kube-harden annotates");
    assert!(annotations.get("kube-harden.io/hardened").is_some());
    for variant in [Variant::NoAnnotation, Variant::FewestNoAnnotation] {
        assert_eq!(stored(variant).0, unannotated, "{variant:?}");
    }
}

#[test]
fn only_kube_harden_keeps_the_warnings_and_noop_has_no_patch() {
    let (_, review) = stored(Variant::KubeHarden);
    assert_eq!(review["response"]["uid"], "u-1");
    assert!(review["response"]["warnings"].is_array());
    for variant in [Variant::NoWarnings, Variant::Fewest, Variant::Tiny] {
        assert!(stored(variant).1["response"].get("warnings").is_none());
    }
    let (pod, noop) = stored(Variant::Noop);
    assert_eq!(pod, defaulted());
    assert!(noop["response"].get("patch").is_none());
    assert_eq!(noop["response"]["allowed"], true);
}

#[test]
fn op_counts_order_the_shapes() {
    assert_eq!(ops(Variant::Tiny), 1);
    let (leaf, fewest) = (ops(Variant::Leaf), ops(Variant::Fewest));
    // kube-harden's own patch is the fewest shape: one `add` of each empty object it fills.
    assert_eq!(fewest, ops(Variant::KubeHarden));
    assert!(fewest < leaf, "{fewest} vs {leaf}");
    assert_eq!(ops(Variant::FewestNoAnnotation), fewest - 1);
}

#[test]
fn kube_hardens_patch_is_the_fewest_shape() {
    let patch = |variant| {
        let (_, review) = stored(variant);
        patch_of(review["response"].as_object().expect("response"))
    };
    let fewest = patch(Variant::Fewest);
    let mut kube_harden = patch(Variant::KubeHarden);
    let mut sorted = fewest.clone();
    for ops in [&mut kube_harden, &mut sorted] {
        ops.sort_by_key(Value::to_string);
    }
    assert_eq!(kube_harden, sorted);
    assert!(
        fewest
            .iter()
            .any(|op| op["path"] == "/spec/securityContext")
    );
}

/// The per-member variant is kube-harden's earlier answer: warnings kept, one `add` per member
/// into the pod's `securityContext: {}` and the container's `resources: {}`.
#[test]
fn per_member_writes_into_the_empty_objects() {
    let (_, review) = stored(Variant::PerMember);
    assert!(review["response"]["warnings"].is_array());
    let patch = patch_of(review["response"].as_object().expect("response"));
    let paths: Vec<&str> = patch.iter().filter_map(|op| op["path"].as_str()).collect();
    for path in [
        "/spec/securityContext/runAsUser",
        "/spec/securityContext/seccompProfile",
        "/spec/containers/0/resources/requests",
        "/spec/containers/0/resources/limits",
        "/spec/containers/0/securityContext",
    ] {
        assert!(paths.contains(&path), "{path}: {paths:?}");
    }
    assert!(!paths.contains(&"/spec/securityContext"), "{paths:?}");
    // Six pod-level fields for one `add`, requests and limits for one.
    assert_eq!(patch.len(), ops(Variant::KubeHarden) + 5 + 1);
}

#[test]
fn fewest_adds_whole_objects_over_empty_ones_and_appends_to_lists() {
    let from = json!({"a": {}, "b": [1], "c": {"d": 1}});
    let to = json!({"a": {"x": 1, "y": {"z": 2}}, "b": [1, 2], "c": {"d": 1, "e": 3}});
    assert_eq!(
        fewest_ops(&from, &to),
        vec![
            json!({"op": "add", "path": "/a", "value": {"x": 1, "y": {"z": 2}}}),
            json!({"op": "add", "path": "/b/1", "value": 2}),
            json!({"op": "add", "path": "/c/e", "value": 3}),
        ]
    );
    assert_eq!(
        leaf_ops(&from, &to),
        vec![
            json!({"op": "add", "path": "/a/x", "value": 1}),
            json!({"op": "add", "path": "/a/y", "value": {}}),
            json!({"op": "add", "path": "/a/y/z", "value": 2}),
            json!({"op": "add", "path": "/b/1", "value": 2}),
            json!({"op": "add", "path": "/c/e", "value": 3}),
        ]
    );
}

#[test]
fn keys_are_escaped_and_the_annotation_is_dropped_alone() {
    let ops = vec![
        json!({"op": "add", "path": "/metadata/annotations",
               "value": {"kube-harden.io/hardened": "x", "other": "y"}}),
        json!({"op": "add", "path": "/metadata/annotations/kube-harden.io~1hardened", "value": "x"}),
    ];
    assert_eq!(
        without_annotation(&ops),
        vec![json!({"op": "add", "path": "/metadata/annotations", "value": {"other": "y"}})]
    );
    assert_eq!(
        fewest_ops(&json!({"m": {"k": 1}}), &json!({"m": {"k": 1, "a/b~c": 2}})),
        vec![json!({"op": "add", "path": "/m/a~1b~0c", "value": 2})]
    );
}

#[test]
fn each_variant_has_its_own_path_and_namespace() {
    for v in Variant::ALL {
        assert_eq!(Variant::from_path(&format!("/{}", v.slug())), Some(v));
        assert_eq!(v.namespace(), format!("shapes-{}", v.slug()));
    }
    assert_eq!(Variant::from_path("/mutate"), None);
}
