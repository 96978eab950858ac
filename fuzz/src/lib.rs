//! What the fuzz targets check, and the structure-aware input: AdmissionReviews of pods and
//! workloads whose every field may be missing, null, of the right type, or arbitrary JSON.
//!
//! For every input the admission handler must answer (no panic, no hang: libFuzzer's
//! `-timeout`, bounded memory: `-rss_limit_mb`) with a 200 AdmissionReview or a 400; enforce may
//! patch, audit never does; a patch is base64 RFC 6902 made only of `add` operations that apply
//! to the object sent.

use arbitrary::Arbitrary;
use base64::prelude::{BASE64_STANDARD, Engine as _};
use kube_harden::admission::{Mode, review};
use kube_harden::harden::{ChangeName, Policy};
use serde_json::{Map, Value, json};

/// Reviews `data` on both endpoints and checks the answers.
pub fn check_bytes(data: &[u8]) {
    let object = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.pointer("/request/object").cloned());
    for mode in [Mode::Enforce, Mode::Audit] {
        check_answer(data, mode, &Policy::default(), object.as_ref(), false);
    }
}

/// Builds the review of `input`, reviews it and checks the answer.
pub fn check_input(input: &Input) {
    let (body, object) = input.review();
    let bytes = serde_json::to_vec(&body).expect("a Value serialises");
    check_answer(&bytes, input.mode(), &input.policy(), Some(&object), true);
}

fn check_answer(
    body: &[u8],
    mode: Mode,
    policy: &Policy,
    object: Option<&Value>,
    well_formed: bool,
) {
    let reviewed = review(body, mode, policy);
    match reviewed.status {
        400 => {
            let message = String::from_utf8_lossy(&reviewed.body);
            // JSON nested deeper than serde_json's limit (128) is refused as malformed, by design.
            assert!(
                !well_formed || message.contains("recursion limit exceeded"),
                "a well-formed review got 400: {message}"
            );
            return;
        }
        200 => {}
        other => panic!("status {other}"),
    }
    let answer: Value = serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert!(response["uid"].is_string(), "uid: {answer}");
    if well_formed {
        assert_eq!(response["allowed"], true, "{answer}");
    }
    let Some(patch) = response.get("patch") else {
        return;
    };
    assert_eq!(mode, Mode::Enforce, "audit returned a patch");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = BASE64_STANDARD
        .decode(patch.as_str().expect("patch is a string"))
        .expect("patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("patch is RFC 6902");
    assert!(!patch.0.is_empty(), "an empty patch was sent");
    for op in &patch.0 {
        assert!(
            matches!(op, json_patch::PatchOperation::Add(_)),
            "not an addition: {op:?}"
        );
    }
    if let Some(object) = object {
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the object");
    }
}

/// A field: missing, `null`, a value of its type, or any JSON at all.
#[derive(Arbitrary, Debug)]
pub enum Field<T> {
    /// Not in the object.
    Absent,
    /// `null`.
    Null,
    /// A value of the field's type.
    Set(T),
    /// Anything.
    Junk(Json),
}

/// Any JSON value (nesting bounded by the input's length).
#[derive(Arbitrary, Debug)]
pub enum Json {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (NaN and infinities become null).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object.
    Object(Vec<(String, Json)>),
}

/// Conversion to the JSON the API server would send.
pub trait ToJson {
    /// The value.
    fn to_json(&self) -> Value;
}

impl ToJson for Json {
    fn to_json(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => json!(i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.iter().map(ToJson::to_json).collect()),
            Json::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Value {
        json!(self)
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Field<T> {
    fn to_json(&self) -> Value {
        match self {
            Field::Absent | Field::Null => Value::Null,
            Field::Set(v) => v.to_json(),
            Field::Junk(j) => j.to_json(),
        }
    }
}

fn put<T: ToJson>(map: &mut Map<String, Value>, key: &str, field: &Field<T>) {
    if !matches!(field, Field::Absent) {
        map.insert(key.to_owned(), field.to_json());
    }
}

/// Names that collide on purpose (containers, volumes).
#[derive(Arbitrary, Debug)]
pub enum Name {
    /// `app`
    App,
    /// `sidecar`
    Sidecar,
    /// `kube-harden-tmp`, the volume kube-harden adds.
    KubeHardenTmp,
    /// Anything.
    Other(String),
}

impl ToJson for Name {
    fn to_json(&self) -> Value {
        Value::String(match self {
            Name::App => "app".into(),
            Name::Sidecar => "sidecar".into(),
            Name::KubeHardenTmp => "kube-harden-tmp".into(),
            Name::Other(s) => s.clone(),
        })
    }
}

/// Mount paths that matter to the rules.
#[derive(Arbitrary, Debug)]
pub enum MountPath {
    /// `/tmp`
    Tmp,
    /// `/tmp/`
    TmpSlash,
    /// `/var/run`
    VarRun,
    /// Anything.
    Other(String),
}

impl ToJson for MountPath {
    fn to_json(&self) -> Value {
        Value::String(match self {
            MountPath::Tmp => "/tmp".into(),
            MountPath::TmpSlash => "/tmp/".into(),
            MountPath::VarRun => "/var/run".into(),
            MountPath::Other(s) => s.clone(),
        })
    }
}

/// A resource quantity.
#[derive(Arbitrary, Debug)]
pub enum Quantity {
    /// `<n>m`
    Milli(u16),
    /// `<n>Mi`
    Mebi(u16),
    /// A bare number.
    Number(i64),
    /// Any string.
    Text(String),
}

impl ToJson for Quantity {
    fn to_json(&self) -> Value {
        match self {
            Quantity::Milli(n) => Value::String(format!("{n}m")),
            Quantity::Mebi(n) => Value::String(format!("{n}Mi")),
            Quantity::Number(n) => json!(n),
            Quantity::Text(s) => Value::String(s.clone()),
        }
    }
}

/// `requests` or `limits`.
#[derive(Arbitrary, Debug)]
pub struct ResourceList {
    cpu: Field<Quantity>,
    memory: Field<Quantity>,
    other: Option<(String, Quantity)>,
}

impl ToJson for ResourceList {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "cpu", &self.cpu);
        put(&mut m, "memory", &self.memory);
        if let Some((k, v)) = &self.other {
            m.insert(k.clone(), v.to_json());
        }
        Value::Object(m)
    }
}

/// `resources`.
#[derive(Arbitrary, Debug)]
pub struct Resources {
    requests: Field<ResourceList>,
    limits: Field<ResourceList>,
}

impl ToJson for Resources {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "requests", &self.requests);
        put(&mut m, "limits", &self.limits);
        Value::Object(m)
    }
}

