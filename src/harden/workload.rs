//! Which kinds carry a pod spec, and where it lives in each.
//!
//! See <https://kubernetes.io/docs/concepts/workloads/pods/#pod-templates>.

use std::fmt;

use std::borrow::Cow;

use serde_json::Value;

use crate::dom::{Json, Object};

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
    /// Every kind, in the order of the table.
    pub fn all() -> impl Iterator<Item = WorkloadKind> {
        TABLE.iter().map(|row| row.kind)
    }

    /// The kind for an API group and kind name (`""`/`apps`/`batch`), if it carries a pod spec.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|row| row.name == kind && group_of(row.api_version) == group)
            .map(|row| row.kind)
    }

    /// The kind of a manifest, from its `apiVersion` and `kind`: only under the apiVersion the
    /// API server serves (an older one is [`Unserved`], left alone).
    pub fn of_object(object: &Value) -> Option<Self> {
        let (api_version, kind) = api_version_kind(object)?;
        TABLE
            .iter()
            .find(|row| row.name == kind && row.api_version == api_version)
            .map(|row| row.kind)
    }

    /// A workload kind under an apiVersion the API server does not serve (`extensions/v1beta1`
    /// DaemonSet, `batch/v1beta1` CronJob, `v1` Deployment...): never hardened, since the
    /// API server rejects the object whatever it holds; the caller warns.
    pub fn unserved(object: &Value) -> Option<Unserved> {
        let (api_version, kind) = api_version_kind(object)?;
        let row = TABLE.iter().find(|row| row.name == kind)?;
        let known = row.unserved.contains(&api_version);
        // Another group with a kind of the same name is someone else's API (a CRD).
        let builtin_group = matches!(group_of(api_version), "" | "apps" | "extensions" | "batch");
        (api_version != row.api_version && (known || builtin_group)).then(|| Unserved {
            api_version: api_version.to_owned(),
            kind: row.kind,
            known,
        })
    }

    /// The kind's name as in manifests.
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// The apiVersion the API server serves this kind under.
    pub fn api_version(self) -> &'static str {
        self.row().api_version
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        group_of(self.row().api_version)
    }

    /// The version (`v1` of `apps/v1`).
    pub fn version(self) -> &'static str {
        let api_version = self.row().api_version;
        api_version
            .rsplit_once('/')
            .map_or(api_version, |(_, version)| version)
    }

    /// The resource name in API paths (`deployments`).
    pub fn plural(self) -> &'static str {
        self.row().plural
    }

    fn row(self) -> &'static Row {
        match self {
            Self::Pod => &POD,
            Self::Deployment => &DEPLOYMENT,
            Self::StatefulSet => &STATEFUL_SET,
            Self::DaemonSet => &DAEMON_SET,
            Self::ReplicaSet => &REPLICA_SET,
            Self::ReplicationController => &REPLICATION_CONTROLLER,
            Self::Job => &JOB,
            Self::CronJob => &CRON_JOB,
        }
    }

    /// Path of the pod template (`None` for a Pod): the template's metadata path without its
    /// last key.
    pub fn template_path(self) -> Option<&'static [&'static str]> {
        self.template_metadata_path()
            .and_then(<[&str]>::split_last)
            .map(|(_, template)| template)
    }

    /// Path of the pod spec.
    pub fn pod_spec_path(self) -> &'static [&'static str] {
        self.row().paths.pod_spec
    }

    /// Path of the pod template's metadata (`None` for a Pod).
    pub fn template_metadata_path(self) -> Option<&'static [&'static str]> {
        self.row().paths.template_metadata
    }

    /// The pod template's metadata, if the object has one.
    pub fn template_metadata<'a, 'd>(self, object: &'a Json<'d>) -> Option<&'a Json<'d>> {
        self.template_metadata_path()
            .and_then(|path| lookup(object, path))
    }
}

/// One row of [`TABLE`].
struct Row {
    kind: WorkloadKind,
    name: &'static str,
    /// The apiVersion Kubernetes v1.36 serves.
    api_version: &'static str,
    /// The resource name in API paths.
    plural: &'static str,
    /// Where the pod spec lives.
    paths: &'static Paths,
    /// Older apiVersions of the same kind, no longer served (removed in 1.16, CronJob's
    /// `batch/v1beta1` in 1.25).
    unserved: &'static [&'static str],
}

/// Where a kind keeps its pod spec and, in a template, the template's metadata.
struct Paths {
    pod_spec: &'static [&'static str],
    template_metadata: Option<&'static [&'static str]>,
}

