//! Whose identity each container gets: the image's numeric non-root `USER` or the policy's
//! defaults ([`Identity`]), and whether it is written on the pod or per container
//! ([`PodPlacement`]). The identity rules themselves (`identity.rs` of `harden`) write it.

use super::super::container::ContainerFacts;
use super::{ChangeName, Context, ImageGroup, ImageUser, Outcome, Policy, SkipReason};
use crate::harden::Change;

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
