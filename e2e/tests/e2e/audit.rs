//! In audit mode the webhook changes nothing, and what it would have added reaches
//! the client as warnings that kubectl prints.

use kube_harden::admission::Mode;
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::{Harness, MODE_LABEL, PSA_ENFORCE_LABEL, Result, subset};
use serde_json::Value;

use super::admission::legacy_pod;

fn yaml(value: &Value) -> Result<String> {
    Ok(kube_harden::yaml::to_string(value))
}

pub async fn audit_mode_changes_nothing_and_kubectl_prints_the_warnings(h: &Harness) -> Result<()> {
    let ns = h.namespace("audit", &[(MODE_LABEL, "audit")]).await?;
    let deployment_file = h.repo().join("examples/deployment-web.yaml");
    let deployment = kube_harden_e2e::read_manifest(&deployment_file)?;
    let pod = legacy_pod("legacy-audited");

    for (object, via_file) in [(&deployment, true), (&pod, false)] {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let would = h.expect_admission(Mode::Audit, "CREATE", &ns, object)?;
        let names: Vec<&str> = would.applied_names().iter().map(|n| n.as_str()).collect();
        assert!(
            !names.is_empty(),
            "{kind}: the legacy object has something to harden"
        );
        let stdin = yaml(object)?;
        let out = if via_file {
            let path = deployment_file.to_str().ok_or("path")?;
            h.kubectl(&["apply", "-n", &ns, "-f", path], None)?
        } else {
            h.kubectl(&["create", "-n", &ns, "-f", "-"], Some(&stdin))?
        }
        .ok("kubectl")?;
        let warning = format!(
            "Warning: kube-harden (audit) would add: {}",
            names.join(", ")
        );
        println!(
            "kubectl stderr for {kind} {name}:\n{}",
            out.stderr.trim_end()
        );
        assert!(
            out.stderr.contains(&warning),
            "expected {warning:?} in {}",
            out.stderr
        );
        assert!(!out.stderr.contains("kube-harden added"), "{}", out.stderr);

        // Stored exactly as written (plus API defaults): no hardened field, no annotation.
        let stored = h.get(&ns, object, name).await?;
        subset(&object["spec"], &stored["spec"])?;
        assert!(
            stored["metadata"]["annotations"]
                .get(HARDENED_ANNOTATION)
                .is_none(),
            "{kind}: audit must not annotate"
        );
        let spec = if kind == "Pod" {
            &stored["spec"]
        } else {
            &stored["spec"]["template"]["spec"]
        };
        assert!(
            spec["securityContext"]
                .as_object()
                .is_none_or(|m| m.is_empty()),
            "{kind}: pod securityContext added: {}",
            spec["securityContext"]
        );
        for c in spec["containers"].as_array().ok_or("containers")? {
            assert!(
                c.get("securityContext").is_none(),
                "{kind}: container securityContext added"
            );
        }
        assert!(
            spec["volumes"]
                .as_array()
                .is_none_or(|v| v.iter().all(|v| v["name"] != "kube-harden-tmp")),
            "{kind}: /tmp volume added"
        );
    }

    // Audit in a restricted namespace: nothing is changed, so PSA still refuses the pod, and
    // the audit warnings still reach the client with the refusal.
    let restricted = h
        .namespace(
            "audit-restricted",
            &[(MODE_LABEL, "audit"), (PSA_ENFORCE_LABEL, "restricted")],
        )
        .await?;
    h.expect_admission(Mode::Audit, "CREATE", &restricted, &pod)?;
    let out = h.kubectl(
        &["create", "-n", &restricted, "-f", "-"],
        Some(&yaml(&pod)?),
    )?;
    assert!(
        !out.status.success(),
        "restricted must refuse the unhardened pod"
    );
    assert!(
        out.stderr.contains("violates PodSecurity"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Warning: kube-harden (audit) would add:"),
        "{}",
        out.stderr
    );
    println!(
        "restricted + audit: refused by PSA, with kube-harden's audit warning:\n{}",
        out.stderr.trim_end()
    );
    Ok(())
}
