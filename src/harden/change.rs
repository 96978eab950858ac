//! The rules' decisions: the stable change names, what a rule decided for one field
//! ([`Outcome`], [`SkipReason`]) and [`Change`], and [`decide`], the one decision every rule makes
//! for its field (a written value is kept; a missing one is added unless something stops it).

use std::fmt;
use std::str::FromStr;

use crate::dom::Json;
use serde::{Deserialize, Serialize};

use super::HardenError;
use super::overlay::{Overlay, Step};

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
    /// The container runs as its image's numeric non-root `USER` instead of the policy's UID
    /// (`image/`); recorded only for images the lookup has.
    ImageUser => "imageUser",
    /// An emptyDir at each `VOLUME` of the container's image, under a read-only root.
    ImageVolumes => "imageVolumes",
    /// An emptyDir at the `TMPDIR` of the container's image when it is not `/tmp`, under a
    /// read-only root.
    ImageTmpdir => "imageTmpdir",
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

/// The distinct names of the applied changes among `changes`, in [`ChangeName`]'s order.
pub fn applied_names(changes: &[Change]) -> Vec<ChangeName> {
    let mut names: Vec<ChangeName> = changes
        .iter()
        .filter(|c| c.outcome == Outcome::Applied)
        .map(|c| c.name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
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

impl Change {
    /// A decision on `name` for `container` (`None`: the pod), without detail.
    pub fn new(name: ChangeName, container: Option<&str>, outcome: Outcome) -> Self {
        Self {
            name,
            container: container.map(str::to_owned),
            outcome,
            detail: None,
        }
    }

    /// Whether the change was made.
    pub fn is_applied(&self) -> bool {
        self.outcome == Outcome::Applied
    }
}

/// The decision every rule makes for its field. A value the author wrote is kept: `written` is
/// `Some(true)` when it is as safe as the hardened one ([`Outcome::AlreadySet`]), `Some(false)`
/// when it is not ([`SkipReason::ExplicitValue`]). A missing field (`None`) is added unless
/// `blocked` names a reason not to (the first that applies: opted out, Windows, root...).
pub(crate) fn decide(
    name: ChangeName,
    container: Option<&str>,
    written: Option<bool>,
    blocked: impl FnOnce() -> Option<SkipReason>,
) -> Change {
    let outcome = match written {
        Some(true) => Outcome::AlreadySet,
        Some(false) => Outcome::Skipped(SkipReason::ExplicitValue),
        None => blocked().map_or(Outcome::Applied, Outcome::Skipped),
    };
    Change::new(name, container, outcome)
}

/// The fields a rule pass adds to one object (a `securityContext`): collected while its fields
/// are read, added to the [`Overlay`] once at the end.
#[derive(Debug, Default)]
pub(crate) struct Additions(Vec<(&'static str, Json<'static>)>);

impl Additions {
    /// Records `change` in `changes`; when it is applied, `key: value()` is to be added.
    /// Returns whether it is applied.
    pub fn record(
        &mut self,
        changes: &mut Vec<Change>,
        change: Change,
        key: &'static str,
        value: impl FnOnce() -> Json<'static>,
    ) -> bool {
        let applied = change.is_applied();
        if applied {
            self.0.push((key, value()));
        }
        changes.push(change);
        applied
    }

    /// Whether there is nothing to add.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the fields to the object at `path` (made when missing), in the order they were
    /// decided; `field` names it for errors.
    pub fn insert_into(
        self,
        overlay: &mut Overlay<'_>,
        path: &[Step<'_>],
        field: impl Fn() -> String,
    ) -> Result<(), HardenError> {
        overlay.insert(path, self.0, field)
    }
}
