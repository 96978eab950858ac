//! Writable emptyDir volumes for a read-only root filesystem: one at /tmp, and one at each path of
//! the `kube-harden.io/writable-paths` annotation.
//!
//! Volume names never clash with the pod's own; an emptyDir that kube-harden added earlier is
//! reused, so hardening twice adds nothing. See
//! <https://kubernetes.io/docs/concepts/storage/volumes/#emptydir>.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::json::{self, Object};
use super::{Context, HardenError, WRITABLE_PATHS_ANNOTATION};

/// The mount path of the temporary directory.
pub(crate) const TMP_PATH: &str = "/tmp";
const TMP_VOLUME: &str = "kube-harden-tmp";
const VOLUME_PREFIX: &str = "kube-harden-";
/// Longest volume name Kubernetes accepts (a DNS label).
const MAX_NAME: usize = 63;

/// A writable path and the volume that backs it.
#[derive(Debug)]
struct Slot {
    path: String,
    /// The volume's name; `None` when no volume can back it (ephemeral containers can only
    /// mount volumes the pod already has).
    volume: Option<String>,
    /// Whether the pod already has the volume.
    exists: bool,
    /// Whether a container mounts it in this pass.
    used: bool,
}

/// The writable volumes of one pod spec: which exist, which to add.
#[derive(Debug)]
pub(crate) struct VolumePlan {
    slots: Vec<Slot>,
}

impl VolumePlan {
    /// Plans volumes for /tmp and the annotation's paths. `may_add` is false for the
    /// ephemeral-containers subresource, where the pod's volumes cannot change.
    pub fn new(spec: &Object, ctx: &Context<'_>, may_add: bool) -> Result<Self, HardenError> {
        let volumes = json::array(spec, "volumes", || "spec.volumes".into())?
            .map(Vec::as_slice)
            .unwrap_or_default();
        let taken: HashSet<&str> = volumes
            .iter()
            .filter_map(|v| v.get("name").and_then(Value::as_str))
            .collect();
        let is_empty_dir = |name: &str| {
            volumes.iter().any(|v| {
                v.get("name").and_then(Value::as_str) == Some(name) && v.get("emptyDir").is_some()
            })
        };
        let mut allocated: Vec<String> = Vec::new();
        let mut slots = Vec::new();
        let paths = std::iter::once(TMP_PATH).chain(ctx.writable_paths.iter().map(String::as_str));
        for path in paths {
            if slots.iter().any(|s: &Slot| s.path == path) {
                continue;
            }
            let base = if path == TMP_PATH {
                TMP_VOLUME.to_owned()
            } else {
                volume_name_for(path)
            };
            let (volume, exists) = if is_empty_dir(&base) {
                (Some(base), true)
            } else if !may_add {
                (None, false)
            } else {
                let name = (1..)
                    .map(|n| suffixed(&base, n))
                    .find(|n| !taken.contains(n.as_str()) && !allocated.contains(n))
                    .unwrap_or(base);
                (Some(name), false)
            };
            if let Some(v) = &volume {
                allocated.push(v.clone());
            }
            slots.push(Slot {
                path: path.to_owned(),
                volume,
                exists,
                used: false,
            });
        }
        Ok(Self { slots })
    }

    /// The volume to mount at `path`, marking it as used; `None` when none can be had.
    pub fn mount(&mut self, path: &str) -> Option<String> {
        let slot = self.slots.iter_mut().find(|s| s.path == path)?;
        let volume = slot.volume.clone()?;
        slot.used = true;
        Some(volume)
    }

    /// Adds the emptyDir volumes that containers now mount and the pod lacks.
    pub fn add_volumes(self, spec: &mut Object, ctx: &Context<'_>) -> Result<(), HardenError> {
        let new: Vec<Value> = self
            .slots
            .into_iter()
            .filter(|s| s.used && !s.exists)
            .filter_map(|s| s.volume)
            .map(|name| json!({"name": name, "emptyDir": {"sizeLimit": ctx.policy.tmp_size_limit}}))
            .collect();
        if !new.is_empty() {
            json::array_entry(spec, "volumes", || "spec.volumes".into())?.extend(new);
        }
        Ok(())
    }
}

/// `base`, then `base-2`, `base-3`, ... kept within the 63-character limit.
fn suffixed(base: &str, n: usize) -> String {
    if n == 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let keep = base.len().min(MAX_NAME - suffix.len());
    // Names are ASCII, so `keep` is a char boundary; `get` keeps that from ever panicking.
    let kept = base.get(..keep).unwrap_or(base);
    format!("{}{suffix}", kept.trim_end_matches('-'))
}

/// `kube-harden-var-cache-nginx` for `/var/cache/nginx`: a valid DNS label.
fn volume_name_for(path: &str) -> String {
    let mut name = String::from(VOLUME_PREFIX);
    let mut dash = true;
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            name.push('-');
            dash = true;
        }
    }
    name.truncate(MAX_NAME);
    let trimmed = name.trim_end_matches('-');
    if trimmed.len() == VOLUME_PREFIX.len() - 1 {
        return format!("{VOLUME_PREFIX}path");
    }
    trimmed.to_owned()
}

/// A mount path without trailing slashes (`/tmp/` and `/tmp` are the same directory).
pub(crate) fn normalize(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// Parses `kube-harden.io/writable-paths`: comma-separated absolute paths. Invalid entries are
/// reported and ignored.
pub(crate) fn parse_writable_paths(value: Option<&str>, warnings: &mut Vec<String>) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for raw in value.unwrap_or_default().split(',').map(str::trim) {
        if raw.is_empty() {
            continue;
        }
        let path = normalize(raw);
        let problem = if !path.starts_with('/') {
            Some("is not an absolute path")
        } else if path == "/" {
            Some("is the root directory")
        } else if path.split('/').any(|part| part == ".." || part == ".") {
            Some("contains . or ..")
        } else if path.contains(':') || path.contains("//") {
            Some("is not a clean path")
        } else {
            None
        };
        match problem {
            Some(problem) => warnings.push(format!(
                "{WRITABLE_PATHS_ANNOTATION}: {raw:?} {problem}, ignored"
            )),
            None if !paths.iter().any(|p| p == path) => paths.push(path.to_owned()),
            None => {}
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_are_dns_labels() {
        let cases = [
            ("/var/cache/nginx", "kube-harden-var-cache-nginx"),
            ("/var/run", "kube-harden-var-run"),
            ("/Data_Dir/x.y", "kube-harden-data-dir-x-y"),
            ("/___", "kube-harden-path"),
        ];
        for (path, name) in cases {
            assert_eq!(volume_name_for(path), name);
        }
        let long = format!("/{}", "a".repeat(100));
        assert_eq!(volume_name_for(&long).len(), MAX_NAME);
        assert!(suffixed(&volume_name_for(&long), 12).len() <= MAX_NAME);
        assert!(suffixed(&volume_name_for(&long), 12).ends_with("-12"));
    }

    #[test]
    fn writable_paths_are_validated() {
        let mut warnings = Vec::new();
        let paths = parse_writable_paths(
            Some(" /var/cache/nginx/ ,/var/run,relative,/,/a/../b,/var/run,, /c:d"),
            &mut warnings,
        );
        assert_eq!(paths, vec!["/var/cache/nginx", "/var/run"]);
        assert_eq!(warnings.len(), 4, "{warnings:?}");
    }
}
