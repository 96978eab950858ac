//! RFC 6902 patches of `add` operations (<https://www.rfc-editor.org/rfc/rfc6902>): the
//! [`Patch`] the rules' decisions come out as, written straight from the [`Json`] the rules
//! built (no `serde_json::Value` on the way), JSON pointers, and the annotation operations on
//! an object's metadata. The pod spec's operations come from the rules' additions
//! (`overlay.rs`).

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::dom::{Json, Object};

/// One RFC 6902 `add` operation: `value` at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Add {
    /// Where the value goes.
    pub path: PointerBuf,
    /// The value, as the rules built it.
    pub value: Json<'static>,
}

/// An RFC 6902 patch of `add` operations only. Serialises to the bytes `json_patch` writes for
/// the same operations: `[{"op":"add","path":...,"value":...},...]`, object members in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch(pub Vec<Add>);

impl Patch {
    /// Whether it has no operation.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same operations as a [`json_patch::Patch`], for what applies a patch (the offline
    /// command, the tests): the one conversion of the rules' values to `serde_json::Value`.
    pub fn to_json_patch(&self) -> json_patch::Patch {
        json_patch::Patch(
            self.0
                .iter()
                .map(|op| {
                    json_patch::PatchOperation::Add(json_patch::AddOperation {
                        path: op.path.clone(),
                        value: Value::from(op.value.clone()),
                    })
                })
                .collect(),
        )
    }

    /// Applies the patch to `doc` (all or nothing, as [`json_patch::patch`]).
    pub fn apply(&self, doc: &mut Value) -> Result<(), json_patch::PatchError> {
        json_patch::patch(doc, &self.to_json_patch())
    }
}

impl Serialize for Add {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // As json_patch's `PatchOperation::Add` (`#[serde(tag = "op")]`): the tag first.
        let mut op = serializer.serialize_struct("AddOperation", 3)?;
        op.serialize_field("op", "add")?;
        op.serialize_field("path", &self.path)?;
        op.serialize_field("value", &self.value)?;
        op.end()
    }
}

impl Serialize for Patch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut ops = serializer.serialize_seq(Some(self.0.len()))?;
        for op in &self.0 {
            ops.serialize_element(op)?;
        }
        ops.end()
    }
}

/// A JSON pointer from object keys.
pub(crate) fn pointer(path: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(path.iter().copied())
}

/// An `add` operation: the one place that writes one.
pub(crate) fn add(path: PointerBuf, value: Json<'static>) -> Add {
    Add { path, value }
}

/// The operations that set the annotations `entries` (key, value) on the metadata at
/// `meta_path`, creating `metadata` or `annotations` when missing: one operation per key when
/// the annotations exist, else one that adds them all (two `add`s of a missing `annotations`
/// would replace each other).
pub(crate) fn annotation_ops(
    meta_path: &[&str],
    meta: Option<&Json<'_>>,
    entries: Vec<(&str, String)>,
) -> Vec<Add> {
    if entries.is_empty() {
        return Vec::new();
    }
    let annotations = meta
        .and_then(|m| m.get("annotations"))
        .filter(|a| a.is_object());
    let mut path = pointer(meta_path);
    match (meta.filter(|m| m.is_object()), annotations) {
        (None, _) => {
            vec![add(path, Json::object([("annotations", object(entries))]))]
        }
        (Some(_), None) => {
            path.push_back("annotations");
            vec![add(path, object(entries))]
        }
        (Some(_), Some(_)) => {
            path.push_back("annotations");
            entries
                .into_iter()
                .map(|(key, value)| {
                    let mut at = path.clone();
                    at.push_back(key);
                    add(at, Json::from(value))
                })
                .collect()
        }
    }
}

/// The annotations `entries` as an object: a repeated key keeps its last value at its first
/// position, as a `serde_json` map does.
fn object(entries: Vec<(&str, String)>) -> Json<'static> {
    let members = entries
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k.to_owned()), Json::from(v)))
        .collect();
    Json::Object(Object::from_members(members))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(mut doc: Value, ops: Vec<Add>) -> Value {
        Patch(ops).apply(&mut doc).unwrap();
        doc
    }

    #[test]
    fn annotation_ops_create_what_is_missing() {
        let cases = [
            (
                json!({}),
                json!({"metadata": {"annotations": {"k": "v", "j": "w"}}}),
            ),
            (
                json!({"metadata": {"name": "x"}}),
                json!({"metadata": {"name": "x", "annotations": {"k": "v", "j": "w"}}}),
            ),
            (
                json!({"metadata": {"annotations": {"o": "1"}}}),
                json!({"metadata": {"annotations": {"o": "1", "k": "v", "j": "w"}}}),
            ),
            (
                json!({"metadata": {"annotations": {"k": "old"}}}),
                json!({"metadata": {"annotations": {"k": "v", "j": "w"}}}),
            ),
        ];
        for (object, expected) in cases {
            let entries = vec![("k", "v".to_owned()), ("j", "w".to_owned())];
            let meta = object.get("metadata").map(Json::from);
            let ops = annotation_ops(&["metadata"], meta.as_ref(), entries);
            assert_eq!(apply(object, ops), expected);
        }
        assert!(annotation_ops(&["metadata"], None, Vec::new()).is_empty());
    }

    /// The patch's bytes are those `json_patch` writes for the same operations: escapes in
    /// strings and pointers, numbers, member order (also past `SCAN_MAX` members).
    #[test]
    fn patch_bytes_are_json_patch_s() {
        let many: serde_json::Map<String, Value> =
            (0..40).rev().map(|i| (format!("k{i}"), json!(i))).collect();
        let values = [
            json!("a \"quoted\" \\ \u{1} \n \u{e9} \u{2028} </script>"),
            json!(-1),
            json!(18446744073709551615_u64),
            json!(0.1),
            json!(1e300),
            json!(null),
            json!([1, "x", {"z": [], "a": {}}]),
            json!({"z": 1, "a": {"y": true, "b": false}}),
            Value::Object(many),
        ];
        let ops = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                add(
                    pointer(&["spec", "a/b~c", &i.to_string()]),
                    Json::from(v.clone()),
                )
            })
            .collect();
        let patch = Patch(ops);
        let expected = json_patch::Patch(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    json_patch::PatchOperation::Add(json_patch::AddOperation {
                        path: pointer(&["spec", "a/b~c", &i.to_string()]),
                        value: v.clone(),
                    })
                })
                .collect(),
        );
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(patch.to_json_patch(), expected);
        assert_eq!(serde_json::to_string(&Patch::default()).unwrap(), "[]");
    }
}
