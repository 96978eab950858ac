//! Writable emptyDir volumes for a read-only root filesystem: one at /tmp, one at each path of
//! the `kube-harden.io/writable-paths` annotation, and one at each directory a container's image
//! declares it writes (its `VOLUME`s and `TMPDIR`, `image/`).
//!
//! Volume names never clash with the pod's own; an emptyDir that kube-harden added earlier is
//! reused, so hardening twice adds nothing. Finding a free name costs time linear in the number
//! of names taken, however many paths map to the same name (`/_`, `/__`, `/_-`, ... all map to
//! `kube-harden-path`). See <https://kubernetes.io/docs/concepts/storage/volumes/#emptydir>.

use std::collections::{HashMap, HashSet};

use crate::dom::Json;

use super::budget::{self, MAX_PATH_BYTES, MAX_WRITABLE_PATHS, Warnings};
use super::json::{self, Object};
use super::overlay::{Overlay, Step};
use super::{Context, HardenError, WRITABLE_PATHS_ANNOTATION};

/// The mount path of the temporary directory.
pub(crate) const TMP_PATH: &str = "/tmp";
const TMP_VOLUME: &str = "kube-harden-tmp";
pub(crate) const VOLUME_PREFIX: &str = "kube-harden-";
/// Longest volume name Kubernetes accepts (a DNS label).
const MAX_NAME: usize = 63;
/// Kernel filesystems the container runtime mounts itself: an emptyDir over them (or inside them)
/// stops the container from starting.
const KERNEL_PATHS: [&str; 3] = ["/proc", "/sys", "/dev"];

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
pub(crate) struct VolumePlan {
    slots: Vec<Slot>,
    names: FreeNames,
    /// The pod's emptyDir volumes, by name: one with the name a path maps to is reused.
    empty_dirs: HashSet<String>,
    /// Whether volumes may be added (not for the ephemeral-containers subresource).
    may_add: bool,
}

impl VolumePlan {
    /// Plans volumes for /tmp and the annotation's paths. `may_add` is false for the
    /// ephemeral-containers subresource, where the pod's volumes cannot change.
    pub fn new(spec: &Object, ctx: &Context<'_>, may_add: bool) -> Result<Self, HardenError> {
        let volumes = json::array(spec, "volumes", || "spec.volumes".into())?
            .map(Vec::as_slice)
            .unwrap_or_default();
        let names = FreeNames::new(
            volumes
                .iter()
                .filter_map(|v| json::member(v, "name").and_then(Json::as_str)),
        );
        let empty_dirs = volumes
            .iter()
            .filter(|v| json::member(v, "emptyDir").is_some())
            .filter_map(|v| json::member(v, "name").and_then(Json::as_str))
            .map(str::to_owned)
            .collect();
        let mut plan = Self {
            slots: Vec::new(),
            names,
            empty_dirs,
            may_add,
        };
        let paths = std::iter::once(TMP_PATH).chain(ctx.writable_paths.iter().map(String::as_str));
        for path in paths {
            plan.slot(path);
        }
        Ok(plan)
    }

    /// The position of the slot of `path`, planned on first use: the pod's emptyDir of the name
    /// the path maps to, else a free name (none when volumes may not be added).
    fn slot(&mut self, path: &str) -> usize {
        match self.slots.iter().position(|s| s.path == path) {
            Some(index) => index,
            None => {
                let base = if path == TMP_PATH {
                    TMP_VOLUME.to_owned()
                } else {
                    volume_name_for(path)
                };
                let (volume, exists) = if self.empty_dirs.contains(base.as_str()) {
                    self.names.allocate(base.clone());
                    (Some(base), true)
                } else if !self.may_add {
                    (None, false)
                } else {
                    (Some(self.names.first_free(&base)), false)
                };
                self.slots.push(Slot {
                    path: path.to_owned(),
                    volume,
                    exists,
                    used: false,
                });
                self.slots.len() - 1
            }
        }
    }

    /// The volume to mount at an image's writable directory `path` (a validated, normalized
    /// absolute path), planning a slot for it if no other container needs one there yet;
    /// marks it as used. `None` when none can be had.
    pub fn mount_image_path(&mut self, path: &str) -> Option<String> {
        let index = self.slot(path);
        let slot = self.slots.get_mut(index)?;
        let volume = slot.volume.clone()?;
        slot.used = true;
        Some(volume)
    }

    /// The volume to mount at `path`, marking it as used; `None` when none can be had.
    pub fn mount(&mut self, path: &str) -> Option<String> {
        let slot = self.slots.iter_mut().find(|s| s.path == path)?;
        let volume = slot.volume.clone()?;
        slot.used = true;
        Some(volume)
    }

