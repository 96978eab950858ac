//! Pod-level rules (`spec.securityContext`) and the walk over a pod spec's containers.
//!
//! Identity fields (`runAsUser`, `runAsGroup`, `runAsNonRoot`) go on the pod when every container
//! may have them. When a container is privileged or explicitly runs as UID 0, it keeps running as
//! root, so those fields go on each of the other containers instead.
//! See <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/>.

use serde_json::Value;

use super::container::{self, ContainerFacts};
use super::image::{self, PodPlacement};
use super::json::{self, Object};
use super::volumes::VolumePlan;
use super::{Change, ChangeName, Context, HardenError, Outcome, Scope, SkipReason};

/// The container lists of a pod spec, in the order the kubelet starts them.
pub(crate) const CONTAINER_LISTS: [&str; 3] =
    ["initContainers", "containers", "ephemeralContainers"];

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

/// Records a decision.
pub(crate) fn record(
    changes: &mut Vec<Change>,
    name: ChangeName,
    container: Option<&str>,
    outcome: Outcome,
) {
    record_detail(changes, name, container, outcome, None);
}

/// Records a decision with a detail (e.g. the image a value comes from).
pub(crate) fn record_detail(
    changes: &mut Vec<Change>,
    name: ChangeName,
    container: Option<&str>,
    outcome: Outcome,
    detail: Option<String>,
) {
    changes.push(Change {
        name,
        container: container.map(str::to_owned),
        outcome,
        detail,
    });
}

/// Hardens one pod spec in place and records every decision.
pub(crate) fn harden_pod_spec(
    spec: &mut Object,
    ctx: &Context<'_>,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let windows = is_windows(spec)?;
    let mut facts = container_facts(spec, ctx)?;
    let whole_pod = matches!(ctx.scope, Scope::Pod);
    let any_exempt = facts.iter().any(|f| f.exempt().is_some());
    let pod_user = json::object(spec, "securityContext", || "spec.securityContext".into())?
        .map(|sc| json::integer(sc, "runAsUser", || "spec.securityContext.runAsUser".into()))
        .transpose()?
        .flatten();
    let pod_group = json::object(spec, "securityContext", || "spec.securityContext".into())?
        .is_some_and(|sc| json::is_set(sc, "runAsGroup"));
    image::decide_identities(&mut facts, ctx, windows, pod_user, pod_group);
    image::cap_volumes(&mut facts, ctx);

    let identity = if whole_pod {
        harden_pod_security_context(spec, ctx, windows, any_exempt, &facts, changes)?
    } else {
        pod_identity(spec)?
    };
    let identity = PodIdentity {
        per_container: identity.per_container || !whole_pod,
        ..identity
    };
    image::record_users(&facts, ctx, windows, pod_user, changes);

    let mut plan = VolumePlan::new(spec, ctx, whole_pod)?;
    let pod_resources = json::is_set(spec, "resources");
    for facts in facts.iter().filter(|f| f.in_scope) {
        let list = json::array_entry(spec, facts.list, || format!("spec.{}", facts.list))?;
        let Some(Value::Object(c)) = list.get_mut(facts.index) else {
            continue;
        };
        let env = container::Env {
            ctx,
            windows,
            identity,
            pod_resources,
        };
        container::harden_container(c, facts, &env, &mut plan, changes)?;
    }
    plan.add_volumes(spec, ctx)?;
    Ok(())
}

/// Windows pods: `spec.os.name: windows`, a Windows node selector, or a HostProcess container.
fn is_windows(spec: &Object) -> Result<bool, HardenError> {
    let os = json::object(spec, "os", || "spec.os".into())?
        .map(|os| json::string(os, "name", || "spec.os.name".into()))
        .transpose()?
        .flatten();
    if os == Some("windows") {
        return Ok(true);
    }
    let selector = json::object(spec, "nodeSelector", || "spec.nodeSelector".into())?
        .and_then(|s| s.get("kubernetes.io/os"))
        .and_then(Value::as_str);
    if selector == Some("windows") {
        return Ok(true);
    }
    let host_process = |sc: Option<&Value>| {
        sc.and_then(|sc| sc.get("windowsOptions"))
            .and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    if host_process(spec.get("securityContext")) {
        return Ok(true);
    }
    Ok(CONTAINER_LISTS.iter().any(|list| {
        spec.get(*list)
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| host_process(c.get("securityContext"))))
    }))
}

