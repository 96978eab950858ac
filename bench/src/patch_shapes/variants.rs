//! The patch variants of `patch-shapes`: from the object the API server sent and kube-harden's
//! own answer for it, the same stored result written as other JSON Patches (one operation per
//! leaf field; whole objects wherever the object has none or an empty one), and the answers
//! that differ from kube-harden's by one thing (no warnings, no annotation, no patch, a one-op
//! patch). Pure: bytes and values in, values out.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

/// kube-harden's marker annotation, as a JSON Pointer token.
const HARDENED_ANNOTATION: &str = "kube-harden.io~1hardened";

/// One way of answering the review of the bench pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Allowed, no patch, no warnings.
    Noop,
    /// kube-harden's answer, byte for byte (patch, annotation, warnings).
    KubeHarden,
    /// kube-harden's answer with its patch in the shape before empty objects were added whole
    /// (main before the "fewest" change): one `add` per member into each empty object the
    /// object has (`spec.securityContext: {}`, `resources: {}`); warnings and annotation kept.
    PerMember,
    /// kube-harden's answer without its warnings.
    NoWarnings,
    /// kube-harden's patch without the `kube-harden.io/hardened` annotation, no warnings.
    NoAnnotation,
    /// The same stored result, one `add` per leaf field (parents created empty first).
    Leaf,
    /// The same stored result in the fewest `add`s: a whole object wherever the object has
    /// none or an empty one, appends to the lists it has (`add` at the list's length).
    Fewest,
    /// [`Variant::Fewest`] without the annotation: the fewest operations for the fields alone.
    FewestNoAnnotation,
    /// One `add` of one label: the fixed cost of a mutation, apart from its size.
    Tiny,
}

impl Variant {
    /// Every variant that answers with a webhook, in the order of the tables.
    pub const ALL: [Variant; 9] = [
        Variant::Noop,
        Variant::KubeHarden,
        Variant::PerMember,
        Variant::NoWarnings,
        Variant::NoAnnotation,
        Variant::Leaf,
        Variant::Fewest,
        Variant::FewestNoAnnotation,
        Variant::Tiny,
    ];

    /// Short name: the namespace suffix, the webhook path and the label value.
    pub fn slug(self) -> &'static str {
        match self {
            Variant::Noop => "noop",
            Variant::KubeHarden => "kube-harden",
            Variant::PerMember => "per-member",
            Variant::NoWarnings => "no-warnings",
            Variant::NoAnnotation => "no-annotation",
            Variant::Leaf => "leaf",
            Variant::Fewest => "fewest",
            Variant::FewestNoAnnotation => "fewest-no-annotation",
            Variant::Tiny => "tiny",
        }
    }

    /// Its namespace in the bench: `shapes-<slug>`.
    pub fn namespace(self) -> &'static str {
        match self {
            Variant::Noop => "shapes-noop",
            Variant::KubeHarden => "shapes-kube-harden",
            Variant::PerMember => "shapes-per-member",
            Variant::NoWarnings => "shapes-no-warnings",
            Variant::NoAnnotation => "shapes-no-annotation",
            Variant::Leaf => "shapes-leaf",
            Variant::Fewest => "shapes-fewest",
            Variant::FewestNoAnnotation => "shapes-fewest-no-annotation",
            Variant::Tiny => "shapes-tiny",
        }
    }

    /// The variant served at `/<slug>`.
    pub fn from_path(path: &str) -> Option<Variant> {
        let slug = path.strip_prefix('/')?;
        Variant::ALL.into_iter().find(|v| v.slug() == slug)
    }

    /// Whether the stored pod must equal kube-harden's (field checks and the annotation).
    pub fn same_fields(self) -> bool {
        !matches!(self, Variant::Noop | Variant::Tiny)
    }

    /// Whether the stored pod carries kube-harden's annotation.
    pub fn annotated(self) -> bool {
        matches!(
            self,
            Variant::KubeHarden
                | Variant::PerMember
                | Variant::NoWarnings
                | Variant::Leaf
                | Variant::Fewest
        )
    }
}

/// The answer of `variant`, given the request's `uid` and `object` and kube-harden's answer
/// (`kube_harden_answer`: the AdmissionReview `kube_harden::admission::review` returned).
pub fn answer(variant: Variant, uid: &str, object: &Value, kube_harden_answer: &[u8]) -> Value {
    let mut review: Value = serde_json::from_slice(kube_harden_answer).unwrap_or(Value::Null);
    if variant == Variant::KubeHarden {
        return review;
    }
    if variant == Variant::Noop {
        return json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                      "response": {"uid": uid, "allowed": true}});
    }
    let Some(response) = review.get_mut("response").and_then(Value::as_object_mut) else {
        return review;
    };
    if variant == Variant::PerMember {
        let ops = per_member_ops(object, &patch_of(response));
        set_patch(response, &ops);
        return review;
    }
    response.remove("warnings");
    let ops = patch_of(response);
    let patch = match variant {
        Variant::NoWarnings => ops,
        Variant::NoAnnotation => without_annotation(&ops),
        Variant::Leaf | Variant::Fewest | Variant::FewestNoAnnotation => {
            let mut target = object.clone();
            let kept = if variant == Variant::FewestNoAnnotation {
                without_annotation(&ops)
            } else {
                ops
            };
            if apply(&mut target, &kept).is_err() {
                return review;
            }
            if variant == Variant::Leaf {
                leaf_ops(object, &target)
            } else {
                fewest_ops(object, &target)
            }
        }
        // The bench pod has labels: one more is the smallest additive change.
        Variant::Tiny => {
            vec![json!({"op": "add", "path": "/metadata/labels/bench-tiny", "value": "1"})]
        }
        // Answered above.
        Variant::Noop | Variant::KubeHarden | Variant::PerMember => ops,
    };
    set_patch(response, &patch);
    review
}

