//! An ephemeral (debug) container added through the `pods/ephemeralcontainers`
//! subresource is hardened; the pod's existing containers are left alone. In a restricted
//! namespace without kube-harden, the same debug container is refused.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube_harden::admission::Mode;
use kube_harden_e2e::ledger::apply;
use kube_harden_e2e::{Harness, MODE_LABEL, PSA_ENFORCE_LABEL, Result, psa_refusal, subset};
use serde_json::{Value, json};

use super::admission::legacy_pod;

const ENFORCE: &str = "enforce.kube-harden.io";

fn debug_container(name: &str) -> Value {
    json!({"name": name, "image": "busybox:1.36", "command": ["sh"], "stdin": true, "tty": true})
}

fn patch(name: &str) -> Value {
    json!({"spec": {"ephemeralContainers": [debug_container(name)]}})
}

pub async fn ephemeral_container_added_through_the_subresource_is_hardened(
    h: &Harness,
) -> Result<()> {
    let ns = h
        .namespace(
            "ephemeral",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    let pod = legacy_pod("debug-me");
    h.expect_admission(Mode::Enforce, "CREATE", &ns, &pod)?;
    let before = h.create(&ns, &pod).await?;

    // What the API server sends the webhook: the stored pod with the new container appended.
    let mut sent = before.clone();
    sent["spec"]["ephemeralContainers"] = json!([debug_container("debugger")]);
    let pods: Api<Pod> = Api::namespaced(h.client(), &ns);
    let calls = h.webhook_calls(ENFORCE, "UPDATE").await?;
    let after = serde_json::to_value(
        pods.patch_ephemeral_containers(
            "debug-me",
            &PatchParams::default(),
            &Patch::Strategic(patch("debugger")),
        )
        .await?,
    )?;
    // One call, unless the API server retried the update internally (each sees the same pod).
    let calls = h.webhook_calls(ENFORCE, "UPDATE").await? - calls;
    assert!(calls >= 1.0, "the webhook was called");
    let mut hardened = None;
    for _ in 0..calls as usize {
        hardened = Some(h.expect_ephemeral(&ns, &sent, &HashSet::new())?);
    }
    let local = apply(&sent, &hardened.ok_or("no call")?)?;
    let debugger = &after["spec"]["ephemeralContainers"][0];
    subset(
        &local["spec"]["ephemeralContainers"],
        &after["spec"]["ephemeralContainers"],
    )?;
    let sc = &debugger["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert!(debugger["volumeMounts"].as_array().is_some_and(|m| {
        m.iter()
            .any(|m| m["mountPath"] == "/tmp" && m["name"] == "kube-harden-tmp")
    }));
    assert!(
        debugger["env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!({"name": "TMPDIR", "value": "/tmp"})))
    );
    // Nothing else changed: containers, init containers, pod securityContext, volumes.
    for field in ["containers", "initContainers", "securityContext", "volumes"] {
        assert_eq!(
            after["spec"][field], before["spec"][field],
            "spec.{field} changed"
        );
    }
    println!("debug container hardened: {sc}");

    // A second debug container: only the new one is evaluated.
    let mut sent2 = after.clone();
    sent2["spec"]["ephemeralContainers"]
        .as_array_mut()
        .ok_or("ephemeralContainers")?
        .push(debug_container("debugger-2"));
    let calls = h.webhook_calls(ENFORCE, "UPDATE").await?;
    let after2 = serde_json::to_value(
        pods.patch_ephemeral_containers(
            "debug-me",
            &PatchParams::default(),
            &Patch::Strategic(patch("debugger-2")),
        )
        .await?,
    )?;
    let calls = h.webhook_calls(ENFORCE, "UPDATE").await? - calls;
    assert!(calls >= 1.0, "the webhook was called");
    for _ in 0..calls as usize {
        h.expect_ephemeral(&ns, &sent2, &HashSet::from(["debugger"]))?;
    }
    let by_name = |pod: &Value, name: &str| {
        pod["spec"]["ephemeralContainers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        by_name(&after2, "debugger"),
        by_name(&after, "debugger"),
        "the first is left alone"
    );
    let second = by_name(&after2, "debugger-2");
    assert_eq!(
        second["securityContext"], debugger["securityContext"],
        "the second is hardened"
    );

    // Without kube-harden, restricted refuses the same debug container on a compliant pod.
    let plain = h
        .namespace("ephemeral-restricted", &[(PSA_ENFORCE_LABEL, "restricted")])
        .await?;
    let compliant = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "compliant"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "example.com/app:1",
                            "securityContext": {"allowPrivilegeEscalation": false,
                                                "capabilities": {"drop": ["ALL"]}}}]
        }
    });
    h.create(&plain, &compliant).await?;
    let pods: Api<Pod> = Api::namespaced(h.client(), &plain);
    let message = psa_refusal(
        pods.patch_ephemeral_containers(
            "compliant",
            &PatchParams::default(),
            &Patch::Strategic(patch("debugger")),
        )
        .await,
        "a plain debug container in a restricted namespace",
    )?;
    println!("without kube-harden: {message}");
    Ok(())
}
