//! The zoo in the suite's registry: what the registry gives back for a pushed image (its manifest
//! by tag and by digest, its config) and what the kubelet pulled from it (the digest its
//! containers run, the time the pull took).

use kube_harden_e2e::Result;
use kube_harden_e2e::node::Node;
use kube_harden_e2e::registry::{Registry, sha256_digest as sha256};
use kube_harden_e2e::repo_root;
use serde_json::Value;

use super::apps;

/// `GET path` from the registry: the body of a 200, else an error with the status.
fn fetch(registry: &Registry, path: &str) -> Result<Vec<u8>> {
    match registry.get(path)? {
        (200, body) => Ok(body),
        (status, body) => {
            Err(format!("GET {path}: {status} {}", String::from_utf8_lossy(&body)).into())
        }
    }
}

/// The `USER` an app's image.conf declares (what build.sh writes into the image's config).
fn declared_user(app: &str) -> Result<String> {
    let conf = std::fs::read_to_string(repo_root().join(format!("e2e/images/{app}/image.conf")))?;
    conf.lines()
        .find_map(|l| l.trim().strip_prefix("USER="))
        .map(|v| v.trim_matches(['"', '\'']).to_owned())
        .ok_or_else(|| format!("{app}: no USER= in image.conf").into())
}

/// The pushed image of `app` read back through the registry's API: its manifest by tag and by
/// digest (the same bytes, hashing to the digest build.sh computed), the config blob it names
/// (hashing to that name, with the image.conf's `USER`), and crane's view of the tag.
pub fn round_trip(registry: &Registry, app: &str, built: &str) -> Result<()> {
    let repository = format!("legacy/{app}");
    let by_tag = fetch(registry, &format!("/v2/{repository}/manifests/1"))?;
    if sha256(&by_tag) != built {
        return Err(format!(
            "{app}: the manifest by tag hashes to {}, built {built}",
            sha256(&by_tag)
        )
        .into());
    }
    let by_digest = fetch(registry, &format!("/v2/{repository}/manifests/{built}"))?;
    if by_digest != by_tag {
        return Err(format!("{app}: the manifest by digest differs from the one by tag").into());
    }
    let manifest: Value = serde_json::from_slice(&by_tag)?;
    if manifest["mediaType"] != "application/vnd.oci.image.manifest.v1+json" {
        return Err(format!("{app}: not an OCI image manifest: {manifest}").into());
    }
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| format!("{app}: no config digest in {manifest}"))?;
    let config = fetch(registry, &format!("/v2/{repository}/blobs/{config_digest}"))?;
    if sha256(&config) != config_digest {
        return Err(format!("{app}: the config blob does not hash to {config_digest}").into());
    }
    let config: Value = serde_json::from_slice(&config)?;
    let user = declared_user(app)?;
    if config["config"]["User"] != user.as_str() {
        return Err(format!(
            "{app}: the config's User is {}, image.conf says {user:?}",
            config["config"]["User"]
        )
        .into());
    }
    let layers = manifest["layers"].as_array().map_or(0, Vec::len);
    let crane = registry.crane(&["digest", &registry.reference(&apps::repository(app))])?;
    if crane.stdout.trim() != built {
        return Err(format!(
            "{app}: crane digest says {}, built {built}",
            crane.stdout.trim()
        )
        .into());
    }
    eprintln!(
        "legacy: {app} in the registry: manifest {built} ({layers} layers) by tag and digest, \
         config {config_digest} with User {user:?}"
    );
    Ok(())
}

/// Checks that the pod of `app` in `namespace` runs the image pushed to `registry` (its
/// `imageID` is `<host>/legacy/<app>@<digest>`) and returns the kubelet's `Pulled` event for it
/// ("Successfully pulled image ... in 1.2s (1.2s including waiting). Image size: N bytes.").
pub fn pulled(
    node: &Node,
    registry: &Registry,
    namespace: &str,
    app: &str,
    digest: &str,
) -> Result<String> {
    let pods = node
        .kubectl(&["-n", namespace, "get", "pods", "-o", "json"], None)?
        .ok("kubectl get pods")?;
    let pods: Value = serde_json::from_str(&pods.stdout)?;
    let expected = format!("{}@{digest}", registry.reference(&format!("legacy/{app}")));
    let image_ids: Vec<&str> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter_map(|c| c["imageID"].as_str())
        .collect();
    if image_ids.is_empty() || image_ids.iter().any(|id| *id != expected) {
        return Err(format!("{app}: containers run {image_ids:?}, expected {expected}").into());
    }
    let events = node
        .kubectl(
            &[
                "-n",
                namespace,
                "get",
                "events",
                "--field-selector",
                "reason=Pulled",
                "-o",
                "json",
            ],
            None,
        )?
        .ok("kubectl get events")?;
    let events: Value = serde_json::from_str(&events.stdout)?;
    let image = apps::image(app);
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with("Successfully pulled") && m.contains(&image))
        .map(str::to_owned)
        .ok_or_else(|| format!("{app}: no kubelet Pulled event for {image} in {namespace}").into())
}
