//! Container-level rules: `securityContext`, the /tmp and writable-path mounts and `TMPDIR`
//! (default resources: `resources.rs`). Applied alike to init containers (native sidecars included), containers
//! and ephemeral containers.
//!
//! See <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/> and
//! <https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/>.

use std::collections::HashSet;

use crate::dom::Json;

use super::change::{Additions, Change, ChangeName, Outcome, SkipReason, decide};
use super::identity::{self, Holder, Level, PodIdentity, Uids};
use super::image::{self, ContainerImage, Identity};
use super::json::{self, Object};
use super::overlay::{Overlay, Step};
use super::volumes::{self, TMP_PATH, VolumePlan};
use super::{Context, HardenError, Scope, budget};

/// What the pod-level pass needs to know about a container before anything changes.
#[derive(Debug)]
pub(crate) struct ContainerFacts {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub list: &'static str,
    /// Position in that list.
    pub index: usize,
    /// The container's name (cut after 63 bytes: [`super::budget::short_name`]).
    pub name: String,
    /// `securityContext.privileged: true`.
    pub privileged: bool,
    /// `securityContext.capabilities.add` has SYS_ADMIN.
    pub sys_admin: bool,
    /// The container's own `securityContext.runAsUser`.
    pub run_as_user: Option<i64>,
    /// `securityContext.runAsNonRoot` as it applies to the container: its own, else the pod's.
    pub run_as_non_root: Option<bool>,
    /// Whether the rules may change this container.
    pub in_scope: bool,
    /// What its image says about itself, when the lookup has it.
    pub image: Option<ContainerImage>,
    /// The identity the rules give it where they decide its user (`image/`).
    pub identity: Identity,
}

impl ContainerFacts {
    /// Reads the facts of container `index` of `list`; `pod_run_as_non_root` is the pod's
    /// `securityContext.runAsNonRoot`.
    pub fn read(
        list: &'static str,
        index: usize,
        c: &Object,
        ctx: &Context<'_>,
        pod_run_as_non_root: Option<bool>,
    ) -> Result<Self, HardenError> {
        let name = super::budget::short_name(
            json::string(c, "name", || format!("spec.{list}[{index}].name"))?.unwrap_or_default(),
        );
        let path = |field: &str| format!("spec.{list}[{name}].securityContext{field}");
        let sc = json::object(c, "securityContext", || path(""))?;
        let own_run_as_non_root = sc
            .map(|sc| json::boolean(sc, "runAsNonRoot", || path(".runAsNonRoot")))
            .transpose()?
            .flatten();
        let (privileged, run_as_user, sys_admin) = match sc {
            None => (false, None, false),
            Some(sc) => {
                let adds = json::object(sc, "capabilities", || path(".capabilities"))?
                    .map(|caps| json::array(caps, "add", || path(".capabilities.add")))
                    .transpose()?
                    .flatten();
                (
                    json::boolean(sc, "privileged", || path(".privileged"))? == Some(true),
                    json::integer(sc, "runAsUser", || path(".runAsUser"))?,
                    adds.is_some_and(|adds| {
                        adds.iter()
                            .filter_map(Json::as_str)
                            .any(|cap| matches!(cap, "SYS_ADMIN" | "CAP_SYS_ADMIN"))
                    }),
                )
            }
        };
        let in_scope = match ctx.scope {
            Scope::Pod => true,
            Scope::NewEphemeral(existing) => {
                list == "ephemeralContainers" && !existing.contains(name.as_str())
            }
        };
        Ok(Self {
            list,
            index,
            name,
            privileged,
            sys_admin,
            run_as_user,
            run_as_non_root: own_run_as_non_root.or(pod_run_as_non_root),
            in_scope,
            image: ContainerImage::of(c, ctx),
            identity: Identity::Default,
        })
    }

    /// Where the container is in the pod spec.
    pub fn at(&self) -> [Step<'static>; 2] {
        [Step::Key(self.list), Step::Index(self.index)]
    }

