//! The budget of one object: caps on what an object may make the rules do, so that memory, CPU
//! and the size of the answer stay bounded whatever a tenant writes (issue 11). An object past a
//! cap is not hardened at all ([`HardenError::OverBudget`]): the webhook admits it unchanged with
//! a warning, as for any object the rules cannot read. Hardening part of it could leave a
//! read-only root filesystem without the writable paths the app asked for.
//!
//! The caps are far above real pods (docs/security.md has the figures): a pod with more than a
//! few dozen containers, or a handful of writable paths, is rare.

use std::collections::{HashMap, HashSet};

use super::HardenError;

/// Most containers (init, regular and ephemeral together) in one pod spec.
pub const MAX_CONTAINERS: usize = 256;
/// Most distinct paths in `kube-harden.io/writable-paths`.
pub const MAX_WRITABLE_PATHS: usize = 64;
/// Most writable-path mounts in one pod spec: containers x writable paths.
pub const MAX_WRITABLE_MOUNTS: usize = 1024;
/// Longest writable path, in bytes.
pub const MAX_PATH_BYTES: usize = 256;
/// Most warnings about an object's annotations; the rest are counted in one more line.
pub const MAX_WARNINGS: usize = 20;
/// Characters of an annotation item quoted in a warning.
const MAX_QUOTED_CHARS: usize = 64;

/// Checks the number of containers and writable-path mounts of a pod spec.
pub(crate) fn check_pod(containers: usize, writable_paths: usize) -> Result<(), HardenError> {
    if containers > MAX_CONTAINERS {
        return Err(HardenError::OverBudget {
            what: format!("{containers} containers"),
            limit: MAX_CONTAINERS,
        });
    }
    let mounts = containers.saturating_mul(writable_paths);
    if mounts > MAX_WRITABLE_MOUNTS {
        return Err(HardenError::OverBudget {
            what: format!(
                "{containers} containers x {writable_paths} writable paths = {mounts} mounts"
            ),
            limit: MAX_WRITABLE_MOUNTS,
        });
    }
    Ok(())
}

/// Warnings about the items of an object's annotations: one per distinct item, at most
/// [`MAX_WARNINGS`], and a count of the rest. A repeated item costs a hash lookup, not a
/// formatted message.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    list: Vec<String>,
    /// The items warned about, by annotation (at most [`MAX_WARNINGS`] in all).
    warned: HashMap<&'static str, HashSet<String>>,
    left_out: usize,
}

impl Warnings {
    /// Warns about `item` of `annotation` with `message()`, unless that item was already warned
    /// about; past the cap, only counts it.
    pub fn push(&mut self, annotation: &'static str, item: &str, message: impl FnOnce() -> String) {
        let warned = self.warned.entry(annotation).or_default();
        if warned.contains(item) {
            return;
        }
        if self.list.len() >= MAX_WARNINGS {
            self.left_out += 1;
            return;
        }
        warned.insert(item.to_owned());
        self.list.push(message());
    }

    /// The warnings, with a last line counting those left out.
    pub fn into_vec(mut self) -> Vec<String> {
        if self.left_out > 0 {
            self.list.push(format!(
                "{} more problems with kube-harden annotations left out",
                self.left_out
            ));
        }
        self.list
    }
}

/// Longest name (of a container or volume) carried into decisions, findings and warnings, in
/// bytes: Kubernetes names are DNS labels of at most 63 characters, so only names the API server
/// would refuse anyway are cut.
const MAX_NAME_BYTES: usize = 63;

/// A container or volume name as recorded: itself, or its first 63 bytes and `...` when longer
/// (a decision is recorded per container and change: a megabyte name must not be copied each
/// time, nor into every warning).
pub fn short_name(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", name.get(..end).unwrap_or_default())
}

/// An annotation item as quoted in a warning: Rust debug quoting, cut after
/// [`MAX_QUOTED_CHARS`] characters.
pub(crate) fn quoted(item: &str) -> String {
    match item.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{item:?}"),
        Some((end, _)) => {
            let kept = item.get(..end).unwrap_or_default();
            format!("{kept:?}... ({} bytes)", item.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_deduplicated_and_capped() {
        let mut w = Warnings::default();
        for _ in 0..1000 {
            w.push("a", "same", || "same".into());
            w.push("b", "same", || "other annotation".into());
        }
        assert_eq!(w.into_vec(), vec!["same", "other annotation"]);
        let mut w = Warnings::default();
        for i in 0..1000 {
            w.push("a", &format!("w{i}"), || format!("w{i}"));
        }
        let list = w.into_vec();
        assert_eq!(list.len(), MAX_WARNINGS + 1);
        assert_eq!(
            list.last().unwrap(),
            "980 more problems with kube-harden annotations left out"
        );
    }

    #[test]
    fn long_items_are_cut_in_warnings() {
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        let long = "é".repeat(100);
        let q = quoted(&long);
        assert!(q.starts_with(&format!("\"{}\"", "é".repeat(64))), "{q}");
        assert!(q.ends_with("... (200 bytes)"), "{q}");
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(short_name("app"), "app");
        let long = "é".repeat(40);
        let short = short_name(&long);
        assert_eq!(short, format!("{}...", "é".repeat(31)));
        assert_eq!(short_name(&"a".repeat(63)), "a".repeat(63));
    }

    #[test]
    fn pods_past_a_cap_are_over_budget() {
        assert!(check_pod(MAX_CONTAINERS, 4).is_ok());
        assert!(check_pod(MAX_CONTAINERS + 1, 0).is_err());
        assert!(check_pod(10, MAX_WRITABLE_PATHS).is_ok());
        let err = check_pod(200, 10).unwrap_err().to_string();
        assert_eq!(
            err,
            "200 containers x 10 writable paths = 2000 mounts, over the limit of 1024"
        );
    }
}
