//! What an image's own configuration says about how it expects to run, and the rules that follow
//! it: the image's numeric `USER` is kept instead of kube-harden's default UID, its `VOLUME`s and
//! `TMPDIR` stay writable under a read-only root, and an image that expects root or has a named
//! user is named in a warning (docs/rules.md, "Image-aware rules").
//!
//! The registry client (outside `harden`, with its I/O, cache and budget) reads each
//! container image's OCI config and hands the rules an [`ImageLookup`]: image reference, as
//! written in the container's `image` field, to the [`ImageFacts`] its config holds. The rules
//! stay pure: an image missing from the lookup (no registry, a fetch that failed or ran past
//! its budget, the offline command without `--resolve-images`) is hardened image-blind, as
//! before, and records no image decision.
//!
//! Parts: this file reads the facts (`USER`, `VOLUME`s, `TMPDIR`) and words the warnings;
//! `identity.rs` decides whose identity each container gets and where it is written;
//! `paths.rs` mounts the image's writable directories.
//!
//! How the kubelet and the runtime read `USER`: <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/>
//! (`runAsNonRoot` needs a numeric UID it can check) and
//! <https://github.com/opencontainers/image-spec/blob/main/config.md> (`user`, `uid:gid`).

mod identity;
mod paths;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::dom::Json;

use super::budget::{self, MAX_WRITABLE_MOUNTS, MAX_WRITABLE_PATHS};
use super::json::Object;
use super::volumes::{self, TMP_PATH};
use super::{Change, ChangeName, Context, Outcome, Policy, SKIP_ANNOTATION, SkipReason};

pub(crate) use identity::{
    Identity, PodPlacement, decide_identities, fs_group, placement, record_users,
};
pub(crate) use paths::{Mounts, PathGates, cap_volumes, is_own_volume, mount_paths};

/// The parts of an image's OCI config (`config` in the image configuration, see
/// <https://github.com/opencontainers/image-spec/blob/main/config.md>) the rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `config.User` as written: `None` or `""` when unset; `"1001"`, `"1001:1001"`, `"app"`,
    /// `"app:staff"` otherwise.
    pub user: Option<String>,
    /// The keys of `config.Volumes`: the directories the image declares it writes.
    pub volumes: Vec<String>,
    /// `config.Env`, each entry `NAME=value`.
    pub env: Vec<String>,
    /// The digest of the platform manifest the facts were read from (`sha256:...`), for
    /// warnings and metrics.
    pub digest: String,
}

/// Facts per image reference, keyed by the container's `image` field exactly as written; the
/// facts are shared with the registry's cache, not copied per review.
pub type ImageLookup = HashMap<String, Arc<ImageFacts>>;

/// Highest UID or GID Kubernetes accepts in `runAsUser`, `runAsGroup` and `fsGroup`.
const MAX_ID: i64 = i32::MAX as i64;
/// VOLUME entries of one image read at most: past this many, the image's VOLUMEs are ignored
/// whatever they hold (an image config is attacker-influenced).
const MAX_VOLUME_ENTRIES: usize = 4 * MAX_WRITABLE_PATHS;
/// VOLUME entries read for one pod, all images together: past this many, the remaining
/// containers' images get no VOLUME emptyDirs (the pod-wide mount cap would refuse them anyway).
const MAX_VOLUME_READS: usize = MAX_WRITABLE_MOUNTS;
/// Refused VOLUME paths of one image recorded one by one; the rest are counted in one decision.
const MAX_REFUSED: usize = 4;
/// Image warnings (root or named `USER`, refused VOLUMEs) per object; one more line counts the
/// rest.
pub const MAX_IMAGE_WARNINGS: usize = 8;

/// The user an image's `USER` names, as the runtime reads it (`user[:group]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageUser {
    /// Unset, empty, `0` or `root` (with any group): the image runs as root.
    Root,
    /// A numeric UID other than 0, and its group.
    NonRoot {
        /// The UID.
        uid: i64,
        /// The group after the `:`.
        group: ImageGroup,
    },
    /// A user name (`app`), or a value the runtime cannot read as a UID (`-1`, `1:2:3`, a UID
    /// past 2^31-1): the kubelet cannot check that it is not root.
    Named,
}

