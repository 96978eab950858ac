//! A pure Rust check of a pod against the `restricted` Pod Security Standard, as Pod Security
//! Admission (PSA) implements it at policy version v1.36. `restricted` includes every `baseline`
//! check. <https://kubernetes.io/docs/concepts/security/pod-security-standards/>
//!
//! It works on raw JSON (the pod's `metadata` and `spec` as [`serde_json::Value`]), never on
//! typed k8s-openapi structs, so it sees exactly what the author wrote. A missing key and an
//! explicit `null` both mean "not set", as in Kubernetes.
//!
//! It runs on every review: [`crate::harden`] checks each hardened pod spec (a [`PodSpec`]: the
//! spec as written, read through the rules' additions, never copied), and what still fails
//! becomes an admission warning, a metric and `harden --findings` output. Its verdicts are
//! held to PSA's: the tests run it over PSA's own fixtures.
//!
//! ```text
//!  metadata (annotations) + spec
//!        │ every container: initContainers + containers + ephemeralContainers
//!        ▼
//!  one function per PSA check ID ──► Vec<Violation>, in Check::ALL order
//! ```
//!
//! Parts: `pod` (the pod under check and the JSON and message helpers), `checks` (which check
//! runs where, with the exemptions), `checks/baseline.rs` and `checks/restricted.rs` (one
//! function per check).
//!
//! Where it differs from PSA's `restricted` evaluation, on purpose:
//! - PSA drops a `baseline` check when a `restricted` check overrides it (`capabilities_baseline`
//!   by `capabilities_restricted`, `hostPathVolumes` by `restrictedVolumes`,
//!   `seccompProfile_baseline` by `seccompProfile_restricted`, baseline `procMount` by
//!   `procMount_restricted`). Here both are reported, so one mistake can give two violations.
//!   The verdict (any violation or none) is still PSA's: every overridden check fails only when
//!   its overriding check fails too, and the overridden checks are skipped wherever their
//!   overriding check is exempt (Windows pods).
//! - There is one [`Check::ProcMount`], with the `restricted` meaning (only `Default` or unset;
//!   `hostUsers: false` does not relax it).
//! - PSA sees pods after API-server defaulting, so a volume with no source is an `emptyDir`
//!   there; here such a volume is allowed for the same reason. A volume that names several
//!   sources (the API server rejects it) fails `restrictedVolumes` if any of them is not allowed.

mod checks;
mod pod;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

use crate::dom::Json;

pub(crate) use pod::CONTAINER_LISTS;
use pod::Pod;
pub use pod::{Container, PodSpec};

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The PSA check that failed.
    pub check: Check,
    /// One line naming the offending pod field or containers, in the words of PSA's own
    /// messages: `reason (detail)`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

/// A Pod Security Admission check ID of the `restricted` profile (the first twelve are the
/// `baseline` checks, which `restricted` includes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// `hostNetwork`, `hostPID` and `hostIPC` must be unset or false.
    HostNamespaces,
    /// No container may set `securityContext.privileged: true`.
    Privileged,
    /// `capabilities.add` may only name the baseline allow-list (`AUDIT_WRITE`, `CHOWN`, ...).
    CapabilitiesBaseline,
    /// No `hostPath` volumes.
    HostPathVolumes,
    /// No container port may set a non-zero `hostPort`.
    HostPorts,
    /// AppArmor: the `appArmorProfile.type` fields must be `RuntimeDefault` or `Localhost`, and
    /// the beta annotations `runtime/default`, `localhost/*` or empty.
    AppArmorProfile,
    /// `seLinuxOptions.type` from the allowed set; `user` and `role` unset.
    SeLinuxOptions,
    /// `securityContext.procMount` must be unset or `Default`.
    ProcMount,
    /// `seccompProfile.type`, where set, must be `RuntimeDefault` or `Localhost`.
    SeccompProfileBaseline,
    /// Only the safe sysctls in `spec.securityContext.sysctls`.
    Sysctls,
    /// No `windowsOptions.hostProcess: true`.
    WindowsHostProcess,
    /// Probes and lifecycle handlers must not set `httpGet.host` or `tcpSocket.host`.
    HostProbesAndHostLifecycle,
    /// Only `configMap`, `csi`, `downwardAPI`, `emptyDir`, `ephemeral`, `image`,
    /// `persistentVolumeClaim`, `projected` and `secret` volumes.
    RestrictedVolumes,
    /// Every container must set `allowPrivilegeEscalation: false` (Windows pods are exempt).
    AllowPrivilegeEscalation,
    /// `runAsNonRoot: true` on the pod or on every container, and never false (pods with
    /// `hostUsers: false` are exempt).
    RunAsNonRoot,
    /// `runAsUser` must not be 0 (pods with `hostUsers: false` are exempt).
    RunAsUser,
    /// Seccomp `RuntimeDefault` or `Localhost` on the pod or on every container, and nothing
    /// else anywhere (Windows pods are exempt).
    SeccompProfileRestricted,
    /// Every container drops `ALL` and adds at most `NET_BIND_SERVICE` (Windows pods are
    /// exempt).
    CapabilitiesRestricted,
}

