//! `kube-harden scan` against the real API server. Legacy workloads are created in a
//! namespace without kube-harden; the scan (read-only: nothing it sees changes) predicts per
//! workload what enforce would add and which findings remain. The same objects are then created
//! in an enforce namespace, and what the webhook stored must be exactly what the scan predicted.

use std::time::Duration;

use kube_harden::admission::Mode;
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::{Harness, MODE_LABEL, Result, process, read_manifest};
use serde_json::Value;

use super::admission::legacy_pod;

const EXAMPLES: &[&str] = &[
    "examples/deployment-web.yaml",
    "examples/cronjob-report.yaml",
    "examples/daemonset-node-agent.yaml",
    "examples/statefulset-db.yaml",
];

fn scan(h: &Harness, namespace: &str, output: &str) -> Result<String> {
    let out = process::run(
        std::process::Command::new(h.kube_harden_bin())
            .arg("scan")
            .arg("--kubeconfig")
            .arg(&h.controlplane().kubeconfig)
            .args(["-n", namespace, "-o", output]),
        None,
        Duration::from_secs(60),
    )?
    .ok("kube-harden scan")?;
    Ok(out.stdout)
}

fn resource_versions(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

pub async fn scan_predicts_what_the_webhook_then_does(h: &Harness) -> Result<()> {
    let mut objects: Vec<Value> = EXAMPLES
        .iter()
        .map(|path| read_manifest(&h.repo().join(path)))
        .collect::<Result<_>>()?;
    objects.push(legacy_pod("bare"));

    // 1. Created where kube-harden does not act, then scanned.
    let plain = h.namespace("scan-plain", &[]).await?;
    let mut stored = Vec::new();
    for object in &objects {
        stored.push(h.create(&plain, object).await?);
    }
    let rows: Vec<Value> = serde_json::from_str(&scan(h, &plain, "json")?)?;
    assert_eq!(rows.len(), objects.len(), "one row per workload: {rows:#?}");
    let table = scan(h, &plain, "table")?;
    assert!(table.starts_with("NAMESPACE"), "{table}");
    assert_eq!(table.lines().count(), objects.len() + 1, "{table}");

    // The scan changed nothing.
    let mut after = Vec::new();
    for (object, before) in objects.iter().zip(&stored) {
        let name = before["metadata"]["name"].as_str().unwrap_or_default();
        after.push(h.get(&plain, object, name).await?);
    }
    assert_eq!(resource_versions(&stored), resource_versions(&after));

    // 2. The same objects through the webhook: the stored annotation is the scan's prediction.
    let enforced = h
        .namespace("scan-enforce", &[(MODE_LABEL, "enforce")])
        .await?;
    let mut compared = 0;
    for object in &objects {
        h.expect_admission(Mode::Enforce, "CREATE", &enforced, object)?;
        let stored = h.create(&enforced, object).await?;
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let row = rows
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .ok_or_else(|| format!("no scan row for {kind}/{name}"))?;
        let predicted: Vec<&str> = row["wouldChange"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let applied: Vec<&str> = stored["metadata"]["annotations"][HARDENED_ANNOTATION]
            .as_str()
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        assert_eq!(applied, predicted, "{kind}/{name}");
        assert!(
            !predicted.is_empty(),
            "{kind}/{name}: legacy workloads need hardening"
        );
        compared += 1;
    }
    let agent = rows
        .iter()
        .find(|r| r["name"] == "node-agent")
        .ok_or("no node-agent row")?;
    let names = |key: &str| -> Vec<&str> {
        agent[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().or_else(|| f["name"].as_str()))
            .collect()
    };
    // Host namespaces, hostPath and privileged are Pod Security's checks, reported once there;
    // the findings are what Pod Security does not report (here: the missing probes).
    let (findings, failing) = (names("findings"), names("restrictedFailing"));
    for expected in ["hostNamespaces", "hostPathVolumes", "privileged"] {
        assert!(failing.contains(&expected), "{expected} in {failing:?}");
    }
    assert!(findings.contains(&"noLivenessProbe"), "{findings:?}");
    for reported in ["hostNetwork", "hostPathVolume", "privileged"] {
        assert!(!findings.contains(&reported), "{reported} in {findings:?}");
    }
    let web = rows
        .iter()
        .find(|r| r["name"] == "web")
        .ok_or("no web row")?;
    assert_eq!(web["restrictedFailing"], serde_json::json!([]));
    println!(
        "scan: {} workloads scanned, {compared} predictions matched the webhook",
        rows.len()
    );
    Ok(())
}