/// The operations of an AdmissionResponse's base64 JSON Patch (none if absent or unreadable).
pub fn patch_of(response: &Map<String, Value>) -> Vec<Value> {
    response
        .get("patch")
        .and_then(Value::as_str)
        .and_then(|p| BASE64_STANDARD.decode(p).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .unwrap_or_default()
}

fn set_patch(response: &mut Map<String, Value>, ops: &[Value]) {
    let bytes = serde_json::to_vec(ops).unwrap_or_default();
    response.insert("patch".into(), BASE64_STANDARD.encode(bytes).into());
    response.insert("patchType".into(), "JSONPatch".into());
}

/// Applies `ops` to `target` (RFC 6902, as the API server does).
pub fn apply(target: &mut Value, ops: &[Value]) -> Result<(), String> {
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops.to_vec())).map_err(|e| e.to_string())?;
    json_patch::patch(target, &patch).map_err(|e| e.to_string())
}

/// `ops` without kube-harden's annotation: its own `add`, or the key inside an `add` of the
/// whole annotations map (dropped when it was the only key).
pub fn without_annotation(ops: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for op in ops {
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        if path == format!("/metadata/annotations/{HARDENED_ANNOTATION}") {
            continue;
        }
        if path == "/metadata/annotations" {
            let mut op = op.clone();
            if let Some(map) = op.get_mut("value").and_then(Value::as_object_mut) {
                map.remove("kube-harden.io/hardened");
                if map.is_empty() {
                    continue;
                }
            }
            out.push(op);
            continue;
        }
        out.push(op.clone());
    }
    out
}

/// `ops` with each `add` of a whole object over an empty object of `object` written as one
/// `add` per member (the shape kube-harden sent before it added empty objects whole).
pub fn per_member_ops(object: &Value, ops: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for op in ops {
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let over_empty = object
            .pointer(path)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
        match op.get("value").and_then(Value::as_object) {
            Some(members) if over_empty => out.extend(
                members
                    .iter()
                    .map(|(k, v)| add(&format!("{path}/{}", token(k)), v.clone())),
            ),
            _ => out.push(op.clone()),
        }
    }
    out
}

/// A JSON Pointer token.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn add(path: &str, value: Value) -> Value {
    json!({"op": "add", "path": path, "value": value})
}

/// The empty container of `value`'s kind, for creating a parent before its leaves.
fn empty_like(value: &Value) -> Option<Value> {
    match value {
        Value::Object(_) => Some(json!({})),
        Value::Array(_) => Some(json!([])),
        _ => None,
    }
}

/// One `add` per leaf of `target` that `from` lacks; missing parents are added empty first.
/// Only additions are supported (what kube-harden does): a changed scalar becomes an `add`
/// over it, as the API server applies it.
pub fn leaf_ops(from: &Value, target: &Value) -> Vec<Value> {
    fn new_subtree(path: &str, value: &Value, out: &mut Vec<Value>) {
        match (empty_like(value), value) {
            (Some(empty), Value::Object(m)) if !m.is_empty() => {
                out.push(add(path, empty));
                for (k, v) in m {
                    new_subtree(&format!("{path}/{}", token(k)), v, out);
                }
            }
            (Some(empty), Value::Array(a)) if !a.is_empty() => {
                out.push(add(path, empty));
                for (i, v) in a.iter().enumerate() {
                    new_subtree(&format!("{path}/{i}"), v, out);
                }
            }
            _ => out.push(add(path, value.clone())),
        }
    }
    let mut out = Vec::new();
    walk(from, target, "", false, &mut out, &new_subtree);
    out
}

/// The fewest `add`s from `from` to `target`: a whole value wherever `from` has none or an
/// empty one (still additive), appends to the lists `from` has.
pub fn fewest_ops(from: &Value, target: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    walk(from, target, "", true, &mut out, &|path, value, out| {
        out.push(add(path, value.clone()));
    });
    out
}

/// Walks `target` against `from`: `new` writes what `from` lacks at a path, and what it has
/// empty when `whole_over_empty`.
fn walk(
    from: &Value,
    target: &Value,
    path: &str,
    whole_over_empty: bool,
    out: &mut Vec<Value>,
    new: &dyn Fn(&str, &Value, &mut Vec<Value>),
) {
    match (from, target) {
        (Value::Object(f), Value::Object(t)) if !(whole_over_empty && f.is_empty()) => {
            for (k, tv) in t {
                let child = format!("{path}/{}", token(k));
                match f.get(k) {
                    Some(fv) if fv == tv => {}
                    Some(fv) => walk(fv, tv, &child, whole_over_empty, out, new),
                    None => new(&child, tv, out),
                }
            }
        }
        (Value::Array(f), Value::Array(t))
            if !(whole_over_empty && f.is_empty()) && t.len() >= f.len() =>
        {
            for (i, (fv, tv)) in f.iter().zip(t).enumerate() {
                if fv != tv {
                    walk(fv, tv, &format!("{path}/{i}"), whole_over_empty, out, new);
                }
            }
            // An `add` at the list's length appends; the index lets a leaf walk address it.
            for (i, tv) in t.iter().enumerate().skip(f.len()) {
                new(&format!("{path}/{i}"), tv, out);
            }
        }
        _ if from == target => {}
        // `from` is empty (or of another kind): the whole value, over it.
        _ => new(path, target, out),
    }
}

#[cfg(test)]
mod tests;