    /// Dotted path of a field of the container's `securityContext`, for errors.
    fn sc_path(&self, field: &str) -> String {
        format!("spec.{}[{}].securityContext.{field}", self.list, self.name)
    }

    /// [`SkipReason::Privileged`] for a privileged container.
    fn privileged_reason(&self) -> Option<SkipReason> {
        self.privileged.then_some(SkipReason::Privileged)
    }

    /// Why this container keeps the identity its image gives it, if it does: it is privileged,
    /// it sets `runAsUser: 0` itself, or `runAsNonRoot: false` applies to it (its own or the
    /// pod's): the author allowed root, so no UID or GID is imposed.
    pub fn exempt(&self) -> Option<SkipReason> {
        if self.privileged {
            Some(SkipReason::Privileged)
        } else if self.run_as_user == Some(0) {
            Some(SkipReason::RunsAsRoot)
        } else if self.run_as_non_root == Some(false) {
            Some(SkipReason::ExplicitValue)
        } else {
            None
        }
    }
}

/// The pod-wide facts the container rules use.
pub(crate) struct Env<'a> {
    pub ctx: &'a Context<'a>,
    pub windows: bool,
    pub identity: PodIdentity,
    /// The pod sets pod-level `resources`, so containers get no defaults.
    pub pod_resources: bool,
}

impl Env<'_> {
    /// Why a Linux-only change is not made: Windows, or switched off.
    pub(crate) fn linux_only(&self, name: ChangeName) -> Option<SkipReason> {
        self.ctx.linux_only(self.windows, name)
    }
}

/// Hardens one container: its additions go to `overlay`.
pub(crate) fn harden_container(
    c: &Object,
    overlay: &mut Overlay<'_>,
    facts: &ContainerFacts,
    env: &Env<'_>,
    plan: &mut VolumePlan,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let at = facts.at();
    harden_security_context(c, at, overlay, facts, env, changes)?;
    harden_writable_mounts(c, at, overlay, facts, env, plan, changes)?;
    super::resources::harden_resources(c, at, overlay, facts, env, changes)
}

