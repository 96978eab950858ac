//! The overlay: what the rules add reads back as the hardened spec, and comes out as `add`
//! operations in the hardened spec's order; nothing else can be written.

use serde_json::{Value, json};

use super::*;
use crate::harden::patch::pointer;

fn apply(mut doc: Value, ops: Vec<Add>) -> Value {
    crate::harden::Patch(ops).apply(&mut doc).unwrap();
    doc
}

use Step::{Index, Key};

/// The operations' paths (every one an `add`).
pub(crate) fn paths(ops: &[Add]) -> Vec<String> {
    ops.iter().map(|op| op.path.to_string()).collect()
}

fn field() -> String {
    "f".into()
}

#[test]
fn additions_rebuild_the_hardened_value() {
    let original = json!({"a": {"b": 1, "list": [1, {"x": 1}]}, "n": null, "k/~": {}});
    let dom = Json::from(&original);
    let mut overlay = Overlay::new(&dom, pointer(&[]));
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
            Some(&Json::from(&hardened[key])),
            "{key}"
        );
    }
    assert_eq!(
        overlay.get(&[Key("new"), Key("list"), Index(1)]).as_deref(),
        Some(&Json::from(json!(2)))
    );
    assert_eq!(
        overlay.get(&[Key("a"), Key("b")]).as_deref(),
        Some(&Json::from(json!(1)))
    );
    assert_eq!(overlay.get(&[Key("missing")]), None);
    assert_eq!(
        overlay.appended(&[Key("a"), Key("list")]),
        [Json::from(json!(3))]
    );
    assert_eq!(
        overlay.appended(&[Key("new"), Key("list")]),
        [Json::from(json!(1)), Json::from(json!(2))]
    );
    assert!(overlay.appended(&[Key("a"), Key("b")]).is_empty());

    let ops = overlay.into_ops();
    // In the order of a walk of the hardened value: the original's keys in its order, then
    // the added keys in the order they were added.
    let paths = paths(&ops);
    assert_eq!(
        paths,
        ["/a/list/1/y", "/a/list/2", "/a/c", "/n", "/k~1~0", "/new"]
    );
    assert_eq!(apply(original.clone(), ops), hardened);
}

#[test]
fn operations_follow_the_originals_order_not_the_rules() {
    let original = json!({"z": {"o": 0}, "a": {"o": 0}, "m": [{"o": 0}, {"o": 0}]});
    let dom = Json::from(&original);
    let mut overlay = Overlay::new(&dom, pointer(&["spec", "template"]));
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

/// An empty object of the original that receives members is one `add` of the object with them,
/// where its members' operations were, its members in the order they were added; a non-empty
/// object (and an empty list element) keeps one `add` per member, an empty object that receives
/// nothing no operation.
#[test]
fn an_empty_object_is_added_whole() {
    let original = json!({"full": {"o": 0, "empty": {}}, "e": {}, "untouched": {}, "l": [{}]});
    let dom = Json::from(&original);
    let mut overlay = Overlay::new(&dom, pointer(&["spec"]));
    overlay
        .insert(
            &[Key("full"), Key("empty")],
            [("b", json!(1)), ("a", json!(2))],
            field,
        )
        .unwrap();
    overlay
        .insert(&[Key("full")], [("n", json!(3))], field)
        .unwrap();
    overlay
        .insert(&[Key("e"), Key("inner")], [("x", json!(1))], field)
        .unwrap();
    overlay
        .push(&[Key("e"), Key("list")], [json!(1)], field)
        .unwrap();
    overlay
        .insert(&[Key("e")], [("after", json!(true))], field)
        .unwrap();
    overlay
        .insert(&[Key("l"), Index(0)], [("k", json!("v"))], field)
        .unwrap();
    let ops = overlay.into_ops();
    let added: Vec<(String, String)> = ops
        .iter()
        .map(|op| (op.path.to_string(), op.value.to_string()))
        .collect();
    let expected = [
        ("/spec/full/empty", r#"{"b":1,"a":2}"#),
        ("/spec/full/n", "3"),
        ("/spec/e", r#"{"inner":{"x":1},"list":[1],"after":true}"#),
        // A list element is not added whole: an `add` at an index would insert.
        ("/spec/l/0/k", r#""v""#),
    ]
    .map(|(p, v)| (p.to_owned(), v.to_owned()));
    assert_eq!(added, expected);
    assert_eq!(
        apply(json!({"spec": original.clone()}), ops),
        json!({"spec": {"full": {"o": 0, "empty": {"b": 1, "a": 2}, "n": 3},
                        "e": {"inner": {"x": 1}, "list": [1], "after": true},
                        "untouched": {}, "l": [{"k": "v"}]}})
    );
}

#[test]
fn refuses_changes_and_wrong_types() {
    let original = json!({"a": 1, "o": {"k": false}, "l": [1, null], "s": "x"});
    let dom = Json::from(&original);
    let mut overlay = Overlay::new(&dom, pointer(&["spec"]));
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
        // A `null` list element: an `add` at its index would insert, not set it.
        overlay.insert(&[Key("l"), Index(1)], [("k", json!(1))], field),
        // Refused one step below a missing member: the member made on the way stays unset.
        overlay.push(&[Key("missing"), Index(0)], [json!(1)], field),
    ] {
        assert!(
            matches!(result, Err(HardenError::WrongType { .. })),
            "{result:?}"
        );
    }
    // The member made on the way by the refused write can still be added.
    overlay
        .insert(&[], [("missing", json!("later"))], field)
        .unwrap();
    // What was refused left nothing behind: only the three additions.
    assert_eq!(
        paths(&overlay.into_ops()),
        ["/spec/o/n", "/spec/new", "/spec/missing"]
    );
}
