//! A JSON field as the fuzzer writes it: absent, `null`, a value of its type, or any JSON.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Value, json};

/// A field: missing, `null`, a value of its type, or any JSON at all.
#[derive(Debug)]
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

/// Set half the time, so that nested settings (a capability in `securityContext.capabilities.add`)
/// come up often; missing, null and junk share the rest. Out of bytes, a field is set to its
/// type's smallest value.
impl<'a, T: Arbitrary<'a>> Arbitrary<'a> for Field<T> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=7u8)? {
            0..=3 => Field::Set(T::arbitrary(u)?),
            4 | 5 => Field::Absent,
            6 => Field::Null,
            _ => Field::Junk(Json::arbitrary(u)?),
        })
    }
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

/// What a generated value may be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Render {
    /// Junk ([`Field::Junk`], arbitrary JSON where a typed value belongs) is written; without
    /// it, a junk field is left out and every value has its field's JSON type: an object the
    /// rules can read (what the property tests need).
    pub junk: bool,
}

impl Render {
    /// Everything, junk too (the fuzz targets).
    pub const ANY: Render = Render { junk: true };
    /// Only values of their field's type (the property tests).
    pub const WELL_TYPED: Render = Render { junk: false };
}

/// Conversion to the JSON the API server would send.
pub trait ToJson {
    /// The value, as `r` allows.
    fn write(&self, r: Render) -> Value;

    /// The value, junk included.
    fn to_json(&self) -> Value {
        self.write(Render::ANY)
    }
}

/// Junk itself: written whole whatever the render (a junk field is left out before it gets here).
impl ToJson for Json {
    fn write(&self, _: Render) -> Value {
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
    fn write(&self, _: Render) -> Value {
        Value::Bool(*self)
    }
}

impl ToJson for i64 {
    fn write(&self, _: Render) -> Value {
        json!(self)
    }
}

impl ToJson for String {
    fn write(&self, _: Render) -> Value {
        Value::String(self.clone())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write(&self, r: Render) -> Value {
        // A junk item, left out, leaves no null behind in a well-typed list.
        let items = self.iter().map(|v| v.write(r));
        Value::Array(items.filter(|v| r.junk || !v.is_null()).collect())
    }
}

impl<T: ToJson> ToJson for Field<T> {
    fn write(&self, r: Render) -> Value {
        match self {
            Field::Absent | Field::Null => Value::Null,
            Field::Set(v) => v.write(r),
            Field::Junk(j) if r.junk => j.write(r),
            Field::Junk(_) => Value::Null,
        }
    }
}

/// Sets `key` in `map` to `field`, unless it is [`Field::Absent`] (or junk that `r` leaves out).
pub fn put<T: ToJson>(map: &mut Map<String, Value>, key: &str, field: &Field<T>, r: Render) {
    if !matches!(field, Field::Absent) && (r.junk || !matches!(field, Field::Junk(_))) {
        map.insert(key.to_owned(), field.write(r));
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
