//! The image's writable directories: an emptyDir at each `VOLUME` and at its `TMPDIR`, under a
//! read-only root, through the writable-paths machinery of `volumes.rs` (same names, collision
//! rules and caps), never below one of the author's volumes.

use std::collections::HashSet;

use crate::dom::Json;

use super::super::container::ContainerFacts;
use super::super::volumes::{self, VolumePlan};
use super::{
    Change, ChangeName, ContainerImage, Context, MAX_VOLUME_READS, MAX_WRITABLE_MOUNTS,
    MAX_WRITABLE_PATHS, Outcome, SkipReason, budget,
};

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
    new_mounts: &mut Vec<Json<'static>>,
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
            new_mounts.push(Json::object([
                ("name", volume.into()),
                ("mountPath", path.into()),
            ]));
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
    new_mounts: &mut Vec<Json<'static>>,
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
