//! The JSON the rules read: a borrowed, light document model of an object's pod spec and
//! annotations.
//!
//! Strings and keys are borrowed from the request body where they have no escapes
//! (`Cow<'a, str>`), objects are a `Vec` of members searched by comparing keys (a pod spec's
//! objects have a handful of members; an object of more than [`SCAN_MAX`] members also keeps its
//! members' positions sorted by key, so a lookup in a large one, annotations, is a binary
//! search), numbers are [`serde_json::Number`]. Duplicate keys keep the last value at the first
//! key's position, as `serde_json`'s `preserve_order` map does, so that every answer is the one
//! a [`serde_json::Value`] gave.
//!
//! Why not a `serde_json::Value` (with `preserve_order`) or a library: measured by a full parse of
//! `bench/fixtures/review-pod-create.json` (5.6 KB) on the AMD EPYC VM, release build (fat LTO,
//! mimalloc): a `preserve_order` `Value` 17.6 µs, `serde_json_borrow` 0.9 9.3 µs, `IgnoredAny`
//! 3.0 µs (3-container pod: 51.9 / 28.2 / 9.0 µs); an `IndexMap` costs two allocations and a
//! SipHash per key, and every key and string an allocation. `serde_json_borrow` 0.9 keeps
//! duplicate keys and its `get` returns the first (the API server's decoder, and
//! `serde_json::Value`, keep the last), and its `ObjectAsVec` cannot be built with owned
//! (escaped) keys through its public API, so it cannot give today's answers.
//!
//! Where the input is a [`serde_json::Value`] (offline YAML, the tests), [`Json::from`] borrows
//! from it; the rules build their additions as owned [`Json`] (`Json::object`), which the
//! patch's operations hold and serialise as they are (`crate::harden::Patch`).

use std::borrow::Cow;

use serde_json::Number;

mod convert;

/// Objects up to this many members are searched by comparing keys, not indexed: comparing a
/// handful of short keys costs less than any index.
pub const SCAN_MAX: usize = 16;

/// A JSON value whose strings may be borrowed from the text it was read from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Json<'a> {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json` reads it.
    Number(Number),
    /// A string.
    String(Cow<'a, str>),
    /// A list.
    Array(Vec<Json<'a>>),
    /// An object.
    Object(Object<'a>),
}

/// A JSON object: its members in the order written, keys unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, Json<'a>)>,
    /// Over [`SCAN_MAX`] members: the members' positions, sorted by key (empty otherwise).
    sorted: Vec<usize>,
}

impl<'a> Json<'a> {
    /// `self[key]` when `self` is an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// `self[index]` when `self` is a list.
    pub fn element(&self, index: usize) -> Option<&Json<'a>> {
        self.as_array().and_then(|a| a.get(index))
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_array(&self) -> Option<&Vec<Json<'a>>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The list, mutably, if this is one.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Json<'a>>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The object, mutably, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }
}

impl<'a> Object<'a> {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in order.
    pub fn iter(&self) -> Iter<'_, 'a> {
        self.into_iter()
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }

    /// The position of `key`'s member.
    fn position(&self, key: &str) -> Option<usize> {
        if self.sorted.is_empty() {
            self.members.iter().position(|(k, _)| k == key)
        } else {
            let members = &self.members;
            let at = self.sorted.partition_point(|&i| key_at(members, i) < key);
            self.sorted
                .get(at)
                .copied()
                .filter(|&i| key_at(members, i) == key)
        }
    }

    /// `self[key]`.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        let i = self.position(key)?;
        self.members.get(i).map(|(_, v)| v)
    }

    /// `self[key]`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json<'a>> {
        let i = self.position(key)?;
        self.members.get_mut(i).map(|(_, v)| v)
    }

    /// Sets `key` to `value`: in place when the key is there, else as the last member.
    pub fn insert(&mut self, key: Cow<'a, str>, value: Json<'a>) {
        if let Some(v) = self.get_mut(&key) {
            *v = value;
            return;
        }
        let i = self.members.len();
        self.members.push((key, value));
        if !self.sorted.is_empty() {
            let members = &self.members;
            let key = key_at(members, i);
            let at = self.sorted.partition_point(|&j| key_at(members, j) < key);
            self.sorted.insert(at, i);
        } else if self.members.len() > SCAN_MAX {
            self.sorted = sorted_positions(&self.members);
        }
    }

    /// Members whose keys are unique (a `serde_json` map's).
    fn from_unique(members: Vec<(Cow<'a, str>, Json<'a>)>) -> Self {
        let sorted = if members.len() > SCAN_MAX {
            sorted_positions(&members)
        } else {
            Vec::new()
        };
        Object { members, sorted }
    }

    /// The members `members` (in order, keys possibly repeated) as an object: a repeated key
    /// keeps its last value at its first position, as `serde_json`'s `preserve_order` map does.
    /// O(n log n): an attacker writes the body.
    pub fn from_members(members: Vec<(Cow<'a, str>, Json<'a>)>) -> Self {
        let mut builder = Builder::default();
        for (key, value) in members {
            builder.push(key, value);
        }
        builder.finish()
    }
}