/// A Pod: the spec itself, no template.
const IN_POD: Paths = Paths {
    pod_spec: &["spec"],
    template_metadata: None,
};
/// `spec.template`: Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job.
const IN_TEMPLATE: Paths = Paths {
    pod_spec: &["spec", "template", "spec"],
    template_metadata: Some(&["spec", "template", "metadata"]),
};
/// `spec.jobTemplate.spec.template`: CronJob.
const IN_JOB_TEMPLATE: Paths = Paths {
    pod_spec: &["spec", "jobTemplate", "spec", "template", "spec"],
    template_metadata: Some(&["spec", "jobTemplate", "spec", "template", "metadata"]),
};

/// Every workload kind, the apiVersion it is served under and the ones it no longer is.
const TABLE: &[Row] = &[
    POD,
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    JOB,
    CRON_JOB,
];

const POD: Row = Row {
    kind: WorkloadKind::Pod,
    name: "Pod",
    api_version: "v1",
    plural: "pods",
    paths: &IN_POD,
    unserved: &[],
};
const DEPLOYMENT: Row = Row {
    kind: WorkloadKind::Deployment,
    name: "Deployment",
    api_version: "apps/v1",
    plural: "deployments",
    paths: &IN_TEMPLATE,
    unserved: &["extensions/v1beta1", "apps/v1beta1", "apps/v1beta2"],
};
const STATEFUL_SET: Row = Row {
    kind: WorkloadKind::StatefulSet,
    name: "StatefulSet",
    api_version: "apps/v1",
    plural: "statefulsets",
    paths: &IN_TEMPLATE,
    unserved: &["apps/v1beta1", "apps/v1beta2"],
};
const DAEMON_SET: Row = Row {
    kind: WorkloadKind::DaemonSet,
    name: "DaemonSet",
    api_version: "apps/v1",
    plural: "daemonsets",
    paths: &IN_TEMPLATE,
    unserved: &["extensions/v1beta1", "apps/v1beta2"],
};
const REPLICA_SET: Row = Row {
    kind: WorkloadKind::ReplicaSet,
    name: "ReplicaSet",
    api_version: "apps/v1",
    plural: "replicasets",
    paths: &IN_TEMPLATE,
    unserved: &["extensions/v1beta1", "apps/v1beta2"],
};
const REPLICATION_CONTROLLER: Row = Row {
    kind: WorkloadKind::ReplicationController,
    name: "ReplicationController",
    api_version: "v1",
    plural: "replicationcontrollers",
    paths: &IN_TEMPLATE,
    unserved: &[],
};
const JOB: Row = Row {
    kind: WorkloadKind::Job,
    name: "Job",
    api_version: "batch/v1",
    plural: "jobs",
    paths: &IN_TEMPLATE,
    unserved: &[],
};
const CRON_JOB: Row = Row {
    kind: WorkloadKind::CronJob,
    name: "CronJob",
    api_version: "batch/v1",
    plural: "cronjobs",
    paths: &IN_JOB_TEMPLATE,
    unserved: &["batch/v1beta1", "batch/v2alpha1"],
};

/// A workload written under an apiVersion the API server does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    /// The apiVersion as written.
    pub api_version: String,
    /// The kind.
    pub kind: WorkloadKind,
    /// Whether it is an older version Kubernetes once served (otherwise no Kubernetes version
    /// ever served the kind under it).
    pub known: bool,
}

impl fmt::Display for Unserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, served) = (self.kind, self.kind.api_version());
        if self.known {
            write!(
                f,
                "{} {kind} is no longer served by the API server; left unchanged: change apiVersion to {served}",
                self.api_version
            )
        } else {
            write!(
                f,
                "{} {kind} is not an apiVersion Kubernetes serves {kind} under; left unchanged: {kind} is {served}",
                self.api_version
            )
        }
    }
}

fn api_version_kind(object: &Value) -> Option<(&str, &str)> {
    Some((
        object.get("apiVersion")?.as_str()?,
        object.get("kind")?.as_str()?,
    ))
}

fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the rules read of `object`, borrowed from it: its `spec` and `metadata.annotations`,
/// as the admission handler's parse keeps them (`admission/slim.rs`; a `metadata` that is not
/// an object, or an object that is not one, is kept whole).
pub(crate) fn rules_view(object: &Value) -> Json<'_> {
    let Value::Object(map) = object else {
        return Json::from(object);
    };
    let mut kept = Object::new();
    for (key, value) in map {
        let value = match (key.as_str(), value) {
            ("spec", spec) => Json::from(spec),
            ("metadata", Value::Object(meta)) => {
                let mut slim = Object::new();
                if let Some(annotations) = meta.get("annotations") {
                    slim.insert(Cow::Borrowed("annotations"), Json::from(annotations));
                }
                Json::Object(slim)
            }
            ("metadata", other) => Json::from(other),
            _ => continue,
        };
        kept.insert(Cow::Borrowed(key.as_str()), value);
    }
    Json::Object(kept)
}

