//! The patch shape check of `make answers`: a patch rewritten so that two patches of equal
//! effect that differ only in how they write the original's empty objects read the same.
//!
//! [`normalised`] keeps the document the patch gives, and the operations in order, except that
//! the operations at or below an empty object of the original (`{}`) become one marker naming
//! that object. Two answers whose normalised patches are equal give the same document, and differ
//! at most in the operations that write an empty object of the original.

use json_patch::Patch;
use json_patch::jsonptr::{Pointer, PointerBuf};
use serde_json::{Value, json};

/// `patch` over `original`: the document it gives and its operations, with those at or below an
/// empty object of the original as one marker per object; an error when it does not apply.
pub fn normalised(original: &Value, patch: &Patch) -> Result<Value, String> {
    let mut applied = original.clone();
    json_patch::patch(&mut applied, patch).map_err(|e| format!("the patch does not apply: {e}"))?;
    let mut ops: Vec<Value> = Vec::new();
    for op in &patch.0 {
        match empty_object_at_or_above(original, op.path()) {
            Some(at) => {
                let marker =
                    json!({"written": "an empty object of the original", "at": at.as_str()});
                if ops.last() != Some(&marker) {
                    ops.push(marker);
                }
            }
            None => ops.push(serde_json::to_value(op).map_err(|e| e.to_string())?),
        }
    }
    Ok(json!({"applied": applied, "ops": ops}))
}

/// The first empty object of `original` on the way to `path` (the path itself included), if any.
fn empty_object_at_or_above(original: &Value, path: &Pointer) -> Option<PointerBuf> {
    let is_empty_object = |v: &Value| v.as_object().is_some_and(serde_json::Map::is_empty);
    let mut value = original;
    let mut at = PointerBuf::new();
    if is_empty_object(value) {
        return Some(at);
    }
    for token in path.tokens() {
        value = match value {
            Value::Object(map) => map.get(token.decoded().as_ref())?,
            Value::Array(list) => list.get(token.decoded().parse::<usize>().ok()?)?,
            _ => return None,
        };
        at.push_back(token);
        if is_empty_object(value) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(ops: Value) -> Patch {
        serde_json::from_value(ops).unwrap()
    }

    #[test]
    fn one_add_of_an_empty_object_reads_like_one_add_per_member() {
        let original = json!({"spec": {"sc": {}, "full": {"a": 1}}});
        let per_member = patch(json!([
            {"op": "add", "path": "/spec/sc/x", "value": 1},
            {"op": "add", "path": "/spec/sc/y", "value": 2},
            {"op": "add", "path": "/spec/full/b", "value": 3}
        ]));
        let whole = patch(json!([
            {"op": "add", "path": "/spec/sc", "value": {"x": 1, "y": 2}},
            {"op": "add", "path": "/spec/full/b", "value": 3}
        ]));
        let text = |p: &Patch| normalised(&original, p).unwrap().to_string();
        assert_eq!(text(&per_member), text(&whole));
        // Another document (a value, the key order) or another operation outside the empty
        // object reads differently.
        let other_value = patch(json!([
            {"op": "add", "path": "/spec/sc", "value": {"x": 1, "y": 3}},
            {"op": "add", "path": "/spec/full/b", "value": 3}
        ]));
        let other_order = patch(json!([
            {"op": "add", "path": "/spec/sc", "value": {"y": 2, "x": 1}},
            {"op": "add", "path": "/spec/full/b", "value": 3}
        ]));
        let whole_non_empty = patch(json!([
            {"op": "add", "path": "/spec/sc", "value": {"x": 1, "y": 2}},
            {"op": "add", "path": "/spec/full", "value": {"a": 1, "b": 3}}
        ]));
        for other in [other_value, other_order, whole_non_empty] {
            assert_ne!(text(&per_member), text(&other), "{other:?}");
        }
    }
}
