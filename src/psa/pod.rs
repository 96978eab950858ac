//! The pod under check (its containers in PSA's order, and the exemptions worked out once),
//! and the helpers the checks share: reading JSON paths as Kubernetes does (missing and `null`
//! both mean "not set") and wording messages as PSA does.

use serde_json::{Map, Value};

/// The beta AppArmor annotation of a container: this prefix, then its name.
pub(super) const APPARMOR_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// The pod under check, with what several checks need worked out once.
pub(super) struct Pod<'a> {
    pub(super) annotations: Option<&'a Map<String, Value>>,
    pub(super) spec: &'a Value,
    /// initContainers, containers, ephemeralContainers: PSA's visiting order.
    pub(super) containers: Vec<&'a Value>,
    /// `spec.os.name: windows`: exempt from the checks of Linux-only fields.
    pub(super) windows: bool,
    /// `spec.hostUsers: false`: exempt from `runAsNonRoot` and `runAsUser` (policy v1.35+).
    pub(super) user_namespace: bool,
}

impl<'a> Pod<'a> {
    /// The pod of `metadata` (for its annotations) and `spec`.
    pub(super) fn new(metadata: Option<&'a Value>, spec: &'a Value) -> Self {
        let containers = ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .filter_map(|key| spec.get(key).and_then(Value::as_array))
            .flatten()
            .collect();
        Pod {
            annotations: metadata
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object),
            spec,
            containers,
            windows: at(spec, &["os", "name"]).and_then(Value::as_str) == Some("windows"),
            user_namespace: at(spec, &["hostUsers"]).and_then(Value::as_bool) == Some(false),
        }
    }
}

impl<'a> Pod<'a> {
    /// `spec.securityContext[path]`, set and not null.
    pub(super) fn pod_sc(&self, path: &[&str]) -> Option<&'a Value> {
        at(self.spec, &["securityContext"]).and_then(|sc| at(sc, path))
    }

    /// The names of the containers for which `bad` holds.
    pub(super) fn bad_containers(&self, mut bad: impl FnMut(&'a Value) -> bool) -> Vec<&'a str> {
        self.containers
            .iter()
            .filter(|c| bad(c))
            .map(|c| name(c))
            .collect()
    }

    /// `spec.volumes`.
    pub(super) fn volumes(&self) -> impl Iterator<Item = &'a Value> {
        let spec = self.spec;
        spec.get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }
}

/// The value at `path` under `value`, through objects only; `None` when missing or null.
pub(super) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// `container.securityContext[path]`, set and not null.
pub(super) fn container_sc<'a>(container: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(container, &["securityContext"]).and_then(|sc| at(sc, path))
}

/// A container's or volume's `name` (empty when missing).
pub(super) fn name(value: &Value) -> &str {
    value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) fn is_true(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool) == Some(true)
}

pub(super) fn is_zero(value: Option<&Value>) -> bool {
    value.and_then(Value::as_f64) == Some(0.0)
}

/// Seccomp `RuntimeDefault` or `Localhost` (a profile without a type is not).
pub(super) fn valid_seccomp(profile: &Value) -> bool {
    matches!(
        at(profile, &["type"]).and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// The entries of a list of strings; anything else reads as its JSON text.
pub(super) fn strings(value: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(plain)
}

/// A string as itself, anything else as its JSON text.
pub(super) fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Like [`plain`], with "not set" as the empty string (Go's zero value, as PSA reports it).
pub(super) fn plain_or_empty(value: Option<&Value>) -> String {
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
