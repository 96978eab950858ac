//! Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and
//! CronJob applied with kubectl are stored with hardened pod templates, and applying the same
//! manifest again changes nothing: whether kubectl sends a patch (server-side apply always does)
//! or not, the webhook adds nothing, and the spec, generation and resourceVersion stay.

use std::path::PathBuf;

use kube_harden::admission::Mode;
use kube_harden::harden::{HARDENED_ANNOTATION, WorkloadKind};
use kube_harden_e2e::ledger::apply;
use kube_harden_e2e::{Harness, MODE_LABEL, Result, read_manifest, subset};
use serde_json::Value;

const ENFORCE: &str = "enforce.kube-harden.io";

const REPLICASET: &str = r#"# A ReplicaSet made by hand, long ago.
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: cache
spec:
  replicas: 1
  selector:
    matchLabels: {app: cache}
  template:
    metadata:
      labels: {app: cache}
    spec:
      containers:
      - name: memcached
        image: memcached:1.6
        resources:
          requests: {cpu: 250m}
"#;

const JOB: &str = r#"# A one-off migration job.
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: example.com/migrate:3
        command: ["/migrate", "--all"]
"#;

const REPLICATIONCONTROLLER: &str = r#"# Older than Deployments.
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy-rc
spec:
  replicas: 1
  selector: {app: legacy-rc}
  template:
    metadata:
      labels: {app: legacy-rc}
    spec:
      containers:
      - name: app
        image: example.com/legacy-rc:1
"#;

/// The manifests: examples/ where one exists, the others written here.
fn manifests(h: &Harness) -> Result<Vec<PathBuf>> {
    let examples = h.repo().join("examples");
    let mut files = vec![
        examples.join("deployment-web.yaml"),
        examples.join("statefulset-db.yaml"),
        examples.join("daemonset-node-agent.yaml"),
    ];
    for (name, text) in [
        ("replicaset-cache.yaml", REPLICASET),
        ("replicationcontroller-legacy.yaml", REPLICATIONCONTROLLER),
        ("job-migrate.yaml", JOB),
    ] {
        let path = h.run_dir().join("manifests").join(name);
        std::fs::write(&path, text)?;
        files.push(path);
    }
    files.push(examples.join("cronjob-report.yaml"));
    Ok(files)
}

/// The pod template of a stored workload.
fn template(kind: WorkloadKind, object: &Value) -> &Value {
    match kind {
        WorkloadKind::CronJob => &object["spec"]["jobTemplate"]["spec"]["template"],
        _ => &object["spec"]["template"],
    }
}

/// `kubectl apply` (again) of a stored object: records each webhook call it caused, and
/// returns kubectl's stdout. The API server may call a webhook more than once for one request
/// (it retries an update internally, e.g. when a server-side apply of a Job rewrites the
/// object's managed fields); each call sees the same stored, hardened object.
async fn reapply(h: &Harness, ns: &str, args: &[&str], hardened: &Value) -> Result<(String, f64)> {
    let before = h.webhook_calls(ENFORCE, "UPDATE").await?;
    let out = h.kubectl(args, None)?.ok("kubectl apply")?;
    let calls = h.webhook_calls(ENFORCE, "UPDATE").await? - before;
    for _ in 0..calls as usize {
        h.expect_admission(Mode::Enforce, "UPDATE", ns, hardened)?;
    }
    assert!(
        !out.stderr.contains("kube-harden added"),
        "kubectl apply again: nothing to add: {}",
        out.stderr
    );
    Ok((out.stdout.trim().to_owned(), calls))
}

fn meta(object: &Value, key: &str) -> Value {
    object["metadata"][key].clone()
}

