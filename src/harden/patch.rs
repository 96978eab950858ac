//! Turns "original + hardened" into an RFC 6902 patch made only of `add` operations
//! (<https://www.rfc-editor.org/rfc/rfc6902>).
//!
//! The diff walks only the pod spec, not the whole object, and refuses anything but additions:
//! a rule that would change or remove a value is a bug, reported as
//! [`HardenError::NotAdditive`](super::HardenError::NotAdditive) instead of being patched.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value};

use super::HardenError;

/// A JSON pointer from object keys.
pub(crate) fn pointer(path: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(path.iter().copied())
}

/// The `add` operations that turn `original` into `hardened`, with paths under `base`.
///
/// `hardened` must contain everything `original` has: object members may be added, arrays may
/// grow at their end, and a `null` may become a value. Anything else is an error.
pub fn additions(
    original: &Value,
    hardened: &Value,
    base: &PointerBuf,
) -> Result<Vec<PatchOperation>, HardenError> {
    let mut ops = Vec::new();
    let mut at = Path {
        base,
        tokens: Vec::new(),
    };
    diff(original, hardened, &mut at, &mut ops)?;
    Ok(ops)
}

/// One step of a path below the base.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where the diff is. Kept as borrowed steps and turned into a JSON pointer only for an
/// operation or an error: most of the walk finds nothing to add.
struct Path<'a, 'b> {
    base: &'b PointerBuf,
    tokens: Vec<Step<'a>>,
}

impl<'a> Path<'a, '_> {
    fn pointer(&self, last: Option<Step<'_>>) -> PointerBuf {
        let mut pointer = self.base.clone();
        for step in self.tokens.iter().copied().chain(last) {
            match step {
                Step::Key(key) => pointer.push_back(key),
                Step::Index(i) => pointer.push_back(i.to_string()),
            }
        }
        pointer
    }

    fn push(&mut self, step: Step<'a>) {
        self.tokens.push(step);
    }

    fn pop(&mut self) {
        self.tokens.pop();
    }
}

fn diff<'a>(
    original: &'a Value,
    hardened: &'a Value,
    at: &mut Path<'a, '_>,
    ops: &mut Vec<PatchOperation>,
) -> Result<(), HardenError> {
    match (original, hardened) {
        (Value::Object(a), Value::Object(b)) => {
            // The hardened spec is a clone with members appended, so its first keys are the
            // original's in the same order: walk both in step, without hashing. Otherwise look
            // every key up (same operations, same order).
            let in_step = b.len() >= a.len() && a.keys().zip(b.keys()).all(|(x, y)| x == y);
            if in_step {
                for ((key, old), new) in a.iter().zip(b.values()) {
                    at.push(Step::Key(key));
                    diff(old, new, at, ops)?;
                    at.pop();
                }
                for (key, new) in b.iter().skip(a.len()) {
                    ops.push(add(at.pointer(Some(Step::Key(key))), new.clone()));
                }
                return Ok(());
            }
            for (key, old) in a {
                let new = b.get(key).ok_or_else(|| not_additive(at, key))?;
                at.push(Step::Key(key));
                diff(old, new, at, ops)?;
                at.pop();
            }
            for (key, new) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                ops.push(add(at.pointer(Some(Step::Key(key))), new.clone()));
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if b.len() < a.len() {
                return Err(not_additive(at, ""));
            }
            for (i, (old, new)) in a.iter().zip(b).enumerate() {
                at.push(Step::Index(i));
                diff(old, new, at, ops)?;
                at.pop();
            }
            for (i, new) in b.iter().enumerate().skip(a.len()) {
                ops.push(add(at.pointer(Some(Step::Index(i))), new.clone()));
            }
            Ok(())
        }
        (Value::Null, new) if !new.is_null() => {
            ops.push(add(at.pointer(None), new.clone()));
            Ok(())
        }
        (old, new) if old == new => Ok(()),
        _ => Err(HardenError::NotAdditive {
            path: at.pointer(None).to_string(),
        }),
    }
}

fn not_additive(at: &Path<'_, '_>, key: &str) -> HardenError {
    HardenError::NotAdditive {
        path: at.pointer(Some(Step::Key(key))).to_string(),
    }
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// The operations that set the annotations `entries` (key, value) on the metadata at
/// `meta_path`, creating `metadata` or `annotations` when missing: one operation per key when
/// the annotations exist, else one that adds them all (two `add`s of a missing `annotations`
/// would replace each other).
pub(crate) fn annotation_ops(
    meta_path: &[&str],
    meta: Option<&Value>,
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
    fn additions_rebuild_the_hardened_value() {
        let original = json!({"a": {"b": 1, "list": [1, {"x": 1}]}, "n": null, "k/~": {}});
        let hardened = json!({
            "a": {"b": 1, "list": [1, {"x": 1, "y": 2}, 3], "c": {"d": true}},
            "n": {"set": 1},
            "k/~": {"e": "f"}
        });
        let ops = additions(&original, &hardened, &pointer(&[])).unwrap();
        assert_eq!(ops.len(), 5, "{ops:?}");
        assert_eq!(apply(original, ops), hardened);
    }

    #[test]
    fn paths_are_under_the_base_and_escaped() {
        let ops = additions(
            &json!({}),
            &json!({"a/b": 1}),
            &pointer(&["spec", "template"]),
        )
        .unwrap();
        let path = match &ops[0] {
            PatchOperation::Add(op) => op.path.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(path, "/spec/template/a~1b");
    }

    #[test]
    fn refuses_changes_and_removals() {
        let cases = [
            (json!({"a": 1}), json!({"a": 2})),
            (json!({"a": 1}), json!({})),
            (json!([1, 2]), json!([1])),
            (json!([1, 2]), json!([2, 1, 3])),
            (json!({"a": "x"}), json!({"a": {"x": 1}})),
            (json!({"a": false}), json!({"a": null})),
        ];
        for (original, hardened) in cases {
            assert!(
                matches!(
                    additions(&original, &hardened, &pointer(&[])),
                    Err(HardenError::NotAdditive { .. })
                ),
                "{original} -> {hardened}"
            );
        }
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
            let ops = annotation_ops(&["metadata"], object.get("metadata"), entries);
            assert_eq!(apply(object, ops), expected);
        }
        assert!(annotation_ops(&["metadata"], None, Vec::new()).is_empty());
    }
}
