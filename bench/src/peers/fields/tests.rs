use serde_json::{Value, json};

use super::{ADDED, complete, count, kept};
use crate::controlplane::pod;

/// The bench pod as kube-harden's default policy hardens it (the library, not a copy).
fn hardened() -> Value {
    let mut pod = pod();
    let hardened =
        kube_harden::harden::harden_object(&pod, &kube_harden::harden::Policy::default())
            .expect("the bench pod hardens");
    hardened
        .patch
        .apply(&mut pod)
        .expect("kube-harden's patch applies");
    pod
}

#[test]
fn kube_harden_adds_every_field_and_keeps_the_pod() {
    let pod = hardened();
    for field in &ADDED {
        assert!((field.check)(&pod), "{} missing from {pod:#}", field.name);
    }
    assert!(complete(&pod));
}

#[test]
fn the_bare_pod_has_none_of_them_and_is_kept() {
    assert_eq!(count(&pod()), 0);
    assert!(kept(&pod()));
    assert!(!complete(&pod()));
}

#[test]
fn one_missing_or_wrong_field_is_seen() {
    let full = hardened();
    let mut no_drop = full.clone();
    no_drop["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] =
        json!(["NET_RAW"]);
    assert_eq!(count(&no_drop), ADDED.len() - 1);
    // The mount points at a volume that is not an emptyDir of 64Mi.
    let mut other_volume = full.clone();
    other_volume["spec"]["volumes"][0]["emptyDir"] = json!({});
    assert_eq!(count(&other_volume), ADDED.len() - 1);
    let mut no_user = full.clone();
    no_user["spec"]["securityContext"]
        .as_object_mut()
        .expect("security context")
        .remove("runAsUser");
    assert_eq!(count(&no_user), ADDED.len() - 1);
}

#[test]
fn a_changed_field_of_the_pod_is_not_kept() {
    let mut pod = hardened();
    pod["spec"]["containers"][0]["env"] = json!([{"name": "TMPDIR", "value": "/tmp"}]);
    assert!(!kept(&pod));
    assert!(!complete(&pod));
    let mut pod = hardened();
    pod["spec"]["containers"][0]["image"] = json!("docker.io/registry.example.com/shop/web:1.27.3");
    assert!(!kept(&pod));
}
