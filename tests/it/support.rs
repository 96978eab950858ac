//! Test support: certificates made with rcgen, the real server on 127.0.0.1, and a real
//! HTTP/1.1 or HTTP/2 client over rustls. The tests take all of it with `use super::support::*`;
//! this file holds the fixtures and what reads an answer, the modules below the rest.

use std::path::Path;

use serde_json::Value;

mod client;
mod pki;
mod servers;

pub use client::*;
pub use pki::*;
pub use servers::*;

/// Reads a fixture under tests/fixtures.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// An AdmissionReview for `object` (one owner: kube-harden-testkit, which the benchmarks use too).
pub use kube_harden_testkit::review_for;

/// Applies the base64 JSON patch of an AdmissionReview response to `object`.
pub fn apply_response_patch(response: &Value, object: &Value) -> Value {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    let mut out = object.clone();
    if let Some(patch) = response.pointer("/response/patch").and_then(Value::as_str) {
        assert_eq!(
            response.pointer("/response/patchType"),
            Some(&Value::from("JSONPatch"))
        );
        let bytes = BASE64_STANDARD.decode(patch).expect("base64 patch");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("RFC 6902 patch");
        json_patch::patch(&mut out, &patch).expect("patch applies");
    }
    out
}

/// The value of one sample line of the Prometheus text output (0 when absent).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name_and_labels).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
