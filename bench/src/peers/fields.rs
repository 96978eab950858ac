//! The fields kube-harden adds to the bench pod (`controlplane::pod`), checked one by one on a
//! stored pod, and the fields of the bench pod that every mutation must keep.

use serde_json::Value;

/// One checked field: its name in the tables and whether a stored pod has it.
pub struct Field {
    /// Short name, as in the tables (kube-harden's change names where there is one).
    pub name: &'static str,
    /// Whether the pod has it.
    pub check: fn(&Value) -> bool,
}

fn at<'a>(pod: &'a Value, pointer: &str) -> Option<&'a Value> {
    pod.pointer(pointer)
}

fn is(pod: &Value, pointer: &str, want: Value) -> bool {
    at(pod, pointer) == Some(&want)
}

/// The containers of the pod (empty if none).
fn containers(pod: &Value) -> &[Value] {
    at(pod, "/spec/containers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Every container satisfies `f` (and there is at least one).
fn every(pod: &Value, f: impl Fn(&Value) -> bool) -> bool {
    let c = containers(pod);
    !c.is_empty() && c.iter().all(f)
}

/// The volume mounted at /tmp in `container`, looked up among the pod's volumes.
fn tmp_volume<'a>(pod: &'a Value, container: &Value) -> Option<&'a Value> {
    let mount = container
        .get("volumeMounts")?
        .as_array()?
        .iter()
        .find(|m| m.get("mountPath").and_then(Value::as_str) == Some("/tmp"))?;
    let name = mount.get("name")?;
    at(pod, "/spec/volumes")?
        .as_array()?
        .iter()
        .find(|v| v.get("name") == Some(name))
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

fn container_is(pointer: &'static str, want: Value) -> impl Fn(&Value) -> bool {
    move |c| c.pointer(pointer) == Some(&want)
}

/// The fields kube-harden's default policy adds to the bench pod (its annotation aside), in the
/// order of the tables.
pub const ADDED: [Field; 15] = [
    Field {
        name: "runAsNonRoot",
        check: |p| is(p, "/spec/securityContext/runAsNonRoot", true.into()),
    },
    Field {
        name: "runAsUser",
        check: |p| is(p, "/spec/securityContext/runAsUser", 2866.into()),
    },
    Field {
        name: "runAsGroup",
        check: |p| is(p, "/spec/securityContext/runAsGroup", 2866.into()),
    },
    Field {
        name: "fsGroup",
        check: |p| is(p, "/spec/securityContext/fsGroup", 2866.into()),
    },
    Field {
        name: "fsGroupChangePolicy",
        check: |p| {
            is(
                p,
                "/spec/securityContext/fsGroupChangePolicy",
                "OnRootMismatch".into(),
            )
        },
    },
    Field {
        name: "seccompProfile",
        check: |p| {
            is(
                p,
                "/spec/securityContext/seccompProfile/type",
                "RuntimeDefault".into(),
            )
        },
    },
    Field {
        name: "allowPrivilegeEscalation",
        check: |p| {
            every(
                p,
                container_is("/securityContext/allowPrivilegeEscalation", false.into()),
            )
        },
    },
    Field {
        name: "capabilities drop ALL",
        check: |p| {
            every(p, |c| {
                c.pointer("/securityContext/capabilities/drop")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x == "ALL"))
            })
        },
    },
    Field {
        name: "readOnlyRootFilesystem",
        check: |p| {
            every(
                p,
                container_is("/securityContext/readOnlyRootFilesystem", true.into()),
            )
        },
    },
    Field {
        name: "/tmp emptyDir 64Mi",
        check: |p| {
            every(p, |c| {
                tmp_volume(p, c).and_then(|v| v.pointer("/emptyDir/sizeLimit"))
                    == Some(&"64Mi".into())
            })
        },
    },
    Field {
        name: "TMPDIR=/tmp",
        check: |p| {
            every(p, |c| {
                env(c, "TMPDIR").and_then(|e| e.get("value")) == Some(&"/tmp".into())
            })
        },
    },
    Field {
        name: "requests.cpu",
        check: |p| every(p, container_is("/resources/requests/cpu", "100m".into())),
    },
    Field {
        name: "requests.memory",
        check: |p| {
            every(
                p,
                container_is("/resources/requests/memory", "128Mi".into()),
            )
        },
    },
    Field {
        name: "limits.cpu",
        check: |p| every(p, container_is("/resources/limits/cpu", "500m".into())),
    },
    Field {
        name: "limits.memory",
        check: |p| every(p, container_is("/resources/limits/memory", "512Mi".into())),
    },
];

/// The bench pod's own fields, which no mutation may drop or change.
pub fn kept(pod: &Value) -> bool {
    let c = containers(pod);
    c.len() == 1
        && c[0].get("image") == Some(&"registry.example.com/shop/web:1.27.3".into())
        && env(&c[0], "MODE").and_then(|e| e.get("value")) == Some(&"production".into())
        && c[0].pointer("/ports/0/containerPort") == Some(&8080.into())
        && is(pod, "/metadata/labels/app", "bench".into())
}

/// How many of [`ADDED`] the pod has.
pub fn count(pod: &Value) -> usize {
    ADDED.iter().filter(|f| (f.check)(pod)).count()
}

/// The pod has every field of [`ADDED`] and kept its own.
pub fn complete(pod: &Value) -> bool {
    count(pod) == ADDED.len() && kept(pod)
}

#[cfg(test)]
mod tests;