pub async fn workloads_are_stored_hardened_and_reapply_changes_nothing(h: &Harness) -> Result<()> {
    let csa = h.namespace("workloads", &[(MODE_LABEL, "enforce")]).await?;
    let ssa = h
        .namespace("workloads-ssa", &[(MODE_LABEL, "enforce")])
        .await?;
    // Controls: the same applies where kube-harden is not involved.
    let plain = h.namespace("workloads-plain", &[]).await?;
    let plain_ssa = h.namespace("workloads-plain-ssa", &[]).await?;
    let mut kinds = Vec::new();
    for file in manifests(h)? {
        let manifest = read_manifest(&file)?;
        let kind = WorkloadKind::of_object(&manifest).ok_or("not a workload")?;
        let name = manifest["metadata"]["name"]
            .as_str()
            .ok_or("no name")?
            .to_owned();
        let path = file.to_str().ok_or("path is not UTF-8")?;
        kinds.push(kind.as_str());
        println!("{kind} {name}:");

        // Without kube-harden: does a re-apply send a patch (client-side) or rewrite the object
        // (server-side)? For a StatefulSet client-side apply always sends one: the API server
        // fills in defaults inside volumeClaimTemplates, an atomic list. A Job's first
        // server-side re-apply rewrites its managed fields.
        let plain_args = ["apply", "-n", plain.as_str(), "-f", path];
        h.kubectl(&plain_args, None)?.ok("kubectl apply")?;
        let control_csa = h.kubectl(&plain_args, None)?.ok("kubectl apply")?.stdout;
        let plain_ssa_args = [
            "apply",
            "--server-side",
            "-n",
            plain_ssa.as_str(),
            "-f",
            path,
        ];
        h.kubectl(&plain_ssa_args, None)?
            .ok("kubectl apply --server-side")?;
        let first = h.get(&plain_ssa, &manifest, &name).await?;
        h.kubectl(&plain_ssa_args, None)?
            .ok("kubectl apply --server-side")?;
        let second = h.get(&plain_ssa, &manifest, &name).await?;
        let ssa_rewrites = meta(&first, "resourceVersion") != meta(&second, "resourceVersion");

        for (ns, server_side) in [(&csa, false), (&ssa, true)] {
            let mut args = vec!["apply", "-n", ns.as_str(), "-f", path];
            if server_side {
                args.push("--server-side");
            }
            let how = if server_side {
                "kubectl apply --server-side"
            } else {
                "kubectl apply"
            };

            // First apply: CREATE, hardened by the webhook.
            let hardened = h.expect_admission(Mode::Enforce, "CREATE", ns, &manifest)?;
            let out = h.kubectl(&args, None)?.ok(how)?;
            let added: Vec<&str> = hardened
                .applied_names()
                .iter()
                .map(|n| n.as_str())
                .collect();
            assert!(
                out.stderr
                    .contains(&format!("Warning: kube-harden added: {}", added.join(", "))),
                "{how} {name}: kubectl should print kube-harden's warning: {}",
                out.stderr
            );
            let stored = h.get(ns, &manifest, &name).await?;
            let local = apply(&manifest, &hardened)?;
            subset(
                &template(kind, &local)["spec"],
                &template(kind, &stored)["spec"],
            )
            .map_err(|e| format!("{kind} {name}: stored template: {e}"))?;
            for m in [&stored["metadata"], &template(kind, &stored)["metadata"]] {
                assert_eq!(
                    m["annotations"][HARDENED_ANNOTATION],
                    added.join(","),
                    "{kind} {name}: hardened annotation"
                );
            }
            assert_eq!(meta(&stored, "generation"), 1, "{kind} {name}");

            // Apply the same file again (twice for server-side apply).
            let rounds = if server_side { 2 } else { 1 };
            let mut previous = stored.clone();
            for round in 1..=rounds {
                let (verb, calls) = reapply(h, ns, &args, &local).await?;
                let after = h.get(ns, &manifest, &name).await?;
                assert_eq!(
                    after["spec"], stored["spec"],
                    "{how} {kind} {name}: spec changed"
                );
                assert_eq!(
                    meta(&after, "generation"),
                    1,
                    "{how} {kind} {name}: generation"
                );
                // Written again only where the same apply rewrites it without kube-harden.
                let rewritten =
                    meta(&after, "resourceVersion") != meta(&previous, "resourceVersion");
                let allowed = server_side && round == 1 && ssa_rewrites;
                assert!(
                    !rewritten || allowed,
                    "{how} {kind} {name}: round {round} wrote the object again"
                );
                if !server_side {
                    // Where kubectl sends a patch without kube-harden, it does with it too. It
                    // also may where kube-harden appended to a list the manifest has
                    // (volumeMounts, volumes, env): its three-way patch then carries
                    // `$setElementOrder` directives for that list, which change nothing.
                    let sent = !verb.contains("unchanged");
                    assert!(sent || control_csa.contains("unchanged"), "{how}: {verb}");
                    println!(
                        "  {how} again: {verb}; webhook calls {calls} (without kube-harden: {})",
                        control_csa.trim()
                    );
                } else {
                    println!(
                        "  {how} again ({round}): webhook calls {calls}, object {}",
                        if rewritten {
                            "rewritten (managed fields; so is it without kube-harden)"
                        } else {
                            "unchanged"
                        }
                    );
                }
                previous = after;
            }
        }
    }
    assert_eq!(
        kinds,
        [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
            "CronJob"
        ]
    );
    Ok(())
}
