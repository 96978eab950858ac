//! A pure Rust check of a pod against the `restricted` Pod Security Standard, as Pod Security
//! Admission (PSA) implements it at policy version v1.36. `restricted` includes every `baseline`
//! check. <https://kubernetes.io/docs/concepts/security/pod-security-standards/>
//!
//! It works on raw JSON (the pod's `metadata` and `spec` as [`serde_json::Value`]), never on
//! typed k8s-openapi structs, so it sees exactly what the author wrote. A missing key and an
//! explicit `null` both mean "not set", as in Kubernetes. It is an outside judge for the rules in
//! [`crate::harden`]: the tests run it over PSA's own fixtures.
//!
//! ```text
//!  metadata (annotations) + spec
//!        │ every container: initContainers + containers + ephemeralContainers
//!        ▼
//!  one function per PSA check ID ──► Vec<Violation>, in Check::ALL order
//! ```
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
// Runs on objects from the network (the admission handler): nothing in it may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

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
    let pod = Pod::new(metadata, spec);
    Check::ALL
        .iter()
        .filter_map(|&check| {
            pod.evaluate(check)
                .map(|message| Violation { check, message })
        })
        .collect()
}

/// Capabilities that `baseline` lets a container add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls that are safe as of policy v1.32 (unchanged through v1.36).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// SELinux types allowed as of policy v1.31 (`""` is unset).
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Volume sources `restricted` allows.
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// The pod under check, with what several checks need worked out once.
struct Pod<'a> {
    annotations: Option<&'a Map<String, Value>>,
    spec: &'a Value,
    /// initContainers, containers, ephemeralContainers: PSA's visiting order.
    containers: Vec<&'a Value>,
    /// `spec.os.name: windows`: exempt from the checks of Linux-only fields.
    windows: bool,
    /// `spec.hostUsers: false`: exempt from `runAsNonRoot` and `runAsUser` (policy v1.35+).
    user_namespace: bool,
}

