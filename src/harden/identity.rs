//! The identity rules: `runAsUser`, `runAsGroup` and `runAsNonRoot`, one function each, for the
//! pod's `securityContext` and a container's alike.
//!
//! They go on the pod when every container may have them. A container that keeps running as
//! root (privileged, `runAsUser: 0`, or `runAsNonRoot: false` applying to it) keeps the identity
//! its image gives it: the pod then gets none of them and each other container gets its own (as
//! do ephemeral containers added later). A container inherits a field the pod sets.
//!
//! The values written are the holder's [`Identity`]: the policy's UID and GID, or those of the
//! image's own numeric `USER` (`image/` decides which, and whether on the pod or per container).
//! See <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/>.

use super::change::{Additions, Change, ChangeName, SkipReason, decide};
use super::container::ContainerFacts;
use super::image::Identity;
use super::json::{self, Object};
use super::{Context, HardenError};

/// The pod's own identity after the pod-level rules; containers without their own value inherit it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PodIdentity {
    /// Identity fields go on containers, not on the pod.
    pub per_container: bool,
    /// The pod's `runAsUser` (explicit or added).
    pub run_as_user: Option<i64>,
    /// Whether the pod sets `runAsGroup`.
    pub has_run_as_group: bool,
    /// Whether the pod sets `runAsNonRoot`.
    pub has_run_as_non_root: bool,
}

impl PodIdentity {
    /// The identity a pod already has, for the ephemeral-containers subresource (no pod
    /// changes): every field goes on the new containers.
    pub fn written(spec: &Object) -> Result<Self, HardenError> {
        let sc = json::object(spec, "securityContext", || "spec.securityContext".into())?;
        Ok(Self {
            per_container: true,
            run_as_user: sc
                .map(|sc| {
                    json::integer(sc, "runAsUser", || "spec.securityContext.runAsUser".into())
                })
                .transpose()?
                .flatten(),
            has_run_as_group: sc.is_some_and(|sc| json::is_set(sc, "runAsGroup")),
            has_run_as_non_root: sc.is_some_and(|sc| json::is_set(sc, "runAsNonRoot")),
        })
    }
}

/// Whose identity fields are decided.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level<'a> {
    /// The pod. `per_container`: some container keeps root, so a field the pod lacks is decided
    /// on each container instead.
    Pod {
        /// Fields the pod lacks are decided per container.
        per_container: bool,
    },
    /// One container, which inherits what the pod sets.
    Container {
        /// `containers`, `initContainers` or `ephemeralContainers`.
        list: &'static str,
        /// The container's name.
        name: &'a str,
        /// Why the container keeps its image's identity, if it does ([`ContainerFacts::exempt`]).
        exempt: Option<SkipReason>,
        /// What the pod sets.
        pod: PodIdentity,
    },
}

/// One `securityContext` whose identity fields are being decided.
pub(crate) struct Holder<'a> {
    /// The object's context (policy, opt-outs).
    pub ctx: &'a Context<'a>,
    /// A Windows pod.
    pub windows: bool,
    /// The pod or a container.
    pub level: Level<'a>,
    /// The identity written where a field is missing: the policy's, or the image's.
    pub target: Identity,
    /// The `securityContext` as written (empty when there is none).
    pub sc: &'a Object<'a>,
}

impl Holder<'_> {
    fn container(&self) -> Option<&str> {
        match self.level {
            Level::Pod { .. } => None,
            Level::Container { name, .. } => Some(name),
        }
    }

    fn path(&self, field: &str) -> String {
        match self.level {
            Level::Pod { .. } => format!("spec.securityContext.{field}"),
            Level::Container { list, name, .. } => {
                format!("spec.{list}[{name}].securityContext.{field}")
            }
        }
    }

    /// The pod's identity, for a container.
    fn pod(&self) -> Option<PodIdentity> {
        match self.level {
            Level::Pod { .. } => None,
            Level::Container { pod, .. } => Some(pod),
        }
    }

    /// Whether a field the holder lacks is decided elsewhere (and recorded there): on each
    /// container, for a pod some container of which keeps root; on the pod, for a container that
    /// inherits the pod's value (`pod_sets`).
    fn decided_elsewhere(&self, pod_sets: impl Fn(&PodIdentity) -> bool) -> bool {
        match &self.level {
            Level::Pod { per_container } => *per_container,
            Level::Container { pod, .. } => pod_sets(pod),
        }
    }

    /// Why `name` may not be added here whatever the field: the container keeps root, a Windows
    /// pod, or switched off.
    fn gate(&self, name: ChangeName) -> Option<SkipReason> {
        let exempt = match self.level {
            Level::Pod { .. } => None,
            Level::Container { exempt, .. } => exempt,
        };
        exempt.or_else(|| self.ctx.linux_only(self.windows, name))
    }
}

