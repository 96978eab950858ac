//! The checks on hand-written pod specs (each check failing and passing, the exemptions), the
//! messages, and the check IDs. PSA's own fixtures are run in tests/it/psa_fixtures.rs.

use std::collections::BTreeSet;

use serde_json::json;

use super::pod::APPARMOR_ANNOTATION_PREFIX;
use super::*;

/// A pod spec that passes `restricted` (the fixtures' `base.yaml`).
fn base() -> Value {
    let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    json!({
        "initContainers": [{"name": "init", "image": "pause", "securityContext": sc}],
        "containers": [{"name": "app", "image": "pause", "securityContext": sc}],
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
    })
}

/// RFC 7386 merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

fn base_with(patch: Value) -> Value {
    let mut spec = base();
    merge(&mut spec, patch);
    spec
}

fn checks(metadata: Option<&Value>, spec: &Value) -> Vec<Check> {
    check_restricted(metadata, spec)
        .into_iter()
        .map(|v| v.check)
        .collect()
}

#[test]
fn spec_cases() {
    use Check::*;
    let bare_windows = json!({
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": true},
        "initContainers": [{"name": "init"}],
        "containers": [{"name": "app"}],
    });
    let cases: Vec<(&str, Value, Vec<Check>)> = vec![
        ("base passes", base(), vec![]),
        (
            "windows: no allowPrivilegeEscalation, capabilities or seccomp needed",
            bare_windows.clone(),
            vec![],
        ),
        (
            "windows: runAsNonRoot still required",
            {
                let mut spec = bare_windows.clone();
                merge(&mut spec, json!({"securityContext": null}));
                spec
            },
            vec![RunAsNonRoot],
        ),
        (
            "windows: baseline capabilities and seccomp are overridden by exempt checks",
            {
                let mut spec = bare_windows.clone();
                merge(
                    &mut spec,
                    json!({"containers": [{"name": "app", "securityContext": {
                        "capabilities": {"add": ["NET_RAW"]},
                        "seccompProfile": {"type": "Unconfined"},
                    }}]}),
                );
                spec
            },
            vec![],
        ),
        (
            "windows: hostProcess is still forbidden",
            {
                let mut spec = bare_windows.clone();
                merge(
                    &mut spec,
                    json!({"securityContext": {"windowsOptions": {"hostProcess": true}}}),
                );
                spec
            },
            vec![WindowsHostProcess],
        ),
        (
            "os linux is not exempt",
            base_with(json!({"os": {"name": "linux"}, "containers": [{"name": "app"}]})),
            vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
        ),
        (
            "runAsNonRoot set on every container instead of the pod",
            base_with(json!({
                "securityContext": {"runAsNonRoot": null},
                "initContainers": [{"name": "init", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true}}],
                "containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true}}],
            })),
            vec![],
        ),
        (
            "runAsNonRoot set on some containers only",
            base_with(json!({
                "securityContext": {"runAsNonRoot": null},
                "containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true}}],
            })),
            vec![RunAsNonRoot],
        ),
        (
            "runAsNonRoot false on a container beats true on the pod",
            base_with(json!({"containers": [{"name": "app", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": false}}]})),
            vec![RunAsNonRoot],
        ),
        (
            "ephemeral containers are counted",
            base_with(json!({"ephemeralContainers": [{"name": "debug"}]})),
            vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
        ),
        (
            "ephemeral container without runAsNonRoot when only containers set it",
            base_with(json!({
                "securityContext": {"runAsNonRoot": null},
                "initContainers": [],
                "containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true}}],
                "ephemeralContainers": [{"name": "debug", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            })),
            vec![RunAsNonRoot],
        ),
        (
            "hostUsers false relaxes runAsNonRoot and runAsUser, not procMount",
            base_with(json!({
                "hostUsers": false,
                "securityContext": {"runAsNonRoot": false, "runAsUser": 0},
                "containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "procMount": "Unmasked"}}],
            })),
            vec![ProcMount],
        ),
        (
            "hostUsers true relaxes nothing",
            base_with(json!({"hostUsers": true, "securityContext": {"runAsUser": 0}})),
            vec![RunAsUser],
        ),
        (
            "a volume without a source is an emptyDir; image volumes are allowed",
            base_with(json!({"volumes": [
                {"name": "implicit"},
                {"name": "img", "image": {"reference": "registry.k8s.io/pause"}},
            ]})),
            vec![],
        ),
        (
            "hostPath fails both volume checks",
            base_with(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]})),
            vec![HostPathVolumes, RestrictedVolumes],
        ),
        (
            "seccompProfile without a type is not RuntimeDefault",
            base_with(json!({"securityContext": {"seccompProfile": {"type": null}}})),
            vec![SeccompProfileBaseline, SeccompProfileRestricted],
        ),
        (
            "seccomp on every container instead of the pod",
            base_with(json!({
                "securityContext": {"seccompProfile": null},
                "initContainers": [{"name": "init", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}}],
                "containers": [{"name": "app", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"}}}],
            })),
            vec![],
        ),
        (
            "AppArmor Unconfined in the pod field",
            base_with(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
            vec![AppArmorProfile],
        ),
        (
            "empty probe host is allowed; a sidecar's host is not",
            base_with(json!({
                "containers": [{"name": "app", "livenessProbe": {"httpGet": {"host": "", "port": 80}},
                    "securityContext": {"allowPrivilegeEscalation": false,
                        "capabilities": {"drop": ["ALL"]}}}],
                "initContainers": [{"name": "init", "restartPolicy": "Always",
                    "lifecycle": {"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 80}}},
                    "securityContext": {"allowPrivilegeEscalation": false,
                        "capabilities": {"drop": ["ALL"]}}}],
            })),
            vec![HostProbesAndHostLifecycle],
        ),
        (
            "hostPort 0 is not a host port",
            base_with(
                json!({"containers": [{"name": "app", "ports": [{"containerPort": 80, "hostPort": 0}],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
            ),
            vec![],
        ),
        (
            "SELinux container_engine_t is allowed, a user is not",
            base_with(json!({"securityContext": {"seLinuxOptions": {
                "type": "container_engine_t", "user": "system_u"}}})),
            vec![SeLinuxOptions],
        ),
        (
            "capability names are exact: lower case or CAP_ prefix fail",
            base_with(json!({"containers": [{"name": "app", "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["all"], "add": ["chown", "CAP_CHOWN", "NET_BIND_SERVICE"]}}}]})),
            vec![CapabilitiesBaseline, CapabilitiesRestricted],
        ),
        (
            "sysctls from v1.32 are safe",
            base_with(json!({"securityContext": {"sysctls": [
                {"name": "net.ipv4.tcp_wmem", "value": "4096 65536 16777216"},
                {"name": "net.ipv4.ip_local_reserved_ports", "value": "30000"}]}})),
            vec![],
        ),
        ("a spec that is not an object", json!("nonsense"), vec![]),
        (
            "containers that are not objects fail rather than panic",
            base_with(json!({"containers": [1, null, "x"]})),
            vec![AllowPrivilegeEscalation, CapabilitiesRestricted],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(checks(None, &spec), want, "{name}");
    }
}

#[test]
fn app_armor_annotations() {
    let prefix = APPARMOR_ANNOTATION_PREFIX;
    let cases = [
        ("runtime/default", true),
        ("localhost/foo", true),
        ("localhost/", true),
        ("", true),
        ("unconfined", false),
        ("unknown", false),
    ];
    for (value, passes) in cases {
        // Any key with the prefix counts, even one naming no container.
        let metadata = json!({"annotations": {format!("{prefix}nosuchcontainer"): value}});
        let got = checks(Some(&metadata), &base());
        let want = if passes {
            vec![]
        } else {
            vec![Check::AppArmorProfile]
        };
        assert_eq!(got, want, "annotation value {value:?}");
    }
}

#[test]
fn messages_name_containers_and_fields() {
    let spec = base_with(json!({
        "containers": [{"name": "a"}, {"name": "b", "securityContext": {
            "allowPrivilegeEscalation": true, "capabilities": {"drop": ["ALL"]}}}],
    }));
    let violations = check_restricted(None, &spec);
    let messages: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "allowPrivilegeEscalation: allowPrivilegeEscalation != false \
             (containers \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false)",
            "capabilities_restricted: unrestricted capabilities \
             (container \"a\" must set securityContext.capabilities.drop=[\"ALL\"])",
        ]
    );
    for message in messages {
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn check_ids_are_distinct_and_ordered() {
    assert_eq!(Check::ALL.len(), 18);
    let ids: BTreeSet<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(ids.len(), Check::ALL.len());
    assert!(Check::ALL.windows(2).all(|w| w[0] < w[1]));
}
