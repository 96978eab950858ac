//! A legacy pod (an image with no USER that writes temporary files, no securityContext) in a
//! namespace that opted in: kube-harden makes it non-root with a read-only root and a /tmp
//! emptyDir, and it runs Ready on the node. The check is made from the host to the pod's IP:
//! the process itself reports its UID and what it can write. The same pod in a plain namespace
//! is the control (root, writable root), so the check can tell the two apart.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::node::Node;
use kube_harden_e2e::webcheck::{legacy_pod, parse_webcheck};
use kube_harden_e2e::{MODE_LABEL, Result};
use serde_json::Value;

/// The effective `runAsUser` of the pod's first container (container level, else pod level).
pub fn effective_uid(pod: &Value) -> Option<i64> {
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"]
        .as_i64()
        .or_else(|| pod["spec"]["securityContext"]["runAsUser"].as_i64())
}

/// The volume mounted at /tmp in the first container, if it is an emptyDir.
pub fn tmp_empty_dir(pod: &Value) -> Option<String> {
    let mount = pod["spec"]["containers"][0]["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["mountPath"] == "/tmp")?;
    let name = mount["name"].as_str()?;
    pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name && v["emptyDir"].is_object())
        .map(|_| name.to_owned())
}

/// Creates `pod` in `namespace`, waits until Ready (no restarts), and returns the stored pod
/// as JSON with what the webcheck process reports from inside it.
pub async fn run(
    node: &Node,
    namespace: &str,
    pod: &Value,
) -> Result<(Value, std::collections::HashMap<String, String>)> {
    let api: Api<Pod> = Api::namespaced(node.client(), namespace);
    let typed: Pod = serde_json::from_value(pod.clone())?;
    api.create(&PostParams::default(), &typed).await?;
    let name = pod["metadata"]["name"].as_str().ok_or("no name")?;
    let ready = node.wait_ready(namespace, name).await?;
    let (status, body) = node.http_get_pod(&ready, 8080, "/")?;
    if status != 200 {
        return Err(format!("GET / on {namespace}/{name}: {status}: {body}").into());
    }
    Ok((serde_json::to_value(&ready)?, parse_webcheck(&body)))
}

pub async fn hardened_pod_runs_non_root_read_only_and_answers(node: &Node) -> Result<()> {
    let image = node.env("E2E_WEBCHECK_IMAGE")?;
    let pod = legacy_pod(image);

    // Control: unhardened, the image runs as root and can write its root filesystem.
    let plain = node.namespace("plain", &[]).await?;
    let (stored, seen) = run(node, &plain, &pod).await?;
    if stored["metadata"]["annotations"][HARDENED_ANNOTATION].is_string() {
        return Err(format!("{plain} is not opted in, yet the pod was hardened: {stored}").into());
    }
    if seen.get("uid").map(String::as_str) != Some("0")
        || seen.get("root_writable").map(String::as_str) != Some("true")
    {
        return Err(
            format!("unhardened pod should run as root with a writable root: {seen:?}").into(),
        );
    }

    // Hardened: non-root, read-only root, /tmp on an emptyDir, and still serving.
    let enforce = node
        .namespace("hardened", &[(MODE_LABEL, "enforce")])
        .await?;
    let (stored, seen) = run(node, &enforce, &pod).await?;
    if !stored["metadata"]["annotations"][HARDENED_ANNOTATION].is_string() {
        return Err(format!("the pod in {enforce} was not hardened: {stored}").into());
    }
    let sc = &stored["spec"]["containers"][0]["securityContext"];
    if sc["readOnlyRootFilesystem"] != true {
        return Err(format!("readOnlyRootFilesystem not set: {sc}").into());
    }
    let uid = effective_uid(&stored).ok_or_else(|| format!("no runAsUser in {stored}"))?;
    if uid == 0 {
        return Err("kube-harden chose UID 0".into());
    }
    let tmp =
        tmp_empty_dir(&stored).ok_or_else(|| format!("no /tmp emptyDir in {}", stored["spec"]))?;
    let expected = [
        ("uid", uid.to_string()),
        ("root_writable", "false".to_owned()),
        ("tmp_writable", "true".to_owned()),
    ];
    for (key, want) in expected {
        if seen.get(key) != Some(&want) {
            return Err(format!(
                "hardened pod (volume {tmp} on /tmp): {key} = {:?}, expected {want}; all: {seen:?}",
                seen.get(key)
            )
            .into());
        }
    }
    // The sandboxes run the project's own pause image (no registry is reachable anyway).
    let containers = node.ctr(&["containers", "ls"])?;
    let pause = node.env("E2E_PAUSE_IMAGE")?;
    if !containers.lines().any(|l| l.contains(pause)) {
        return Err(format!("no sandbox runs {pause}:\n{containers}").into());
    }
    eprintln!("node: hardened pod runs as UID {uid}, read-only root, /tmp writable ({seen:?})");
    Ok(())
}
