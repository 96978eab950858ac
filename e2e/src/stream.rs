//! A steady stream of pod creations in an enforce namespace, and the check of every pod it
//! stored. The pods carry a scheduling gate: they are stored, never scheduled, so hundreds of
//! them cost the node nothing, and nothing (the pod garbage collector, a kubelet) removes one
//! before it is checked. A pod counts as hardened when the API server stored it with
//! kube-harden's annotation and the settings the rules add to this pod (non-root, read-only
//! root, no privilege escalation, every capability dropped); with `failurePolicy: Ignore`, a
//! webhook call that failed stores it without them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube_harden::harden::HARDENED_ANNOTATION;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The scheduling gate that keeps the stream's pods unscheduled.
const GATE: &str = "kube-harden.io/e2e-hold";

/// What a stream did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Creations the API server answered with the stored pod.
    pub created: usize,
    /// Creations that failed, with the error.
    pub failed: Vec<String>,
}

/// A running stream: `rate` creations a second, each on its own task (a slow answer does not
/// slow the stream down).
pub struct Stream {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Tally>,
    started: Instant,
}

/// The pod the stream creates: legacy (no securityContext), gated.
pub fn stream_pod(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "stream"}},
        "spec": {
            "schedulingGates": [{"name": GATE}],
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Never"}]
        }
    })
}

impl Stream {
    /// Starts creating pods in `namespace`, `rate` a second.
    pub fn start(client: kube::Client, namespace: &str, image: &str, rate: u32) -> Result<Self> {
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let stop = Arc::new(AtomicBool::new(false));
        let image = image.to_owned();
        let every = Duration::from_secs(1) / rate.max(1);
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut calls = Vec::new();
            let mut n = 0u32;
            while !flag.load(Ordering::SeqCst) {
                tick.tick().await;
                n += 1;
                let api = api.clone();
                let pod: Result<Pod, _> =
                    serde_json::from_value(stream_pod(&format!("s-{n:05}"), &image));
                calls.push(tokio::spawn(async move {
                    let pod = pod.map_err(|e| e.to_string())?;
                    api.create(&PostParams::default(), &pod)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{}: {e}", pod.metadata.name.unwrap_or_default()))
                }));
            }
            let mut tally = Tally::default();
            for call in calls {
                match call.await {
                    Ok(Ok(())) => tally.created += 1,
                    Ok(Err(e)) => tally.failed.push(e),
                    Err(e) => tally.failed.push(format!("task: {e}")),
                }
            }
            tally
        });
        Ok(Self {
            stop,
            task,
            started: Instant::now(),
        })
    }

    /// Stops creating, waits for the creations under way, and returns the tally and how long
    /// the stream ran.
    pub async fn stop(self) -> Result<(Tally, Duration)> {
        self.stop.store(true, Ordering::SeqCst);
        let elapsed = self.started.elapsed();
        Ok((self.task.await?, elapsed))
    }
}

/// Why a stored pod is not hardened (`None`: it is).
pub fn not_hardened(pod: &Value) -> Option<String> {
    let annotation = &pod["metadata"]["annotations"][HARDENED_ANNOTATION];
    let pod_sc = &pod["spec"]["securityContext"];
    let sc = &pod["spec"]["containers"][0]["securityContext"];
    let drops_all = sc["capabilities"]["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    let checks = [
        ("the hardened annotation", annotation.is_string()),
        ("runAsNonRoot", pod_sc["runAsNonRoot"] == true),
        (
            "readOnlyRootFilesystem",
            sc["readOnlyRootFilesystem"] == true,
        ),
        (
            "allowPrivilegeEscalation: false",
            sc["allowPrivilegeEscalation"] == false,
        ),
        ("capabilities.drop ALL", drops_all),
    ];
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{}: no {}",
            pod["metadata"]["name"].as_str().unwrap_or("?"),
            missing.join(", no ")
        )
    })
}

/// Every stream pod stored in `namespace`, read back from the API server: how many, and the
/// reasons of those not hardened.
pub async fn check_stored(client: kube::Client, namespace: &str) -> Result<(usize, Vec<String>)> {
    let pods = Api::<Pod>::namespaced(client, namespace)
        .list(&ListParams::default().labels("app=stream"))
        .await?;
    let mut unhardened = Vec::new();
    for pod in &pods.items {
        if let Some(why) = not_hardened(&serde_json::to_value(pod)?) {
            unhardened.push(why);
        }
    }
    Ok((pods.items.len(), unhardened))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_without_the_settings_is_not_hardened() {
        let pod = stream_pod("s-1", "img");
        let why = not_hardened(&pod).unwrap();
        assert!(why.starts_with("s-1: no the hardened annotation"), "{why}");
        let mut hardened = pod.clone();
        hardened["metadata"]["annotations"] = json!({HARDENED_ANNOTATION: "runAsNonRoot"});
        hardened["spec"]["securityContext"] = json!({"runAsNonRoot": true});
        hardened["spec"]["containers"][0]["securityContext"] = json!({
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}
        });
        assert_eq!(not_hardened(&hardened), None);
        hardened["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = json!([]);
        assert!(
            not_hardened(&hardened)
                .unwrap()
                .contains("capabilities.drop ALL")
        );
    }
}