/// The container's `securityContext`: one function per change name, then the identity fields
/// where they go on containers (`identity.rs`).
fn harden_security_context(
    c: &Object,
    [list, index]: [Step<'_>; 2],
    overlay: &mut Overlay<'_>,
    facts: &ContainerFacts,
    env: &Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let sc_path = || format!("spec.{}[{}].securityContext", facts.list, facts.name);
    let empty = Object::new();
    let sc = json::object(c, "securityContext", sc_path)?.unwrap_or(&empty);
    let mut adds = Additions::default();
    allow_privilege_escalation(sc, facts, env, &mut adds, changes)?;
    let drop_all = capabilities(sc, facts, env, changes)?;
    read_only_root_filesystem(sc, facts, env, &mut adds, changes)?;
    if env.identity.per_container {
        let holder = Holder {
            ctx: env.ctx,
            windows: env.windows,
            level: Level::Container {
                list: facts.list,
                name: &facts.name,
                exempt: facts.exempt(),
                pod: env.identity,
            },
            target: facts.identity,
            sc,
        };
        let uid = identity::run_as_user(&holder, &mut adds, changes)?;
        identity::run_as_group(&holder, Uids::container(uid), &mut adds, changes)?;
        identity::run_as_non_root(&holder, Uids::container(uid), &mut adds, changes)?;
    }

    let sc = Step::Key("securityContext");
    if !adds.is_empty() {
        adds.insert_into(overlay, &[list, index, sc], sc_path)?;
    }
    if drop_all {
        let drop = [
            list,
            index,
            sc,
            Step::Key("capabilities"),
            Step::Key("drop"),
        ];
        overlay.push(&drop, [Json::from("ALL")], || {
            format!("{}.capabilities.drop", sc_path())
        })?;
    }
    Ok(())
}

/// `allowPrivilegeEscalation: false`, which the API server rejects with `privileged: true` or
/// SYS_ADMIN.
fn allow_privilege_escalation(
    sc: &Object,
    facts: &ContainerFacts,
    env: &Env<'_>,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = ChangeName::AllowPrivilegeEscalation;
    let written = json::boolean(sc, "allowPrivilegeEscalation", || {
        facts.sc_path("allowPrivilegeEscalation")
    })?;
    let change = decide(name, Some(&facts.name), written.map(|v| !v), || {
        env.linux_only(name)
            .or((facts.privileged || facts.sys_admin).then_some(SkipReason::Privileged))
    });
    adds.record(changes, change, "allowPrivilegeEscalation", || false.into());
    Ok(())
}

/// `capabilities.drop` gains `ALL`; an `add` list (e.g. NET_BIND_SERVICE) stays and still
/// applies. A privileged container keeps its powers. Returns whether `ALL` is to be added.
fn capabilities(
    sc: &Object,
    facts: &ContainerFacts,
    env: &Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<bool, HardenError> {
    let name = ChangeName::Capabilities;
    let caps = json::object(sc, "capabilities", || facts.sc_path("capabilities"))?;
    let drops = caps
        .map(|caps| json::array(caps, "drop", || facts.sc_path("capabilities.drop")))
        .transpose()?
        .flatten();
    let written = if drops.is_some_and(|d| d.iter().any(|cap| cap == "ALL")) {
        Some(true)
    } else if drops.is_some_and(Vec::is_empty) {
        // `drop: []` written out: the author chose to drop nothing.
        Some(false)
    } else {
        None
    };
    let change = decide(name, Some(&facts.name), written, || {
        env.linux_only(name).or(facts.privileged_reason())
    });
    let applied = change.is_applied();
    changes.push(change);
    Ok(applied)
}

/// `readOnlyRootFilesystem: true`; a privileged node agent keeps its writable root.
fn read_only_root_filesystem(
    sc: &Object,
    facts: &ContainerFacts,
    env: &Env<'_>,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = ChangeName::ReadOnlyRootFilesystem;
    let written = json::boolean(sc, "readOnlyRootFilesystem", || {
        facts.sc_path("readOnlyRootFilesystem")
    })?;
    let change = decide(name, Some(&facts.name), written, || {
        env.linux_only(name).or(facts.privileged_reason())
    });
    adds.record(changes, change, "readOnlyRootFilesystem", || true.into());
    Ok(())
}

/// The /tmp mount, `TMPDIR`, the annotation's writable paths, and the image's VOLUMEs and
/// `TMPDIR` directory (`image/`).
fn harden_writable_mounts(
    c: &Object,
    [list, index]: [Step<'_>; 2],
    overlay: &mut Overlay<'_>,
    facts: &ContainerFacts,
    env: &Env<'_>,
    plan: &mut VolumePlan,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = Some(facts.name.as_str());
    let path = |field: &str| format!("spec.{}[{}].{field}", facts.list, facts.name);
    let existing: image::Mounts = json::array(c, "volumeMounts", || path("volumeMounts"))?
        .map(|mounts| {
            mounts
                .iter()
                .filter_map(|m| {
                    let target = json::member(m, "mountPath").and_then(Json::as_str)?;
                    let own = json::member(m, "name")
                        .and_then(Json::as_str)
                        .is_some_and(image::is_own_volume);
                    Some((volumes::normalize(target).to_owned(), own))
                })
                .collect()
        })
        .unwrap_or_default();
    let mounted: HashSet<&str> = existing.iter().map(|(p, _)| p.as_str()).collect();
    let mut new_mounts: Vec<Json<'static>> = Vec::new();

    let mut mount = |target: &str, change: ChangeName, plan: &mut VolumePlan| {
        let already = mounted.contains(target).then_some(true);
        let mut decided = decide(change, name, already, || env.linux_only(change));
        if decided.is_applied() {
            match plan.mount(target) {
                Some(volume) => new_mounts.push(Json::object([
                    ("name", volume.into()),
                    ("mountPath", target.into()),
                ])),
                None => decided.outcome = Outcome::Skipped(SkipReason::NotApplicable),
            }
        }
        decided
    };

    let tmp = mount(TMP_PATH, ChangeName::TmpVolume, plan);
    let tmp_mounted = matches!(tmp.outcome, Outcome::Applied | Outcome::AlreadySet);
    changes.push(tmp);
    for target in &env.ctx.writable_paths {
        changes.push(Change {
            detail: Some(target.clone()),
            ..mount(target, ChangeName::WritablePaths, plan)
        });
    }

    let env_list = json::array(c, "env", || path("env"))?;
    let tmpdir = env_list.and_then(|list| {
        list.iter()
            .find(|e| json::member(e, "name").and_then(Json::as_str) == Some("TMPDIR"))
    });
    // The image's VOLUMEs and TMPDIR directory, where the root filesystem is read-only.
    let image_tmpdir = match &facts.image {
        None => None,
        Some(img) => {
            let mut mounts = existing.clone();
            mounts.extend(new_mounts.iter().filter_map(|m| {
                let target = m.get("mountPath").and_then(Json::as_str)?;
                Some((target.to_owned(), true))
            }));
            let gates = image::PathGates {
                writable_root: writable_root(changes, &facts.name),
                volumes_off: env.linux_only(ChangeName::ImageVolumes),
                tmpdir_off: env.linux_only(ChangeName::ImageTmpdir),
            };
            image::mount_paths(
                img,
                &facts.name,
                &gates,
                tmpdir.is_some(),
                &mut mounts,
                plan,
                &mut new_mounts,
                changes,
            )
        }
    };
    // An image TMPDIR other than /tmp is never overridden: it is written as it is where a
    // volume is now mounted there, and otherwise left to the image.
    let image_own_tmpdir = facts.image.as_ref().and_then(|i| i.own_tmpdir());

    // TMPDIR=/tmp, where the container has a /tmp mount and does not set TMPDIR. With envFrom
    // the variable may come from a ConfigMap or Secret, and an `env` entry would override it.
    let written = tmpdir.map(|entry| {
        let value = json::member(entry, "value").and_then(Json::as_str);
        value == Some(TMP_PATH) || (value.is_some() && value == image_own_tmpdir)
    });
    let mut change = decide(ChangeName::TmpdirEnv, name, written, || {
        let env_from = json::is_set(c, "envFrom");
        env.linux_only(ChangeName::TmpdirEnv)
            .or(if image_own_tmpdir.is_some() {
                (env_from || image_tmpdir.is_none()).then_some(SkipReason::ExplicitValue)
            } else if !tmp_mounted {
                Some(SkipReason::NotApplicable)
            } else if env_from {
                Some(SkipReason::ExplicitValue)
            } else {
                None
            })
    });
    change.detail = image_own_tmpdir.map(|t| format!("{} (the image's)", budget::quoted(t)));
    let applied = change.is_applied();
    changes.push(change);

    if applied {
        let value = image_tmpdir.unwrap_or(TMP_PATH);
        let entry = Json::object([("name", "TMPDIR".into()), ("value", value.into())]);
        overlay.push(&[list, index, Step::Key("env")], [entry], || path("env"))?;
    }
    if !new_mounts.is_empty() {
        let mounts = [list, index, Step::Key("volumeMounts")];
        overlay.push(&mounts, new_mounts, || path("volumeMounts"))?;
    }
    Ok(())
}

/// Why the container's root filesystem stays writable (the reason of its
/// `readOnlyRootFilesystem` decision), or `None` when it is read-only.
fn writable_root(changes: &[Change], container: &str) -> Option<SkipReason> {
    let decision = changes.iter().rev().find(|c| {
        c.name == ChangeName::ReadOnlyRootFilesystem && c.container.as_deref() == Some(container)
    });
    match decision.map(|c| c.outcome) {
        Some(Outcome::Skipped(reason)) => Some(reason),
        Some(Outcome::Applied | Outcome::AlreadySet) => None,
        None => Some(SkipReason::NotApplicable),
    }
}
