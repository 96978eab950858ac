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
//! How the kubelet and the runtime read `USER`: <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/>
//! (`runAsNonRoot` needs a numeric UID it can check) and
//! <https://github.com/opencontainers/image-spec/blob/main/config.md> (`user`, `uid:gid`).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::budget::{self, MAX_WRITABLE_MOUNTS, MAX_WRITABLE_PATHS};
use super::container::ContainerFacts;
use super::json::Object;
use super::volumes::{self, TMP_PATH, VolumePlan};
use super::{Change, ChangeName, Context, Outcome, Policy, SKIP_ANNOTATION, SkipReason};

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

/// Facts per image reference, keyed by the container's `image` field exactly as written.
pub type ImageLookup = HashMap<String, ImageFacts>;

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
        let reference = c.get("image").and_then(Value::as_str)?;
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

/// The identity the rules give a container whose `runAsUser` they decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The policy's UID and GID: image-blind, or an image that runs as root or a named user.
    Default,
    /// The image's own numeric non-root user.
    Image {
        /// The image's UID.
        uid: i64,
        /// The image's GID, when written as a number other than 0.
        gid: Option<i64>,
        /// Whether `runAsUser` (and `runAsGroup` with `gid`) may carry the image's values: the
        /// same process identity as the image's own `USER`. Not when `USER` names a group by
        /// name or GID 0 (kube-harden writes no root group), nor when `runAsUser` is switched
        /// off: then nothing is written and the kubelet runs the image's user.
        pinned: bool,
    },
}

impl Identity {
    /// The UID the container runs as under this identity, when kube-harden knows it without
    /// writing it.
    pub fn image_uid(self) -> Option<i64> {
        match self {
            Identity::Default => None,
            Identity::Image { uid, .. } => Some(uid),
        }
    }

    /// The UID to write as `runAsUser`: the policy's, the image's, or none.
    pub fn run_as_user(self, policy: &Policy) -> Option<i64> {
        match self {
            Identity::Default => Some(policy.run_as_user),
            Identity::Image { uid, pinned, .. } => pinned.then_some(uid),
        }
    }

    /// The GID to write as `runAsGroup`: the policy's, the image's, or none (the image's own
    /// group then applies).
    pub fn run_as_group(self, policy: &Policy) -> Option<i64> {
        match self {
            Identity::Default => Some(policy.run_as_group),
            Identity::Image { gid, pinned, .. } => gid.filter(|_| pinned),
        }
    }

    /// The detail recorded with a value taken from the image.
    pub fn detail(self) -> Option<String> {
        match self {
            Identity::Default => None,
            Identity::Image { uid, gid, .. } => Some(match gid {
                Some(gid) => format!("from the image's USER {uid}:{gid}"),
                None => format!("from the image's USER {uid}"),
            }),
        }
    }
}

/// Decides each container's [`Identity`] (before any rule runs): the image's when its `USER` is
/// a numeric non-root UID and nothing else decides the container's user: no `runAsUser` on the
/// container or the pod other than the image's own UID (hardening a hardened object again finds
/// the UID it wrote), not exempt, not a Windows pod, `imageUser` not switched off. A pod-level
/// `runAsGroup` the author wrote keeps the group: the image's GID is then not written.
pub(crate) fn decide_identities(
    facts: &mut [ContainerFacts],
    ctx: &Context<'_>,
    windows: bool,
    pod_user: Option<i64>,
    pod_group: bool,
) {
    if windows || ctx.switched_off(ChangeName::ImageUser).is_some() {
        return;
    }
    let user_off = ctx.switched_off(ChangeName::RunAsUser).is_some();
    for f in facts.iter_mut() {
        let Some(image) = &f.image else { continue };
        if f.exempt().is_some() {
            continue;
        }
        let ImageUser::NonRoot { uid, group } = image.user else {
            continue;
        };
        if f.run_as_user.or(pod_user).is_some_and(|user| user != uid) {
            continue;
        }
        let (gid, group_pinnable) = match group {
            ImageGroup::Passwd => (None, true),
            ImageGroup::Id(0) | ImageGroup::Named => (None, false),
            ImageGroup::Id(gid) => (Some(gid).filter(|_| !pod_group), true),
        };
        f.identity = Identity::Image {
            uid,
            gid,
            pinned: group_pinnable && !user_off,
        };
    }
}