/// What is known of the UIDs a holder's processes run as, once its `runAsUser` is decided.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uids {
    /// The holder's own `runAsUser` (written, inherited or added).
    uid: Option<i64>,
    /// Every process has a UID set.
    all_set: bool,
    /// Every process runs as a set UID other than 0.
    all_non_root: bool,
}

impl Uids {
    /// A container running as `uid`.
    pub fn container(uid: Option<i64>) -> Self {
        Self {
            uid,
            all_set: uid.is_some(),
            all_non_root: uid.is_some_and(|uid| uid != 0),
        }
    }

    /// A pod running as `uid`, whose containers run as their own `runAsUser`, else the pod's,
    /// else (when the rules know it) their image's.
    pub fn pod(uid: Option<i64>, containers: &[ContainerFacts]) -> Self {
        Self {
            uid,
            all_set: uid.is_some() || containers.iter().all(|f| f.run_as_user.is_some()),
            all_non_root: containers.iter().all(|f| {
                f.run_as_user
                    .or(uid)
                    .or(f.identity.image_uid())
                    .is_some_and(|uid| uid != 0)
            }),
        }
    }
}

/// `runAsUser`: the target's UID (the policy's, or the image's). Returns the UID the holder
/// then runs as (written, inherited or added; for a container, its image's when the kubelet runs
/// that unwritten).
pub(crate) fn run_as_user(
    h: &Holder<'_>,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<Option<i64>, HardenError> {
    let written = json::integer(h.sc, "runAsUser", || h.path("runAsUser"))?;
    let inherited = h.pod().and_then(|pod| pod.run_as_user);
    let target = h.target;
    if written.is_none()
        && h.decided_elsewhere(|pod| {
            pod.run_as_user.is_some() && !target.overrides_user(pod.run_as_user)
        })
    {
        return Ok(inherited);
    }
    let name = ChangeName::RunAsUser;
    let value = target.run_as_user(h.ctx.policy);
    let mut change = decide(name, h.container(), written.map(|uid| uid != 0), || {
        // No value: the image's user, unwritten (the kubelet runs it).
        h.gate(name)
            .or(value.is_none().then_some(SkipReason::NotApplicable))
    });
    if written.is_none() {
        change.detail = target.detail();
    }
    match value {
        Some(uid) => {
            if adds.record(changes, change, "runAsUser", || uid.into()) {
                return Ok(Some(uid));
            }
        }
        None => changes.push(change),
    }
    let runs_as = written.or(inherited);
    Ok(match h.level {
        Level::Pod { .. } => runs_as,
        Level::Container { .. } => runs_as.or(target.image_uid()),
    })
}

/// `runAsGroup`: the policy's GID. Root stays root, so a holder that runs as UID 0 keeps its
/// group too. A group needs a user: containerd refuses a sandbox whose runAsGroup has no
/// runAsUser ("user group is specified without user"), so it is added only where every process
/// has a user. Returns whether the holder's own `securityContext` then sets it.
pub(crate) fn run_as_group(
    h: &Holder<'_>,
    uids: Uids,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<bool, HardenError> {
    let written = json::integer(h.sc, "runAsGroup", || h.path("runAsGroup"))?;
    let target = h.target;
    if written.is_none()
        && h.decided_elsewhere(|pod| pod.has_run_as_group && !target.overrides_group())
    {
        return Ok(false);
    }
    let name = ChangeName::RunAsGroup;
    // No value: the image's own group stays (its USER names none as a number).
    let value = target.run_as_group(h.ctx.policy);
    let mut change = decide(name, h.container(), written.map(|gid| gid != 0), || {
        h.gate(name).or(if uids.uid == Some(0) {
            Some(SkipReason::RunsAsRoot)
        } else if !uids.all_set || value.is_none() {
            Some(SkipReason::NotApplicable)
        } else {
            None
        })
    });
    if written.is_none() {
        change.detail = target.detail();
    }
    let applied = match value {
        Some(gid) => adds.record(changes, change, "runAsGroup", || gid.into()),
        None => {
            changes.push(change);
            false
        }
    };
    Ok(written.is_some() || applied)
}

/// `runAsNonRoot: true`, only where every process's UID is known and not 0, or the kubelet
/// refuses to start the container. Windows images often run as ContainerAdministrator: not set
/// there. Returns whether the holder's own `securityContext` then sets it.
pub(crate) fn run_as_non_root(
    h: &Holder<'_>,
    uids: Uids,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<bool, HardenError> {
    let written = json::boolean(h.sc, "runAsNonRoot", || h.path("runAsNonRoot"))?;
    if written.is_none() && h.decided_elsewhere(|pod| pod.has_run_as_non_root) {
        return Ok(false);
    }
    let name = ChangeName::RunAsNonRoot;
    let change = decide(name, h.container(), written, || {
        h.gate(name)
            .or((!uids.all_non_root).then_some(SkipReason::RunsAsRoot))
    });
    let applied = adds.record(changes, change, "runAsNonRoot", || true.into());
    Ok(written.is_some() || applied)
}
