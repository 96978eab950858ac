//! The AdmissionReview as it crosses the wire: the lean request structs the handler reads
//! (objects kept raw or slim, never typed) and the response envelope it writes.

use std::borrow::Cow;

use kube::core::GroupVersionKind;
use kube::core::admission::Operation;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::slim::SlimObject;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewIn<'a> {
    #[serde(default)]
    pub(super) api_version: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(borrow, default)]
    pub(super) request: Option<RequestIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestIn<'a> {
    pub(super) uid: String,
    pub(super) kind: GroupVersionKind,
    #[serde(default)]
    pub(super) sub_resource: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    pub(super) operation: Operation,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
    #[serde(borrow, default)]
    pub(super) object: Option<SlimObject<'a>>,
    #[serde(default)]
    pub(super) old_object: Option<Box<RawValue>>,
}

/// Just the ephemeral container names of the old Pod.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OldPod<'a> {
    #[serde(borrow, default)]
    pub(super) spec: Option<OldPodSpec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OldPodSpec<'a> {
    #[serde(borrow, default)]
    pub(super) ephemeral_containers: Option<Vec<Named<'a>>>,
}

#[derive(Deserialize)]
pub(super) struct Named<'a> {
    #[serde(borrow)]
    pub(super) name: Cow<'a, str>,
}

/// The request's envelope without its objects: what [`admit_unchanged`] needs to answer.
#[derive(Deserialize)]
pub(super) struct EnvelopeIn {
    #[serde(default)]
    pub(super) request: Option<EnvelopeRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EnvelopeRequest {
    #[serde(default)]
    pub(super) uid: String,
    #[serde(default)]
    pub(super) kind: Option<GroupVersionKind>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) operation: Option<Operation>,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
}

/// The response envelope as Kubernetes reads it. kube's `AdmissionResponse` serialises `patch`
/// (a Go `[]byte`) as an array of numbers, which the API server accepts but which is four times
/// the size of the base64 string Kubernetes itself writes; this writes base64.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReviewOut<'a> {
    pub(super) api_version: &'a str,
    pub(super) kind: &'a str,
    pub(super) response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResponseOut<'a> {
    pub(super) uid: &'a str,
    pub(super) allowed: bool,
    pub(super) status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) patch: Option<Base64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) patch_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) warnings: Option<&'a [String]>,
}

/// Bytes serialised as a base64 string (standard alphabet, padded, as Go's `[]byte`). Base64 has
/// nothing to escape, so the quoted string is handed to the serialiser as a raw JSON value
/// (which checks it once) instead of through `collect_str`, whose escape scan looked at every
/// byte: the engine's `review` bench, back to back (2026-11-30 14:58), Pod CREATE 15.7-16.0 ->
/// 15.4-15.9 µs, Deployment UPDATE 24.7 -> 23.8-24.0 µs, the 3-container Pod unchanged. The
/// encoded string costs the base64's size once more, at most the largest answer's 633 KiB
/// (docs/performance.md, "The budget of one review").
#[derive(Clone, Copy)]
pub(super) struct Base64<'a>(pub(super) &'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::prelude::{BASE64_STANDARD, Engine as _};
        let mut quoted = String::with_capacity(self.0.len().div_ceil(3) * 4 + 2);
        quoted.push('"');
        BASE64_STANDARD.encode_string(self.0, &mut quoted);
        quoted.push('"');
        RawValue::from_string(quoted)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

pub(super) fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

#[cfg(test)]
mod tests {
    use base64::prelude::{BASE64_STANDARD, Engine as _};

    use super::Base64;

    #[test]
    fn base64_is_the_standard_encoding_as_a_json_string() {
        let bytes: Vec<u8> = (0..3000_u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in [0, 1, 2, 3, 4, 767, 768, 769, 1536, 1537, 3000] {
            let slice = &bytes[..len];
            let json = serde_json::to_string(&Base64(slice)).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", BASE64_STANDARD.encode(slice)),
                "{len}"
            );
        }
    }
}