/// Where the pod's identity fields go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodPlacement {
    /// Every container whose user kube-harden decides gets the same identity: on the pod.
    Pod(Identity),
    /// The policy's identity on the pod, and each container that runs as its image's user
    /// carries that user and group itself: the images' users next to the default, where every
    /// image names its group as a number (so nothing inherits the pod's group by mistake).
    DefaultWithImageOverrides,
    /// Identities differ and cannot all be written: per container, nothing on the pod.
    PerContainer,
}

/// Where the identity fields go. The containers counted are those whose user kube-harden
/// decides or decided: no `runAsUser` of their own, the policy's UID (written per container by
/// an earlier hardening), or an image the lookup has. Without images every identity is the
/// policy's: today's rule, on the pod.
pub(crate) fn placement(facts: &[ContainerFacts], policy: &Policy) -> PodPlacement {
    let mut counted = facts
        .iter()
        .filter(|f| f.run_as_user.is_none_or(|uid| uid == policy.run_as_user) || f.image.is_some())
        .map(|f| f.identity);
    let Some(first) = counted.next() else {
        return PodPlacement::Pod(Identity::Default);
    };
    if counted.clone().all(|i| i == first) {
        return PodPlacement::Pod(first);
    }
    let written = |i: Identity| match i {
        Identity::Default => true,
        Identity::Image { gid, pinned, .. } => pinned && gid.is_some(),
    };
    if written(first) && counted.all(written) {
        PodPlacement::DefaultWithImageOverrides
    } else {
        PodPlacement::PerContainer
    }
}

impl Identity {
    /// Whether a container with this identity needs its own `runAsUser` under a pod whose
    /// `runAsUser` is `pod_user`.
    pub fn overrides_user(self, pod_user: Option<i64>) -> bool {
        matches!(self, Identity::Image { uid, pinned: true, .. } if pod_user != Some(uid))
    }

    /// Whether a container with this identity needs its own `runAsGroup` under a pod that sets
    /// one.
    pub fn overrides_group(self) -> bool {
        matches!(
            self,
            Identity::Image {
                gid: Some(_),
                pinned: true,
                ..
            }
        )
    }
}

/// The `fsGroup` the images ask for: their common GID when every container runs as the image's
/// user with the same numeric GID (other than 0), so that volumes belong to the group the
/// image's files and processes have. `None`: the policy's.
pub(crate) fn fs_group(placement: PodPlacement) -> Option<(i64, String)> {
    match placement {
        PodPlacement::Pod(Identity::Image {
            gid: Some(gid),
            pinned: true,
            ..
        }) => Some((gid, format!("{gid} from the image's USER"))),
        _ => None,
    }
}

/// Records the `imageUser` decision of each container whose image the lookup has.
pub(crate) fn record_users(
    facts: &[ContainerFacts],
    ctx: &Context<'_>,
    windows: bool,
    pod_user: Option<i64>,
    changes: &mut Vec<Change>,
) {
    for f in facts.iter().filter(|f| f.in_scope) {
        let Some(image) = &f.image else { continue };
        let outcome = if windows {
            Outcome::Skipped(SkipReason::Windows)
        } else if let Some(reason) = ctx.switched_off(ChangeName::ImageUser) {
            Outcome::Skipped(reason)
        } else if let Some(reason) = f.exempt() {
            Outcome::Skipped(reason)
        } else if f.run_as_user.or(pod_user).is_some() {
            // The image's own UID, written by an earlier hardening (or by the author).
            match f.identity {
                Identity::Image { .. } => Outcome::AlreadySet,
                Identity::Default => Outcome::Skipped(SkipReason::ExplicitValue),
            }
        } else {
            match image.user {
                ImageUser::NonRoot { .. } => Outcome::Applied,
                ImageUser::Root => Outcome::Skipped(SkipReason::RunsAsRoot),
                ImageUser::Named => Outcome::Skipped(SkipReason::NotApplicable),
            }
        };
        changes.push(Change {
            name: ChangeName::ImageUser,
            container: Some(f.name.clone()),
            outcome,
            detail: Some(format!("{} with {}", image.label, image.user_text)),
        });
    }
}

