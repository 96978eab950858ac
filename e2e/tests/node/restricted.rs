//! The restricted Pod Security proof, ending on the node: in a namespace enforcing
//! `restricted`, a legacy Deployment is accepted (PSA only warns about templates) but its
//! ReplicaSet cannot create a single pod; in the same kind of namespace opted in to
//! kube-harden, the same Deployment's pod runs Ready and answers from the host.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube_harden_e2e::node::{Node, check_no_restarts, is_ready, parse_webcheck};
use kube_harden_e2e::{MODE_LABEL, PSA_ENFORCE_LABEL, Result, process};
use serde_json::json;

use crate::node::hardened::legacy_pod;

/// The legacy pod of the hardened-pod test as a Deployment's template.
fn legacy_deployment(image: &str) -> Result<Deployment> {
    let pod = legacy_pod(image);
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "legacy-web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "legacy-web"}},
            "template": {
                "metadata": {"labels": {"app": "legacy-web"}},
                "spec": pod["spec"],
            }
        }
    }))?)
}

pub async fn restricted_namespace_runs_legacy_deployment_only_when_hardened(
    node: &Node,
) -> Result<()> {
    let deployment = legacy_deployment(node.env("E2E_WEBCHECK_IMAGE")?)?;

    // Without kube-harden: the ReplicaSet's pod creations are refused by PodSecurity.
    let plain = node
        .namespace("restricted", &[(PSA_ENFORCE_LABEL, "restricted")])
        .await?;
    Api::<Deployment>::namespaced(node.client(), &plain)
        .create(&PostParams::default(), &deployment)
        .await?;
    let replicasets: Api<ReplicaSet> = Api::namespaced(node.client(), &plain);
    let message = process::poll(
        "the ReplicaSet to report PodSecurity's refusal",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || async {
            let list = replicasets.list(&ListParams::default()).await?;
            Ok(list.items.iter().find_map(|rs| {
                rs.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find_map(|c| {
                        (c.type_ == "ReplicaFailure" && c.status == "True")
                            .then(|| c.message.clone().unwrap_or_default())
                    })
            }))
        },
    )
    .await
    .map_err(|e| format!("{e}\n{}", node.describe(&plain)))?;
    if !message.contains("violates PodSecurity \"restricted") {
        return Err(format!("ReplicaFailure, but not PodSecurity's: {message}").into());
    }
    let pods = Api::<Pod>::namespaced(node.client(), &plain)
        .list(&ListParams::default())
        .await?;
    if !pods.items.is_empty() {
        return Err(format!(
            "{} pods exist in {plain} although PodSecurity refused them",
            pods.items.len()
        )
        .into());
    }

    // With kube-harden: the same Deployment runs.
    let hardened = node
        .namespace(
            "restricted-hardened",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    Api::<Deployment>::namespaced(node.client(), &hardened)
        .create(&PostParams::default(), &deployment)
        .await?;
    let pods: Api<Pod> = Api::namespaced(node.client(), &hardened);
    let pod = process::poll(
        "the hardened Deployment's pod Ready",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=legacy-web"))
                .await?;
            for pod in &list.items {
                check_no_restarts(pod)?;
            }
            Ok(list.items.into_iter().find(is_ready))
        },
    )
    .await
    .map_err(|e| format!("{e}\n{}", node.describe(&hardened)))?;
    let deployments: Api<Deployment> = Api::namespaced(node.client(), &hardened);
    process::poll(
        "the Deployment to report 1 available replica",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let d = deployments.get("legacy-web").await?;
            Ok((d.status.and_then(|s| s.available_replicas) == Some(1)).then_some(()))
        },
    )
    .await?;
    let (status, body) = node.http_get_pod(&pod, 8080, "/")?;
    let seen = parse_webcheck(&body);
    if status != 200
        || seen.get("uid").is_none_or(|u| u == "0")
        || seen.get("root_writable").map(String::as_str) != Some("false")
    {
        return Err(format!("the hardened pod answered {status}: {body}").into());
    }
    eprintln!(
        "node: restricted namespace: refused without kube-harden ({message}); Ready with it ({seen:?})"
    );
    Ok(())
}
