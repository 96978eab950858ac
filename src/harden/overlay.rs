//! The rules' additions to a pod spec, kept beside it (never a copy of it).
//!
//! The rules write into an [`Overlay`] as they decide: members added to an object, elements
//! appended to a list, a `null` given a value. By construction nothing else can be written: a
//! member the original already has is refused as
//! [`HardenError::NotAdditive`](super::HardenError::NotAdditive), never patched. What reads the
//! hardened spec (the Pod Security check, the findings) reads the original through it
//! ([`Overlay::get`], [`Overlay::appended`]). [`Overlay::into_ops`] gives the RFC 6902 `add`
//! operations in the order of a walk of the hardened spec: the original's members in its order
//! (descending where something was added below), then the added members in the order they were
//! added, list elements by index, appended elements last; an empty object of the original
//! that receives members is one `add` of the object with them (unless it is a list element).

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;

use crate::dom::{Json, Object};

use super::HardenError;
use super::json;
use super::patch::Add;

mod emit;
use emit::emit;

/// One step of a path in the pod spec.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'k> {
    /// An object member.
    Key(&'k str),
    /// A list element.
    Index(usize),
}

/// What is added at or below one value of the original.
#[derive(Debug)]
enum Node {
    /// An object: its members something is added below, and the members added to it.
    Object {
        below: Vec<(String, Node)>,
        added: Vec<(String, Json<'static>)>,
    },
    /// A list: its elements something is added below, and the elements appended to it.
    Array {
        below: Vec<(usize, Node)>,
        appended: Vec<Json<'static>>,
    },
    /// A `null` of the original, given this value (still `null` while nothing is set in it).
    Set(Json<'static>),
}

impl Node {
    /// An empty node over `original` (an object or a list; a `null` becomes [`Node::Set`]).
    fn over(original: &Json<'_>) -> Option<Self> {
        match original {
            Json::Object(_) => Some(Node::Object {
                below: Vec::new(),
                added: Vec::new(),
            }),
            Json::Array(_) => Some(Node::Array {
                below: Vec::new(),
                appended: Vec::new(),
            }),
            Json::Null => Some(Node::Set(Json::Null)),
            _ => None,
        }
    }
}

/// Where a path leads: below a value of the original, or into a value the rules added.
enum Slot<'n, 'o> {
    Node(&'n mut Node, &'o Json<'o>),
    New(&'n mut Json<'static>),
}

/// Why a path cannot be written.
enum Refused {
    /// A value on the way has a type that cannot hold what is added.
    Type(&'static str),
    /// The member is already set.
    Set,
}

/// The additions to one pod spec: written by the rules, read back where they read the
/// hardened spec ([`Overlay::get`], [`Overlay::appended`]), turned into patch operations by
/// [`Overlay::into_ops`].
#[derive(Debug)]
pub(crate) struct Overlay<'o> {
    original: &'o Json<'o>,
    /// Where the pod spec is in the object (for the operations and errors).
    base: PointerBuf,
    root: Node,
}

impl<'o> Overlay<'o> {
    /// No additions yet to `original` (the pod spec, at `base` in the object): an object, or
    /// `null` (which the first addition replaces). The caller refuses any other type: over a
    /// scalar, an addition would replace it.
    pub fn new(original: &'o Json<'o>, base: PointerBuf) -> Self {
        debug_assert!(original.is_object() || original.is_null());
        let root = Node::over(original).unwrap_or(Node::Set(Json::Null));
        Self {
            original,
            base,
            root,
        }
    }

    /// Adds the members `entries` to the object at `path`, created (with the objects on the way)
    /// when missing or `null`. `field` names the path for a type error.
    pub fn insert(
        &mut self,
        path: &[Step<'_>],
        entries: impl IntoIterator<Item = (&'static str, impl Into<Json<'static>>)>,
        field: impl Fn() -> String,
    ) -> Result<(), HardenError> {
        let base = &self.base;
        let slot = slot(&mut self.root, self.original, path)
            .map_err(|e| refused(e, &field, base, path))?;
        let refused_at = |e, key| refused(e, &field, base, &[path, &[Step::Key(key)]].concat());
        match slot {
            Slot::Node(Node::Object { below, added }, Json::Object(map)) => {
                for (key, value) in entries {
                    let value = value.into();
                    match json::get(map, key) {
                        Some(Json::Null) => match member(
                            below,
                            |k| k == key,
                            || (key.to_owned(), Node::Set(Json::Null)),
                        ) {
                            Some(Node::Set(set @ Json::Null)) => *set = value,
                            _ => return Err(refused_at(Refused::Set, key)),
                        },
                        Some(_) => return Err(refused_at(Refused::Set, key)),
                        // A `null` left by a path made on the way (see `descend`) is unset.
                        None => match added.iter_mut().find(|(k, _)| k == key) {
                            Some((_, set)) if set.is_null() => *set = value,
                            Some(_) => return Err(refused_at(Refused::Set, key)),
                            None => added.push((key.to_owned(), value)),
                        },
                    }
                }
                Ok(())
            }
            Slot::New(value) => {
                if value.is_null() {
                    *value = Json::Object(Object::new());
                }
                let Json::Object(map) = value else {
                    return Err(refused_at(Refused::Type("an object"), ""));
                };
                for (key, value) in entries {
                    if json::get(map, key).is_some_and(|v| !v.is_null()) {
                        return Err(refused_at(Refused::Set, key));
                    }
                    map.insert(Cow::Borrowed(key), value.into());
                }
                Ok(())
            }
            Slot::Node(..) => Err(refused(Refused::Type("an object"), &field, base, path)),
        }
    }

    /// Appends `values` to the list at `path`, created (with the objects on the way) when
    /// missing or `null`. `field` names the path for a type error.
    pub fn push(
        &mut self,
        path: &[Step<'_>],
        values: impl IntoIterator<Item = impl Into<Json<'static>>>,
        field: impl Fn() -> String,
    ) -> Result<(), HardenError> {
        let base = &self.base;
        let type_error = || refused(Refused::Type("a list"), &field, base, path);
        let values = values.into_iter().map(Into::into);
        match slot(&mut self.root, self.original, path)
            .map_err(|e| refused(e, &field, base, path))?
        {
            Slot::Node(Node::Array { appended, .. }, _) => appended.extend(values),
            Slot::New(value) => {
                if value.is_null() {
                    *value = Json::Array(Vec::new());
                }
                value.as_array_mut().ok_or_else(type_error)?.extend(values);
            }
            Slot::Node(..) => return Err(type_error()),
        }
        Ok(())
    }

    /// The value at `path` in the hardened spec: the original's where nothing is added at or
    /// below it, else the original's with the additions (a copy of that value only); `None`
    /// when missing or `null`.
    pub fn get(&self, path: &[Step<'_>]) -> Option<Cow<'_, Json<'o>>> {
        match self.find(path) {
            Found::Original(Some(original), Some(node)) => Some(Cow::Owned(node.applied(original))),
            Found::Original(original, _) => original.map(Cow::Borrowed),
            Found::Added(value) => Some(Cow::Borrowed(value)),
        }
        .filter(|v| !v.is_null())
    }

    /// The elements the list at `path` has in the hardened spec after the original's (all of
    /// them when the rules added the list).
    pub fn appended(&self, path: &[Step<'_>]) -> &[Json<'o>] {
        match self.find(path) {
            Found::Original(Some(Json::Array(_)), Some(Node::Array { appended, .. })) => appended,
            Found::Added(Json::Array(list)) => list,
            _ => &[],
        }
    }

    /// What the hardened spec has at `path`.
    fn find(&self, path: &[Step<'_>]) -> Found<'_, 'o> {
        let mut original = Some(self.original);
        let mut node = Some(&self.root);
        for (i, step) in path.iter().enumerate() {
            let next = original.and_then(|o| index(o, *step));
            match node.and_then(|n| n.child(*step)) {
                Some(Child::Node(n)) => (node, original) = (Some(n), next),
                Some(Child::New(value)) => {
                    let rest = path.get(i + 1..).unwrap_or_default();
                    return match rest.iter().try_fold(value, |v, s| index(v, *s)) {
                        Some(value) => Found::Added(value),
                        None => Found::Original(None, None),
                    };
                }
                None => (node, original) = (None, next),
            }
        }
        Found::Original(original, node)
    }

    /// The `add` operations, with paths under the pod spec's.
    pub fn into_ops(self) -> Vec<Add> {
        let mut ops = Vec::new();
        let mut at = self.base;
        // The pod spec is an object's member wherever it is (`spec`, `template.spec`).
        emit(self.root, self.original, true, &mut at, &mut ops);
        ops
    }
}

/// What the hardened spec has at a path.
enum Found<'s, 'o> {
    /// The original's value (if any) and the node over it (if anything is added below it).
    Original(Option<&'o Json<'o>>, Option<&'s Node>),
    /// A value the rules added.
    Added(&'s Json<'static>),
}

/// `value[step]`.
fn index<'v, 'd>(value: &'v Json<'d>, step: Step<'_>) -> Option<&'v Json<'d>> {
    match step {
        Step::Key(key) => json::member(value, key),
        Step::Index(i) => value.element(i),
    }
}

/// What a node holds for one step.
enum Child<'n> {
    /// A node over the original's value.
    Node(&'n Node),
    /// A value the rules added in place of a missing member or `null`.
    New(&'n Json<'static>),
}

impl Node {
    fn child(&self, step: Step<'_>) -> Option<Child<'_>> {
        match (self, step) {
            (Node::Object { below, added }, Step::Key(key)) => {
                match below.iter().find(|(k, _)| k == key).map(|(_, n)| n) {
                    Some(Node::Set(value)) => Some(Child::New(value)),
                    Some(node) => Some(Child::Node(node)),
                    None => added
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| Child::New(v)),
                }
            }
            (Node::Array { below, .. }, Step::Index(i)) => {
                match below.iter().find(|(j, _)| *j == i).map(|(_, n)| n) {
                    Some(Node::Set(value)) => Some(Child::New(value)),
                    Some(node) => Some(Child::Node(node)),
                    None => None,
                }
            }
            (Node::Set(value), step) => index(value, step).map(Child::New),
            _ => None,
        }
    }

    /// `original` with the additions of this node.
    fn applied<'o>(&self, original: &Json<'o>) -> Json<'o> {
        let mut value = original.clone();
        self.apply(&mut value);
        value
    }

    fn apply(&self, value: &mut Json<'_>) {
        match (self, value) {
            (Node::Object { below, added }, Json::Object(map)) => {
                for (key, node) in below {
                    if let Some(v) = map.get_mut(key) {
                        node.apply(v);
                    }
                }
                for (k, v) in added {
                    map.insert(Cow::Owned(k.clone()), v.clone());
                }
            }
            (Node::Array { below, appended }, Json::Array(list)) => {
                for (i, node) in below {
                    if let Some(v) = list.get_mut(*i) {
                        node.apply(v);
                    }
                }
                list.extend(appended.iter().cloned());
            }
            (Node::Set(new), value) if !new.is_null() => *value = new.clone(),
            _ => {}
        }
    }
}
/// The slot at `path` below `root` (over `original`), made on the way.
fn slot<'n, 'o>(
    root: &'n mut Node,
    original: &'o Json<'o>,
    path: &[Step<'_>],
) -> Result<Slot<'n, 'o>, Refused> {
    let mut slot = match root {
        Node::Set(value) => Slot::New(value),
        node => Slot::Node(node, original),
    };
    for step in path {
        slot = descend(slot, *step)?;
    }
    Ok(slot)
}

/// The value of the first entry of `list` that `is`, made by `make` if there is none.
fn member<K, V>(
    list: &mut Vec<(K, V)>,
    is: impl Fn(&K) -> bool,
    make: impl FnOnce() -> (K, V),
) -> Option<&mut V> {
    match list.iter().position(|(k, _)| is(k)) {
        Some(i) => list.get_mut(i),
        None => {
            list.push(make());
            list.last_mut()
        }
    }
    .map(|(_, v)| v)
}

/// One step further down; missing objects and `null`s on the way become values the rules add.
fn descend<'n, 'o>(slot: Slot<'n, 'o>, step: Step<'_>) -> Result<Slot<'n, 'o>, Refused> {
    match slot {
        Slot::Node(Node::Object { below, added }, Json::Object(map)) => {
            let Step::Key(key) = step else {
                return Err(Refused::Type("a list"));
            };
            match json::get(map, key) {
                Some(original) => {
                    let node = Node::over(original).ok_or(Refused::Type("an object"))?;
                    match member(below, |k| k == key, || (key.to_owned(), node)) {
                        Some(Node::Set(value)) => Ok(Slot::New(value)),
                        Some(node) => Ok(Slot::Node(node, original)),
                        None => Err(Refused::Type("an object")),
                    }
                }
                None => member(added, |k| k == key, || (key.to_owned(), Json::Null))
                    .map(Slot::New)
                    .ok_or(Refused::Type("an object")),
            }
        }
        Slot::Node(Node::Array { below, .. }, Json::Array(list)) => {
            let Step::Index(i) = step else {
                return Err(Refused::Type("an object"));
            };
            let original = list.get(i).ok_or(Refused::Type("a longer list"))?;
            // A `null` element cannot be given a value: an `add` at a list index inserts.
            if original.is_null() {
                return Err(Refused::Type("an object"));
            }
            let node = Node::over(original).ok_or(Refused::Type("an object"))?;
            match member(below, |j| *j == i, || (i, node)) {
                Some(Node::Set(value)) => Ok(Slot::New(value)),
                Some(node) => Ok(Slot::Node(node, original)),
                None => Err(Refused::Type("an object")),
            }
        }
        Slot::New(value) => match step {
            Step::Key(key) => {
                if value.is_null() {
                    *value = Json::Object(Object::new());
                }
                let map = value.as_object_mut().ok_or(Refused::Type("an object"))?;
                if map.get(key).is_none() {
                    map.insert(Cow::Owned(key.to_owned()), Json::Null);
                }
                map.get_mut(key)
                    .map(Slot::New)
                    .ok_or(Refused::Type("an object"))
            }
            Step::Index(i) => value
                .as_array_mut()
                .and_then(|list| list.get_mut(i))
                .map(Slot::New)
                .ok_or(Refused::Type("a longer list")),
        },
        Slot::Node(..) => Err(Refused::Type("an object")),
    }
}

/// The error for a path that cannot be written.
fn refused(
    e: Refused,
    field: impl Fn() -> String,
    base: &PointerBuf,
    path: &[Step<'_>],
) -> HardenError {
    match e {
        Refused::Type(expected) => HardenError::WrongType {
            path: field(),
            expected,
        },
        Refused::Set => {
            let mut pointer = base.clone();
            for step in path {
                match step {
                    Step::Key(key) => pointer.push_back(*key),
                    Step::Index(i) => pointer.push_back(i.to_string()),
                }
            }
            HardenError::NotAdditive {
                path: pointer.to_string(),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