/// A capability name.
#[derive(Arbitrary, Debug)]
pub enum Capability {
    /// `ALL`
    All,
    /// `SYS_ADMIN`
    SysAdmin,
    /// `NET_BIND_SERVICE`
    NetBindService,
    /// Anything.
    Other(String),
}

impl ToJson for Capability {
    fn to_json(&self) -> Value {
        Value::String(match self {
            Capability::All => "ALL".into(),
            Capability::SysAdmin => "SYS_ADMIN".into(),
            Capability::NetBindService => "NET_BIND_SERVICE".into(),
            Capability::Other(s) => s.clone(),
        })
    }
}

/// `capabilities`.
#[derive(Arbitrary, Debug)]
pub struct Capabilities {
    add: Field<Vec<Capability>>,
    drop: Field<Vec<Capability>>,
}

impl ToJson for Capabilities {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "add", &self.add);
        put(&mut m, "drop", &self.drop);
        Value::Object(m)
    }
}

/// `seccompProfile`.
#[derive(Arbitrary, Debug)]
pub struct Seccomp {
    kind: Field<SeccompType>,
    localhost_profile: Field<String>,
}

/// A seccomp profile type.
#[derive(Arbitrary, Debug)]
pub enum SeccompType {
    /// `RuntimeDefault`
    RuntimeDefault,
    /// `Localhost`
    Localhost,
    /// `Unconfined`
    Unconfined,
    /// Anything.
    Other(String),
}

impl ToJson for SeccompType {
    fn to_json(&self) -> Value {
        Value::String(match self {
            SeccompType::RuntimeDefault => "RuntimeDefault".into(),
            SeccompType::Localhost => "Localhost".into(),
            SeccompType::Unconfined => "Unconfined".into(),
            SeccompType::Other(s) => s.clone(),
        })
    }
}