impl<'a> Pod<'a> {
    fn new(metadata: Option<&'a Value>, spec: &'a Value) -> Self {
        let containers = ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .filter_map(|key| spec.get(key).and_then(Value::as_array))
            .flatten()
            .collect();
        Pod {
            annotations: metadata
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object),
            spec,
            containers,
            windows: at(spec, &["os", "name"]).and_then(Value::as_str) == Some("windows"),
            user_namespace: at(spec, &["hostUsers"]).and_then(Value::as_bool) == Some(false),
        }
    }

    fn evaluate(&self, check: Check) -> Option<String> {
        match check {
            Check::HostNamespaces => self.host_namespaces(),
            Check::Privileged => self.privileged(),
            // Overridden in PSA by capabilities_restricted, which exempts Windows pods.
            Check::CapabilitiesBaseline if self.windows => None,
            Check::CapabilitiesBaseline => self.capabilities_baseline(),
            Check::HostPathVolumes => self.host_path_volumes(),
            Check::HostPorts => self.host_ports(),
            Check::AppArmorProfile => self.app_armor_profile(),
            Check::SeLinuxOptions => self.se_linux_options(),
            Check::ProcMount => self.proc_mount(),
            // Overridden in PSA by seccompProfile_restricted, which exempts Windows pods.
            Check::SeccompProfileBaseline if self.windows => None,
            Check::SeccompProfileBaseline => self.seccomp_profile_baseline(),
            Check::Sysctls => self.sysctls(),
            Check::WindowsHostProcess => self.windows_host_process(),
            Check::HostProbesAndHostLifecycle => self.host_probes_and_host_lifecycle(),
            Check::RestrictedVolumes => self.restricted_volumes(),
            Check::AllowPrivilegeEscalation if self.windows => None,
            Check::AllowPrivilegeEscalation => self.allow_privilege_escalation(),
            Check::RunAsNonRoot if self.user_namespace => None,
            Check::RunAsNonRoot => self.run_as_non_root(),
            Check::RunAsUser if self.user_namespace => None,
            Check::RunAsUser => self.run_as_user(),
            Check::SeccompProfileRestricted if self.windows => None,
            Check::SeccompProfileRestricted => self.seccomp_profile_restricted(),
            Check::CapabilitiesRestricted if self.windows => None,
            Check::CapabilitiesRestricted => self.capabilities_restricted(),
        }
    }

    /// `spec.securityContext[path]`, set and not null.
    fn pod_sc(&self, path: &[&str]) -> Option<&'a Value> {
        at(self.spec, &["securityContext"]).and_then(|sc| at(sc, path))
    }

    /// The names of the containers for which `bad` holds.
    fn bad_containers(&self, mut bad: impl FnMut(&'a Value) -> bool) -> Vec<&'a str> {
        self.containers
            .iter()
            .filter(|c| bad(c))
            .map(|c| name(c))
            .collect()
    }

    fn host_namespaces(&self) -> Option<String> {
        let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
            .iter()
            .filter(|key| is_true(at(self.spec, &[key])))
            .map(|key| format!("{key}=true"))
            .collect();
        (!set.is_empty()).then(|| format!("host namespaces ({})", set.join(", ")))
    }

    fn privileged(&self) -> Option<String> {
        let bad = self.bad_containers(|c| is_true(container_sc(c, &["privileged"])));
        (!bad.is_empty()).then(|| {
            format!(
                "privileged ({} must not set securityContext.privileged=true)",
                containers_phrase(&bad)
            )
        })
    }

    fn capabilities_baseline(&self) -> Option<String> {
        let mut forbidden = BTreeSet::new();
        let bad = self.bad_containers(|c| {
            let mut added_forbidden = false;
            for cap in strings(container_sc(c, &["capabilities", "add"])) {
                if !BASELINE_CAPABILITIES.contains(&cap.as_str()) {
                    added_forbidden = true;
                    forbidden.insert(cap);
                }
            }
            added_forbidden
        });
        (!bad.is_empty()).then(|| {
            format!(
                "non-default capabilities ({} must not include {} in \
                 securityContext.capabilities.add)",
                containers_phrase(&bad),
                join_quote(&forbidden)
            )
        })
    }

    fn volumes(&self) -> impl Iterator<Item = &'a Value> {
        let spec = self.spec;
        spec.get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }

    fn host_path_volumes(&self) -> Option<String> {
        let bad: Vec<&str> = self
            .volumes()
            .filter(|v| at(v, &["hostPath"]).is_some())
            .map(name)
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "hostPath volumes ({} {})",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad)
            )
        })
    }

    fn host_ports(&self) -> Option<String> {
        let mut ports = Vec::new();
        let bad = self.bad_containers(|c| {
            let mut uses = false;
            for port in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(host_port) = at(port, &["hostPort"])
                    && host_port.as_f64() != Some(0.0)
                {
                    uses = true;
                    ports.push(plain(host_port));
                }
            }
            uses
        });
        (!bad.is_empty()).then(|| {
            format!(
                "hostPort ({} {} {} {})",
                containers_phrase(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                ports.join(", ")
            )
        })
    }

    fn app_armor_profile(&self) -> Option<String> {
        let allowed = |profile: &Value| {
            matches!(
                at(profile, &["type"]).and_then(Value::as_str),
                Some("RuntimeDefault" | "Localhost")
            )
        };
        let mut setters = Vec::new();
        let mut values = BTreeSet::new();
        if let Some(profile) = self.pod_sc(&["appArmorProfile"])
            && !allowed(profile)
        {
            setters.push("pod".to_owned());
            values.insert(plain_or_empty(at(profile, &["type"])));
        }
        let bad = self.bad_containers(|c| {
            container_sc(c, &["appArmorProfile"]).is_some_and(|profile| {
                let bad = !allowed(profile);
                if bad {
                    values.insert(plain_or_empty(at(profile, &["type"])));
                }
                bad
            })
        });
        if !bad.is_empty() {
            setters.push(containers_phrase(&bad));
        }
        let mut values: Vec<String> = values.into_iter().collect();
        let mut annotations: Vec<String> = self
            .annotations
            .into_iter()
            .flatten()
            .filter(|(key, value)| {
                key.starts_with(APPARMOR_ANNOTATION_PREFIX)
                    && !value.as_str().is_some_and(|v| {
                        v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
                    })
            })
            .map(|(key, value)| format!("{key}={:?}", plain(value)))
            .collect();
        if !annotations.is_empty() {
            annotations.sort();
            setters.push(pluralize("annotation", "annotations", annotations.len()).to_owned());
            values.append(&mut annotations);
        }
        (!setters.is_empty()).then(|| {
            format!(
                "{} ({} must not set AppArmor profile type to {})",
                pluralize(
                    "forbidden AppArmor profile",
                    "forbidden AppArmor profiles",
                    values.len()
                ),
                setters.join(" and "),
                join_quote(&values)
            )
        })
    }

    fn se_linux_options(&self) -> Option<String> {
        let mut bad_types = BTreeSet::new();
        let mut set_user = false;
        let mut set_role = false;
        let mut valid = |options: &Value| {
            let mut valid = true;
            let ty = at(options, &["type"]);
            if !ty
                .map_or(Some(""), Value::as_str)
                .is_some_and(|t| SELINUX_TYPES.contains(&t))
            {
                valid = false;
                bad_types.insert(plain_or_empty(ty));
            }
            if at(options, &["user"]).is_some_and(|u| u.as_str() != Some("")) {
                valid = false;
                set_user = true;
            }
            if at(options, &["role"]).is_some_and(|r| r.as_str() != Some("")) {
                valid = false;
                set_role = true;
            }
            valid
        };
        let mut setters = Vec::new();
        if self.pod_sc(&["seLinuxOptions"]).is_some_and(|o| !valid(o)) {
            setters.push("pod".to_owned());
        }
        let bad: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| container_sc(c, &["seLinuxOptions"]).is_some_and(|o| !valid(o)))
            .map(|c| name(c))
            .collect();
        if !bad.is_empty() {
            setters.push(containers_phrase(&bad));
        }
        if setters.is_empty() {
            return None;
        }
        let mut problems = Vec::new();
        if !bad_types.is_empty() {
            problems.push(format!(
                "{} {}",
                pluralize("type", "types", bad_types.len()),
                join_quote(&bad_types)
            ));
        }
        if set_user {
            problems.push("user may not be set".to_owned());
        }
        if set_role {
            problems.push("role may not be set".to_owned());
        }
        Some(format!(
            "seLinuxOptions ({} set forbidden securityContext.seLinuxOptions: {})",
            setters.join(" and "),
            problems.join("; ")
        ))
    }

    fn proc_mount(&self) -> Option<String> {
        let mut values = BTreeSet::new();
        let bad = self.bad_containers(|c| match container_sc(c, &["procMount"]) {
            Some(mount) if mount.as_str() != Some("Default") => {
                values.insert(plain(mount));
                true
            }
            _ => false,
        });
        (!bad.is_empty()).then(|| {
            format!(
                "procMount ({} must not set securityContext.procMount to {})",
                containers_phrase(&bad),
                join_quote(&values)
            )
        })
    }

    fn seccomp_profile_baseline(&self) -> Option<String> {
        let mut setters = Vec::new();
        let mut values = BTreeSet::new();
        if let Some(profile) = self.pod_sc(&["seccompProfile"])
            && !valid_seccomp(profile)
        {
            setters.push("pod".to_owned());
            values.insert(plain_or_empty(at(profile, &["type"])));
        }
        let bad = self.bad_containers(|c| {
            container_sc(c, &["seccompProfile"]).is_some_and(|profile| {
                let bad = !valid_seccomp(profile);
                if bad {
                    values.insert(plain_or_empty(at(profile, &["type"])));
                }
                bad
            })
        });
        if !bad.is_empty() {
            setters.push(containers_phrase(&bad));
        }
        (!setters.is_empty()).then(|| {
            format!(
                "seccompProfile ({} must not set securityContext.seccompProfile.type to {})",
                setters.join(" and "),
                join_quote(&values)
            )
        })
    }

    fn sysctls(&self) -> Option<String> {
        let forbidden: Vec<String> = self
            .pod_sc(&["sysctls"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|sysctl| at(sysctl, &["name"]))
            .filter(|name| {
                !name
                    .and_then(Value::as_str)
                    .is_some_and(|n| SAFE_SYSCTLS.contains(&n))
            })
            .map(plain_or_empty)
            .collect();
        (!forbidden.is_empty()).then(|| format!("forbidden sysctls ({})", forbidden.join(", ")))
    }

    fn windows_host_process(&self) -> Option<String> {
        let mut setters = Vec::new();
        if is_true(self.pod_sc(&["windowsOptions", "hostProcess"])) {
            setters.push("pod".to_owned());
        }
        let bad =
            self.bad_containers(|c| is_true(container_sc(c, &["windowsOptions", "hostProcess"])));
        if !bad.is_empty() {
            setters.push(containers_phrase(&bad));
        }
        (!setters.is_empty()).then(|| {
            format!(
                "hostProcess ({} must not set securityContext.windowsOptions.hostProcess=true)",
                setters.join(" and ")
            )
        })
    }

    fn host_probes_and_host_lifecycle(&self) -> Option<String> {
        const HANDLERS: &[&[&str]] = &[
            &["livenessProbe"],
            &["readinessProbe"],
            &["startupProbe"],
            &["lifecycle", "postStart"],
            &["lifecycle", "preStop"],
        ];
        let mut hosts = BTreeSet::new();
        let mut bad = BTreeSet::new();
        for container in &self.containers {
            for handler in HANDLERS.iter().filter_map(|path| at(container, path)) {
                for action in ["httpGet", "tcpSocket"] {
                    if let Some(host) = at(handler, &[action, "host"])
                        && host.as_str() != Some("")
                    {
                        bad.insert(name(container));
                        hosts.insert(plain(host));
                    }
                }
            }
        }
        let bad: Vec<&str> = bad.into_iter().collect();
        (!bad.is_empty()).then(|| {
            format!(
                "probe or lifecycle host ({} {} {} {})",
                containers_phrase(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize(
                    "probe or lifecycle host",
                    "probe or lifecycle hosts",
                    hosts.len()
                ),
                join_quote(&hosts)
            )
        })
    }

    fn restricted_volumes(&self) -> Option<String> {
        let mut types = BTreeSet::new();
        let bad: Vec<&str> = self
            .volumes()
            .filter(|volume| {
                let mut restricted = false;
                for (source, value) in volume.as_object().into_iter().flatten() {
                    if source != "name"
                        && !value.is_null()
                        && !RESTRICTED_VOLUME_SOURCES.contains(&source.as_str())
                    {
                        restricted = true;
                        types.insert(source.as_str());
                    }
                }
                restricted
            })
            .map(name)
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "restricted volume types ({} {} {} {} {})",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize(
                    "restricted volume type",
                    "restricted volume types",
                    types.len()
                ),
                join_quote(&types)
            )
        })
    }

    fn allow_privilege_escalation(&self) -> Option<String> {
        let bad = self.bad_containers(|c| {
            container_sc(c, &["allowPrivilegeEscalation"]).and_then(Value::as_bool) != Some(false)
        });
        (!bad.is_empty()).then(|| {
            format!(
                "allowPrivilegeEscalation != false ({} must set \
                 securityContext.allowPrivilegeEscalation=false)",
                containers_phrase(&bad)
            )
        })
    }

    fn run_as_non_root(&self) -> Option<String> {
        let pod = self.pod_sc(&["runAsNonRoot"]).and_then(Value::as_bool);
        let mut setters = Vec::new();
        if pod == Some(false) {
            setters.push("pod".to_owned());
        }
        let explicit = self.bad_containers(|c| {
            container_sc(c, &["runAsNonRoot"]).and_then(Value::as_bool) == Some(false)
        });
        if !explicit.is_empty() {
            setters.push(containers_phrase(&explicit));
        }
        if !setters.is_empty() {
            return Some(format!(
                "runAsNonRoot != true ({} must not set securityContext.runAsNonRoot=false)",
                setters.join(" and ")
            ));
        }
        if pod == Some(true) {
            return None;
        }
        let implicit = self.bad_containers(|c| {
            container_sc(c, &["runAsNonRoot"])
                .and_then(Value::as_bool)
                .is_none()
        });
        (!implicit.is_empty()).then(|| {
            format!(
                "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                containers_phrase(&implicit)
            )
        })
    }

    fn run_as_user(&self) -> Option<String> {
        let mut setters = Vec::new();
        if is_zero(self.pod_sc(&["runAsUser"])) {
            setters.push("pod".to_owned());
        }
        let bad = self.bad_containers(|c| is_zero(container_sc(c, &["runAsUser"])));
        if !bad.is_empty() {
            setters.push(containers_phrase(&bad));
        }
        (!setters.is_empty()).then(|| {
            format!(
                "runAsUser=0 ({} must not set runAsUser=0)",
                setters.join(" and ")
            )
        })
    }

    fn seccomp_profile_restricted(&self) -> Option<String> {
        let mut setters = Vec::new();
        let mut values = BTreeSet::new();
        let mut pod_set = false;
        if let Some(profile) = self.pod_sc(&["seccompProfile"]) {
            if valid_seccomp(profile) {
                pod_set = true;
            } else {
                setters.push("pod".to_owned());
                values.insert(plain_or_empty(at(profile, &["type"])));
            }
        }
        let explicit = self.bad_containers(|c| {
            container_sc(c, &["seccompProfile"]).is_some_and(|profile| {
                let bad = !valid_seccomp(profile);
                if bad {
                    values.insert(plain_or_empty(at(profile, &["type"])));
                }
                bad
            })
        });
        if !explicit.is_empty() {
            setters.push(containers_phrase(&explicit));
        }
        if !setters.is_empty() {
            return Some(format!(
                "seccompProfile ({} must not set securityContext.seccompProfile.type to {})",
                setters.join(" and "),
                join_quote(&values)
            ));
        }
        if pod_set {
            return None;
        }
        let implicit = self.bad_containers(|c| container_sc(c, &["seccompProfile"]).is_none());
        (!implicit.is_empty()).then(|| {
            format!(
                "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \
                 \"RuntimeDefault\" or \"Localhost\")",
                containers_phrase(&implicit)
            )
        })
    }

    fn capabilities_restricted(&self) -> Option<String> {
        let missing_drop_all = self.bad_containers(|c| {
            !strings(container_sc(c, &["capabilities", "drop"])).any(|cap| cap == "ALL")
        });
        let mut forbidden = BTreeSet::new();
        let adding_forbidden = self.bad_containers(|c| {
            let mut added_forbidden = false;
            for cap in strings(container_sc(c, &["capabilities", "add"])) {
                if cap != "NET_BIND_SERVICE" {
                    added_forbidden = true;
                    forbidden.insert(cap);
                }
            }
            added_forbidden
        });
        let mut details = Vec::new();
        if !missing_drop_all.is_empty() {
            details.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers_phrase(&missing_drop_all)
            ));
        }
        if !adding_forbidden.is_empty() {
            details.push(format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers_phrase(&adding_forbidden),
                join_quote(&forbidden)
            ));
        }
        (!details.is_empty()).then(|| format!("unrestricted capabilities ({})", details.join("; ")))
    }
}

