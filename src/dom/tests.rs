use serde_json::{Value, json};

use super::*;

fn members(keys: &[&'static str]) -> Vec<(Cow<'static, str>, Json<'static>)> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| (Cow::Borrowed(*k), Json::Number(i.into())))
        .collect()
}

/// What `serde_json`'s `preserve_order` map makes of the same members.
fn as_map(keys: &[&str]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for (i, k) in keys.iter().enumerate() {
        map.insert((*k).to_owned(), json!(i));
    }
    map
}

/// Repeated keys keep the last value at the first position, small or large, as the map does;
/// every key is found where the map finds it.
#[test]
fn repeated_keys_keep_the_last_value_at_the_first_position() {
    let many: Vec<String> = (0..3 * SCAN_MAX).map(|i| format!("k{i:02}")).collect();
    let many: Vec<&'static str> = many.into_iter().map(|s| &*s.leak()).collect();
    let cases: Vec<Vec<&'static str>> = vec![
        vec![],
        vec!["a"],
        vec!["a", "b", "a"],
        vec!["b", "a", "b", "b", "c", "a"],
        many.clone(),
        [&many[..], &["k00", "k05"], &many[..3]].concat(),
        [&["z"][..], &many[..], &["z"]].concat(),
        // Small at first (repeats replaced as read), large at the end (repeats resolved then).
        [&["a", "b", "a"][..], &many[..SCAN_MAX], &["b", "a"]].concat(),
        // Large with repeats, small once they are resolved.
        [&many[..10], &many[..10]].concat(),
    ];
    for keys in cases {
        let object = Object::from_members(members(&keys));
        let map = as_map(&keys);
        let expected = Value::Object(map.clone());
        assert_eq!(
            Value::from(Json::Object(object.clone())),
            expected,
            "{keys:?}"
        );
        assert_eq!(object.len(), map.len(), "{keys:?}");
        for key in keys.iter().copied().chain(["absent", "", "k", "zz"]) {
            assert_eq!(
                object.get(key).map(|v| Value::from(v.clone())),
                map.get(key).cloned(),
                "{key} in {keys:?}"
            );
        }
    }
}

/// Members inserted one by one are found, in small and large objects, and an insert of a key
/// that is there replaces its value in place.
#[test]
fn inserted_members_are_found() {
    let mut object = Object::new();
    let mut map = serde_json::Map::new();
    for i in 0..3 * SCAN_MAX {
        // Keys in an order that is not sorted.
        let key = format!("k{}", (i * 7) % (3 * SCAN_MAX));
        object.insert(Cow::Owned(key.clone()), Json::Number(i.into()));
        map.insert(key, json!(i));
        for (k, v) in &map {
            assert_eq!(
                object.get(k).map(|v| Value::from(v.clone())).as_ref(),
                Some(v)
            );
        }
    }
    object.insert(Cow::Borrowed("k3"), Json::Bool(true));
    map.insert("k3".into(), json!(true));
    assert_eq!(
        Value::from(Json::Object(object.clone())),
        Value::Object(map)
    );
    assert_eq!(object.get_mut("k3"), Some(&mut Json::Bool(true)));
    assert_eq!(object.get("absent"), None);
}

/// The conversions from and to `serde_json::Value` give the same value back; the borrowed one
/// borrows; the text is `Value`'s.
#[test]
fn conversions_and_text_are_value_s() {
    let value = json!({
        "s": "a \"quoted\" \u{e9}", "n": -1, "u": 18446744073709551615_u64, "f": 0.5,
        "b": false, "z": null, "l": [1, "x", {"k": []}], "o": {"k": {}}
    });
    let borrowed = Json::from(&value);
    assert!(matches!(
        borrowed.get("s"),
        Some(Json::String(Cow::Borrowed(_)))
    ));
    assert_eq!(borrowed.to_string(), value.to_string());
    assert_eq!(Value::from(borrowed.clone()), value);
    assert_eq!(Json::from(value.clone()), borrowed);
    assert_eq!(
        borrowed
            .get("l")
            .and_then(|l| l.element(1))
            .and_then(Json::as_str),
        Some("x")
    );
    assert_eq!(borrowed.get("n").and_then(Json::as_i64), Some(-1));
    assert_eq!(borrowed.get("u").and_then(Json::as_i64), None);
    assert_eq!(borrowed.get("f").and_then(Json::as_f64), Some(0.5));
    assert_eq!(borrowed.get("b").and_then(Json::as_bool), Some(false));
    assert!(borrowed.get("z").is_some_and(Json::is_null));
    assert_eq!(borrowed.element(0), None);
    assert_eq!(json!("x").to_string(), Json::from(&json!("x")).to_string());
}

/// What the rules build reads and converts like the `json!` value it replaces; an owned copy
/// equals its borrowed original.
#[test]
fn built_values_are_json_s() {
    let built = Json::object([
        ("name", "TMPDIR".into()),
        ("n", Json::from(-7_i64)),
        ("b", true.into()),
        (
            "o",
            Json::object([("sizeLimit", String::from("64Mi").into())]),
        ),
    ]);
    let expected = json!({"name": "TMPDIR", "n": -7, "b": true, "o": {"sizeLimit": "64Mi"}});
    assert_eq!(Value::from(built.clone()), expected);
    assert_eq!(built.to_string(), expected.to_string());
    let borrowed = Json::from(&expected);
    assert_eq!(borrowed.clone().into_owned(), borrowed);
    assert!(built.get("name").is_some_and(|n| *n == "TMPDIR"));
}
