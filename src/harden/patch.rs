//! RFC 6902 patches of `add` operations (<https://www.rfc-editor.org/rfc/rfc6902>): JSON
//! pointers, and the annotation operations on an object's metadata. The pod spec's operations
//! come from the rules' additions (`overlay.rs`).

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value};

use crate::dom::Json;

/// A JSON pointer from object keys.
pub(crate) fn pointer(path: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(path.iter().copied())
}

/// An `add` operation.
pub(crate) fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// The operations that set the annotations `entries` (key, value) on the metadata at
/// `meta_path`, creating `metadata` or `annotations` when missing: one operation per key when
/// the annotations exist, else one that adds them all (two `add`s of a missing `annotations`
/// would replace each other).
pub(crate) fn annotation_ops(
    meta_path: &[&str],
    meta: Option<&Json<'_>>,
    entries: Vec<(&str, String)>,
) -> Vec<PatchOperation> {
    if entries.is_empty() {
        return Vec::new();
    }
    let annotations = meta
        .and_then(|m| m.get("annotations"))
        .filter(|a| a.is_object());
    let mut path = pointer(meta_path);
    let all = || -> Map<String, Value> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect()
    };
    match (meta.filter(|m| m.is_object()), annotations) {
        (None, _) => {
            let mut metadata = Map::new();
            metadata.insert("annotations".to_owned(), Value::Object(all()));
            vec![add(path, Value::Object(metadata))]
        }
        (Some(_), None) => {
            path.push_back("annotations");
            vec![add(path, Value::Object(all()))]
        }
        (Some(_), Some(_)) => {
            path.push_back("annotations");
            entries
                .into_iter()
                .map(|(key, value)| {
                    let mut at = path.clone();
                    at.push_back(key);
                    add(at, Value::String(value))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(mut doc: Value, ops: Vec<PatchOperation>) -> Value {
        json_patch::patch(&mut doc, &ops).unwrap();
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
}
