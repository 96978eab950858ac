//! The hardening rules: pure functions from an object (as raw JSON) to the list of decisions
//! taken and the RFC 6902 patch that carries them out.
//!
//! No I/O, no async, no clocks. Three entry points, one code path: the admission handler and
//! `scan` call [`harden_workload`] (the kind comes from the request or the list), the offline
//! `harden` command and the tests [`harden_object`] (the kind is read from the object's
//! `apiVersion` and `kind`), and the `pods/ephemeralcontainers` subresource
//! [`harden_new_ephemeral_containers`].
//!
//! ```text
//!  object (crate::dom::Json: borrowed from the request, or from a serde_json::Value)
//!     │ workload.rs: kind -> where the pod spec lives
//!     ▼
//!  pod spec (read, never copied) ──pod.rs / container.rs / volumes.rs──► Vec<Change>
//!     │                              │ additions only (never remove or replace)
//!     │                              ▼
//!     │                            overlay.rs: the additions, read back as the hardened spec
//!     │                              │ by findings/ and crate::psa, emitted as `add` operations
//!     ▼                              ▼
//!  Patch of `add`s holding the added Json + kube-harden.io/hardened annotation (patch.rs)
//! ```
//!
//! Each change name has one function (pod.rs for the pod's `securityContext`, identity.rs for
//! `runAsUser`/`runAsGroup`/`runAsNonRoot` on the pod or a container alike, container.rs for the
//! rest), and each makes its decision through `change::decide`: a written value is kept, a
//! missing one is added unless the first reason not to applies (opted out, Windows, root...).
//! findings/ reports what remains that Pod Security (`crate::psa`) does not already report.
//! image/ reads what each container's image says about itself (an [`ImageLookup`], filled by
//! the registry client; empty: image-blind, today's answer): whose identity identity.rs writes
//! (the image's numeric `USER` or the policy's), and the writable directories (`VOLUME`s,
//! `TMPDIR`) container.rs mounts; `imageUser`, `imageVolumes`, `imageTmpdir` are its decisions.
//!
//! The rules implement the `restricted` Pod Security Standard where a field is missing:
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted>.

mod annotations;
pub mod budget;
mod change;
mod container;
pub mod findings;
mod hints;
mod identity;
pub mod image;
pub(crate) mod json;
mod overlay;
mod patch;
mod pod;
mod policy;
pub mod quantity;
mod resources;
mod volumes;
mod workload;

use std::collections::HashSet;

use serde_json::Value;

use crate::dom::{Json, Object};

use annotations::{annotation_of, merge_hardened_names, parse_skip, template_annotations};
pub use change::{Change, ChangeName, Outcome, SkipReason, applied_names};
pub use findings::{Finding, FindingName};
pub use image::{ImageFacts, ImageLookup};
pub use patch::{Add, Patch};
pub use policy::{Policy, PolicyError, ResourceDefaults};
pub use workload::{Unserved, WorkloadKind};

/// Annotation that opts an object out: `"true"` for everything, or a comma-separated list of
/// change names.
pub const SKIP_ANNOTATION: &str = "kube-harden.io/skip";
/// Annotation listing extra absolute paths that get a writable emptyDir.
pub const WRITABLE_PATHS_ANNOTATION: &str = "kube-harden.io/writable-paths";
/// Annotation kube-harden sets on what it changed: the applied change names.
pub const HARDENED_ANNOTATION: &str = "kube-harden.io/hardened";

/// The result of hardening one object.
#[derive(Debug, Clone, Default)]
pub struct Hardened {
    /// Every decision, in rule order.
    pub changes: Vec<Change>,
    /// The patch to apply to the object; empty when nothing applies.
    pub patch: Patch,
    /// Problems with the object's kube-harden annotations (unknown change names, bad paths), then
    /// the hints on how to fix what an applied change may break (`hints.rs`).
    pub warnings: Vec<String>,
    /// Risks left standing in the hardened pod spec that Pod Security does not report (what it
    /// reports is in `restricted`, once).
    pub findings: Vec<Finding>,
    /// The `restricted` Pod Security Standard checks the hardened pod spec still fails; `None`
    /// when not evaluated (objects without a pod spec, the ephemeral-containers subresource).
    pub restricted: Option<Vec<crate::psa::Violation>>,
}

impl Hardened {
    /// The distinct change names that were applied, in canonical order.
    pub fn applied_names(&self) -> Vec<ChangeName> {
        change::applied_names(&self.changes)
    }

    /// Whether the patch changes anything.
    pub fn is_changed(&self) -> bool {
        !self.patch.is_empty()
    }
}