/// The group part of `USER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageGroup {
    /// No group: the runtime takes the UID's primary group from the image's /etc/passwd.
    Passwd,
    /// A numeric GID.
    Id(i64),
    /// A group name (or a value that is not a GID): resolved from the image's /etc/group.
    Named,
}

/// A decimal ID as the runtime and Kubernetes accept it: digits only, at most 2^31-1.
fn numeric_id(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|id| *id <= MAX_ID)
}

impl ImageUser {
    /// Reads `config.User`.
    pub fn parse(user: Option<&str>) -> Self {
        let user = user.unwrap_or_default();
        if user.is_empty() {
            return ImageUser::Root;
        }
        let mut parts = user.split(':');
        let name = parts.next().unwrap_or_default();
        let group = parts.next();
        if parts.next().is_some() {
            return ImageUser::Named;
        }
        if name == "root" {
            return ImageUser::Root;
        }
        match numeric_id(name) {
            Some(0) => ImageUser::Root,
            Some(uid) => ImageUser::NonRoot {
                uid,
                group: match group {
                    None => ImageGroup::Passwd,
                    Some(g) => numeric_id(g).map_or(ImageGroup::Named, ImageGroup::Id),
                },
            },
            None => ImageUser::Named,
        }
    }
}

/// What the rules read from one container's image.
#[derive(Debug)]
pub(crate) struct ContainerImage {
    /// The container's `image` field, the lookup's key.
    reference: String,
    /// `image "<reference>" (<digest>)`, quoted and cut as in warnings.
    pub label: String,
    /// `USER "<user>"` quoted and cut, or `USER unset`.
    pub user_text: String,
    /// The user `USER` names.
    pub user: ImageUser,
    /// The valid `VOLUME` paths, normalized, distinct and sorted.
    pub volumes: Vec<String>,
    /// `VOLUME` paths refused (quoted, with the problem), at most [`MAX_REFUSED`].
    pub refused: Vec<String>,
    /// Refused paths past [`MAX_REFUSED`], or every VOLUME when over a cap.
    pub refused_more: usize,
    /// Why every VOLUME of the image is ignored (past a cap), if it is.
    pub over_cap: Option<String>,
    /// The image's `TMPDIR`, as written (the last entry wins, as in the runtime), if set and
    /// not empty.
    pub tmpdir: Option<String>,
}

impl ContainerImage {
    /// The facts of container `c`'s image, if the lookup has them.
    pub fn of(c: &Object, ctx: &Context<'_>) -> Option<Self> {
        let reference = c.get("image").and_then(Json::as_str)?;
        let facts = ctx.images.get(reference)?;
        let digest: String = facts.digest.chars().take(7 + 12).collect();
        let label = if digest.is_empty() {
            format!("image {}", budget::quoted(reference))
        } else {
            format!("image {} ({digest})", budget::quoted(reference))
        };
        Some(ContainerImage {
            reference: reference.to_owned(),
            label,
            user_text: match facts.user.as_deref() {
                None | Some("") => "USER unset".to_owned(),
                Some(user) => format!("USER {}", budget::quoted(user)),
            },
            user: ImageUser::parse(facts.user.as_deref()),
            volumes: Vec::new(),
            refused: Vec::new(),
            refused_more: 0,
            over_cap: None,
            tmpdir: facts
                .env
                .iter()
                .filter_map(|e| e.strip_prefix("TMPDIR="))
                .next_back()
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        })
    }

    /// Reads the image's VOLUMEs, unless they are more than `budget` entries (what is left of
    /// the pod's [`MAX_VOLUME_READS`]); returns the entries read.
    fn read_volumes(&mut self, declared: &[String], budget: usize) -> usize {
        if declared.len() > MAX_VOLUME_ENTRIES {
            self.ignore_volumes(declared.len(), format!("{} VOLUMEs", declared.len()));
            return 0;
        }
        if declared.len() > budget {
            let what = format!(
                "{} VOLUMEs, past the {MAX_VOLUME_READS} read for the whole pod",
                declared.len()
            );
            self.ignore_volumes(declared.len(), what);
            return 0;
        }
        self.read_volume_list(declared);
        declared.len()
    }

