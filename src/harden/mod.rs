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
//!  object (serde_json::Value)
//!     │ workload.rs: kind -> where the pod spec lives
//!     ▼
//!  pod spec (cloned) ──pod.rs / container.rs / volumes.rs──► hardened pod spec + Vec<Change>
//!     │
//!     ▼ patch.rs: additions only (never remove or replace)
//!  json_patch::Patch + kube-harden.io/hardened annotation
//! ```
//!
//! The rules implement the `restricted` Pod Security Standard where a field is missing:
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted>.

pub mod budget;
mod container;
pub mod findings;
mod hints;
pub mod image;
mod json;
mod patch;
mod pod;
mod policy;
pub mod quantity;
mod volumes;
mod workload;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use findings::{Finding, FindingName};
pub use image::{ImageFacts, ImageLookup};
pub use policy::{Policy, PolicyError, ResourceDefaults};
pub use workload::{Unserved, WorkloadKind};

/// Annotation that opts an object out: `"true"` for everything, or a comma-separated list of
/// change names.
pub const SKIP_ANNOTATION: &str = "kube-harden.io/skip";
/// Annotation listing extra absolute paths that get a writable emptyDir.
pub const WRITABLE_PATHS_ANNOTATION: &str = "kube-harden.io/writable-paths";
/// Annotation kube-harden sets on what it changed: the applied change names.
pub const HARDENED_ANNOTATION: &str = "kube-harden.io/hardened";

macro_rules! change_names {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A stable name for one kind of change. Used in the skip annotation, the hardened
        /// annotation, metrics labels and warnings; documented in docs/rules.md.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ChangeName {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl ChangeName {
            /// Every change name, in the order the rules apply them.
            pub const ALL: &'static [ChangeName] = &[$(ChangeName::$variant,)*];

            /// The stable name, as written in annotations and metrics.
            pub fn as_str(self) -> &'static str {
                match self { $(ChangeName::$variant => $name,)* }
            }
        }

        impl FromStr for ChangeName {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(ChangeName::$variant),)*
                    other => Err(format!("unknown change name {other:?}")),
                }
            }
        }
    };
}

change_names! {
    /// Pod (or container) `securityContext.runAsNonRoot: true`.
    RunAsNonRoot => "runAsNonRoot",
    /// Pod (or container) `securityContext.runAsUser`.
    RunAsUser => "runAsUser",
    /// Pod (or container) `securityContext.runAsGroup`.
    RunAsGroup => "runAsGroup",
    /// Pod `securityContext.fsGroup`.
    FsGroup => "fsGroup",
    /// Pod `securityContext.fsGroupChangePolicy: OnRootMismatch`.
    FsGroupChangePolicy => "fsGroupChangePolicy",
    /// Pod `securityContext.seccompProfile: {type: RuntimeDefault}`.
    SeccompProfile => "seccompProfile",
    /// Container `securityContext.allowPrivilegeEscalation: false`.
    AllowPrivilegeEscalation => "allowPrivilegeEscalation",
    /// Container `securityContext.capabilities.drop` gains `ALL`.
    Capabilities => "capabilities",
    /// Container `securityContext.readOnlyRootFilesystem: true`.
    ReadOnlyRootFilesystem => "readOnlyRootFilesystem",
    /// An emptyDir mounted at /tmp.
    TmpVolume => "tmpVolume",
    /// `TMPDIR=/tmp` in the container's environment.
    TmpdirEnv => "tmpdirEnv",
    /// An emptyDir at each path of the `kube-harden.io/writable-paths` annotation.
    WritablePaths => "writablePaths",
    /// Default CPU and memory requests and limits.
    Resources => "resources",
}

impl fmt::Display for ChangeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rule did not change a field it would otherwise have set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The author wrote a different value (even an insecure one); it is kept.
    ExplicitValue,
    /// The object's `kube-harden.io/skip` annotation names this change.
    OptedOut,
    /// The policy's `disabled` list names this change.
    Disabled,
    /// A Windows pod: the field is Linux-only (or would stop the container from starting).
    Windows,
    /// A privileged container (or one adding SYS_ADMIN): it keeps its root powers.
    Privileged,
    /// The container runs (or may run) as UID 0, so `runAsNonRoot` would stop it from starting.
    RunsAsRoot,
    /// The change cannot be expressed here (e.g. resources on an ephemeral container, or a
    /// `runAsGroup` where the container would have no `runAsUser`: the runtime refuses that).
    NotApplicable,
}

