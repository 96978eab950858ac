//! The structure-aware input: a workload (or another kind) with its annotations and pod spec,
//! inside a well-formed AdmissionReview.

use arbitrary::Arbitrary;
use kube_harden::admission::Mode;
use kube_harden::harden::{ChangeName, Policy};
use serde_json::{Map, Value, json};

use kube_harden_podgen::json::{Field, Json, Render, ToJson, put};
use kube_harden_podgen::pod::{MountPath, Name, PodSpec};

/// A kube-harden (or other) annotation.
#[derive(Arbitrary, Debug)]
pub enum Annotation {
    /// `kube-harden.io/skip`
    Skip(String),
    /// `kube-harden.io/skip` with change names.
    SkipNames(Vec<u8>),
    /// `kube-harden.io/writable-paths`
    WritablePaths(Vec<MountPath>),
    /// `kube-harden.io/hardened`
    Hardened(String),
    /// The legacy seccomp annotation.
    LegacySeccomp(String),
    /// Anything.
    Other(String, Json),
}

/// The change names a `SkipNames` annotation draws from: a fixed list, so that a corpus input
/// means the same annotation whatever change names the kube-harden under test knows (the answers
/// check builds this decoder against an older kube-harden too). Append new names at the end;
/// never reorder or remove one. The answers tool refuses to run while a `ChangeName` is missing
/// ([`missing_skip_name`]).
pub const SKIP_NAMES: [&str; 16] = [
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "fsGroupChangePolicy",
    "seccompProfile",
    "allowPrivilegeEscalation",
    "capabilities",
    "readOnlyRootFilesystem",
    "tmpVolume",
    "tmpdirEnv",
    "writablePaths",
    "resources",
    "imageUser",
    "imageVolumes",
    "imageTmpdir",
];

/// A change name kube-harden knows that [`SKIP_NAMES`] lacks (the corpus could never skip it).
pub fn missing_skip_name() -> Option<&'static str> {
    ChangeName::ALL
        .iter()
        .map(|n| n.as_str())
        .find(|n| !SKIP_NAMES.contains(n))
}

fn annotations(list: &[Annotation]) -> Value {
    let mut m = Map::new();
    for a in list {
        let (k, v) = match a {
            Annotation::Skip(s) => ("kube-harden.io/skip".to_owned(), json!(s)),
            Annotation::SkipNames(idx) => {
                let names: Vec<&str> = idx
                    .iter()
                    .map(|i| SKIP_NAMES[usize::from(*i) % SKIP_NAMES.len()])
                    .collect();
                ("kube-harden.io/skip".to_owned(), json!(names.join(",")))
            }
            Annotation::WritablePaths(paths) => {
                let paths: Vec<String> = paths
                    .iter()
                    .filter_map(|p| p.to_json().as_str().map(str::to_owned))
                    .collect();
                (
                    "kube-harden.io/writable-paths".to_owned(),
                    json!(paths.join(",")),
                )
            }
            Annotation::Hardened(s) => ("kube-harden.io/hardened".to_owned(), json!(s)),
            Annotation::LegacySeccomp(s) => (
                "seccomp.security.alpha.kubernetes.io/pod".to_owned(),
                json!(s),
            ),
            Annotation::Other(k, v) => (k.clone(), v.to_json()),
        };
        m.insert(k, v);
    }
    Value::Object(m)
}

/// The object's kind.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    /// v1 Pod
    Pod,
    /// apps/v1 Deployment
    Deployment,
    /// apps/v1 StatefulSet
    StatefulSet,
    /// apps/v1 DaemonSet
    DaemonSet,
    /// batch/v1 Job
    Job,
    /// batch/v1 CronJob
    CronJob,
    /// v1 ReplicationController
    ReplicationController,
    /// v1 Service (not hardened)
    Service,
}

/// The operation.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Operation {
    /// CREATE
    Create,
    /// UPDATE
    Update,
    /// DELETE
    Delete,
}

