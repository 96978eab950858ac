//! Which kinds carry a pod spec, and where it lives in each.
//!
//! See <https://kubernetes.io/docs/concepts/workloads/pods/#pod-templates>.

use std::fmt;

use serde_json::Value;

/// A kind whose objects carry a pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `v1/Pod`: the spec itself.
    Pod,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `v1` ReplicationController.
    ReplicationController,
    /// `batch/v1` Job.
    Job,
    /// `batch/v1` CronJob: `spec.jobTemplate.spec.template`.
    CronJob,
}

impl WorkloadKind {
    /// Every kind, for documentation and tests.
    pub const ALL: &'static [WorkloadKind] = &[
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
    ];

    /// The kind for an API group and kind name (`""`/`apps`/`batch`), if it carries a pod spec.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("", "Pod") => Self::Pod,
            ("", "ReplicationController") => Self::ReplicationController,
            ("apps", "Deployment") => Self::Deployment,
            ("apps", "StatefulSet") => Self::StatefulSet,
            ("apps", "DaemonSet") => Self::DaemonSet,
            ("apps", "ReplicaSet") => Self::ReplicaSet,
            ("batch", "Job") => Self::Job,
            ("batch", "CronJob") => Self::CronJob,
            _ => return None,
        })
    }

    /// The kind of a manifest, from its `apiVersion` and `kind`.
    pub fn of_object(object: &Value) -> Option<Self> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let group = api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("");
        Self::from_group_kind(group, kind)
    }

    /// The kind's name as in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::ReplicaSet => "ReplicaSet",
            Self::ReplicationController => "ReplicationController",
            Self::Job => "Job",
            Self::CronJob => "CronJob",
        }
    }

    /// Path of the pod template (`None` for a Pod).
    fn template_path(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Pod => None,
            Self::CronJob => Some(&["spec", "jobTemplate", "spec", "template"]),
            _ => Some(&["spec", "template"]),
        }
    }

    /// Path of the pod spec.
    pub fn pod_spec_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["spec"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }

    /// Path of the pod template's metadata (`None` for a Pod).
    pub fn template_metadata_path(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Pod => None,
            Self::CronJob => Some(&["spec", "jobTemplate", "spec", "template", "metadata"]),
            _ => Some(&["spec", "template", "metadata"]),
        }
    }

    /// The pod template's metadata, if the object has one.
    pub fn template_metadata(self, object: &Value) -> Option<&Value> {
        self.template_path()
            .and_then(|path| lookup(object, path))
            .and_then(|template| template.get("metadata"))
            .filter(|m| !m.is_null())
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Follows object keys; `None` when a key is missing or null.
pub(crate) fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_from_manifests() {
        let cases = [
            ("v1", "Pod", Some(WorkloadKind::Pod)),
            (
                "v1",
                "ReplicationController",
                Some(WorkloadKind::ReplicationController),
            ),
            ("apps/v1", "Deployment", Some(WorkloadKind::Deployment)),
            ("apps/v1", "StatefulSet", Some(WorkloadKind::StatefulSet)),
            ("apps/v1", "DaemonSet", Some(WorkloadKind::DaemonSet)),
            ("apps/v1", "ReplicaSet", Some(WorkloadKind::ReplicaSet)),
            ("batch/v1", "Job", Some(WorkloadKind::Job)),
            ("batch/v1", "CronJob", Some(WorkloadKind::CronJob)),
            ("v1", "Service", None),
            ("v1", "Deployment", None),
            ("example.com/v1", "Pod", None),
        ];
        for (api_version, kind, expected) in cases {
            let object = json!({"apiVersion": api_version, "kind": kind});
            assert_eq!(
                WorkloadKind::of_object(&object),
                expected,
                "{api_version} {kind}"
            );
        }
        assert_eq!(WorkloadKind::of_object(&json!({"kind": "Pod"})), None);
    }

    #[test]
    fn every_kind_has_a_spec_path_under_its_template() {
        for kind in WorkloadKind::ALL {
            let spec = kind.pod_spec_path();
            assert_eq!(spec.last(), Some(&"spec"));
            if let Some(meta) = kind.template_metadata_path() {
                assert_eq!(meta[..meta.len() - 1], spec[..spec.len() - 1]);
            }
        }
    }
}