impl SkipReason {
    /// Short snake_case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::ExplicitValue => "explicit",
            SkipReason::OptedOut => "optout",
            SkipReason::Disabled => "disabled",
            SkipReason::Windows => "windows",
            SkipReason::Privileged => "privileged",
            SkipReason::RunsAsRoot => "runs_as_root",
            SkipReason::NotApplicable => "not_applicable",
        }
    }
}

/// What a rule decided for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The field was missing and has been added.
    Applied,
    /// The field already has the hardened value (or an equally safe one); nothing to do.
    AlreadySet,
    /// The field was missing or different, and is left as it is.
    Skipped(SkipReason),
}

impl Outcome {
    /// Metric label: `applied`, `already_set`, `skipped_<reason>`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadySet => "already_set",
            Outcome::Skipped(reason) => match reason {
                SkipReason::ExplicitValue => "skipped_explicit",
                SkipReason::OptedOut => "skipped_optout",
                SkipReason::Disabled => "skipped_disabled",
                SkipReason::Windows => "skipped_windows",
                SkipReason::Privileged => "skipped_privileged",
                SkipReason::RunsAsRoot => "skipped_runs_as_root",
                SkipReason::NotApplicable => "skipped_not_applicable",
            },
        }
    }
}

/// One decision of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which change.
    pub name: ChangeName,
    /// The container it concerns; `None` for pod-level fields and volumes.
    pub container: Option<String>,
    /// What was decided.
    pub outcome: Outcome,
    /// Extra detail, e.g. the path of a writable-paths mount.
    pub detail: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(detail) = &self.detail {
            write!(f, " {detail}")?;
        }
        if let Some(container) = &self.container {
            write!(f, " (container {container})")?;
        }
        match self.outcome {
            Outcome::Applied => f.write_str(": applied"),
            Outcome::AlreadySet => f.write_str(": already set"),
            Outcome::Skipped(reason) => write!(f, ": skipped ({})", reason.as_str()),
        }
    }
}

/// The result of hardening one object.
#[derive(Debug, Clone, Default)]
pub struct Hardened {
    /// Every decision, in rule order.
    pub changes: Vec<Change>,
    /// The patch to apply to the object; empty when nothing applies.
    pub patch: json_patch::Patch,
    /// Problems with the object's kube-harden annotations (unknown change names, bad paths), then
    /// the hints on how to fix what an applied change may break (`hints.rs`).
    pub warnings: Vec<String>,
    /// Risks left standing in the hardened pod spec.
    pub findings: Vec<Finding>,
    /// The `restricted` Pod Security Standard checks the hardened pod spec still fails; `None`
    /// when not evaluated (objects without a pod spec, the ephemeral-containers subresource).
    pub restricted: Option<Vec<crate::psa::Violation>>,
}