    /// Adds the emptyDir volumes that containers now mount and the pod lacks.
    pub fn add_volumes(
        self,
        overlay: &mut Overlay<'_>,
        ctx: &Context<'_>,
    ) -> Result<(), HardenError> {
        let new: Vec<Json<'static>> = self
            .slots
            .into_iter()
            .filter(|s| s.used && !s.exists)
            .filter_map(|s| s.volume)
            .map(|name| {
                let size = Json::object([("sizeLimit", ctx.policy.tmp_size_limit.as_str().into())]);
                Json::object([("name", name.into()), ("emptyDir", size)])
            })
            .collect();
        if !new.is_empty() {
            overlay.push(&[Step::Key("volumes")], new, || "spec.volumes".into())?;
        }
        Ok(())
    }
}

/// The part of `base` kept before a suffix of `suffix_len` bytes.
fn stem(base: &str, suffix_len: usize) -> &str {
    let keep = base.len().min(MAX_NAME.saturating_sub(suffix_len));
    // Names are ASCII, so `keep` is a char boundary; `get` keeps that from ever panicking.
    base.get(..keep).unwrap_or(base).trim_end_matches('-')
}

/// Volume names in use (the pod's and those allocated here), and where the search for a free
/// suffix stopped for each stem.
///
/// [`FreeNames::first_free`] returns the first free name of `base`, `base-2`, `base-3`, ... (cut
/// to leave room for the suffix within the 63-character limit): the smallest `n` whose name is
/// free. Names only ever become taken, so every `n` below where an
/// earlier search of the same stem stopped is still taken and is not tried again. `suffixed(base,
/// n)` depends only on the stem (`base` cut to leave room for the suffix) and `n`, so bases that
/// share a stem share where their search stopped. The searches of one pod spec together try each
/// taken name at most once per number of digits, plus one name per search: linear.
struct FreeNames {
    taken: HashSet<String>,
    /// (stem, digits of `n`) -> the smallest `n` with that many digits not yet known to be taken.
    next: HashMap<(String, usize), usize>,
}

impl FreeNames {
    fn new<'a>(taken: impl Iterator<Item = &'a str>) -> Self {
        Self {
            taken: taken.map(str::to_owned).collect(),
            next: HashMap::new(),
        }
    }

    /// Marks `name` as in use.
    fn allocate(&mut self, name: String) {
        self.taken.insert(name);
    }

    /// The first free name of `base`, `base-2`, `base-3`, ...; it is then in use.
    fn first_free(&mut self, base: &str) -> String {
        if !self.taken.contains(base) {
            self.allocate(base.to_owned());
            return base.to_owned();
        }
        // n from 2, one number of digits at a time: 2..=9, 10..=99, ...
        let (mut digits, mut low, mut high) = (1, 2_usize, 9_usize);
        loop {
            let prefix = stem(base, digits + 1).to_owned();
            let next = self.next.entry((prefix.clone(), digits)).or_insert(low);
            let mut n = (*next).max(low);
            while n <= high {
                let name = format!("{prefix}-{n}");
                if !self.taken.contains(&name) {
                    *next = n + 1;
                    self.allocate(name.clone());
                    return name;
                }
                n += 1;
            }
            *next = n;
            digits += 1;
            low = high.saturating_add(1);
            high = high.saturating_mul(10).saturating_add(9);
        }
    }
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

/// Why `path` (normalized) cannot get a writable emptyDir, if it cannot: not absolute and
/// clean, `/`, longer than [`MAX_PATH_BYTES`], `/tmp` (the `tmpVolume` change owns it), or at or
/// below `/proc`, `/sys` or `/dev`.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    let under = |dir: &str| {
        path == dir
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if !path.starts_with('/') {
        Some("is not an absolute path")
    } else if path == "/" {
        Some("is the root directory")
    } else if path.split('/').any(|part| part == ".." || part == ".") {
        Some("contains . or ..")
    } else if path.contains(':') || path.contains("//") {
        Some("is not a clean path")
    } else if path.len() > MAX_PATH_BYTES {
        Some("is longer than 256 bytes")
    } else if path == TMP_PATH {
        Some("is /tmp, which the tmpVolume change mounts")
    } else if KERNEL_PATHS.iter().any(|dir| under(dir)) {
        Some("is under /proc, /sys or /dev, which the container runtime mounts")
    } else {
        None
    }
}