impl ToJson for Seccomp {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "type", &self.kind);
        put(&mut m, "localhostProfile", &self.localhost_profile);
        Value::Object(m)
    }
}

/// A container's `securityContext`.
#[derive(Arbitrary, Debug)]
pub struct ContainerSecurity {
    privileged: Field<bool>,
    run_as_user: Field<i64>,
    run_as_group: Field<i64>,
    run_as_non_root: Field<bool>,
    allow_privilege_escalation: Field<bool>,
    read_only_root_filesystem: Field<bool>,
    capabilities: Field<Capabilities>,
    seccomp_profile: Field<Seccomp>,
    host_process: Option<bool>,
}

impl ToJson for ContainerSecurity {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "privileged", &self.privileged);
        put(&mut m, "runAsUser", &self.run_as_user);
        put(&mut m, "runAsGroup", &self.run_as_group);
        put(&mut m, "runAsNonRoot", &self.run_as_non_root);
        put(
            &mut m,
            "allowPrivilegeEscalation",
            &self.allow_privilege_escalation,
        );
        put(
            &mut m,
            "readOnlyRootFilesystem",
            &self.read_only_root_filesystem,
        );
        put(&mut m, "capabilities", &self.capabilities);
        put(&mut m, "seccompProfile", &self.seccomp_profile);
        if let Some(h) = self.host_process {
            m.insert("windowsOptions".into(), json!({ "hostProcess": h }));
        }
        Value::Object(m)
    }
}

/// An environment variable.
#[derive(Arbitrary, Debug)]
pub struct Env {
    tmpdir: bool,
    name: String,
    value: Field<String>,
}

impl ToJson for Env {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        let name = if self.tmpdir { "TMPDIR" } else { &self.name };
        m.insert("name".into(), Value::String(name.to_owned()));
        put(&mut m, "value", &self.value);
        Value::Object(m)
    }
}

/// A volume mount.
#[derive(Arbitrary, Debug)]
pub struct Mount {
    name: Field<Name>,
    mount_path: Field<MountPath>,
    read_only: Option<bool>,
}

impl ToJson for Mount {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name);
        put(&mut m, "mountPath", &self.mount_path);
        if let Some(r) = self.read_only {
            m.insert("readOnly".into(), Value::Bool(r));
        }
        Value::Object(m)
    }
}

/// A container.
#[derive(Arbitrary, Debug)]
pub struct Container {
    name: Field<Name>,
    image: Field<String>,
    security_context: Field<ContainerSecurity>,
    resources: Field<Resources>,
    env: Field<Vec<Env>>,
    volume_mounts: Field<Vec<Mount>>,
    host_port: Option<i64>,
    probes: bool,
    restart_policy_always: bool,
}

impl ToJson for Container {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name);
        put(&mut m, "image", &self.image);
        put(&mut m, "securityContext", &self.security_context);
        put(&mut m, "resources", &self.resources);
        put(&mut m, "env", &self.env);
        put(&mut m, "volumeMounts", &self.volume_mounts);
        if let Some(port) = self.host_port {
            m.insert(
                "ports".into(),
                json!([{"containerPort": 8080, "hostPort": port}]),
            );
        }
        if self.probes {
            m.insert("livenessProbe".into(), json!({"httpGet": {"port": 8080}}));
            m.insert("readinessProbe".into(), json!({"httpGet": {"port": 8080}}));
        }
        if self.restart_policy_always {
            m.insert("restartPolicy".into(), json!("Always"));
        }
        Value::Object(m)
    }
}

/// A volume source.
#[derive(Arbitrary, Debug)]
pub enum VolumeSource {
    /// `emptyDir: {}`
    EmptyDir,
    /// `emptyDir` with a size limit.
    EmptyDirSized(Quantity),
    /// `configMap`
    ConfigMap,
    /// `hostPath`
    HostPath(String),
    /// No source.
    None,
    /// Anything under a source key.
    Junk(String, Json),
}

/// A volume.
#[derive(Arbitrary, Debug)]
pub struct Volume {
    name: Field<Name>,
    source: VolumeSource,
}