/// An object the rules cannot read. The admission handler admits it unchanged (fail-open);
/// the offline command reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HardenError {
    /// A field has the wrong JSON type (e.g. `containers` is not a list).
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Dotted path of the field.
        path: String,
        /// What type the field must have.
        expected: &'static str,
    },
    /// A workload has no pod template.
    #[error("{kind} has no pod spec at {path}")]
    MissingPodSpec {
        /// The workload kind.
        kind: WorkloadKind,
        /// Where the pod spec should be.
        path: String,
    },
    /// The object is past a cap of the per-object budget ([`budget`]): too many containers or
    /// writable-path mounts.
    #[error("{what}, over the limit of {limit}")]
    OverBudget {
        /// What was counted, with the count.
        what: String,
        /// The cap.
        limit: usize,
    },
    /// The rules produced something other than pure additions (a bug; never patched).
    #[error("internal error: hardening would change {path}; refusing to patch")]
    NotAdditive {
        /// JSON pointer of the changed value.
        path: String,
    },
}

impl HardenError {
    /// A short, stable label for the `kube_harden_errors_total{reason}` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            HardenError::OverBudget { .. } => "budget",
            _ => "harden",
        }
    }

    /// The rules name fields from the pod spec as `spec.…`; this puts them under the pod spec's
    /// real path (`spec.template.spec.…` for a Deployment).
    fn under(self, spec_path: &[&str]) -> Self {
        match self {
            HardenError::WrongType { path, expected } => HardenError::WrongType {
                path: match path.strip_prefix("spec") {
                    Some(rest) => format!("{}{rest}", spec_path.join(".")),
                    None => path,
                },
                expected,
            },
            other => other,
        }
    }
}

/// Which containers of a pod spec the rules may touch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The whole pod spec (Pod CREATE, workload templates).
    Pod,
    /// Only ephemeral containers whose names are not in the set (the `pods/ephemeralcontainers`
    /// subresource: pod-level fields and existing containers cannot change).
    NewEphemeral(&'a HashSet<&'a str>),
}

/// What the rules know about the object besides its pod spec.
pub(crate) struct Context<'a> {
    pub policy: &'a Policy,
    pub skip: HashSet<ChangeName>,
    pub writable_paths: Vec<String>,
    pub legacy_seccomp_annotation: bool,
    pub scope: Scope<'a>,
    /// What the containers' images say about themselves (empty: image-blind).
    pub images: &'a ImageLookup,
}

impl Context<'_> {
    /// `Some(reason)` when `name` is switched off for this object.
    pub fn switched_off(&self, name: ChangeName) -> Option<SkipReason> {
        if self.skip.contains(&name) {
            Some(SkipReason::OptedOut)
        } else if self.policy.disabled.contains(&name) {
            Some(SkipReason::Disabled)
        } else {
            None
        }
    }

    /// `Some(reason)` when the Linux-only change `name` is not made: a Windows pod, or switched
    /// off.
    pub fn linux_only(&self, windows: bool, name: ChangeName) -> Option<SkipReason> {
        if windows {
            Some(SkipReason::Windows)
        } else {
            self.switched_off(name)
        }
    }
}

/// Hardens a Pod or workload object: returns the decisions and the patch.
///
/// Objects of other kinds (or no kind) are returned with no changes and an empty patch.
pub fn harden_object(object: &Value, policy: &Policy) -> Result<Hardened, HardenError> {
    let Some(kind) = WorkloadKind::of_object(object) else {
        return Ok(Hardened::default());
    };
    harden_workload(object, kind, policy)
}

/// Hardens an object whose kind is already known (e.g. from the AdmissionRequest).
pub fn harden_workload(
    object: &Value,
    kind: WorkloadKind,
    policy: &Policy,
) -> Result<Hardened, HardenError> {
    harden_workload_with_images(object, kind, policy, &ImageLookup::new())
}

/// [`harden_workload`] with what the containers' images say about themselves: the lookup
/// holds the images the registry client could read within its budget; the others are
/// hardened image-blind.
pub fn harden_workload_with_images(
    object: &Value,
    kind: WorkloadKind,
    policy: &Policy,
    images: &ImageLookup,
) -> Result<Hardened, HardenError> {
    harden_json(&workload::rules_view(object), kind, policy, images)
}

/// [`harden_workload_with_images`] on an object already read as [`Json`] (the admission
/// handler's, borrowed from the request body).
pub fn harden_json(
    object: &Json<'_>,
    kind: WorkloadKind,
    policy: &Policy,
    images: &ImageLookup,
) -> Result<Hardened, HardenError> {
    harden_kind(object, kind, policy, Scope::Pod, images)
}

/// Hardens the ephemeral containers of a Pod whose names are not in `existing`: the
/// `pods/ephemeralcontainers` subresource, where nothing else may change.
pub fn harden_new_ephemeral_containers(
    pod: &Json<'_>,
    existing: &HashSet<&str>,
    policy: &Policy,
) -> Result<Hardened, HardenError> {
    harden_kind(
        pod,
        WorkloadKind::Pod,
        policy,
        Scope::NewEphemeral(existing),
        &ImageLookup::new(),
    )
}

