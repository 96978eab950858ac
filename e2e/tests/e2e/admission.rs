//! Pod Security Admission `restricted` rejects a legacy pod; with kube-harden in
//! the same namespace's admission chain, the same pod is admitted and stored hardened.

use kube_harden::admission::Mode;
use kube_harden::harden::{HARDENED_ANNOTATION, Policy};
use kube_harden::psa::check_restricted;
use kube_harden_e2e::ledger::apply;
use kube_harden_e2e::{Harness, MODE_LABEL, PSA_ENFORCE_LABEL, Result, psa_refusal, subset};
use serde_json::{Value, json};

/// A pod written before anyone thought about security contexts: no securityContext, no
/// resources, one init container.
pub fn legacy_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "legacy"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "example.com/legacy-app:1.0",
                                "command": ["/migrate"]}],
            "containers": [{"name": "app", "image": "example.com/legacy-app:1.0",
                            "ports": [{"containerPort": 8080}]}]
        }
    })
}

pub async fn restricted_namespace_admits_legacy_pod_only_when_hardened(h: &Harness) -> Result<()> {
    let a = h
        .namespace("restricted", &[(PSA_ENFORCE_LABEL, "restricted")])
        .await?;
    let b = h
        .namespace(
            "restricted-hardened",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    let pod = legacy_pod("legacy");

    // A: PSA alone. Not opted in, so the webhook is not called (nothing for the ledger).
    let message = psa_refusal(
        h.create(&a, &pod).await,
        "a legacy pod in a restricted namespace",
    )?;
    println!("namespace {a} (restricted): rejected: {message}");
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\""),
        "{message}"
    );
    for missing in [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "runAsNonRoot != true",
        "seccompProfile",
    ] {
        assert!(
            message.contains(missing),
            "PSA should name {missing:?}: {message}"
        );
    }

    // B: the same pod, with kube-harden first in the chain.
    let hardened = h.expect_admission(Mode::Enforce, "CREATE", &b, &pod)?;
    let stored = h.create(&b, &pod).await?;
    println!("namespace {b} (restricted + kube-harden): admitted");
    let policy = Policy::default();
    let spec = &stored["spec"];
    let psc = &spec["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], policy.run_as_user);
    assert_eq!(psc["runAsGroup"], policy.run_as_group);
    assert_eq!(psc["fsGroup"], policy.fs_group);
    assert_eq!(psc["fsGroupChangePolicy"], "OnRootMismatch");
    assert_eq!(psc["seccompProfile"], json!({"type": "RuntimeDefault"}));
    let tmp_volume = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "kube-harden-tmp"))
        .ok_or("no kube-harden-tmp volume")?;
    assert_eq!(
        tmp_volume["emptyDir"],
        json!({"sizeLimit": policy.tmp_size_limit})
    );
    let r = &policy.resources;
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().ok_or("no containers")? {
            let name = &c["name"];
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert!(
                c["volumeMounts"].as_array().is_some_and(|m| m
                    .iter()
                    .any(|m| m["mountPath"] == "/tmp" && m["name"] == "kube-harden-tmp")),
                "{name}: /tmp mount"
            );
            assert!(
                c["env"]
                    .as_array()
                    .is_some_and(|e| e.contains(&json!({"name": "TMPDIR", "value": "/tmp"}))),
                "{name}: TMPDIR"
            );
            assert_eq!(
                c["resources"],
                json!({
                    "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
                    "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
                }),
                "{name}: resources"
            );
        }
    }
    let names: Vec<&str> = hardened
        .applied_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(
        stored["metadata"]["annotations"][HARDENED_ANNOTATION],
        names.join(",")
    );
    assert_eq!(names.len(), 12, "every change but writablePaths: {names:?}");
    // The stored pod is exactly what the local rules produce (plus API defaults) ...
    subset(&apply(&pod, &hardened)?["spec"], spec)?;
    // ... and satisfies restricted by our own checks as well as by PSA's.
    assert_eq!(check_restricted(stored.get("metadata"), spec), vec![]);
    println!("stored pod has: {}", names.join(", "));
    Ok(())
}
