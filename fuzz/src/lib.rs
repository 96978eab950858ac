//! What the fuzz targets check, and the structure-aware input: AdmissionReviews of pods and
//! workloads whose every field may be missing, null, of the right type, or arbitrary JSON.
//!
//! For every input the admission handler must answer (no panic, no hang: libFuzzer's
//! `-timeout`, bounded memory: `-rss_limit_mb`) with a 200 AdmissionReview or a 400; enforce may
//! patch, audit never does; a patch is base64 RFC 6902 made only of `add` operations that apply
//! to the object sent.
//!
//! The pod spec comes from the generator the property tests share (`kube_harden_podgen`);
//! [`review`] puts it in an object with annotations and an AdmissionReview; here, the checks.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use kube_harden::admission::{Mode, review};
use kube_harden::harden::Policy;
use serde_json::Value;

pub mod review;
pub mod shape;

pub use kube_harden_podgen::{Field, Json, PodSpec, ToJson, json, pod};
pub use review::Input;

/// Reviews `data` on both endpoints and checks the answers.
pub fn check_bytes(data: &[u8]) {
    let object = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.pointer("/request/object").cloned());
    for mode in [Mode::Enforce, Mode::Audit] {
        check_answer(data, mode, &Policy::default(), object.as_ref(), false);
    }
}

/// Builds the review of `input`, reviews it and checks the answer.
pub fn check_input(input: &Input) {
    let (body, object) = input.review();
    let bytes = serde_json::to_vec(&body).expect("a Value serialises");
    check_answer(&bytes, input.mode(), &input.policy(), Some(&object), true);
}

fn check_answer(
    body: &[u8],
    mode: Mode,
    policy: &Policy,
    object: Option<&Value>,
    well_formed: bool,
) {
    let reviewed = review(body, mode, policy);
    match reviewed.status {
        400 => {
            let message = String::from_utf8_lossy(&reviewed.body);
            // JSON nested deeper than serde_json's limit (128) is refused as malformed, by design.
            assert!(
                !well_formed || message.contains("recursion limit exceeded"),
                "a well-formed review got 400: {message}"
            );
            return;
        }
        200 => {}
        other => panic!("status {other}"),
    }
    let answer: Value = serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert!(response["uid"].is_string(), "uid: {answer}");
    if well_formed {
        assert_eq!(response["allowed"], true, "{answer}");
    }
    let Some(patch) = response.get("patch") else {
        return;
    };
    assert_eq!(mode, Mode::Enforce, "audit returned a patch");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = BASE64_STANDARD
        .decode(patch.as_str().expect("patch is a string"))
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("patch is RFC 6902");
    assert!(!patch.0.is_empty(), "an empty patch was sent");
    for op in &patch.0 {
        assert!(
            matches!(op, json_patch::PatchOperation::Add(_)),
            "not an addition: {op:?}"
        );
    }
    if let Some(object) = object {
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the object");
    }
}
