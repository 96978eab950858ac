//! The checks `restricted` adds to `baseline`, one function each.

use std::collections::BTreeSet;

use crate::dom::Json;

use crate::psa::pod::*;

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

impl<'a> Pod<'a> {
    pub(super) fn restricted_volumes(&self) -> Option<String> {
        let mut types = BTreeSet::new();
        let bad: Vec<&str> = self
            .volumes()
            .filter(|volume| {
                let mut restricted = false;
                for (source, value) in volume.as_object().into_iter().flatten() {
                    if source != "name"
                        && !value.is_null()
                        && !RESTRICTED_VOLUME_SOURCES.contains(&source)
                    {
                        restricted = true;
                        types.insert(source);
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

    pub(super) fn allow_privilege_escalation(&self) -> Option<String> {
        let bad = self.bad_containers(|c| {
            container_sc(c, &["allowPrivilegeEscalation"]).and_then(Json::as_bool) != Some(false)
        });
        (!bad.is_empty()).then(|| {
            format!(
                "allowPrivilegeEscalation != false ({} must set \
                 securityContext.allowPrivilegeEscalation=false)",
                containers_phrase(&bad)
            )
        })
    }

    pub(super) fn run_as_non_root(&self) -> Option<String> {
        let pod = self.pod_sc(&["runAsNonRoot"]).and_then(Json::as_bool);
        let mut setters = Vec::new();
        if pod == Some(false) {
            setters.push("pod".to_owned());
        }
        let explicit = self.bad_containers(|c| {
            container_sc(c, &["runAsNonRoot"]).and_then(Json::as_bool) == Some(false)
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
                .and_then(Json::as_bool)
                .is_none()
        });
        (!implicit.is_empty()).then(|| {
            format!(
                "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                containers_phrase(&implicit)
            )
        })
    }

    pub(super) fn run_as_user(&self) -> Option<String> {
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

    pub(super) fn seccomp_profile_restricted(&self) -> Option<String> {
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

    pub(super) fn capabilities_restricted(&self) -> Option<String> {
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