fn harden_kind(
    object: &Json<'_>,
    kind: WorkloadKind,
    policy: &Policy,
    scope: Scope<'_>,
    images: &ImageLookup,
) -> Result<Hardened, HardenError> {
    let template_meta = kind.template_metadata(object);
    // The pod template's value wins: it is the one the workload's pods carry.
    let annotation = |key: &str| -> Option<&str> {
        annotation_of(template_meta, key).or_else(|| annotation_of(object.get("metadata"), key))
    };

    let mut warnings = budget::Warnings::default();
    let to_template = template_annotations(object, kind, &mut warnings);
    let skip = parse_skip(annotation(SKIP_ANNOTATION), &mut warnings);
    let writable_paths =
        volumes::parse_writable_paths(annotation(WRITABLE_PATHS_ANNOTATION), &mut warnings)?;
    let legacy_seccomp_annotation = [object.get("metadata"), template_meta]
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("annotations").and_then(Json::as_object))
        .flat_map(Object::keys)
        .any(|k| k.starts_with("seccomp.security.alpha.kubernetes.io/"));
    let ctx = Context {
        policy,
        skip,
        writable_paths,
        legacy_seccomp_annotation,
        scope,
        images,
    };

    let spec_path = kind.pod_spec_path();
    let original_spec =
        workload::lookup(object, spec_path).ok_or_else(|| HardenError::MissingPodSpec {
            kind,
            path: spec_path.join("."),
        })?;
    let Json::Object(original_map) = original_spec else {
        return Err(HardenError::WrongType {
            path: spec_path.join("."),
            expected: "an object",
        });
    };
    let containers = pod::CONTAINER_LISTS
        .iter()
        .filter_map(|list| original_map.get(list).and_then(Json::as_array))
        .map(Vec::len)
        .sum();
    budget::check_pod(containers, ctx.writable_paths.len())?;
    let mut overlay = overlay::Overlay::new(original_spec, patch::pointer(spec_path));
    let mut changes = Vec::new();
    pod::harden_pod_spec(original_map, &mut overlay, &ctx, &mut changes)
        .map_err(|e| e.under(spec_path))?;

    let (findings, restricted) = match scope {
        Scope::Pod => {
            let meta = template_meta.or_else(|| object.get("metadata"));
            let (findings, restricted) = check_hardened(original_spec, &overlay, meta, kind);
            (findings, Some(restricted))
        }
        Scope::NewEphemeral(_) => (Vec::new(), None),
    };
    let mut ops = overlay.into_ops();
    let mut warnings = warnings.into_vec();
    warnings.extend(hints::hints(
        kind,
        &changes,
        policy,
        !ctx.writable_paths.is_empty(),
    ));
    warnings.extend(image::warnings(&changes, policy));
    let mut hardened = Hardened {
        changes,
        patch: Patch::default(),
        warnings,
        findings,
        restricted,
    };
    let names = hardened.applied_names();
    let hardened_value = |meta: Option<&Json<'_>>| {
        merge_hardened_names(annotation_of(meta, HARDENED_ANNOTATION), &names)
    };
    if !ops.is_empty() {
        ops.extend(patch::annotation_ops(
            &["metadata"],
            object.get("metadata"),
            vec![(HARDENED_ANNOTATION, hardened_value(object.get("metadata")))],
        ));
    }
    if let Some(path) = kind.template_metadata_path() {
        let mut entries = to_template;
        if !ops.is_empty() {
            entries.push((HARDENED_ANNOTATION, hardened_value(template_meta)));
        }
        ops.extend(patch::annotation_ops(path, template_meta, entries));
    }
    hardened.patch = Patch(ops);
    Ok(hardened)
}

/// The findings and the `restricted` Pod Security check of the hardened pod spec: `spec` as
/// written read through the rules' additions (a copy of each `securityContext` they add to, no
/// copy of the spec).
fn check_hardened(
    spec: &Json<'_>,
    overlay: &overlay::Overlay<'_>,
    meta: Option<&Json<'_>>,
    kind: WorkloadKind,
) -> (Vec<Finding>, Vec<crate::psa::Violation>) {
    use overlay::Step::{Index, Key};
    let mut view = crate::psa::PodSpec::of(spec);
    let mut at = Vec::with_capacity(view.containers.len());
    for c in &view.containers {
        let index = match at.last() {
            Some(&(list, index)) if list == c.list => index + 1,
            _ => 0,
        };
        at.push((c.list, index));
    }
    let sc = Key("securityContext");
    let pod_sc = overlay.get(&[sc]);
    let scs: Vec<_> = at
        .iter()
        .map(|&(list, i)| overlay.get(&[Key(list), Index(i), sc]))
        .collect();
    view.security_context = pod_sc.as_deref();
    view.added_volumes = overlay.appended(&[Key("volumes")]);
    for ((c, &(list, i)), sc) in view.containers.iter_mut().zip(&at).zip(&scs) {
        c.security_context = sc.as_deref();
        c.added_env = overlay.appended(&[Key(list), Index(i), Key("env")]);
        c.added_volume_mounts = overlay.appended(&[Key(list), Index(i), Key("volumeMounts")]);
    }
    (
        findings::find(&view, kind),
        crate::psa::check_pod(meta, &view),
    )
}

#[cfg(test)]
mod tests;
