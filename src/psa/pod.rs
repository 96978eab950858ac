//! The pod under check (its containers in PSA's order, and the exemptions worked out once),
//! and the helpers the checks share: reading JSON paths as Kubernetes does (missing and `null`
//! both mean "not set") and wording messages as PSA does.

use std::ops::Deref;

use crate::dom::{Json, Object};

use crate::harden::json;

/// The beta AppArmor annotation of a container: this prefix, then its name.
pub(super) const APPARMOR_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// A pod spec as the checks read it: the spec as written, and what to read in place of its
/// own `securityContext`s and beside its volumes, container environments and mounts (for
/// kube-harden, its additions: the hardened pod without a copy of the spec).
#[derive(Debug, Clone)]
pub struct PodSpec<'a> {
    /// The pod spec (the value of a Pod's `spec`).
    pub spec: &'a Json<'a>,
    /// The pod's `securityContext`.
    pub security_context: Option<&'a Json<'a>>,
    /// Every container, in PSA's order: initContainers, containers, ephemeralContainers.
    pub containers: Vec<Container<'a>>,
    /// Volumes after the spec's own.
    pub added_volumes: &'a [Json<'a>],
}

impl<'a> PodSpec<'a> {
    /// The spec as written.
    pub fn of(spec: &'a Json<'a>) -> Self {
        PodSpec {
            spec,
            security_context: at(spec, &["securityContext"]),
            containers: CONTAINER_LISTS
                .into_iter()
                .flat_map(|list| list_of(spec, list).map(move |c| Container::of(list, c)))
                .collect(),
            added_volumes: &[],
        }
    }

    /// The volumes: the spec's, then the added ones.
    pub fn volumes(&self) -> impl Iterator<Item = &'a Json<'a>> + use<'a> {
        let spec = self.spec;
        json::member(spec, "volumes")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .chain(self.added_volumes)
    }
}

/// One container of a [`PodSpec`]; reads as its value (`Deref`), except for the parts it holds.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    /// `initContainers`, `containers` or `ephemeralContainers`.
    pub list: &'static str,
    /// The container as written.
    pub value: &'a Json<'a>,
    /// Its `securityContext`.
    pub security_context: Option<&'a Json<'a>>,
    /// `env` entries after its own.
    pub added_env: &'a [Json<'a>],
    /// `volumeMounts` after its own.
    pub added_volume_mounts: &'a [Json<'a>],
}

impl<'a> Container<'a> {
    /// Container `value` of `list`, as written.
    pub fn of(list: &'static str, value: &'a Json<'a>) -> Self {
        Container {
            list,
            value,
            security_context: at(value, &["securityContext"]),
            added_env: &[],
            added_volume_mounts: &[],
        }
    }

    /// Its `env` entries: its own, then the added ones.
    pub fn env(&self) -> impl Iterator<Item = &'a Json<'a>> + use<'a> {
        list_of(self.value, "env").chain(self.added_env)
    }

    /// Its `volumeMounts`: its own, then the added ones.
    pub fn volume_mounts(&self) -> impl Iterator<Item = &'a Json<'a>> + use<'a> {
        list_of(self.value, "volumeMounts").chain(self.added_volume_mounts)
    }
}

impl<'a> Deref for Container<'a> {
    type Target = Json<'a>;

    fn deref(&self) -> &Json<'a> {
        self.value
    }
}

/// The elements of `value[key]` when it is a list.
fn list_of<'a>(value: &'a Json<'a>, key: &str) -> impl Iterator<Item = &'a Json<'a>> + use<'a> {
    json::member(value, key)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

/// The container lists of a pod spec, in PSA's order (the order the kubelet starts them).
pub(crate) const CONTAINER_LISTS: [&str; 3] =
    ["initContainers", "containers", "ephemeralContainers"];

/// The pod under check, with what several checks need worked out once.
pub(super) struct Pod<'a> {
    pub(super) annotations: Option<&'a Object<'a>>,
    pub(super) spec: &'a Json<'a>,
    security_context: Option<&'a Json<'a>>,
    /// initContainers, containers, ephemeralContainers: PSA's visiting order.
    pub(super) containers: &'a [Container<'a>],
    pod: &'a PodSpec<'a>,
    /// `spec.os.name: windows`: exempt from the checks of Linux-only fields.
    pub(super) windows: bool,
    /// `spec.hostUsers: false`: exempt from `runAsNonRoot` and `runAsUser` (policy v1.35+).
    pub(super) user_namespace: bool,
}

