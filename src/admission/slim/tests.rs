//! The slim parse keeps and fails exactly as a full parse; past the budget values are dropped.

use super::*;

#[derive(Deserialize)]
struct Full {
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Deserialize)]
struct Slimmed {
    #[serde(default)]
    object: Option<SlimObject>,
}

#[test]
fn values_past_the_budget_are_dropped_and_flagged() {
    let parse = |n: usize| -> SlimObject {
        let items = vec!["{}"; n].join(",");
        let json = format!(
            r#"{{"object": {{"spec": {{"containers": [{items}]}}, "status": [{items}]}}}}"#
        );
        serde_json::from_str::<Slimmed>(&json)
            .unwrap()
            .object
            .unwrap()
    };
    // The object, spec and containers list, then one value per item.
    let within = parse(MAX_KEPT_VALUES - 3);
    assert!(!within.over_budget);
    assert_eq!(
        within.value["spec"]["containers"].as_array().unwrap().len(),
        MAX_KEPT_VALUES - 3
    );
    let over = parse(MAX_KEPT_VALUES * 3);
    assert!(over.over_budget);
    assert!(
        over.value["spec"]["containers"]
            .as_array()
            .is_none_or(|kept| kept.len() < MAX_KEPT_VALUES)
    );
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
    ];
    for case in &cases {
        let full = serde_json::from_str::<Full>(case).map(|f| f.object.as_ref().map(kept));
        let slim = serde_json::from_str::<Slimmed>(case).map(|s| s.object.map(|o| o.value));
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