/// One structure-aware fuzz input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    kind: Kind,
    operation: Operation,
    ephemeral_subresource: bool,
    /// Review on /audit instead of /mutate.
    pub audit: bool,
    /// Use a policy that disables some changes.
    pub strict_policy: bool,
    dry_run: Option<bool>,
    metadata_annotations: Field<Vec<Annotation>>,
    template_annotations: Field<Vec<Annotation>>,
    spec: Field<PodSpec>,
    old_ephemeral_names: Option<Vec<Name>>,
}

impl Input {
    /// The endpoint the input is reviewed on.
    pub fn mode(&self) -> Mode {
        if self.audit {
            Mode::Audit
        } else {
            Mode::Enforce
        }
    }

    /// The policy the input is reviewed with.
    pub fn policy(&self) -> Policy {
        if self.strict_policy {
            Policy {
                disabled: vec![ChangeName::Resources, ChangeName::ReadOnlyRootFilesystem],
                ..Policy::default()
            }
        } else {
            Policy::default()
        }
    }

    /// The AdmissionReview and the object it carries.
    pub fn review(&self) -> (Value, Value) {
        let (group, version, kind, resource) = match self.kind {
            Kind::Pod => ("", "v1", "Pod", "pods"),
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Kind::StatefulSet => ("apps", "v1", "StatefulSet", "statefulsets"),
            Kind::DaemonSet => ("apps", "v1", "DaemonSet", "daemonsets"),
            Kind::Job => ("batch", "v1", "Job", "jobs"),
            Kind::CronJob => ("batch", "v1", "CronJob", "cronjobs"),
            Kind::ReplicationController => {
                ("", "v1", "ReplicationController", "replicationcontrollers")
            }
            Kind::Service => ("", "v1", "Service", "services"),
        };
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!("fuzz"));
        metadata.insert("namespace".into(), json!("fuzz"));
        if let Field::Set(list) = &self.metadata_annotations {
            metadata.insert("annotations".into(), annotations(list));
        } else {
            put(
                &mut metadata,
                "annotations",
                &junk_only(&self.metadata_annotations),
                Render::ANY,
            );
        }
        let spec = self.spec.to_json();
        let mut template_meta = Map::new();
        if let Field::Set(list) = &self.template_annotations {
            template_meta.insert("annotations".into(), annotations(list));
        } else {
            put(
                &mut template_meta,
                "annotations",
                &junk_only(&self.template_annotations),
                Render::ANY,
            );
        }
        let template = json!({"metadata": template_meta, "spec": spec});
        let spec_of_object = match self.kind {
            Kind::Pod => spec,
            Kind::CronJob => {
                json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})
            }
            Kind::Service => json!({"ports": [{"port": 80}]}),
            _ => json!({"selector": {"matchLabels": {"app": "fuzz"}}, "template": template}),
        };
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        let object = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "spec": spec_of_object,
        });
        let operation = match self.operation {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        };
        let old = match &self.old_ephemeral_names {
            None => Value::Null,
            Some(names) => json!({"spec": {"ephemeralContainers":
                names.iter().map(|n| json!({"name": n.to_json()})).collect::<Vec<_>>()}}),
        };
        let mut request = json!({
            "uid": "fuzz-uid",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": "fuzz",
            "namespace": "fuzz",
            "operation": operation,
            "userInfo": {"username": "fuzz"},
            "object": object.clone(),
            "oldObject": old,
        });
        if self.ephemeral_subresource {
            request["subResource"] = json!("ephemeralcontainers");
        }
        if let Some(d) = self.dry_run {
            request["dryRun"] = json!(d);
        }
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}),
            object,
        )
    }
}

/// The field with a set list replaced by `Absent` (set lists are rendered separately).
fn junk_only(field: &Field<Vec<Annotation>>) -> Field<Json> {
    match field {
        Field::Absent | Field::Set(_) => Field::Absent,
        Field::Null => Field::Null,
        Field::Junk(j) => Field::Junk(j.clone()),
    }
}
