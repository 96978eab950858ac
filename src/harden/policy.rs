//! The hardening policy: the defaults the rules fill in, and switches to turn rules off.
//!
//! Read from a YAML file (`--config`); every field is optional and has a documented default
//! (docs/configuration.md). Unknown fields and invalid values are errors that name the field.

use serde::Deserialize;

use super::ChangeName;
use super::quantity::Quantity;

/// Highest UID/GID Kubernetes accepts (`int32`).
const MAX_ID: i64 = i32::MAX as i64;

/// The hardening policy. Construct with [`Policy::default`] or [`Policy::from_yaml`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    /// UID given to pods and containers that set none (default 2866).
    pub run_as_user: i64,
    /// GID given to pods and containers that set none (default 2866).
    pub run_as_group: i64,
    /// Pod `fsGroup` (default 2866).
    pub fs_group: i64,
    /// `sizeLimit` of the emptyDir volumes mounted at /tmp and the writable paths (default 64Mi).
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub tmp_size_limit: String,
    /// Default requests and limits.
    pub resources: ResourceDefaults,
    /// Change names switched off for every object (as if every object listed them in
    /// `kube-harden.io/skip`).
    pub disabled: Vec<ChangeName>,
}

/// Default CPU and memory requests and limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResourceDefaults {
    /// Default CPU request (default `100m`).
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub cpu_request: String,
    /// Default memory request (default `128Mi`).
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub memory_request: String,
    /// Default CPU limit (default `500m`).
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub cpu_limit: String,
    /// Default memory limit (default `512Mi`).
    #[serde(deserialize_with = "crate::yaml::string_or_number")]
    pub memory_limit: String,
    /// Whether to add CPU limits at all (default true). CPU limits throttle; some teams prefer
    /// requests only.
    pub cpu_limits: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            run_as_user: 2866,
            run_as_group: 2866,
            fs_group: 2866,
            tmp_size_limit: "64Mi".into(),
            resources: ResourceDefaults::default(),
            disabled: Vec::new(),
        }
    }
}

impl Default for ResourceDefaults {
    fn default() -> Self {
        Self {
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            cpu_limit: "500m".into(),
            memory_limit: "512Mi".into(),
            cpu_limits: true,
        }
    }
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The YAML does not parse or has an unknown field or wrong type (with its line and
    /// column).
    #[error("invalid policy: {0}")]
    Parse(#[from] crate::yaml::YamlError),
    /// A field has a value outside what Kubernetes or the rules accept.
    #[error("invalid policy: field `{field}`: {reason}")]
    Invalid {
        /// The field, as spelled in the YAML.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Policy {
    /// Parses and validates a policy from YAML. An empty document is the default policy.
    pub fn from_yaml(yaml: &str) -> Result<Self, PolicyError> {
        let policy: Self = if yaml.trim().is_empty() {
            Self::default()
        } else {
            crate::yaml::from_str(yaml)?
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |field, reason: String| Err(PolicyError::Invalid { field, reason });
        for (field, id) in [
            ("runAsUser", self.run_as_user),
            ("runAsGroup", self.run_as_group),
            ("fsGroup", self.fs_group),
        ] {
            if !(1..=MAX_ID).contains(&id) {
                return invalid(
                    field,
                    format!("{id} must be a non-root ID from 1 to {MAX_ID}"),
                );
            }
        }
        let quantity = |field: &'static str, value: &str| -> Result<Quantity, PolicyError> {
            let q = Quantity::parse(value).map_err(|e| PolicyError::Invalid {
                field,
                reason: e.to_string(),
            })?;
            if q.nanos() <= 0 {
                return Err(PolicyError::Invalid {
                    field,
                    reason: format!("{value:?} must be positive"),
                });
            }
            Ok(q)
        };
        quantity("tmpSizeLimit", &self.tmp_size_limit)?;
        let r = &self.resources;
        let cpu_request = quantity("resources.cpuRequest", &r.cpu_request)?;
        let memory_request = quantity("resources.memoryRequest", &r.memory_request)?;
        let cpu_limit = quantity("resources.cpuLimit", &r.cpu_limit)?;
        let memory_limit = quantity("resources.memoryLimit", &r.memory_limit)?;
        if r.cpu_limits && cpu_request > cpu_limit {
            return invalid(
                "resources.cpuRequest",
                format!("{} is above cpuLimit {}", r.cpu_request, r.cpu_limit),
            );
        }
        if memory_request > memory_limit {
            return invalid(
                "resources.memoryRequest",
                format!(
                    "{} is above memoryLimit {}",
                    r.memory_request, r.memory_limit
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Policy::from_yaml("").unwrap(), Policy::default());
        assert_eq!(Policy::from_yaml("{}\n").unwrap(), Policy::default());
    }

    #[test]
    fn reads_every_field() {
        let p = Policy::from_yaml(
            "runAsUser: 1000\nrunAsGroup: 1001\nfsGroup: 1002\ntmpSizeLimit: 1Gi\n\
             resources: {cpuRequest: 50m, memoryRequest: 64Mi, cpuLimit: '1', memoryLimit: 1Gi, cpuLimits: false}\n\
             disabled: [resources, readOnlyRootFilesystem]\n",
        )
        .unwrap();
        assert_eq!(p.run_as_user, 1000);
        assert_eq!(p.run_as_group, 1001);
        assert_eq!(p.fs_group, 1002);
        assert_eq!(p.tmp_size_limit, "1Gi");
        assert!(!p.resources.cpu_limits);
        assert_eq!(
            p.disabled,
            vec![ChangeName::Resources, ChangeName::ReadOnlyRootFilesystem]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("runAsUser: 0", "runAsUser"),
            ("fsGroup: -5", "fsGroup"),
            ("runAsGroup: 3000000000", "runAsGroup"),
            ("tmpSizeLimit: lots", "tmpSizeLimit"),
            ("resources: {cpuLimit: 10x}", "resources.cpuLimit"),
            (
                "resources: {memoryRequest: 2Gi, memoryLimit: 1Gi}",
                "resources.memoryRequest",
            ),
            ("resources: {cpuRequest: '2'}", "resources.cpuRequest"),
            ("runAsUsr: 5", "runAsUsr"),
            ("disabled: [notAChange]", "notAChange"),
            ("runAsUser: abc", "runAsUser"),
            ("resources:\n  cpuLimits: maybe\n", "resources.cpuLimits"),
        ];
        for (yaml, field) in cases {
            let err = Policy::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains(field), "{yaml}: {err} should name {field}");
        }
    }

    #[test]
    fn yaml_1_1_values_and_numbers_are_read_as_kubernetes_reads_them() {
        let p = Policy::from_yaml(
            "runAsUser: 0x3e8\nfsGroup: 0755\nresources: {cpuLimits: no, cpuRequest: 1, cpuLimit: 2}\n",
        )
        .unwrap();
        assert_eq!(p.run_as_user, 1000);
        assert_eq!(p.fs_group, 493);
        assert!(!p.resources.cpu_limits);
        assert_eq!(p.resources.cpu_request, "1");
        assert_eq!(p.resources.cpu_limit, "2");
    }

    #[test]
    fn parse_errors_carry_the_field_line_and_column() {
        let err = Policy::from_yaml("runAsUser: 5\nresources:\n  cpuLimits: maybe\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3, column 3"), "{err}");
        assert!(err.contains("resources.cpuLimits"), "{err}");
    }

    #[test]
    fn request_above_cpu_limit_is_fine_without_cpu_limits() {
        Policy::from_yaml("resources: {cpuRequest: '2', cpuLimits: false}").unwrap();
    }
}