impl<'a> Pod<'a> {
    /// The pod of `metadata` (for its annotations) and `spec`.
    pub(super) fn new(metadata: Option<&'a Json<'a>>, pod: &'a PodSpec<'a>) -> Self {
        let spec = pod.spec;
        Pod {
            annotations: metadata
                .and_then(|m| json::member(m, "annotations"))
                .and_then(Json::as_object),
            spec,
            security_context: pod.security_context,
            containers: &pod.containers,
            pod,
            windows: at(spec, &["os", "name"]).and_then(Json::as_str) == Some("windows"),
            user_namespace: at(spec, &["hostUsers"]).and_then(Json::as_bool) == Some(false),
        }
    }
}

impl<'a> Pod<'a> {
    /// `spec.securityContext[path]`, set and not null.
    pub(super) fn pod_sc(&self, path: &[&str]) -> Option<&'a Json<'a>> {
        self.security_context.and_then(|sc| at(sc, path))
    }

    /// The names of the containers for which `bad` holds.
    pub(super) fn bad_containers(
        &self,
        mut bad: impl FnMut(&Container<'a>) -> bool,
    ) -> Vec<&'a str> {
        self.containers
            .iter()
            .filter(|c| bad(c))
            .map(|c| name(c.value))
            .collect()
    }

    /// `spec.volumes`, then the added ones.
    pub(super) fn volumes(&self) -> impl Iterator<Item = &'a Json<'a>> + use<'a> {
        self.pod.volumes()
    }
}

/// The value at `path` under `value`, through objects only; `None` when missing or null.
pub(super) fn at<'a>(value: &'a Json<'a>, path: &[&str]) -> Option<&'a Json<'a>> {
    path.iter()
        .try_fold(value, |v, key| json::member(v, key))
        .filter(|v| !v.is_null())
}

/// `container.securityContext[path]`, set and not null.
pub(super) fn container_sc<'a>(container: &Container<'a>, path: &[&str]) -> Option<&'a Json<'a>> {
    container.security_context.and_then(|sc| at(sc, path))
}

/// A container's or volume's `name` (empty when missing).
pub(super) fn name<'a>(value: &'a Json<'_>) -> &'a str {
    json::member(value, "name")
        .and_then(Json::as_str)
        .unwrap_or_default()
}

pub(super) fn is_true(value: Option<&Json<'_>>) -> bool {
    value.and_then(Json::as_bool) == Some(true)
}

pub(super) fn is_zero(value: Option<&Json<'_>>) -> bool {
    value.and_then(Json::as_f64) == Some(0.0)
}

/// Seccomp `RuntimeDefault` or `Localhost` (a profile without a type is not).
pub(super) fn valid_seccomp(profile: &Json<'_>) -> bool {
    matches!(
        at(profile, &["type"]).and_then(Json::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// The entries of a list of strings; anything else reads as its JSON text.
pub(super) fn strings<'a>(value: Option<&'a Json<'a>>) -> impl Iterator<Item = String> + 'a {
    value
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(plain)
}

/// A string as itself, anything else as its JSON text.
pub(super) fn plain(value: &Json<'_>) -> String {
    match value {
        Json::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Like [`plain`], with "not set" as the empty string (Go's zero value, as PSA reports it).
pub(super) fn plain_or_empty(value: Option<&Json<'_>>) -> String {
    value.map(plain).unwrap_or_default()
}

pub(super) fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 { singular } else { plural }
}

/// `"a", "b"`, as PSA's `joinQuote`.
pub(super) fn join_quote<I>(items: I) -> String
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
pub(super) fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}
