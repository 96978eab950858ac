//! The `baseline` checks (which `restricted` includes), one function each, with the allow-lists
//! of policy v1.36.

use std::collections::BTreeSet;

use crate::dom::Json;

use crate::harden::json;
use crate::psa::pod::*;

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

impl<'a> Pod<'a> {
    pub(super) fn host_namespaces(&self) -> Option<String> {
        let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
            .iter()
            .filter(|key| is_true(at(self.spec, &[key])))
            .map(|key| format!("{key}=true"))
            .collect();
        (!set.is_empty()).then(|| format!("host namespaces ({})", set.join(", ")))
    }

    pub(super) fn privileged(&self) -> Option<String> {
        let bad = self.bad_containers(|c| is_true(container_sc(c, &["privileged"])));
        (!bad.is_empty()).then(|| {
            format!(
                "privileged ({} must not set securityContext.privileged=true)",
                containers_phrase(&bad)
            )
        })
    }

    pub(super) fn capabilities_baseline(&self) -> Option<String> {
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

    pub(super) fn host_path_volumes(&self) -> Option<String> {
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

    pub(super) fn host_ports(&self) -> Option<String> {
        let mut ports = Vec::new();
        let bad = self.bad_containers(|c| {
            let mut uses = false;
            for port in json::member(c, "ports")
                .and_then(Json::as_array)
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

    pub(super) fn app_armor_profile(&self) -> Option<String> {
        let allowed = |profile: &Json<'_>| {
            matches!(
                at(profile, &["type"]).and_then(Json::as_str),
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

    pub(super) fn se_linux_options(&self) -> Option<String> {
        let mut bad_types = BTreeSet::new();
        let mut set_user = false;
        let mut set_role = false;
        let mut valid = |options: &Json<'_>| {
            let mut valid = true;
            let ty = at(options, &["type"]);
            if !ty
                .map_or(Some(""), Json::as_str)
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
            .map(|c| name(c.value))
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

    pub(super) fn proc_mount(&self) -> Option<String> {
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

    pub(super) fn seccomp_profile_baseline(&self) -> Option<String> {
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

    pub(super) fn sysctls(&self) -> Option<String> {
        let forbidden: Vec<String> = self
            .pod_sc(&["sysctls"])
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|sysctl| at(sysctl, &["name"]))
            .filter(|name| {
                !name
                    .and_then(Json::as_str)
                    .is_some_and(|n| SAFE_SYSCTLS.contains(&n))
            })
            .map(plain_or_empty)
            .collect();
        (!forbidden.is_empty()).then(|| format!("forbidden sysctls ({})", forbidden.join(", ")))
    }

    pub(super) fn windows_host_process(&self) -> Option<String> {
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

    pub(super) fn host_probes_and_host_lifecycle(&self) -> Option<String> {
        const HANDLERS: &[&[&str]] = &[
            &["livenessProbe"],
            &["readinessProbe"],
            &["startupProbe"],
            &["lifecycle", "postStart"],
            &["lifecycle", "preStop"],
        ];
        let mut hosts = BTreeSet::new();
        let mut bad = BTreeSet::new();
        for container in self.containers {
            for handler in HANDLERS.iter().filter_map(|path| at(container.value, path)) {
                for action in ["httpGet", "tcpSocket"] {
                    if let Some(host) = at(handler, &[action, "host"])
                        && host.as_str() != Some("")
                    {
                        bad.insert(name(container.value));
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
}