impl Check {
    /// Every check, in the order [`check_restricted`] reports them.
    pub const ALL: &[Check] = &[
        Check::HostNamespaces,
        Check::Privileged,
        Check::CapabilitiesBaseline,
        Check::HostPathVolumes,
        Check::HostPorts,
        Check::AppArmorProfile,
        Check::SeLinuxOptions,
        Check::ProcMount,
        Check::SeccompProfileBaseline,
        Check::Sysctls,
        Check::WindowsHostProcess,
        Check::HostProbesAndHostLifecycle,
        Check::RestrictedVolumes,
        Check::AllowPrivilegeEscalation,
        Check::RunAsNonRoot,
        Check::RunAsUser,
        Check::SeccompProfileRestricted,
        Check::CapabilitiesRestricted,
    ];

    /// PSA's check ID, e.g. `"capabilities_restricted"` (PSA's `procMount_restricted` is
    /// `"procMount"` here).
    pub fn as_str(self) -> &'static str {
        match self {
            Check::HostNamespaces => "hostNamespaces",
            Check::Privileged => "privileged",
            Check::CapabilitiesBaseline => "capabilities_baseline",
            Check::HostPathVolumes => "hostPathVolumes",
            Check::HostPorts => "hostPorts",
            Check::AppArmorProfile => "appArmorProfile",
            Check::SeLinuxOptions => "seLinuxOptions",
            Check::ProcMount => "procMount",
            Check::SeccompProfileBaseline => "seccompProfile_baseline",
            Check::Sysctls => "sysctls",
            Check::WindowsHostProcess => "windowsHostProcess",
            Check::HostProbesAndHostLifecycle => "hostProbesAndHostLifecycle",
            Check::RestrictedVolumes => "restrictedVolumes",
            Check::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            Check::RunAsNonRoot => "runAsNonRoot",
            Check::RunAsUser => "runAsUser",
            Check::SeccompProfileRestricted => "seccompProfile_restricted",
            Check::CapabilitiesRestricted => "capabilities_restricted",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a pod spec (the value of a Pod's `spec`) plus the pod's `metadata` (for AppArmor
/// annotations) against `restricted`. Returns every failed check, in [`Check::ALL`] order; an
/// empty list means the pod passes.
pub fn check_restricted(metadata: Option<&Value>, spec: &Value) -> Vec<Violation> {
    let metadata = metadata.map(Json::from);
    let spec = Json::from(spec);
    check_pod(metadata.as_ref(), &PodSpec::of(&spec))
}

/// [`check_restricted`] on a [`PodSpec`]: the spec with the `securityContext`s and volumes to
/// read in place of its own (kube-harden's hardened ones, read through its additions).
pub fn check_pod(metadata: Option<&Json<'_>>, spec: &PodSpec<'_>) -> Vec<Violation> {
    let pod = Pod::new(metadata, spec);
    Check::ALL
        .iter()
        .filter_map(|&check| {
            pod.evaluate(check)
                .map(|message| Violation { check, message })
        })
        .collect()
}