/// Caps the image `VOLUME`s of the whole pod as the annotation's writable paths are capped:
/// distinct paths (the annotation's and the images') at most [`MAX_WRITABLE_PATHS`], mounts at
/// most [`MAX_WRITABLE_MOUNTS`]. A container whose image would go past a cap gets none of its
/// image's VOLUMEs (decided in container order), never the whole object left unchanged: an
/// image's author must not be able to switch hardening off. The VOLUME lists are read here, at
/// most [`MAX_VOLUME_READS`] entries for the whole pod.
pub(crate) fn cap_volumes(facts: &mut [ContainerFacts], ctx: &Context<'_>) {
    let annotation_paths = ctx.writable_paths.len();
    let containers = facts.len();
    let mut distinct: HashSet<String> = HashSet::new();
    let mut mounts = containers.saturating_mul(annotation_paths);
    let mut reads = MAX_VOLUME_READS;
    for f in facts.iter_mut() {
        let Some(image) = &mut f.image else { continue };
        let Some(declared) = ctx.images.get(&image.reference).map(|i| &i.volumes) else {
            continue;
        };
        reads -= image.read_volumes(declared, reads);
        if image.volumes.is_empty() {
            continue;
        }
        let new = image
            .volumes
            .iter()
            .filter(|p| !distinct.contains(p.as_str()))
            .count();
        let paths = annotation_paths + distinct.len() + new;
        let total = mounts + image.volumes.len();
        if paths > MAX_WRITABLE_PATHS || total > MAX_WRITABLE_MOUNTS {
            let what = format!(
                "{} VOLUMEs, past the pod's caps ({MAX_WRITABLE_PATHS} writable paths, \
                 {MAX_WRITABLE_MOUNTS} mounts)",
                image.volumes.len()
            );
            let count = image.volumes.len();
            image.ignore_volumes(count, what);
            continue;
        }
        mounts = total;
        distinct.extend(image.volumes.iter().cloned());
    }
}

/// The mounts of one container as the image rules see them: normalized path, and whether the
/// volume is one of kube-harden's own emptyDirs (a mount below it may be added; below the
/// author's volumes, which may be read-only, it is not).
pub(crate) type Mounts = Vec<(String, bool)>;

/// Whether `name` is the name of one of kube-harden's own volumes.
pub(crate) fn is_own_volume(name: &str) -> bool {
    name.starts_with(volumes::VOLUME_PREFIX)
}