/// Reads what the rules need to know about each container before changing anything.
fn container_facts(spec: &Object, ctx: &Context<'_>) -> Result<Vec<ContainerFacts>, HardenError> {
    let pod_run_as_non_root =
        json::object(spec, "securityContext", || "spec.securityContext".into())?
            .map(|sc| {
                json::boolean(sc, "runAsNonRoot", || {
                    "spec.securityContext.runAsNonRoot".into()
                })
            })
            .transpose()?
            .flatten();
    let mut facts = Vec::new();
    for list in CONTAINER_LISTS {
        let Some(containers) = json::array(spec, list, || format!("spec.{list}"))? else {
            continue;
        };
        for (index, c) in containers.iter().enumerate() {
            let Value::Object(c) = c else {
                return Err(HardenError::WrongType {
                    path: format!("spec.{list}[{index}]"),
                    expected: "an object",
                });
            };
            facts.push(ContainerFacts::read(
                list,
                index,
                c,
                ctx,
                pod_run_as_non_root,
            )?);
        }
    }
    Ok(facts)
}

/// The identity a pod already has, for the ephemeral-containers subresource (no pod changes).
fn pod_identity(spec: &Object) -> Result<PodIdentity, HardenError> {
    let sc = json::object(spec, "securityContext", || "spec.securityContext".into())?;
    Ok(PodIdentity {
        per_container: true,
        run_as_user: sc
            .map(|sc| json::integer(sc, "runAsUser", || "spec.securityContext.runAsUser".into()))
            .transpose()?
            .flatten(),
        has_run_as_group: sc.is_some_and(|sc| json::is_set(sc, "runAsGroup")),
        has_run_as_non_root: sc.is_some_and(|sc| json::is_set(sc, "runAsNonRoot")),
    })
}

/// Outcome for a field the author already set: safe value or explicit insecure value.
pub(crate) fn present(safe: bool) -> Outcome {
    if safe {
        Outcome::AlreadySet
    } else {
        Outcome::Skipped(SkipReason::ExplicitValue)
    }
}