/// The value at `path` under `value`, through objects only; `None` when missing or null.
fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// `container.securityContext[path]`, set and not null.
fn container_sc<'a>(container: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(container, &["securityContext"]).and_then(|sc| at(sc, path))
}

/// A container's or volume's `name` (empty when missing).
fn name(value: &Value) -> &str {
    value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_true(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool) == Some(true)
}

fn is_zero(value: Option<&Value>) -> bool {
    value.and_then(Value::as_f64) == Some(0.0)
}

/// Seccomp `RuntimeDefault` or `Localhost` (a profile without a type is not).
fn valid_seccomp(profile: &Value) -> bool {
    matches!(
        at(profile, &["type"]).and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// The entries of a list of strings; anything else reads as its JSON text.
fn strings(value: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(plain)
}

/// A string as itself, anything else as its JSON text.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Like [`plain`], with "not set" as the empty string (Go's zero value, as PSA reports it).
fn plain_or_empty(value: Option<&Value>) -> String {
    value.map(plain).unwrap_or_default()
}

fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 { singular } else { plural }
}

/// `"a", "b"`, as PSA's `joinQuote`.
fn join_quote<I>(items: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    items
        .into_iter()
        .map(|item| format!("\"{}\"", item.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A pod spec that passes `restricted` (the fixtures' `base.yaml`).
    fn base() -> Value {
        let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
        json!({
            "initContainers": [{"name": "init", "image": "pause", "securityContext": sc}],
            "containers": [{"name": "app", "image": "pause", "securityContext": sc}],
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        })
    }

    /// RFC 7386 merge patch: objects merge, `null` removes, anything else replaces.
    fn merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                for (key, value) in patch {
                    if value.is_null() {
                        target.remove(&key);
                    } else {
                        merge(target.entry(key).or_insert(Value::Null), value);
                    }
                }
            }
            (target, patch) => *target = patch,
        }
    }

    fn base_with(patch: Value) -> Value {
        let mut spec = base();
        merge(&mut spec, patch);
        spec
    }

    fn checks(metadata: Option<&Value>, spec: &Value) -> Vec<Check> {
        check_restricted(metadata, spec)
            .into_iter()
            .map(|v| v.check)
            .collect()
    }

    #[test]
    fn spec_cases() {
        use Check::*;
        let bare_windows = json!({
            "os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": true},
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "app"}],
        });
        let cases: Vec<(&str, Value, Vec<Check>)> = vec![
            ("base passes", base(), vec![]),
            (
                "windows: no allowPrivilegeEscalation, capabilities or seccomp needed",
                bare_windows.clone(),
                vec![],
            ),
            (
                "windows: runAsNonRoot still required",
                {
                    let mut spec = bare_windows.clone();
                    merge(&mut spec, json!({"securityContext": null}));
                    spec
                },
                vec![RunAsNonRoot],
            ),
            (
                "windows: baseline capabilities and seccomp are overridden by exempt checks",
                {
                    let mut spec = bare_windows.clone();
                    merge(
                        &mut spec,
                        json!({"containers": [{"name": "app", "securityContext": {
                            "capabilities": {"add": ["NET_RAW"]},
                            "seccompProfile": {"type": "Unconfined"},
                        }}]}),
                    );
                    spec
                },
                vec![],
            ),
            (
                "windows: hostProcess is still forbidden",
                {
                    let mut spec = bare_windows.clone();
                    merge(
                        &mut spec,
                        json!({"securityContext": {"windowsOptions": {"hostProcess": true}}}),
                    );
                    spec
                },
                vec![WindowsHostProcess],
            ),
            (
                "os linux is not exempt",
                base_with(json!({"os": {"name": "linux"}, "containers": [{"name": "app"}]})),
                vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
            ),
            (
                "runAsNonRoot set on every container instead of the pod",
                base_with(json!({
                    "securityContext": {"runAsNonRoot": null},
                    "initContainers": [{"name": "init", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": true}}],
                    "containers": [{"name": "app", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": true}}],
                })),
                vec![],
            ),
            (
                "runAsNonRoot set on some containers only",
                base_with(json!({
                    "securityContext": {"runAsNonRoot": null},
                    "containers": [{"name": "app", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": true}}],
                })),
                vec![RunAsNonRoot],
            ),
            (
                "runAsNonRoot false on a container beats true on the pod",
                base_with(json!({"containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": false}}]})),
                vec![RunAsNonRoot],
            ),
            (
                "ephemeral containers are counted",
                base_with(json!({"ephemeralContainers": [{"name": "debug"}]})),
                vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
            ),
            (
                "ephemeral container without runAsNonRoot when only containers set it",
                base_with(json!({
                    "securityContext": {"runAsNonRoot": null},
                    "initContainers": [],
                    "containers": [{"name": "app", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": true}}],
                    "ephemeralContainers": [{"name": "debug", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
                })),
                vec![RunAsNonRoot],
            ),
            (
                "hostUsers false relaxes runAsNonRoot and runAsUser, not procMount",
                base_with(json!({
                    "hostUsers": false,
                    "securityContext": {"runAsNonRoot": false, "runAsUser": 0},
                    "containers": [{"name": "app", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "procMount": "Unmasked"}}],
                })),
                vec![ProcMount],
            ),
            (
                "hostUsers true relaxes nothing",
                base_with(json!({"hostUsers": true, "securityContext": {"runAsUser": 0}})),
                vec![RunAsUser],
            ),
            (
                "a volume without a source is an emptyDir; image volumes are allowed",
                base_with(json!({"volumes": [
                    {"name": "implicit"},
                    {"name": "img", "image": {"reference": "registry.k8s.io/pause"}},
                ]})),
                vec![],
            ),
            (
                "hostPath fails both volume checks",
                base_with(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]})),
                vec![HostPathVolumes, RestrictedVolumes],
            ),
            (
                "seccompProfile without a type is not RuntimeDefault",
                base_with(json!({"securityContext": {"seccompProfile": {"type": null}}})),
                vec![SeccompProfileBaseline, SeccompProfileRestricted],
            ),
            (
                "seccomp on every container instead of the pod",
                base_with(json!({
                    "securityContext": {"seccompProfile": null},
                    "initContainers": [{"name": "init", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}}],
                    "containers": [{"name": "app", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"}}}],
                })),
                vec![],
            ),
            (
                "AppArmor Unconfined in the pod field",
                base_with(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
                vec![AppArmorProfile],
            ),
            (
                "empty probe host is allowed; a sidecar's host is not",
                base_with(json!({
                    "containers": [{"name": "app", "livenessProbe": {"httpGet": {"host": "", "port": 80}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}}}],
                    "initContainers": [{"name": "init", "restartPolicy": "Always",
                        "lifecycle": {"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 80}}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}}}],
                })),
                vec![HostProbesAndHostLifecycle],
            ),
            (
                "hostPort 0 is not a host port",
                base_with(
                    json!({"containers": [{"name": "app", "ports": [{"containerPort": 80, "hostPort": 0}],
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
                ),
                vec![],
            ),
            (
                "SELinux container_engine_t is allowed, a user is not",
                base_with(json!({"securityContext": {"seLinuxOptions": {
                    "type": "container_engine_t", "user": "system_u"}}})),
                vec![SeLinuxOptions],
            ),
            (
                "capability names are exact: lower case or CAP_ prefix fail",
                base_with(json!({"containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["all"], "add": ["chown", "CAP_CHOWN", "NET_BIND_SERVICE"]}}}]})),
                vec![CapabilitiesBaseline, CapabilitiesRestricted],
            ),
            (
                "sysctls from v1.32 are safe",
                base_with(json!({"securityContext": {"sysctls": [
                    {"name": "net.ipv4.tcp_wmem", "value": "4096 65536 16777216"},
                    {"name": "net.ipv4.ip_local_reserved_ports", "value": "30000"}]}})),
                vec![],
            ),
            ("a spec that is not an object", json!("nonsense"), vec![]),
            (
                "containers that are not objects fail rather than panic",
                base_with(json!({"containers": [1, null, "x"]})),
                vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(checks(None, &spec), want, "{name}");
        }
    }

    #[test]
    fn app_armor_annotations() {
        let prefix = APPARMOR_ANNOTATION_PREFIX;
        let cases = [
            ("runtime/default", true),
            ("localhost/foo", true),
            ("localhost/", true),
            ("", true),
            ("unconfined", false),
            ("unknown", false),
        ];
        for (value, passes) in cases {
            // Any key with the prefix counts, even one naming no container.
            let metadata = json!({"annotations": {format!("{prefix}nosuchcontainer"): value}});
            let got = checks(Some(&metadata), &base());
            let want = if passes {
                vec![]
            } else {
                vec![Check::AppArmorProfile]
            };
            assert_eq!(got, want, "annotation value {value:?}");
        }
    }

    #[test]
    fn messages_name_containers_and_fields() {
        let spec = base_with(json!({
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {
                "allowPrivilegeEscalation": true, "capabilities": {"drop": ["ALL"]}}}],
        }));
        let violations = check_restricted(None, &spec);
        let messages: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "allowPrivilegeEscalation: allowPrivilegeEscalation != false \
                 (containers \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false)",
                "capabilities_restricted: unrestricted capabilities \
                 (container \"a\" must set securityContext.capabilities.drop=[\"ALL\"])",
            ]
        );
        for message in messages {
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn check_ids_are_distinct_and_ordered() {
        assert_eq!(Check::ALL.len(), 18);
        let ids: BTreeSet<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(ids.len(), Check::ALL.len());
        assert!(Check::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
