//! Typed reads of raw JSON maps (the rules write through `overlay::Overlay`), with errors that name the field.
//!
//! The rules work on raw JSON ([`crate::dom::Json`], borrowed from the request) rather than k8s-openapi structs so that fields newer than
//! k8s-openapi survive. A missing key and an explicit `null` both mean "not set", as in Kubernetes.

use crate::dom::Json;
pub(crate) use crate::dom::Object;

use super::HardenError;

/// `map[key]` (see [`Object::get`]: small objects are searched, large ones indexed).
pub(crate) fn get<'a, 'd>(map: &'a Object<'d>, key: &str) -> Option<&'a Json<'d>> {
    map.get(key)
}

/// `value[key]` when `value` is an object.
pub(crate) fn member<'a, 'd>(value: &'a Json<'d>, key: &str) -> Option<&'a Json<'d>> {
    value.get(key)
}

fn wrong_type(path: impl FnOnce() -> String, expected: &'static str) -> HardenError {
    HardenError::WrongType {
        path: path(),
        expected,
    }
}

/// `map[key]` as an object; `None` when missing or null.
pub(crate) fn object<'a, 'd>(
    map: &'a Object<'d>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a Object<'d>>, HardenError> {
    match get(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(o)) => Ok(Some(o)),
        Some(_) => Err(wrong_type(path, "an object")),
    }
}

/// `map[key]` as an array; `None` when missing or null.
pub(crate) fn array<'a, 'd>(
    map: &'a Object<'d>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a Vec<Json<'d>>>, HardenError> {
    match get(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(a)) => Ok(Some(a)),
        Some(_) => Err(wrong_type(path, "a list")),
    }
}

/// `map[key]` as a bool; `None` when missing or null.
pub(crate) fn boolean(
    map: &Object<'_>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<bool>, HardenError> {
    match get(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(path, "true or false")),
    }
}

/// `map[key]` as an integer; `None` when missing or null.
pub(crate) fn integer(
    map: &Object<'_>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<i64>, HardenError> {
    match get(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, "an integer")),
    }
}

/// `map[key]` as a string; `None` when missing or null.
pub(crate) fn string<'a, 'd>(
    map: &'a Object<'d>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a str>, HardenError> {
    match get(map, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.as_ref())),
        Some(_) => Err(wrong_type(path, "a string")),
    }
}

/// Whether `map[key]` holds a value (not missing, not null).
pub(crate) fn is_set(map: &Object<'_>, key: &str) -> bool {
    get(map, key).is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The typed reads: missing and `null` are "not set", a wrong type names the path.
    #[test]
    fn typed_reads() {
        let doc = json!({"o": {"k": 1}, "a": [1], "b": true, "i": -3, "s": "x", "n": null});
        let doc = Json::from(&doc);
        let map = doc.as_object().unwrap();
        let path = || "spec.x".to_owned();
        assert!(object(map, "o", path).unwrap().is_some());
        assert_eq!(array(map, "a", path).unwrap().map(Vec::len), Some(1));
        assert_eq!(boolean(map, "b", path).unwrap(), Some(true));
        assert_eq!(integer(map, "i", path).unwrap(), Some(-3));
        assert_eq!(string(map, "s", path).unwrap(), Some("x"));
        for key in ["n", "absent"] {
            assert!(object(map, key, path).unwrap().is_none());
            assert!(string(map, key, path).unwrap().is_none());
            assert!(!is_set(map, key));
        }
        let err = string(map, "i", path).unwrap_err();
        assert_eq!(err.to_string(), "spec.x: expected a string");
        assert!(object(map, "a", path).is_err() && array(map, "o", path).is_err());
        assert_eq!(member(&doc, "s").and_then(Json::as_str), Some("x"));
        assert_eq!(member(&Json::from(&json!(["s"])), "s"), None);
    }
}
