//! Typed reads of raw JSON maps (the rules write through `patch::Overlay`), with errors that name the field.
//!
//! The rules work on `serde_json` values rather than k8s-openapi structs so that fields newer than
//! k8s-openapi survive. A missing key and an explicit `null` both mean "not set", as in Kubernetes.

use serde_json::{Map, Value};

use super::HardenError;

/// A JSON object.
pub(crate) type Object = Map<String, Value>;

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
    match map.get(key) {
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
    match map.get(key) {
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
    match map.get(key) {
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
    match map.get(key) {
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
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(path, "a string")),
    }
}

/// Whether `map[key]` holds a value (not missing, not null).
pub(crate) fn is_set(map: &Object, key: &str) -> bool {
    map.get(key).is_some_and(|v| !v.is_null())
}