/// The key of member `i` (`""` if there is none: positions always exist).
fn key_at<'m>(members: &'m [(Cow<'_, str>, Json<'_>)], i: usize) -> &'m str {
    members.get(i).map_or("", |(k, _)| k.as_ref())
}

/// The positions of `members` sorted by key (ties by position).
fn sorted_positions(members: &[(Cow<'_, str>, Json<'_>)]) -> Vec<usize> {
    let mut sorted: Vec<usize> = (0..members.len()).collect();
    // Stable: equal keys stay in the order written.
    sorted.sort_by(|&a, &b| key_at(members, a).cmp(key_at(members, b)));
    sorted
}

/// An object being read, member by member.
#[derive(Default)]
pub struct Builder<'a> {
    members: Vec<(Cow<'a, str>, Json<'a>)>,
}

impl<'a> Builder<'a> {
    /// Adds a member. While the object is small, a repeated key is found by comparing keys and
    /// its value replaced; past [`SCAN_MAX`] members, repeats are resolved by [`Builder::finish`].
    pub fn push(&mut self, key: Cow<'a, str>, value: Json<'a>) {
        if self.members.len() < SCAN_MAX
            && let Some((_, v)) = self.members.iter_mut().find(|(k, _)| *k == key)
        {
            *v = value;
            return;
        }
        self.members.push((key, value));
    }

    /// The object: each repeated key with its last value at its first position.
    pub fn finish(self) -> Object<'a> {
        let mut members = self.members;
        if members.len() <= SCAN_MAX {
            return Object {
                members,
                sorted: Vec::new(),
            };
        }
        let sorted = sorted_positions(&members);
        let mut dropped = vec![false; members.len()];
        // (first, last) position of each repeated key.
        let mut repeated = Vec::new();
        for run in sorted.chunk_by(|&a, &b| key_at(&members, a) == key_at(&members, b)) {
            if let [first, .., last] = *run {
                repeated.push((first, last));
                for &i in run.iter().skip(1) {
                    if let Some(d) = dropped.get_mut(i) {
                        *d = true;
                    }
                }
            }
        }
        if repeated.is_empty() {
            return Object { members, sorted };
        }
        for (first, last) in repeated {
            let value = members
                .get_mut(last)
                .map(|(_, v)| std::mem::take(v))
                .unwrap_or_default();
            if let Some((_, v)) = members.get_mut(first) {
                *v = value;
            }
        }
        // New positions of the members kept.
        let mut new_position = Vec::with_capacity(members.len());
        let mut next = 0;
        for &d in &dropped {
            new_position.push(next);
            next += usize::from(!d);
        }
        let sorted = sorted
            .into_iter()
            .filter(|&i| !dropped.get(i).copied().unwrap_or(true))
            .filter_map(|i| new_position.get(i).copied())
            .collect();
        let mut keep = dropped.iter().map(|d| !d);
        members.retain(|_| keep.next().unwrap_or(false));
        let sorted = if members.len() > SCAN_MAX {
            sorted
        } else {
            Vec::new()
        };
        Object { members, sorted }
    }
}

impl<'o, 'a> IntoIterator for &'o Object<'a> {
    type Item = (&'o str, &'o Json<'a>);
    type IntoIter = Iter<'o, 'a>;
    fn into_iter(self) -> Iter<'o, 'a> {
        Iter(self.members.iter())
    }
}

/// The members of an [`Object`], in order.
pub struct Iter<'o, 'a>(std::slice::Iter<'o, (Cow<'a, str>, Json<'a>)>);

impl<'o, 'a> Iterator for Iter<'o, 'a> {
    type Item = (&'o str, &'o Json<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }
}

#[cfg(test)]
mod tests;