/// The pod-level rules. Returns the pod's identity for the container rules.
fn harden_pod_security_context(
    spec: &mut Object,
    ctx: &Context<'_>,
    windows: bool,
    any_exempt: bool,
    facts: &[ContainerFacts],
    changes: &mut Vec<Change>,
) -> Result<PodIdentity, HardenError> {
    let path = |field: &str| format!("spec.securityContext.{field}");
    let empty = Object::new();
    let sc =
        json::object(spec, "securityContext", || "spec.securityContext".into())?.unwrap_or(&empty);
    // Fields to add, inserted once every field has been read.
    let mut adds: Vec<(&'static str, Value)> = Vec::new();
    let policy = ctx.policy;
    let linux_only = |name: ChangeName| -> Option<SkipReason> {
        if windows {
            Some(SkipReason::Windows)
        } else {
            ctx.switched_off(name)
        }
    };
    // Identity fields go per container when a container keeps root or the containers' images
    // ask for different users (image.rs); otherwise on the pod, with the images' common user.
    let placement = image::placement(facts, ctx.policy);
    let any_exempt = any_exempt || placement == PodPlacement::PerContainer;
    let target = match placement {
        PodPlacement::Pod(identity) => identity,
        _ => image::Identity::Default,
    };
    let mut identity = PodIdentity {
        per_container: any_exempt || placement == PodPlacement::DefaultWithImageOverrides,
        ..PodIdentity::default()
    };

    // runAsUser
    let explicit_user = json::integer(sc, "runAsUser", || path("runAsUser"))?;
    identity.run_as_user = explicit_user;
    match explicit_user {
        Some(uid) => record(changes, ChangeName::RunAsUser, None, present(uid != 0)),
        None if any_exempt => {} // decided per container
        None => match linux_only(ChangeName::RunAsUser) {
            Some(reason) => record(
                changes,
                ChangeName::RunAsUser,
                None,
                Outcome::Skipped(reason),
            ),
            None => {
                let outcome = match target.run_as_user(policy) {
                    Some(uid) => {
                        adds.push(("runAsUser", uid.into()));
                        identity.run_as_user = Some(uid);
                        Outcome::Applied
                    }
                    // The image's user, unwritten: the kubelet runs it.
                    None => Outcome::Skipped(SkipReason::NotApplicable),
                };
                let detail = target.detail();
                record_detail(changes, ChangeName::RunAsUser, None, outcome, detail);
            }
        },
    }

    // runAsGroup: root stays root, so a pod that runs as UID 0 keeps its group too. A group needs
    // a user: containerd refuses a sandbox whose runAsGroup has no runAsUser ("user group is
    // specified without user"), so the pod gets one only when every container has a user.
    let every_container_has_a_user =
        identity.run_as_user.is_some() || facts.iter().all(|f| f.run_as_user.is_some());
    match json::integer(sc, "runAsGroup", || path("runAsGroup"))? {
        Some(gid) => {
            identity.has_run_as_group = true;
            record(changes, ChangeName::RunAsGroup, None, present(gid != 0));
        }
        None if any_exempt => {}
        None => {
            let outcome = match linux_only(ChangeName::RunAsGroup) {
                Some(reason) => Outcome::Skipped(reason),
                None if explicit_user == Some(0) => Outcome::Skipped(SkipReason::RunsAsRoot),
                None if !every_container_has_a_user => Outcome::Skipped(SkipReason::NotApplicable),
                // The image's group stays when its USER names none as a number.
                None => match target.run_as_group(policy) {
                    Some(gid) => {
                        adds.push(("runAsGroup", gid.into()));
                        identity.has_run_as_group = true;
                        Outcome::Applied
                    }
                    None => Outcome::Skipped(SkipReason::NotApplicable),
                },
            };
            record_detail(
                changes,
                ChangeName::RunAsGroup,
                None,
                outcome,
                target.detail(),
            );
        }
    }

    // runAsNonRoot: only where every container's UID is known and not 0, or the kubelet refuses
    // to start the container. Windows images often run as ContainerAdministrator: not set there.
    match json::boolean(sc, "runAsNonRoot", || path("runAsNonRoot"))? {
        Some(value) => {
            identity.has_run_as_non_root = true;
            record(changes, ChangeName::RunAsNonRoot, None, present(value));
        }
        None if any_exempt => {}
        None => {
            let pod_user = identity.run_as_user;
            let all_non_root = facts.iter().all(|f| {
                f.run_as_user
                    .or(pod_user)
                    .or(f.identity.image_uid())
                    .is_some_and(|uid| uid != 0)
            });
            let outcome = if windows {
                Outcome::Skipped(SkipReason::Windows)
            } else if let Some(reason) = ctx.switched_off(ChangeName::RunAsNonRoot) {
                Outcome::Skipped(reason)
            } else if !all_non_root {
                Outcome::Skipped(SkipReason::RunsAsRoot)
            } else {
                adds.push(("runAsNonRoot", true.into()));
                identity.has_run_as_non_root = true;
                Outcome::Applied
            };
            record(changes, ChangeName::RunAsNonRoot, None, outcome);
        }
    }

    // fsGroup and fsGroupChangePolicy (recursive chown of large volumes makes start-up slow).
    // The images' common GID when they agree on one (image.rs), so volumes get their group.
    let image_group = image::fs_group(placement);
    let outcome = match json::integer(sc, "fsGroup", || path("fsGroup"))? {
        Some(gid) => present(gid != 0),
        None => match linux_only(ChangeName::FsGroup) {
            Some(reason) => Outcome::Skipped(reason),
            None => {
                let gid = image_group
                    .as_ref()
                    .map_or(policy.fs_group, |(gid, _)| *gid);
                adds.push(("fsGroup", gid.into()));
                Outcome::Applied
            }
        },
    };
    let detail = image_group
        .filter(|_| outcome == Outcome::Applied)
        .map(|(_, detail)| detail);
    record_detail(changes, ChangeName::FsGroup, None, outcome, detail);
    let outcome = match json::string(sc, "fsGroupChangePolicy", || path("fsGroupChangePolicy"))? {
        Some(value) => present(value == "OnRootMismatch"),
        None => match linux_only(ChangeName::FsGroupChangePolicy) {
            Some(reason) => Outcome::Skipped(reason),
            None => {
                adds.push(("fsGroupChangePolicy", "OnRootMismatch".into()));
                Outcome::Applied
            }
        },
    };
    record(changes, ChangeName::FsGroupChangePolicy, None, outcome);

    // seccompProfile: RuntimeDefault unless the author chose one (field or legacy annotation).
    let outcome = match json::object(sc, "seccompProfile", || path("seccompProfile"))? {
        Some(profile) => {
            let kind = json::string(profile, "type", || path("seccompProfile.type"))?;
            present(matches!(kind, Some("RuntimeDefault" | "Localhost")))
        }
        None if ctx.legacy_seccomp_annotation => Outcome::Skipped(SkipReason::ExplicitValue),
        None => match linux_only(ChangeName::SeccompProfile) {
            Some(reason) => Outcome::Skipped(reason),
            None => {
                let mut profile = Object::new();
                profile.insert("type".into(), "RuntimeDefault".into());
                adds.push(("seccompProfile", Value::Object(profile)));
                Outcome::Applied
            }
        },
    };
    record(changes, ChangeName::SeccompProfile, None, outcome);

    if !adds.is_empty() {
        let sc = json::object_entry(spec, "securityContext", || "spec.securityContext".into())?;
        sc.extend(adds.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    Ok(identity)
}
