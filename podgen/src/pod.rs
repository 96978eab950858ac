//! The pod spec: containers, volumes, security contexts and resources, with names and values that
//! matter to the rules (and that collide on purpose) beside arbitrary ones.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use crate::json::{Field, Json, Render, ToJson, put};

/// Names that collide on purpose (containers, volumes).
#[derive(Arbitrary, Debug)]
pub enum Name {
    /// `app`
    App,
    /// `sidecar`
    Sidecar,
    /// `kube-harden-tmp`, the volume kube-harden adds for `/tmp`.
    KubeHardenTmp,
    /// `kube-harden-var-run`, the one it adds for `/var/run`.
    KubeHardenVarRun,
    /// Anything.
    Other(String),
}

impl ToJson for Name {
    fn write(&self, _: Render) -> Value {
        Value::String(match self {
            Name::App => "app".into(),
            Name::Sidecar => "sidecar".into(),
            Name::KubeHardenTmp => "kube-harden-tmp".into(),
            Name::KubeHardenVarRun => "kube-harden-var-run".into(),
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
    fn write(&self, _: Render) -> Value {
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
    /// A bare number (well-typed: its magnitude, as a string).
    Number(i64),
    /// Any string (well-typed: a quantity of `Ki`, its length).
    Text(String),
}

impl ToJson for Quantity {
    fn write(&self, r: Render) -> Value {
        match self {
            Quantity::Milli(n) => Value::String(format!("{n}m")),
            Quantity::Mebi(n) => Value::String(format!("{n}Mi")),
            Quantity::Number(n) if r.junk => json!(n),
            Quantity::Number(n) => Value::String(n.unsigned_abs().to_string()),
            Quantity::Text(s) if r.junk => Value::String(s.clone()),
            Quantity::Text(s) => Value::String(format!("{}Ki", s.len())),
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "cpu", &self.cpu, r);
        put(&mut m, "memory", &self.memory, r);
        if let Some((k, v)) = &self.other {
            m.insert(k.clone(), v.write(r));
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "requests", &self.requests, r);
        put(&mut m, "limits", &self.limits, r);
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
    fn write(&self, _: Render) -> Value {
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "add", &self.add, r);
        put(&mut m, "drop", &self.drop, r);
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
    fn write(&self, _: Render) -> Value {
        Value::String(match self {
            SeccompType::RuntimeDefault => "RuntimeDefault".into(),
            SeccompType::Localhost => "Localhost".into(),
            SeccompType::Unconfined => "Unconfined".into(),
            SeccompType::Other(s) => s.clone(),
        })
    }
}

impl ToJson for Seccomp {
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "type", &self.kind, r);
        put(&mut m, "localhostProfile", &self.localhost_profile, r);
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "privileged", &self.privileged, r);
        put(&mut m, "runAsUser", &self.run_as_user, r);
        put(&mut m, "runAsGroup", &self.run_as_group, r);
        put(&mut m, "runAsNonRoot", &self.run_as_non_root, r);
        put(
            &mut m,
            "allowPrivilegeEscalation",
            &self.allow_privilege_escalation,
            r,
        );
        put(
            &mut m,
            "readOnlyRootFilesystem",
            &self.read_only_root_filesystem,
            r,
        );
        put(&mut m, "capabilities", &self.capabilities, r);
        put(&mut m, "seccompProfile", &self.seccomp_profile, r);
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        let name = if self.tmpdir { "TMPDIR" } else { &self.name };
        m.insert("name".into(), Value::String(name.to_owned()));
        put(&mut m, "value", &self.value, r);
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name, r);
        put(&mut m, "mountPath", &self.mount_path, r);
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
    env_from: bool,
    future_field: bool,
}

impl ToJson for Container {
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name, r);
        put(&mut m, "image", &self.image, r);
        put(&mut m, "securityContext", &self.security_context, r);
        put(&mut m, "resources", &self.resources, r);
        put(&mut m, "env", &self.env, r);
        put(&mut m, "volumeMounts", &self.volume_mounts, r);
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
        if self.env_from {
            m.insert("envFrom".into(), json!([{"configMapRef": {"name": "env"}}]));
        }
        if self.future_field {
            // A field this version of the API does not know: it must survive untouched.
            m.insert("futureField".into(), json!({"nested": [1, "two"]}));
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "name", &self.name, r);
        match &self.source {
            VolumeSource::EmptyDir => {
                m.insert("emptyDir".into(), json!({}));
            }
            VolumeSource::EmptyDirSized(q) => {
                m.insert("emptyDir".into(), json!({ "sizeLimit": q.write(r) }));
            }
            VolumeSource::ConfigMap => {
                m.insert("configMap".into(), json!({"name": "config"}));
            }
            VolumeSource::HostPath(p) => {
                m.insert("hostPath".into(), json!({ "path": p }));
            }
            VolumeSource::None => {}
            VolumeSource::Junk(k, v) if r.junk => {
                m.insert(k.clone(), v.write(r));
            }
            VolumeSource::Junk(..) => {}
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
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "runAsUser", &self.run_as_user, r);
        put(&mut m, "runAsGroup", &self.run_as_group, r);
        put(&mut m, "runAsNonRoot", &self.run_as_non_root, r);
        put(&mut m, "fsGroup", &self.fs_group, r);
        put(
            &mut m,
            "fsGroupChangePolicy",
            &self.fs_group_change_policy,
            r,
        );
        put(&mut m, "seccompProfile", &self.seccomp_profile, r);
        if let Some(h) = self.host_process {
            m.insert("windowsOptions".into(), json!({ "hostProcess": h }));
        }
        if let Some((k, v)) = &self.extra
            && r.junk
        {
            m.insert(k.clone(), v.write(r));
        }
        Value::Object(m)
    }
}

/// `os.name`.
#[derive(Arbitrary, Debug)]
pub enum OsName {
    /// `linux`
    Linux,
    /// `windows`: the Linux-only settings must not be added.
    Windows,
    /// Anything.
    Other(String),
}

impl ToJson for OsName {
    fn write(&self, _: Render) -> Value {
        Value::String(match self {
            OsName::Linux => "linux".into(),
            OsName::Windows => "windows".into(),
            OsName::Other(s) => s.clone(),
        })
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
    os_name: Field<OsName>,
    windows_node_selector: bool,
    host_network: Field<bool>,
    host_pid: Field<bool>,
    resources: Field<Resources>,
}

impl ToJson for PodSpec {
    fn write(&self, r: Render) -> Value {
        let mut m = Map::new();
        put(&mut m, "securityContext", &self.security_context, r);
        put(&mut m, "initContainers", &self.init_containers, r);
        put(&mut m, "containers", &self.containers, r);
        put(&mut m, "ephemeralContainers", &self.ephemeral_containers, r);
        put(&mut m, "volumes", &self.volumes, r);
        let os_junk = matches!(self.os_name, Field::Junk(_)) && !r.junk;
        if !matches!(self.os_name, Field::Absent) && !os_junk {
            m.insert("os".into(), json!({ "name": self.os_name.write(r) }));
        }
        if self.windows_node_selector {
            m.insert(
                "nodeSelector".into(),
                json!({"kubernetes.io/os": "windows"}),
            );
        }
        put(&mut m, "hostNetwork", &self.host_network, r);
        put(&mut m, "hostPID", &self.host_pid, r);
        put(&mut m, "resources", &self.resources, r);
        Value::Object(m)
    }
}