/// Where one image path stands: already mounted, inside one of the author's volumes, or to
/// mount.
fn place(
    path: &str,
    mounts: &mut Mounts,
    plan: &mut VolumePlan,
    new_mounts: &mut Vec<Value>,
) -> Outcome {
    if mounts.iter().any(|(m, _)| m == path) {
        return Outcome::AlreadySet;
    }
    let parent = mounts
        .iter()
        .filter(|(m, _)| {
            path.strip_prefix(m.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|(m, _)| m.len());
    if parent.is_some_and(|(_, own)| !own) {
        return Outcome::Skipped(SkipReason::ExplicitValue);
    }
    match plan.mount_image_path(path) {
        Some(volume) => {
            new_mounts.push(json!({"name": volume, "mountPath": path}));
            mounts.push((path.to_owned(), true));
            Outcome::Applied
        }
        None => Outcome::Skipped(SkipReason::NotApplicable),
    }
}

/// Why the image paths of a container need no emptyDir: its root filesystem is not read-only
/// (the reason of its `readOnlyRootFilesystem` decision), or the change is switched off.
pub(crate) struct PathGates {
    /// The container's `readOnlyRootFilesystem` is not `true`, and why.
    pub writable_root: Option<SkipReason>,
    /// `imageVolumes` is switched off (or the pod is Windows), and why.
    pub volumes_off: Option<SkipReason>,
    /// `imageTmpdir` is switched off (or the pod is Windows), and why.
    pub tmpdir_off: Option<SkipReason>,
}

/// Mounts a writable emptyDir at each `VOLUME` of the container's image and at its `TMPDIR`
/// (when not `/tmp` and the container's own `env` does not set `TMPDIR`), where nothing mounts
/// them yet and the root filesystem is read-only. Returns the image's `TMPDIR` when a volume is
/// now mounted exactly there: `TMPDIR` is then written with that value (never `/tmp` over it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mount_paths<'a>(
    image: &'a ContainerImage,
    container: &str,
    gates: &PathGates,
    own_tmpdir_env: bool,
    mounts: &mut Mounts,
    plan: &mut VolumePlan,
    new_mounts: &mut Vec<Value>,
    changes: &mut Vec<Change>,
) -> Option<&'a str> {
    let mut push = |name: ChangeName, outcome: Outcome, detail: String| {
        changes.push(Change {
            name,
            container: Some(container.to_owned()),
            outcome,
            detail: Some(detail),
        });
    };
    let volume_gate = gates.volumes_off.or(gates.writable_root);
    for path in &image.volumes {
        let outcome = match volume_gate {
            Some(reason) => Outcome::Skipped(reason),
            None => place(path, mounts, plan, new_mounts),
        };
        push(
            ChangeName::ImageVolumes,
            outcome,
            format!("{path} (VOLUME of {})", image.label),
        );
    }
    let refused = image.refused.iter().map(|r| r.to_owned());
    let more = (image.refused_more > 0).then(|| match &image.over_cap {
        Some(what) => format!("{what}, over the cap"),
        None => format!("{} more invalid paths", image.refused_more),
    });
    for what in refused.chain(more) {
        push(
            ChangeName::ImageVolumes,
            Outcome::Skipped(SkipReason::NotApplicable),
            format!("{what} (VOLUME of {})", image.label),
        );
    }

    let tmpdir = image.own_tmpdir().filter(|_| !own_tmpdir_env)?;
    let path = volumes::normalize(tmpdir);
    let outcome = match gates.tmpdir_off.or(gates.writable_root) {
        Some(reason) => Outcome::Skipped(reason),
        None => match volumes::path_problem(path) {
            Some(problem) => {
                push(
                    ChangeName::ImageTmpdir,
                    Outcome::Skipped(SkipReason::NotApplicable),
                    format!(
                        "{} {problem} (TMPDIR of {})",
                        budget::quoted(tmpdir),
                        image.label
                    ),
                );
                return None;
            }
            None => place(path, mounts, plan, new_mounts),
        },
    };
    push(
        ChangeName::ImageTmpdir,
        outcome,
        format!("{path} (TMPDIR of {})", image.label),
    );
    matches!(outcome, Outcome::Applied | Outcome::AlreadySet).then_some(tmpdir)
}

/// The warnings the image decisions give, read off the decisions like the hints: an image that
/// expects root or has a user name, and VOLUMEs or a TMPDIR that got no emptyDir. One line per
/// distinct image and problem, at most [`MAX_IMAGE_WARNINGS`], then one line counting the rest.
pub(crate) fn warnings(changes: &[Change], policy: &Policy) -> Vec<String> {
    let uid = policy.run_as_user;
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut left_out = 0usize;
    for change in changes {
        let Some(detail) = &change.detail else {
            continue;
        };
        let line = match (change.name, change.outcome) {
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
        if seen.contains(&line) {
            continue;
        }
        if out.len() >= MAX_IMAGE_WARNINGS {
            left_out += 1;
            continue;
        }
        seen.insert(line.clone());
        out.push(line);
    }
    if left_out > 0 {
        out.push(format!("{left_out} more image warnings left out"));
    }
    out
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