/// Parses `kube-harden.io/writable-paths`: comma-separated absolute paths. Invalid entries are
/// reported and ignored: paths that are not absolute and clean, `/tmp` (the `tmpVolume` change
/// owns it: a second mount there is refused by the API server), and `/proc`, `/sys`, `/dev` and
/// what is below them (the runtime mounts those; an emptyDir there stops the container).
/// Duplicates (`/a` and `/a/`) count once. More than [`MAX_WRITABLE_PATHS`] distinct paths put
/// the object over budget.
pub(crate) fn parse_writable_paths(
    value: Option<&str>,
    warnings: &mut Warnings,
) -> Result<Vec<String>, HardenError> {
    let mut paths: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for raw in value.unwrap_or_default().split(',').map(str::trim) {
        if raw.is_empty() {
            continue;
        }
        let path = normalize(raw);
        let problem = path_problem(path);
        match problem {
            Some(problem) => warnings.push(WRITABLE_PATHS_ANNOTATION, raw, || {
                format!(
                    "{WRITABLE_PATHS_ANNOTATION}: {} {problem}, ignored",
                    budget::quoted(raw)
                )
            }),
            None if seen.insert(path) => {
                if seen.len() > MAX_WRITABLE_PATHS {
                    return Err(HardenError::OverBudget {
                        what: format!("a {}th distinct writable path", MAX_WRITABLE_PATHS + 1),
                        limit: MAX_WRITABLE_PATHS,
                    });
                }
                paths.push(path.to_owned());
            }
            None => {}
        }
    }
    Ok(paths)
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

    /// `base`, then `base-2`, `base-3`, ... kept within the 63-character limit.
    fn suffixed(base: &str, n: usize) -> String {
        if n == 1 {
            return base.to_owned();
        }
        let suffix = format!("-{n}");
        format!("{}{suffix}", stem(base, suffix.len()))
    }

    /// The search before it was made linear: the smallest free `n`, trying every `n` from 1.
    fn first_free_by_scan(base: &str, taken: &HashSet<String>) -> String {
        (1..)
            .map(|n| suffixed(base, n))
            .find(|n| !taken.contains(n))
            .unwrap()
    }

    #[test]
    fn free_names_are_the_smallest_free_suffix() {
        let long = |tail: &str| format!("kube-harden-{}{tail}", "a".repeat(48));
        let bases = [
            "kube-harden-path".to_owned(),
            "kube-harden-path".to_owned(),
            "kube-harden-path-2".to_owned(),
            long("xy"),
            long("xz"),
            long("x"),
            "kube-harden-tmp".to_owned(),
        ];
        let pod = [
            "kube-harden-path-3",
            "kube-harden-path-2-2",
            "kube-harden-tmp",
        ];
        let mut taken: HashSet<String> = pod.iter().map(|s| (*s).to_owned()).collect();
        let mut names = FreeNames::new(pod.into_iter());
        for round in 0..30 {
            for base in &bases {
                let expected = first_free_by_scan(base, &taken);
                taken.insert(expected.clone());
                assert_eq!(names.first_free(base), expected, "round {round}, {base}");
            }
        }
        assert!(taken.iter().all(|n| n.len() <= MAX_NAME));
    }

    #[test]
    fn writable_paths_are_validated() {
        let mut warnings = Warnings::default();
        let paths = parse_writable_paths(
            Some(" /var/cache/nginx/ ,/var/run,relative,/,/a/../b,/var/run,, /c:d,/devices,/tmp2"),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(
            paths,
            vec!["/var/cache/nginx", "/var/run", "/devices", "/tmp2"]
        );
        assert_eq!(warnings.into_vec().len(), 4);

        let mut warnings = Warnings::default();
        let refused = "/tmp,/tmp/,/proc,/proc/1/,/sys/fs,/dev/shm,/dev";
        assert!(
            parse_writable_paths(Some(refused), &mut warnings)
                .unwrap()
                .is_empty()
        );
        assert_eq!(warnings.into_vec().len(), 7);
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        let mut warnings = Warnings::default();
        assert!(
            parse_writable_paths(Some(&long), &mut warnings)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn too_many_writable_paths_are_over_budget() {
        let paths = |n: usize| (0..n).map(|i| format!("/p{i}/")).collect::<Vec<_>>();
        let ok = paths(MAX_WRITABLE_PATHS);
        let mut repeated = ok.clone();
        repeated.extend(ok.iter().map(|p| p.trim_end_matches('/').to_owned()));
        let mut warnings = Warnings::default();
        assert_eq!(
            parse_writable_paths(Some(&repeated.join(",")), &mut warnings)
                .unwrap()
                .len(),
            MAX_WRITABLE_PATHS
        );
        let over = paths(MAX_WRITABLE_PATHS + 1).join(",");
        assert!(matches!(
            parse_writable_paths(Some(&over), &mut warnings),
            Err(HardenError::OverBudget { .. })
        ));
    }
}