impl ToJson for Volume {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name);
        match &self.source {
            VolumeSource::EmptyDir => {
                m.insert("emptyDir".into(), json!({}));
            }
            VolumeSource::EmptyDirSized(q) => {
                m.insert("emptyDir".into(), json!({ "sizeLimit": q.to_json() }));
            }
            VolumeSource::ConfigMap => {
                m.insert("configMap".into(), json!({"name": "config"}));
            }
            VolumeSource::HostPath(p) => {
                m.insert("hostPath".into(), json!({ "path": p }));
            }
            VolumeSource::None => {}
            VolumeSource::Junk(k, v) => {
                m.insert(k.clone(), v.to_json());
            }
        }
        Value::Object(m)
    }
}

/// The pod's `securityContext`.
#[derive(Arbitrary, Debug)]
pub struct PodSecurity {
    run_as_user: Field<i64>,
    run_as_group: Field<i64>,
    run_as_non_root: Field<bool>,
    fs_group: Field<i64>,
    fs_group_change_policy: Field<String>,
    seccomp_profile: Field<Seccomp>,
    host_process: Option<bool>,
    extra: Option<(String, Json)>,
}

impl ToJson for PodSecurity {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "runAsUser", &self.run_as_user);
        put(&mut m, "runAsGroup", &self.run_as_group);
        put(&mut m, "runAsNonRoot", &self.run_as_non_root);
        put(&mut m, "fsGroup", &self.fs_group);
        put(&mut m, "fsGroupChangePolicy", &self.fs_group_change_policy);
        put(&mut m, "seccompProfile", &self.seccomp_profile);
        if let Some(h) = self.host_process {
            m.insert("windowsOptions".into(), json!({ "hostProcess": h }));
        }
        if let Some((k, v)) = &self.extra {
            m.insert(k.clone(), v.to_json());
        }
        Value::Object(m)
    }
}

/// A pod spec.
#[derive(Arbitrary, Debug)]
pub struct PodSpec {
    security_context: Field<PodSecurity>,
    containers: Field<Vec<Field<Container>>>,
    init_containers: Field<Vec<Field<Container>>>,
    ephemeral_containers: Field<Vec<Field<Container>>>,
    volumes: Field<Vec<Field<Volume>>>,
    os_name: Field<String>,
    windows_node_selector: bool,
    host_network: Field<bool>,
    host_pid: Field<bool>,
    resources: Field<Resources>,
}

impl ToJson for PodSpec {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "securityContext", &self.security_context);
        put(&mut m, "initContainers", &self.init_containers);
        put(&mut m, "containers", &self.containers);
        put(&mut m, "ephemeralContainers", &self.ephemeral_containers);
        put(&mut m, "volumes", &self.volumes);
        if !matches!(self.os_name, Field::Absent) {
            m.insert("os".into(), json!({ "name": self.os_name.to_json() }));
        }
        if self.windows_node_selector {
            m.insert(
                "nodeSelector".into(),
                json!({"kubernetes.io/os": "windows"}),
            );
        }
        put(&mut m, "hostNetwork", &self.host_network);
        put(&mut m, "hostPID", &self.host_pid);
        put(&mut m, "resources", &self.resources);
        Value::Object(m)
    }
}

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

fn annotations(list: &[Annotation]) -> Value {
    let mut m = Map::new();
    for a in list {
        let (k, v) = match a {
            Annotation::Skip(s) => ("kube-harden.io/skip".to_owned(), json!(s)),
            Annotation::SkipNames(idx) => {
                let names: Vec<&str> = idx
                    .iter()
                    .filter_map(|i| ChangeName::ALL.get(usize::from(*i) % ChangeName::ALL.len()))
                    .map(|n| n.as_str())
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
                &self.metadata_annotations.map_junk(),
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
                &self.template_annotations.map_junk(),
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

impl Field<Vec<Annotation>> {
    /// The field with a set list replaced by `Absent` (set lists are rendered separately).
    fn map_junk(&self) -> Field<Json> {
        match self {
            Field::Absent | Field::Set(_) => Field::Absent,
            Field::Null => Field::Null,
            Field::Junk(j) => Field::Junk(j.clone()),
        }
    }
}

impl Clone for Json {
    fn clone(&self) -> Self {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(*b),
            Json::Int(i) => Json::Int(*i),
            Json::Float(f) => Json::Float(*f),
            Json::Str(s) => Json::Str(s.clone()),
            Json::Array(a) => Json::Array(a.clone()),
            Json::Object(o) => Json::Object(o.clone()),
        }
    }
}
