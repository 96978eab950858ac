//! Typed reads of raw JSON maps (the rules write through `overlay::Overlay`), with errors that name the field.
//!
//! The rules work on `serde_json` values rather than k8s-openapi structs so that fields newer than
//! k8s-openapi survive. A missing key and an explicit `null` both mean "not set", as in Kubernetes.

use serde_json::{Map, Value};

use super::HardenError;

/// A JSON object.
pub(crate) type Object = Map<String, Value>;

/// Objects up to this many members are searched by comparing keys, not hashing: the objects of a pod
/// spec have a handful of members, and one SipHash of the key costs more than comparing them all.
const SCAN_MAX: usize = 16;

/// `map[key]`, as [`Map::get`] gives it (keys are unique in a map, so the first match is the one).
pub(crate) fn get<'a>(map: &'a Object, key: &str) -> Option<&'a Value> {
    if map.len() <= SCAN_MAX {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// `value[key]` when `value` is an object, as [`Value::get`] gives it.
pub(crate) fn member<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object().and_then(|map| get(map, key))
}

fn wrong_type(path: impl FnOnce() -> String, expected: &'static str) -> HardenError {
    HardenError::WrongType {
        path: path(),
        expected,
    }
}

/// `map[key]` as an object; `None` when missing or null.
pub(crate) fn object<'a>(
    map: &'a Object,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a Object>, HardenError> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(wrong_type(path, "an object")),
    }
}

/// `map[key]` as an array; `None` when missing or null.
pub(crate) fn array<'a>(
    map: &'a Object,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a Vec<Value>>, HardenError> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(wrong_type(path, "a list")),
    }
}

/// `map[key]` as a bool; `None` when missing or null.
pub(crate) fn boolean(
    map: &Object,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<bool>, HardenError> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(path, "true or false")),
    }
}

/// `map[key]` as an integer; `None` when missing or null.
pub(crate) fn integer(
    map: &Object,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<i64>, HardenError> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, "an integer")),
    }
}

/// `map[key]` as a string; `None` when missing or null.
pub(crate) fn string<'a>(
    map: &'a Object,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a str>, HardenError> {
    match get(map, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(path, "a string")),
    }
}

/// Whether `map[key]` holds a value (not missing, not null).
pub(crate) fn is_set(map: &Object, key: &str) -> bool {
    get(map, key).is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The scan of a small object and the index of a large one find what `Map::get` finds.
    #[test]
    fn get_finds_what_the_map_finds() {
        for size in [0, 1, SCAN_MAX, SCAN_MAX + 1, 3 * SCAN_MAX] {
            let map: Object = (0..size).map(|i| (format!("k{i}"), json!(i))).collect();
            for key in [
                "k0",
                "k1",
                &format!("k{}", size.saturating_sub(1)),
                "k",
                "absent",
            ] {
                assert_eq!(get(&map, key), map.get(key), "{key} of {size}");
                let value = Value::Object(map.clone());
                assert_eq!(member(&value, key), value.get(key), "{key} of {size}");
            }
        }
        assert_eq!(member(&json!(["k0"]), "k0"), None);
        assert_eq!(member(&json!("k0"), "k0"), None);
    }
}
