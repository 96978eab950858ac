//! The restricted Pod Security proof, ending on the node: in a namespace enforcing
//! `restricted`, a legacy Deployment is accepted (PSA only warns about templates) but its
//! ReplicaSet cannot create a single pod; in the same kind of namespace opted in to
//! kube-harden, the same Deployment's pod runs Ready and answers from the host.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::webcheck::{hardened_answer, legacy_deployment};
use kube_harden_e2e::{MODE_LABEL, PSA_ENFORCE_LABEL, Result, process};

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
    let pods = node
        .wait_deployment(&hardened, "legacy-web", Duration::from_secs(120))
        .await?;
    let (status, body) = node.http_get_pod(&pods[0], 8080, "/")?;
    let seen = hardened_answer(status, &body)?;
    eprintln!(
        "node: restricted namespace: refused without kube-harden ({message}); Ready with it ({seen:?})"
    );
    Ok(())
}