impl Hardened {
    /// The distinct change names that were applied, in canonical order.
    pub fn applied_names(&self) -> Vec<ChangeName> {
        let mut names: Vec<ChangeName> = self
            .changes
            .iter()
            .filter(|c| c.outcome == Outcome::Applied)
            .map(|c| c.name)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether the patch changes anything.
    pub fn is_changed(&self) -> bool {
        !self.patch.0.is_empty()
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
    #[allow(dead_code)] // read by the image-aware rules (issue 16)
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
}

/// Hardens a Pod or workload object: returns the decisions and the patch.
///
/// Objects of other kinds (or no kind) are returned with no changes and an empty patch.
pub fn harden_object(object: &Value, policy: &Policy) -> Result<Hardened, HardenError> {
    let Some(kind) = WorkloadKind::of_object(object) else {
        return Ok(Hardened::default());
    };
    harden_kind(object, kind, policy, Scope::Pod, &ImageLookup::new())
}

/// Hardens an object whose kind is already known (e.g. from the AdmissionRequest).
pub fn harden_workload(
    object: &Value,
    kind: WorkloadKind,
    policy: &Policy,
) -> Result<Hardened, HardenError> {
    harden_kind(object, kind, policy, Scope::Pod, &ImageLookup::new())
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
    harden_kind(object, kind, policy, Scope::Pod, images)
}

/// Hardens the ephemeral containers of a Pod whose names are not in `existing`: the
/// `pods/ephemeralcontainers` subresource, where nothing else may change.
pub fn harden_new_ephemeral_containers(
    pod: &Value,
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
    object: &Value,
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
        .filter_map(|m| m.get("annotations").and_then(Value::as_object))
        .flat_map(Map::keys)
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
    let Value::Object(original_map) = original_spec else {
        return Err(HardenError::WrongType {
            path: spec_path.join("."),
            expected: "an object",
        });
    };
    let containers = pod::CONTAINER_LISTS
        .iter()
        .filter_map(|list| original_map.get(*list).and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    budget::check_pod(containers, ctx.writable_paths.len())?;
    let mut spec = original_map.clone();
    let mut changes = Vec::new();
    pod::harden_pod_spec(&mut spec, &ctx, &mut changes).map_err(|e| e.under(spec_path))?;

    let spec = Value::Object(spec);
    let (findings, restricted) = match (scope, &spec) {
        (Scope::Pod, Value::Object(map)) => {
            let meta = template_meta.or_else(|| object.get("metadata"));
            let restricted = crate::psa::check_restricted(meta, &spec);
            (findings::find(map, kind), Some(restricted))
        }
        _ => (Vec::new(), None),
    };
    let spec_pointer = patch::pointer(spec_path);
    let mut ops = patch::additions(original_spec, &spec, &spec_pointer)?;
    let mut warnings = warnings.into_vec();
    warnings.extend(hints::hints(
        kind,
        &changes,
        policy,
        !ctx.writable_paths.is_empty(),
    ));
    let mut hardened = Hardened {
        changes,
        patch: json_patch::Patch(Vec::new()),
        warnings,
        findings,
        restricted,
    };
    let names = hardened.applied_names();
    let hardened_value = |meta: Option<&Value>| {
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
    hardened.patch = json_patch::Patch(ops);
    Ok(hardened)
}

/// The workload's own `kube-harden.io/skip` and `kube-harden.io/writable-paths` that its pod
/// template lacks, to add there: the pods a controller creates carry only the template's
/// annotations, and would otherwise be hardened again without them at Pod admission. A value the
/// template sets is never changed; when it differs from the workload's, the template's applies
/// and a warning says so.
fn template_annotations(
    object: &Value,
    kind: WorkloadKind,
    warnings: &mut budget::Warnings,
) -> Vec<(&'static str, String)> {
    if kind.template_metadata_path().is_none() {
        return Vec::new();
    }
    let template_meta = kind.template_metadata(object);
    let mut out = Vec::new();
    for key in [SKIP_ANNOTATION, WRITABLE_PATHS_ANNOTATION] {
        let Some(own) = annotation_of(object.get("metadata"), key) else {
            continue;
        };
        match annotation_of(template_meta, key) {
            None => {
                warnings.push(key, "", || {
                    format!("{key} copied to the pod template, so that its pods carry it")
                });
                out.push((key, own.to_owned()));
            }
            Some(template) if template != own => {
                warnings.push(key, "", || hints::conflict(kind, key, template));
            }
            Some(_) => {}
        }
    }
    out
}

/// An annotation's value in `metadata`, if set.
fn annotation_of<'a>(meta: Option<&'a Value>, key: &str) -> Option<&'a str> {
    meta.and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Parses `kube-harden.io/skip`: `"true"` skips every change; otherwise a comma-separated list.
fn parse_skip(value: Option<&str>, warnings: &mut budget::Warnings) -> HashSet<ChangeName> {
    let Some(value) = value else {
        return HashSet::new();
    };
    if value.trim().eq_ignore_ascii_case("true") {
        return ChangeName::ALL.iter().copied().collect();
    }
    let mut skip = HashSet::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.eq_ignore_ascii_case("false") {
            continue;
        }
        // A lookup that allocates nothing: the annotation may repeat an unknown name a million
        // times.
        match ChangeName::ALL.iter().find(|n| n.as_str() == item) {
            Some(name) => {
                skip.insert(*name);
            }
            None => warnings.push(SKIP_ANNOTATION, item, || {
                format!(
                    "{SKIP_ANNOTATION}: unknown change name {}, ignored",
                    budget::quoted(item)
                )
            }),
        }
    }
    skip
}

/// The new value of the hardened annotation: the names already there plus the new ones, in
/// canonical order, so that repeated admissions produce the same value.
fn merge_hardened_names(old: Option<&str>, applied: &[ChangeName]) -> String {
    let mut names: Vec<ChangeName> = old
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .chain(applied.iter().copied())
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
