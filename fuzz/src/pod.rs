//! The pod spec: containers, volumes, security contexts and resources, with names and values that
//! matter to the rules (and that collide on purpose) beside arbitrary ones.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use crate::json::{Field, Json, ToJson, put};

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
