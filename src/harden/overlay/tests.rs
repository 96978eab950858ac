//! The overlay: what the rules add reads back as the hardened spec, and comes out as `add`
//! operations in the hardened spec's order; nothing else can be written.

use serde_json::json;

use super::*;
use crate::harden::patch::pointer;

fn apply(mut doc: Value, ops: Vec<PatchOperation>) -> Value {
    json_patch::patch(&mut doc, &ops).unwrap();
    doc
}

use Step::{Index, Key};

/// The operations' paths (every one an `add`).
pub(crate) fn paths(ops: &[PatchOperation]) -> Vec<String> {
    ops.iter()
        .map(|op| match op {
            PatchOperation::Add(op) => op.path.to_string(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn field() -> String {
    "f".into()
}

#[test]
fn additions_rebuild_the_hardened_value() {
    let original = json!({"a": {"b": 1, "list": [1, {"x": 1}]}, "n": null, "k/~": {}});
    let mut overlay = Overlay::new(&original, pointer(&[]));
    overlay
        .insert(&[Key("a"), Key("list"), Index(1)], [("y", json!(2))], field)
        .unwrap();
    overlay
        .push(&[Key("a"), Key("list")], [json!(3)], field)
        .unwrap();
    overlay
        .insert(&[Key("a"), Key("c")], [("d", json!(true))], field)
        .unwrap();
    overlay
        .insert(&[Key("n")], [("set", json!(1))], field)
        .unwrap();
    overlay
        .insert(&[Key("k/~")], [("e", json!("f"))], field)
        .unwrap();
    overlay
        .push(&[Key("new"), Key("list")], [json!(1)], field)
        .unwrap();
    overlay
        .push(&[Key("new"), Key("list")], [json!(2)], field)
        .unwrap();
    let hardened = json!({
        "a": {"b": 1, "list": [1, {"x": 1, "y": 2}, 3], "c": {"d": true}},
        "n": {"set": 1},
        "k/~": {"e": "f"},
        "new": {"list": [1, 2]}
    });
    // Read back through the overlay: the hardened values.
    for key in ["a", "n", "k/~", "new"] {
        assert_eq!(
            overlay.get(&[Key(key)]).as_deref(),
            Some(&hardened[key]),
            "{key}"
        );
    }
    assert_eq!(
        overlay.get(&[Key("new"), Key("list"), Index(1)]).as_deref(),
        Some(&json!(2))
    );
    assert_eq!(
        overlay.get(&[Key("a"), Key("b")]).as_deref(),
        Some(&json!(1))
    );
    assert_eq!(overlay.get(&[Key("missing")]), None);
    assert_eq!(overlay.appended(&[Key("a"), Key("list")]), [json!(3)]);
    assert_eq!(
        overlay.appended(&[Key("new"), Key("list")]),
        [json!(1), json!(2)]
    );
    assert!(overlay.appended(&[Key("a"), Key("b")]).is_empty());

    let ops = overlay.into_ops();
    // In the order of a walk of the hardened value: the original's keys in its order, then
    // the added keys in the order they were added.
    let paths = paths(&ops);
    assert_eq!(
        paths,
        ["/a/list/1/y", "/a/list/2", "/a/c", "/n", "/k~1~0/e", "/new"]
    );
    assert_eq!(apply(original, ops), hardened);
}

#[test]
fn operations_follow_the_originals_order_not_the_rules() {
    let original = json!({"z": {}, "a": {}, "m": [{}, {}]});
    let mut overlay = Overlay::new(&original, pointer(&["spec", "template"]));
    overlay
        .insert(&[Key("m"), Index(1)], [("x", json!(1))], field)
        .unwrap();
    overlay
        .insert(&[Key("added")], [("x", json!(1))], field)
        .unwrap();
    overlay
        .insert(&[Key("a")], [("x", json!(1))], field)
        .unwrap();
    overlay
        .insert(&[Key("m"), Index(0)], [("x", json!(1))], field)
        .unwrap();
    overlay
        .insert(&[Key("z")], [("x", json!(1))], field)
        .unwrap();
    let paths = paths(&overlay.into_ops());
    assert_eq!(
        paths,
        [
            "/spec/template/z/x",
            "/spec/template/a/x",
            "/spec/template/m/0/x",
            "/spec/template/m/1/x",
            "/spec/template/added"
        ]
    );
}

#[test]
fn refuses_changes_and_wrong_types() {
    let original = json!({"a": 1, "o": {"k": false}, "l": [1], "s": "x"});
    let mut overlay = Overlay::new(&original, pointer(&["spec"]));
    let not_additive = |r: Result<(), HardenError>| match r {
        Err(HardenError::NotAdditive { path }) => path,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        not_additive(overlay.insert(&[], [("a", json!(2))], field)),
        "/spec/a"
    );
    assert_eq!(
        not_additive(overlay.insert(&[Key("o")], [("k", json!(true))], field)),
        "/spec/o/k"
    );
    overlay
        .insert(&[Key("o")], [("n", json!(1))], field)
        .unwrap();
    assert_eq!(
        not_additive(overlay.insert(&[Key("o")], [("n", json!(2))], field)),
        "/spec/o/n"
    );
    overlay
        .insert(&[Key("new")], [("n", json!(1))], field)
        .unwrap();
    assert_eq!(
        not_additive(overlay.insert(&[Key("new")], [("n", json!(2))], field)),
        "/spec/new/n"
    );
    for result in [
        overlay.insert(&[Key("s")], [("k", json!(1))], field),
        overlay.insert(&[Key("l")], [("k", json!(1))], field),
        overlay.push(&[Key("o")], [json!(1)], field),
        overlay.push(&[Key("a"), Key("b")], [json!(1)], field),
        overlay.insert(&[Key("l"), Index(5)], [("k", json!(1))], field),
    ] {
        assert!(
            matches!(result, Err(HardenError::WrongType { .. })),
            "{result:?}"
        );
    }
    // What was refused left nothing behind: only the two additions.
    assert_eq!(overlay.into_ops().len(), 2);
}