    fn read_volume_list(&mut self, declared: &[String]) {
        let mut seen: HashSet<&str> = HashSet::new();
        for raw in declared {
            let path = volumes::normalize(raw);
            if path == TMP_PATH {
                continue; // the tmpVolume change mounts it
            }
            match volumes::path_problem(path) {
                Some(problem) if self.refused.len() < MAX_REFUSED => self
                    .refused
                    .push(format!("{} {problem}", budget::quoted(raw))),
                Some(_) => self.refused_more += 1,
                None => {
                    seen.insert(path);
                    if seen.len() > MAX_WRITABLE_PATHS {
                        let what = format!("more than {MAX_WRITABLE_PATHS} distinct VOLUMEs");
                        self.ignore_volumes(declared.len(), what);
                        return;
                    }
                }
            }
        }
        let mut paths: Vec<String> = seen.into_iter().map(str::to_owned).collect();
        paths.sort();
        self.volumes = paths;
    }

    fn ignore_volumes(&mut self, count: usize, what: String) {
        self.volumes.clear();
        self.refused.clear();
        self.refused_more = count;
        self.over_cap = Some(what);
    }

    /// The image's `TMPDIR` when it is not `/tmp` (which the tmpVolume change mounts).
    pub fn own_tmpdir(&self) -> Option<&str> {
        self.tmpdir
            .as_deref()
            .filter(|t| volumes::normalize(t) != TMP_PATH)
    }
}

/// The warnings the image decisions give, read off the decisions like the hints: what was taken
/// from an image (its user, an emptyDir at a VOLUME: each names the value and how to opt out),
/// an image that expects root or has a user name, and VOLUMEs or a TMPDIR that got no emptyDir. One line per
/// distinct image and problem, at most [`MAX_IMAGE_WARNINGS`], then one line counting the rest.
pub(crate) fn warnings(changes: &[Change], policy: &Policy) -> Vec<String> {
    let uid = policy.run_as_user;
    let mut out = Vec::new();
    let mut left_out = 0usize;
    for change in changes {
        let Some(detail) = &change.detail else {
            continue;
        };
        let line = match (change.name, change.outcome) {
            (ChangeName::ImageUser, Outcome::Applied) => format!(
                "imageUser: {detail}: runs as the image's own user (its UID, and its GID where \
                 USER names one, instead of {uid}); to use {uid} instead, set \
                 {SKIP_ANNOTATION}: \"imageUser\""
            ),
            (ChangeName::ImageVolumes, Outcome::Applied) => format!(
                "imageVolumes: {detail}: a writable emptyDir mounted there (it starts empty, \
                 within the policy's sizeLimit); to keep the image's files there instead, set \
                 {SKIP_ANNOTATION}: \"imageVolumes\""
            ),
            (ChangeName::ImageUser, Outcome::Skipped(SkipReason::RunsAsRoot)) => format!(
                "imageUser: {detail} runs as root; hardened, it runs as a non-root UID ({uid} \
                 unless set): if it needs root, give the image a numeric non-root USER, or set \
                 {SKIP_ANNOTATION}: \"runAsUser,runAsGroup\""
            ),
            (ChangeName::ImageUser, Outcome::Skipped(SkipReason::NotApplicable)) => format!(
                "imageUser: {detail} is not a numeric UID: the kubelet cannot check that it is \
                 not root, so the container runs as UID {uid}; set runAsUser to that user's UID \
                 (or give the image a numeric USER)"
            ),
            (
                ChangeName::ImageVolumes | ChangeName::ImageTmpdir,
                Outcome::Skipped(SkipReason::NotApplicable),
            ) => format!(
                "{}: {detail}: no writable emptyDir there under the read-only root",
                change.name
            ),
            _ => continue,
        };
        // At most MAX_IMAGE_WARNINGS lines kept: a scan beats hashing (and copying) each line.
        if out.contains(&line) {
            continue;
        }
        if out.len() >= MAX_IMAGE_WARNINGS {
            left_out += 1;
            continue;
        }
        out.push(line);
    }
    if left_out > 0 {
        out.push(format!("{left_out} more image warnings left out"));
    }
    out
}

#[cfg(test)]
mod tests;
