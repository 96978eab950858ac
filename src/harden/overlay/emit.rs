//! The RFC 6902 `add` operations of an [`Overlay`](super::Overlay), in the order of a walk of
//! the hardened spec (see the parent module's header).

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;

use super::Node;
use crate::dom::{Json, Object};
use crate::harden::patch::{Add, add};

/// The operations of `node` over `original` at `at`, in the order of a walk of the hardened
/// value. An empty object of the original that receives members, where `whole` (an object's
/// member, not a list element: an `add` at an index inserts), is written as one `add` of the
/// object with them (fewer operations for the API server to apply; on `{}` that is still an
/// addition: nothing the original has is changed or removed).
pub(super) fn emit(
    node: Node,
    original: &Json<'_>,
    whole: bool,
    at: &mut PointerBuf,
    ops: &mut Vec<Add>,
) {
    match (node, original) {
        // Nothing can be below a member of an empty object: what is written there is `added`.
        (Node::Object { added, .. }, Json::Object(map))
            if whole && map.is_empty() && added.iter().any(|(_, v)| !v.is_null()) =>
        {
            let members = added.into_iter().filter(|(_, v)| !v.is_null());
            let members = members.map(|(k, v)| (Cow::Owned(k), v)).collect();
            ops.push(add(at.clone(), Json::Object(Object::from_members(members))));
        }
        (Node::Object { mut below, added }, Json::Object(map)) => {
            for (key, value) in map.iter() {
                if below.is_empty() {
                    break;
                }
                if let Some(i) = below.iter().position(|(k, _)| k == key) {
                    let (_, child) = below.swap_remove(i);
                    at.push_back(key);
                    emit(child, value, true, at, ops);
                    at.pop_back();
                }
            }
            // A `null` is a path made on the way by a write that was then refused: nothing.
            for (key, value) in added.into_iter().filter(|(_, v)| !v.is_null()) {
                ops.push(add(at.with_trailing_token(key.as_str()), value));
            }
        }
        (
            Node::Array {
                mut below,
                appended,
            },
            Json::Array(list),
        ) => {
            below.sort_unstable_by_key(|(i, _)| *i);
            for (i, child) in below {
                if let Some(value) = list.get(i) {
                    at.push_back(i.to_string());
                    emit(child, value, false, at, ops);
                    at.pop_back();
                }
            }
            for (i, value) in appended.into_iter().enumerate() {
                ops.push(add(
                    at.with_trailing_token((list.len() + i).to_string()),
                    value,
                ));
            }
        }
        (Node::Set(value), _) if !value.is_null() => ops.push(add(at.clone(), value)),
        _ => {}
    }
}