/// Follows object keys; `None` when a key is missing or null.
pub(crate) fn lookup<'a, 'd>(value: &'a Json<'d>, path: &[&str]) -> Option<&'a Json<'d>> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// [`lookup`] in a `serde_json::Value` (the tests' objects).
#[cfg(test)]
pub(crate) fn lookup_value<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
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
            ("apps/v1beta2", "Deployment", None),
            ("batch/v1beta1", "CronJob", None),
            ("extensions/v1beta1", "DaemonSet", None),
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
    fn unserved_api_versions_are_named() {
        let cases = [
            ("extensions/v1beta1", "DaemonSet", Some(true)),
            ("extensions/v1beta1", "Deployment", Some(true)),
            ("apps/v1beta1", "Deployment", Some(true)),
            ("apps/v1beta2", "StatefulSet", Some(true)),
            ("batch/v1beta1", "CronJob", Some(true)),
            ("v1", "Deployment", Some(false)),
            ("apps/v1", "Pod", Some(false)),
            ("apps/v1", "Deployment", None),
            ("batch/v1", "CronJob", None),
            ("example.com/v1", "Deployment", None),
            ("v1", "Service", None),
        ];
        for (api_version, kind, known) in cases {
            let object = json!({"apiVersion": api_version, "kind": kind});
            let unserved = WorkloadKind::unserved(&object);
            assert_eq!(
                unserved.as_ref().map(|u| u.known),
                known,
                "{api_version} {kind}"
            );
            if let Some(u) = unserved {
                assert!(
                    u.to_string().starts_with(&format!("{api_version} {kind} ")),
                    "{u}"
                );
            }
        }
        let message =
            WorkloadKind::unserved(&json!({"apiVersion": "batch/v1beta1", "kind": "CronJob"}))
                .unwrap()
                .to_string();
        assert!(
            message.contains("change apiVersion to batch/v1"),
            "{message}"
        );
    }

    #[test]
    fn group_kind_lookup_matches_the_served_versions() {
        for kind in WorkloadKind::all() {
            assert_eq!(
                WorkloadKind::from_group_kind(kind.group(), kind.as_str()),
                Some(kind)
            );
            let object = json!({"apiVersion": kind.api_version(), "kind": kind.as_str()});
            assert_eq!(WorkloadKind::of_object(&object), Some(kind));
        }
        assert_eq!(
            WorkloadKind::from_group_kind("extensions", "Deployment"),
            None
        );
    }

    #[test]
    fn every_kind_has_a_spec_path_under_its_template() {
        for kind in WorkloadKind::all() {
            let spec = kind.pod_spec_path();
            assert_eq!(spec.last(), Some(&"spec"));
            match kind.template_path() {
                Some(template) => {
                    assert_eq!(template, &spec[..spec.len() - 1], "{kind}");
                    assert_eq!(template.last(), Some(&"template"), "{kind}");
                    let meta = kind.template_metadata_path().unwrap();
                    assert_eq!(meta, [template, &["metadata"]].concat(), "{kind}");
                }
                None => assert_eq!(spec, ["spec"], "{kind}"),
            }
        }
    }

    #[test]
    fn the_table_agrees_with_the_api_types() {
        use k8s_openapi::Resource;
        use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
        fn row<K: Resource>() -> (&'static str, &'static str, &'static str, &'static str) {
            (K::GROUP, K::API_VERSION, K::KIND, K::URL_PATH_SEGMENT)
        }
        let table: Vec<_> = WorkloadKind::all()
            .map(|k| (k.group(), k.api_version(), k.as_str(), k.plural()))
            .collect();
        for kind in WorkloadKind::all() {
            assert_eq!(
                kind.api_version(),
                [kind.group(), kind.version()]
                    .join("/")
                    .trim_start_matches('/')
            );
        }
        assert_eq!(
            table,
            [
                row::<core::Pod>(),
                row::<apps::Deployment>(),
                row::<apps::StatefulSet>(),
                row::<apps::DaemonSet>(),
                row::<apps::ReplicaSet>(),
                row::<core::ReplicationController>(),
                row::<batch::Job>(),
                row::<batch::CronJob>(),
            ]
        );
        for kind in WorkloadKind::all() {
            assert_eq!(kind.row().kind, kind);
        }
    }
}
