//! A JSON field as the fuzzer writes it: absent, `null`, a value of its type, or any JSON.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

/// A field: missing, `null`, a value of its type, or any JSON at all.
#[derive(Arbitrary, Debug)]
pub enum Field<T> {
    /// Not in the object.
    Absent,
    /// `null`.
    Null,
    /// A value of the field's type.
    Set(T),
    /// Anything.
    Junk(Json),
}

/// Any JSON value (nesting bounded by the input's length).
#[derive(Arbitrary, Debug)]
pub enum Json {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (NaN and infinities become null).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object.
    Object(Vec<(String, Json)>),
}

/// Conversion to the JSON the API server would send.
pub trait ToJson {
    /// The value.
    fn to_json(&self) -> Value;
}

impl ToJson for Json {
    fn to_json(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => json!(i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.iter().map(ToJson::to_json).collect()),
            Json::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Value {
        json!(self)
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Field<T> {
    fn to_json(&self) -> Value {
        match self {
            Field::Absent | Field::Null => Value::Null,
            Field::Set(v) => v.to_json(),
            Field::Junk(j) => j.to_json(),
        }
    }
}

pub(crate) fn put<T: ToJson>(map: &mut Map<String, Value>, key: &str, field: &Field<T>) {
    if !matches!(field, Field::Absent) {
        map.insert(key.to_owned(), field.to_json());
    }
}

impl Clone for Json {
    fn clone(&self) -> Self {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(*b),
            Json::Int(i) => Json::Int(*i),
            Json::Float(f) => Json::Float(*f),
            Json::Str(s) => Json::Str(s.clone()),
            Json::Array(a) => Json::Array(a.clone()),
            Json::Object(o) => Json::Object(o.clone()),
        }
    }
}
