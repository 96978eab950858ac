//! Uninstall in any order: the objects of the shipped installation (`kubectl kustomize` of the
//! local overlay) deleted one by one in several orders (Deployment first, webhook configuration
//! first, namespace first, Service first, the policies first) and all at once (`kubectl delete
//! -k`). After every single deletion, a pod can be created in an enforce namespace and in a
//! plain one; once everything is deleted, no webhook configuration is left. kube-harden is
//! installed again before each order.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::stream::stream_pod;
use kube_harden_e2e::{MODE_LABEL, Result};

use crate::install::NS;

/// An object of the installation, as kubectl names it.
#[derive(Debug, Clone)]
struct Object {
    kind: String,
    /// `kind.group/name`, e.g. `deployment.apps/kube-harden`.
    reference: String,
    namespaced: bool,
}

/// The installation's objects, in the order kustomize renders them.
fn objects(node: &Node, overlay: &str) -> Result<Vec<Object>> {
    let rendered = node
        .kubectl(&["kustomize", overlay], None)?
        .ok("kubectl kustomize")?;
    let mut out = Vec::new();
    for document in kube_harden::yaml::read_stream(&rendered.stdout) {
        let value = document?.value;
        let kind = value["kind"].as_str().ok_or("an object without a kind")?;
        let name = value["metadata"]["name"]
            .as_str()
            .ok_or("an object without a name")?;
        let group = value["apiVersion"]
            .as_str()
            .and_then(|v| v.split_once('/'))
            .map(|(g, _)| format!(".{g}"))
            .unwrap_or_default();
        out.push(Object {
            kind: kind.to_owned(),
            reference: format!("{}{group}/{name}", kind.to_lowercase()),
            namespaced: value["metadata"]["namespace"].is_string(),
        });
    }
    Ok(out)
}

/// `objects` with those of the kinds in `first` moved to the front, in that order.
fn first(objects: &[Object], kinds: &[&str]) -> Vec<Object> {
    let mut order: Vec<Object> = kinds
        .iter()
        .flat_map(|k| objects.iter().filter(move |o| o.kind == *k))
        .cloned()
        .collect();
    order.extend(
        objects
            .iter()
            .filter(|o| !kinds.contains(&o.kind.as_str()))
            .cloned(),
    );
    order
}

/// One pod in each namespace can be created; the slower of the two creations.
async fn pods_can_be_created(
    node: &Node,
    enforce: &str,
    plain: &str,
    n: &mut u32,
) -> Result<Duration> {
    let mut slowest = Duration::ZERO;
    for ns in [enforce, plain] {
        *n += 1;
        let pod = stream_pod(&format!("u-{n:03}"), node.env("E2E_WEBCHECK_IMAGE")?);
        let t = Instant::now();
        Api::<Pod>::namespaced(node.client(), ns)
            .create(&PostParams::default(), &serde_json::from_value(pod)?)
            .await
            .map_err(|e| format!("a pod cannot be created in {ns}: {e}"))?;
        slowest = slowest.max(t.elapsed());
    }
    Ok(slowest)
}

async fn install(node: &Node, overlay: &str) -> Result<()> {
    node.kubectl(&["apply", "-k", overlay], None)?
        .ok("kubectl apply -k")?;
    node.wait_deployment(NS, "kube-harden", Duration::from_secs(180))
        .await?;
    Ok(())
}

pub async fn uninstall_in_any_order_leaves_pod_creation_working(node: &Node) -> Result<()> {
    let overlay = node.env("E2E_KUBE_HARDEN_OVERLAY")?;
    let all = objects(node, overlay)?;
    let enforce = node
        .namespace("uninstall", &[(MODE_LABEL, "enforce")])
        .await?;
    let plain = node.namespace("uninstall-plain", &[]).await?;
    let orders: Vec<(&str, Vec<Object>)> = vec![
        ("Deployment first", first(&all, &["Deployment"])),
        (
            "webhook configuration first",
            first(&all, &["MutatingWebhookConfiguration"]),
        ),
        ("namespace first", first(&all, &["Namespace"])),
        ("Service first", first(&all, &["Service"])),
        (
            "policies and RBAC first",
            first(
                &all,
                &[
                    "ValidatingAdmissionPolicyBinding",
                    "ValidatingAdmissionPolicy",
                    "ClusterRoleBinding",
                    "ClusterRole",
                    "RoleBinding",
                    "Role",
                    "NetworkPolicy",
                ],
            ),
        ),
        ("kubectl delete -k", Vec::new()),
    ];
    let mut n = 0;
    for (name, order) in &orders {
        install(node, overlay).await?;
        let t0 = Instant::now();
        let mut slowest = pods_can_be_created(node, &enforce, &plain, &mut n).await?;
        if order.is_empty() {
            node.kubectl(&["delete", "-k", overlay, "--ignore-not-found"], None)?
                .ok("kubectl delete -k")?;
            slowest = slowest.max(pods_can_be_created(node, &enforce, &plain, &mut n).await?);
        }
        for object in order {
            let mut args = vec!["delete", object.reference.as_str(), "--ignore-not-found"];
            if object.namespaced {
                args.extend(["-n", NS]);
            }
            node.kubectl(&args, None)?
                .ok(&format!("kubectl delete {}", object.reference))?;
            slowest = slowest.max(
                pods_can_be_created(node, &enforce, &plain, &mut n)
                    .await
                    .map_err(|e| format!("{name}: after deleting {}: {e}", object.reference))?,
            );
        }
        let left = Api::<MutatingWebhookConfiguration>::all(node.client())
            .get_opt("kube-harden")
            .await?;
        if left.is_some() {
            return Err(format!("{name}: the webhook configuration is still there").into());
        }
        eprintln!(
            "uninstall: {name}: {} deletions, a pod created in both namespaces after each \
             (slowest creation {:.2} s); done in {:.1} s",
            order.len().max(1),
            slowest.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
