//! `request.object` parsed with only what the rules read, within a budget of JSON values.
//!
//! The rules read `spec` and `metadata.annotations`; everything else (`managedFields`, `status`,
//! labels, ...) is parsed and checked exactly as a [`serde_json::Value`] would be, but never
//! stored. What is kept is counted: past [`MAX_KEPT_VALUES`] JSON values the rest is checked and
//! dropped and the object is marked over budget, so a body of millions of tiny values
//! (`[{},{},...]`) costs the memory of [`MAX_KEPT_VALUES`], not twenty times its size. What is
//! kept is a [`Json`] that borrows its strings and keys from the body where they have no escapes.

use std::borrow::Cow;
use std::cell::Cell;

use serde::Deserialize;

use crate::dom::{Builder, Json};

/// Most JSON values kept of one object (its `spec` and annotations). Real pod specs have a few
/// hundred to a few thousand; a pod spec the API server can store (etcd's 1.5 MiB) has well under
/// this many.
pub const MAX_KEPT_VALUES: usize = 100_000;

/// `request.object` with only what the rules read: `spec`, and `metadata.annotations`. Every other
/// member (`managedFields`, `status`, labels, ...) is parsed and checked exactly as a
/// [`serde_json::Value`] would be (same syntax, number range and nesting-depth errors, at the
/// same place), but never stored: on a typical Pod that is half the JSON, and the allocations it
/// would cost. Duplicate keys keep the last value, as [`serde_json::Value`] does; a value that is
/// not an object is kept whole. At most [`MAX_KEPT_VALUES`] values are kept.
pub(super) struct SlimObject<'de> {
    /// What was kept (partial when over budget).
    pub value: Json<'de>,
    /// More than [`MAX_KEPT_VALUES`] values were to be kept: `value` is incomplete.
    pub over_budget: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for SlimObject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let budget = Budget {
            left: Cell::new(MAX_KEPT_VALUES),
            over: Cell::new(false),
        };
        let value = deserializer.deserialize_any(Slim(Keep::Object, &budget))?;
        Ok(SlimObject {
            value,
            over_budget: budget.over.get(),
        })
    }
}

/// The values left to keep.
struct Budget {
    left: Cell<usize>,
    over: Cell<bool>,
}

impl Budget {
    /// Takes one value from the budget; false (and over budget from then on) when none is left.
    fn take(&self) -> bool {
        match self.left.get() {
            _ if self.over.get() => false,
            0 => {
                self.over.set(true);
                false
            }
            n => {
                self.left.set(n - 1);
                true
            }
        }
    }
}

/// Which members of a map [`Slim`] keeps.
#[derive(Clone, Copy)]
enum Keep {
    /// The object: `metadata` (slimmed) and `spec`.
    Object,
    /// Its metadata: `annotations`.
    Metadata,
}

/// Reads a value like [`serde_json::Value`]'s own visitor, keeping only some members of a map.
#[derive(Clone, Copy)]
struct Slim<'b>(Keep, &'b Budget);

impl<'de> serde::de::DeserializeSeed<'de> for Slim<'_> {
    type Value = Json<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Slim<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        serde::de::DeserializeSeed::deserialize(Kept(self.1), d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Json<'de>, A::Error> {
        Kept(self.1).visit_seq(seq)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut kept = Builder::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match (self.0, key.as_ref()) {
                (Keep::Object, "metadata") => {
                    let value = map.next_value_seed(Slim(Keep::Metadata, self.1))?;
                    kept.push(key, value);
                }
                (Keep::Object, "spec") | (Keep::Metadata, "annotations") => {
                    let value = map.next_value_seed(Kept(self.1))?;
                    kept.push(key, value);
                }
                _ => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Json::Object(kept.finish()))
    }
}

/// A value read like [`serde_json::Value`]'s own visitor, counted against the budget: once it is spent, the
/// rest is checked and dropped (nothing more is stored, not even a `null` per item).
#[derive(Clone, Copy)]
struct Kept<'b>(&'b Budget);

impl<'de> serde::de::DeserializeSeed<'de> for Kept<'_> {
    type Value = Json<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Kept<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::Number(v.into())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(self.keep(|| serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::String(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::String(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(self.keep(|| Json::String(Cow::Owned(v))))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        if !self.0.take() {
            while seq.next_element::<Checked>()?.is_some() {}
            return Ok(Json::Null);
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            if !self.0.over.get() {
                items.push(item);
            }
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        if !self.0.take() {
            while map.next_key::<Checked>()?.is_some() {
                map.next_value::<Checked>()?;
            }
            return Ok(Json::Null);
        }
        let mut kept = Builder::default();
        while let Some(key) = map.next_key_seed(Key)? {
            let value = map.next_value_seed(self)?;
            if !self.0.over.get() {
                kept.push(key, value);
            }
        }
        Ok(Json::Object(kept.finish()))
    }
}

impl Kept<'_> {
    /// `make()` while the budget lasts, `null` after.
    fn keep<'de>(self, make: impl FnOnce() -> Json<'de>) -> Json<'de> {
        if self.0.take() { make() } else { Json::Null }
    }
}

/// A key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value that is parsed (and so checked) like a [`serde_json::Value`] and then dropped, allocating nothing.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        Checked::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests;
