//! Pod-level rules (`spec.securityContext`: one function per change name, the identity fields
//! in `identity.rs`) and the walk over a pod spec's containers.
//! See <https://kubernetes.io/docs/tasks/configure-pod-container/security-context/>.

use crate::dom::Json;

use super::change::{Additions, Change, ChangeName, decide};
use super::container::{self, ContainerFacts};
use super::identity::{self, Holder, Level, PodIdentity, Uids};
use super::image::{self, Identity, PodPlacement};
use super::json::{self, Object};
use super::overlay::{Overlay, Step};
use super::volumes::VolumePlan;
use super::{Context, HardenError, Scope};

pub(crate) use crate::psa::CONTAINER_LISTS;

/// Hardens one pod spec: its additions go to `overlay`, every decision to `changes`.
pub(crate) fn harden_pod_spec(
    spec: &Object,
    overlay: &mut Overlay<'_>,
    ctx: &Context<'_>,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let windows = is_windows(spec)?;
    let mut facts = container_facts(spec, ctx)?;
    let whole_pod = matches!(ctx.scope, Scope::Pod);
    let any_exempt = facts.iter().any(|f| f.exempt().is_some());
    // What the containers' images say (image/): whose identity each gets, their VOLUMEs.
    let pod_sc = json::object(spec, "securityContext", || "spec.securityContext".into())?;
    let pod_user = pod_sc
        .map(|sc| json::integer(sc, "runAsUser", || path("runAsUser")))
        .transpose()?
        .flatten();
    let pod_group = pod_sc.is_some_and(|sc| json::is_set(sc, "runAsGroup"));
    image::decide_identities(&mut facts, ctx, windows, pod_user, pod_group);
    image::cap_volumes(&mut facts, ctx);

    let identity = if whole_pod {
        harden_pod_security_context(spec, overlay, ctx, windows, any_exempt, &facts, changes)?
    } else {
        PodIdentity::written(spec)?
    };
    let identity = PodIdentity {
        per_container: identity.per_container || !whole_pod,
        ..identity
    };
    image::record_users(&facts, ctx, windows, pod_user, changes);

    let mut plan = VolumePlan::new(spec, ctx, whole_pod)?;
    let pod_resources = json::is_set(spec, "resources");
    for facts in facts.iter().filter(|f| f.in_scope) {
        let Some(Json::Object(c)) = spec.get(facts.list).and_then(|l| l.element(facts.index))
        else {
            continue;
        };
        let env = container::Env {
            ctx,
            windows,
            identity,
            pod_resources,
        };
        container::harden_container(c, overlay, facts, &env, &mut plan, changes)?;
    }
    plan.add_volumes(overlay, ctx)?;
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
        .and_then(|s| json::get(s, "kubernetes.io/os"))
        .and_then(Json::as_str);
    if selector == Some("windows") {
        return Ok(true);
    }
    let host_process = |sc: Option<&Json>| {
        sc.and_then(|sc| json::member(sc, "windowsOptions"))
            .and_then(|w| json::member(w, "hostProcess"))
            .and_then(Json::as_bool)
            == Some(true)
    };
    if host_process(json::get(spec, "securityContext")) {
        return Ok(true);
    }
    Ok(CONTAINER_LISTS.iter().any(|list| {
        json::get(spec, list)
            .and_then(Json::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| host_process(json::member(c, "securityContext")))
            })
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
            let Json::Object(c) = c else {
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

/// The pod-level rules. Returns the pod's identity for the container rules.
fn harden_pod_security_context(
    spec: &Object,
    overlay: &mut Overlay<'_>,
    ctx: &Context<'_>,
    windows: bool,
    any_exempt: bool,
    facts: &[ContainerFacts],
    changes: &mut Vec<Change>,
) -> Result<PodIdentity, HardenError> {
    let empty = Object::new();
    let sc =
        json::object(spec, "securityContext", || "spec.securityContext".into())?.unwrap_or(&empty);
    let mut adds = Additions::default();
    // Identity fields go per container when a container keeps root or the containers' images
    // ask for users that cannot all be written on the pod (image/); otherwise on the pod, with
    // the images' common user (the policy's when no image says otherwise).
    let placement = image::placement(facts, ctx.policy);
    let any_exempt = any_exempt || placement == PodPlacement::PerContainer;
    let holder = Holder {
        ctx,
        windows,
        level: Level::Pod {
            per_container: any_exempt,
        },
        target: match placement {
            PodPlacement::Pod(identity) => identity,
            _ => Identity::Default,
        },
        sc,
    };
    let run_as_user = identity::run_as_user(&holder, &mut adds, changes)?;
    let uids = Uids::pod(run_as_user, facts);
    let identity = PodIdentity {
        per_container: any_exempt || placement == PodPlacement::DefaultWithImageOverrides,
        run_as_user,
        has_run_as_group: identity::run_as_group(&holder, uids, &mut adds, changes)?,
        has_run_as_non_root: identity::run_as_non_root(&holder, uids, &mut adds, changes)?,
    };
    fs_group(
        sc,
        ctx,
        windows,
        image::fs_group(placement),
        &mut adds,
        changes,
    )?;
    fs_group_change_policy(sc, ctx, windows, &mut adds, changes)?;
    seccomp_profile(sc, ctx, windows, &mut adds, changes)?;

    if !adds.is_empty() {
        adds.insert_into(overlay, &[Step::Key("securityContext")], || {
            "spec.securityContext".into()
        })?;
    }
    Ok(identity)
}

fn path(field: &str) -> String {
    format!("spec.securityContext.{field}")
}

/// `fsGroup`: the policy's GID owns the pod's volumes, or the images' common GID when they
/// agree on one (`image_group`, image/), so that volumes get the group their files have.
fn fs_group(
    sc: &Object,
    ctx: &Context<'_>,
    windows: bool,
    image_group: Option<(i64, String)>,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = ChangeName::FsGroup;
    let written = json::integer(sc, "fsGroup", || path("fsGroup"))?;
    let mut change = decide(name, None, written.map(|gid| gid != 0), || {
        ctx.linux_only(windows, name)
    });
    let (gid, detail) = match image_group {
        Some((gid, detail)) => (gid, Some(detail)),
        None => (ctx.policy.fs_group, None),
    };
    if change.is_applied() {
        change.detail = detail;
    }
    adds.record(changes, change, "fsGroup", || gid.into());
    Ok(())
}

/// `fsGroupChangePolicy: OnRootMismatch`: no recursive chown of large volumes at every start.
fn fs_group_change_policy(
    sc: &Object,
    ctx: &Context<'_>,
    windows: bool,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = ChangeName::FsGroupChangePolicy;
    let written = json::string(sc, "fsGroupChangePolicy", || path("fsGroupChangePolicy"))?;
    let change = decide(name, None, written.map(|v| v == "OnRootMismatch"), || {
        ctx.linux_only(windows, name)
    });
    adds.record(changes, change, "fsGroupChangePolicy", || {
        "OnRootMismatch".into()
    });
    Ok(())
}

/// `seccompProfile: {type: RuntimeDefault}` unless the author chose one (the field, or the
/// legacy `seccomp.security.alpha.kubernetes.io/` annotations).
fn seccomp_profile(
    sc: &Object,
    ctx: &Context<'_>,
    windows: bool,
    adds: &mut Additions,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = ChangeName::SeccompProfile;
    let written = match json::object(sc, "seccompProfile", || path("seccompProfile"))? {
        Some(profile) => {
            let kind = json::string(profile, "type", || path("seccompProfile.type"))?;
            Some(matches!(kind, Some("RuntimeDefault" | "Localhost")))
        }
        None if ctx.legacy_seccomp_annotation => Some(false),
        None => None,
    };
    let change = decide(name, None, written, || ctx.linux_only(windows, name));
    adds.record(changes, change, "seccompProfile", || {
        Json::object([("type", "RuntimeDefault".into())])
    });
    Ok(())
}
