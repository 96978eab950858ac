//! What the author wrote holds. Opt-out annotations (all, or some changes),
//! explicit values (even insecure ones), and a privileged pod, admitted in a namespace without
//! Pod Security enforcement, which stays privileged and root.

use kube_harden::admission::Mode;
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::ledger::apply;
use kube_harden_e2e::{Harness, MODE_LABEL, Result, read_manifest, subset};
use serde_json::{Value, json};

use super::admission::legacy_pod;

/// Creates `pod` in `ns` (recording it) and checks the stored pod against the local rules.
async fn admit(h: &Harness, ns: &str, pod: &Value) -> Result<Value> {
    let hardened = h.expect_admission(Mode::Enforce, "CREATE", ns, pod)?;
    let stored = h.create(ns, pod).await?;
    subset(&apply(pod, &hardened)?["spec"], &stored["spec"])?;
    Ok(stored)
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

pub async fn opt_outs_explicit_values_and_privileged_pods_hold(h: &Harness) -> Result<()> {
    let ns = h.namespace("optout", &[(MODE_LABEL, "enforce")]).await?;

    // kube-harden.io/skip: "true": left untouched.
    let mut skipped = legacy_pod("skip-all");
    skipped["metadata"]["annotations"] = json!({"kube-harden.io/skip": "true"});
    let stored = admit(h, &ns, &skipped).await?;
    assert!(
        stored["metadata"]["annotations"]
            .get(HARDENED_ANNOTATION)
            .is_none()
    );
    assert!(
        stored["spec"]["securityContext"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    );
    assert!(stored["spec"].get("volumes").is_none());
    assert!(container(&stored, "app").get("securityContext").is_none());
    assert_eq!(container(&stored, "app")["resources"], json!({}));
    println!("skip=true: stored untouched");

    // A list of changes: examples/pod-opted-out.yaml skips runAsNonRoot, runAsUser and
    // readOnlyRootFilesystem; the rest applies.
    let opted = read_manifest(&h.repo().join("examples/pod-opted-out.yaml"))?;
    let stored = admit(h, &ns, &opted).await?;
    let psc = &stored["spec"]["securityContext"];
    let sc = &container(&stored, "app")["securityContext"];
    assert!(psc.get("runAsNonRoot").is_none() && sc.get("runAsNonRoot").is_none());
    assert!(psc.get("runAsUser").is_none() && sc.get("runAsUser").is_none());
    assert!(sc.get("readOnlyRootFilesystem").is_none());
    assert_eq!(psc["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let annotation = stored["metadata"]["annotations"][HARDENED_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    for skipped in ["runAsNonRoot", "runAsUser", "readOnlyRootFilesystem"] {
        assert!(!annotation.split(',').any(|n| n == skipped), "{annotation}");
    }
    println!(
        "skip=runAsNonRoot,runAsUser,readOnlyRootFilesystem: those left out, rest applied: {annotation}"
    );

    // Explicit values, insecure ones included, are kept; only missing fields are added.
    let explicit = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "explicit"},
        "spec": {
            "securityContext": {"runAsNonRoot": false, "runAsUser": 1000,
                                "seccompProfile": {"type": "Unconfined"}},
            "containers": [{
                "name": "app", "image": "example.com/app:1",
                "securityContext": {"readOnlyRootFilesystem": false,
                                    "allowPrivilegeEscalation": true},
                "env": [{"name": "TMPDIR", "value": "/var/tmp"}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}
            }]
        }
    });
    let stored = admit(h, &ns, &explicit).await?;
    let psc = &stored["spec"]["securityContext"];
    let app = container(&stored, "app");
    assert_eq!(psc["runAsNonRoot"], false);
    assert_eq!(psc["runAsUser"], 1000);
    assert_eq!(psc["seccompProfile"], json!({"type": "Unconfined"}));
    assert_eq!(app["securityContext"]["readOnlyRootFilesystem"], false);
    assert_eq!(app["securityContext"]["allowPrivilegeEscalation"], true);
    assert_eq!(app["env"], json!([{"name": "TMPDIR", "value": "/var/tmp"}]));
    assert_eq!(
        app["resources"]["requests"],
        json!({"cpu": "50m", "memory": "64Mi"})
    );
    assert!(
        app["resources"]["limits"].is_object(),
        "a limit is added next to the request"
    );
    assert_eq!(
        app["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    println!(
        "explicit values kept: runAsNonRoot=false, runAsUser=1000, Unconfined, rw root, escalation, TMPDIR"
    );

    // A privileged node agent beside a plain sidecar, in a namespace without PSA enforcement.
    let privileged = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "node-agent"},
        "spec": {
            "hostNetwork": true,
            "containers": [
                {"name": "agent", "image": "example.com/node-agent:2",
                 "securityContext": {"privileged": true}},
                {"name": "metrics", "image": "example.com/agent-metrics:2"}
            ]
        }
    });
    let stored = admit(h, &ns, &privileged).await?;
    let psc = &stored["spec"]["securityContext"];
    let agent = &container(&stored, "agent")["securityContext"];
    let metrics = &container(&stored, "metrics")["securityContext"];
    assert_eq!(agent["privileged"], true);
    for field in ["runAsUser", "runAsGroup", "runAsNonRoot"] {
        assert!(
            psc.get(field).is_none(),
            "pod-level {field} would make the agent non-root"
        );
        assert!(agent.get(field).is_none(), "agent {field}");
        assert!(
            metrics.get(field).is_some(),
            "the sidecar gets {field} itself"
        );
    }
    for field in [
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
    ] {
        assert!(agent.get(field).is_none(), "agent {field}: {agent}");
        assert!(metrics.get(field).is_some(), "sidecar {field}");
    }
    assert_eq!(psc["seccompProfile"], json!({"type": "RuntimeDefault"}));
    assert!(container(&stored, "agent")["resources"]["limits"].is_object());
    println!("privileged pod admitted: agent stays privileged and root; sidecar hardened");

    // A Windows pod only gets resources.
    let windows = read_manifest(&h.repo().join("examples/pod-windows.yaml"))?;
    let stored = admit(h, &ns, &windows).await?;
    assert_eq!(
        stored["metadata"]["annotations"][HARDENED_ANNOTATION], "resources",
        "Windows: only resources"
    );
    Ok(())
}
