//! The slim parse keeps and fails exactly as a full parse; past the budget values are dropped.

use serde_json::Value;

use super::*;

#[derive(Deserialize)]
struct Full {
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Deserialize)]
struct Slimmed<'a> {
    #[serde(borrow, default)]
    object: Option<SlimObject<'a>>,
}

/// `object.spec.containers` of what was kept, as a list.
fn containers<'o>(object: &'o SlimObject<'_>) -> Option<&'o Vec<Json<'o>>> {
    let spec = object.value.get("spec")?;
    spec.get("containers").and_then(Json::as_array)
}

#[test]
fn values_past_the_budget_are_dropped_and_flagged() {
    // Whether over budget, and how many containers were kept.
    let parse = |n: usize| -> (bool, Option<usize>) {
        let items = vec!["{}"; n].join(",");
        let json = format!(
            r#"{{"object": {{"spec": {{"containers": [{items}]}}, "status": [{items}]}}}}"#
        );
        let object = serde_json::from_str::<Slimmed>(&json)
            .unwrap()
            .object
            .unwrap();
        (object.over_budget, containers(&object).map(Vec::len))
    };
    // The object, spec and containers list, then one value per item.
    assert_eq!(
        parse(MAX_KEPT_VALUES - 3),
        (false, Some(MAX_KEPT_VALUES - 3))
    );
    let (over, kept) = parse(MAX_KEPT_VALUES * 3);
    assert!(over);
    assert!(kept.is_none_or(|kept| kept < MAX_KEPT_VALUES));
    // Errors after the budget is spent are still found, at the same place.
    let broken = format!(
        r#"{{"object": {{"spec": [{}, tru]}}}}"#,
        vec!["1"; MAX_KEPT_VALUES].join(",")
    );
    assert!(serde_json::from_str::<Slimmed>(&broken).is_err());
}

/// What the rules read of a fully parsed object.
fn kept(object: &Value) -> Value {
    let Value::Object(map) = object else {
        return object.clone();
    };
    let mut out = serde_json::Map::new();
    if let Some(meta) = map.get("metadata") {
        let meta = match meta {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| *k == "annotations")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        out.insert("metadata".into(), meta);
    }
    if let Some(spec) = map.get("spec") {
        out.insert("spec".into(), spec.clone());
    }
    Value::Object(out)
}

#[test]
fn slim_parse_fails_and_keeps_exactly_as_a_full_parse() {
    let deep = format!("{}1{}", "[".repeat(140), "]".repeat(140));
    let cases = [
        r#"{"object": {"metadata": {"name": "x", "annotations": {"a": "1"}, "managedFields": [{"f": {}}]}, "spec": {"containers": []}, "status": {}}}"#.to_owned(),
        r#"{"object": {"spec": {"a": 1}, "spec": {"b": 2}, "metadata": "text", "metadata": {"annotations": null}}}"#.to_owned(),
        r#"{"object": null}"#.to_owned(),
        r#"{"object": "a string"}"#.to_owned(),
        r#"{"object": [1, 2.5, -3, true, null, {"spec": 1}]}"#.to_owned(),
        r#"{"object": {"status": {"n": 1e400}}}"#.to_owned(),
        r#"{"object": {"status": {"s": "\ud800"}}}"#.to_owned(),
        r#"{"object": {"status": {"s": "\q"}}}"#.to_owned(),
        "{\"object\": {\"status\": {\"s\": \"a\u{1}b\"}}}".to_owned(),
        r#"{"object": {"status": {"a": 1,}}}"#.to_owned(),
        r#"{"object": {"status": tru}}"#.to_owned(),
        format!(r#"{{"object": {{"status": {deep}}}}}"#),
        format!(r#"{{"object": {{"spec": {deep}}}}}"#),
        r#"{"object": {"metadata": {"annotations": {"k": 18446744073709551616}}}}"#.to_owned(),
        r#"{"object": {"spec": {"a": 1, "b": {"x": 1}, "a": 2, "b": {"y": 2}, "c\u0041": 3}}}"#
            .to_owned(),
        // A large object with repeated keys, some escaped.
        format!(
            r#"{{"object": {{"metadata": {{"annotations": {{{}, "k3": "last", "k\u0031": "e"}}}}}}}}"#,
            (0..40)
                .map(|i| format!(r#""k{}": "{i}""#, i % 30))
                .collect::<Vec<_>>()
                .join(",")
        ),
    ];
    for case in &cases {
        let full = serde_json::from_str::<Full>(case).map(|f| f.object.as_ref().map(kept));
        let slim =
            serde_json::from_str::<Slimmed>(case).map(|s| s.object.map(|o| Value::from(o.value)));
        match (full, slim) {
            (Ok(full), Ok(slim)) => assert_eq!(full, slim, "{case}"),
            (Err(full), Err(slim)) => {
                assert_eq!(full.to_string(), slim.to_string(), "{case}");
                assert_eq!(full.classify(), slim.classify(), "{case}");
            }
            (full, slim) => panic!("{case}: full {full:?}, slim {slim:?}"),
        }
    }
}

/// Strings and keys without escapes are borrowed from the body, escaped ones owned; both read
/// alike.
#[test]
fn unescaped_strings_are_borrowed() {
    let body = r#"{"object": {"spec": {"plain": "text", "esc\u0061ped": "a\"b"}}}"#;
    let object = serde_json::from_str::<Slimmed>(body)
        .unwrap()
        .object
        .unwrap();
    let spec = object.value.get("spec").and_then(Json::as_object).unwrap();
    let members: Vec<_> = spec.iter().collect();
    assert_eq!(members.len(), 2);
    assert!(matches!(
        spec.get("plain"),
        Some(Json::String(Cow::Borrowed("text")))
    ));
    assert!(matches!(spec.get("escaped"), Some(Json::String(Cow::Owned(s))) if s == "a\"b"));
    // From bytes (a body that is not UTF-8 elsewhere) as from text.
    let from_bytes = serde_json::from_slice::<Slimmed>(body.as_bytes()).unwrap();
    assert_eq!(from_bytes.object.unwrap().value, object.value);
}
