//! kube-harden installed with its Helm chart (charts/kube-harden, docs/install.md) on a node of
//! its own (`E2E_NODE_WEBHOOK=in-cluster`), with helm built from its Go module
//! (`e2e/build-controlplane.sh --helm`) and the image `scripts/image-build.sh` assembles,
//! imported into the node's containerd. `helm install`: the pods Ready, their certificates made
//! in the cluster, a legacy Deployment in an enforce namespace hardened and running; `helm
//! upgrade` to 3 replicas and another policy: rolled, and new pods get the new policy; `helm
//! uninstall`: nothing of kube-harden left (webhook configuration, admission policies, RBAC,
//! namespace) and pods are still created. Needs root; `make node-e2e` runs it after the other
//! node suites. `cargo test -p kube-harden-e2e --test node_helm`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube_harden_e2e::incluster::{self, Image, reviews_served};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::webcheck::{hardened_answer, legacy_deployment, legacy_pod};
use kube_harden_e2e::{MODE_LABEL, PSA_ENFORCE_LABEL, Result, process, repo_root, target_dir};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const NS: &str = "kube-harden";
const RELEASE: &str = "kube-harden";
/// The label every object of the chart carries.
const SELECTOR: &str = "app.kubernetes.io/name=kube-harden";

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![Trial::test("helm_install_upgrade_uninstall", || {
        let image = incluster::build("kube-harden-helm.oci.tar", false, None)
            .map_err(|e| Failed::from(format!("the image could not be built: {e}")))?;
        let helm = helm_bin().map_err(|e| Failed::from(e.to_string()))?;
        let node = Node::start_with(
            target_dir(&repo_root()).join("e2e-node-helm"),
            &[("E2E_NODE_WEBHOOK", "in-cluster")],
        )
        .map_err(|e| Failed::from(format!("the node could not come up: {e}")))?;
        let result = node.block_on(install_upgrade_uninstall(&node, &helm, &image));
        node.down();
        result.map_err(|e| Failed::from(e.to_string()))
    })];
    libtest_mimic::run(&args, trials).exit_code()
}

/// helm as `e2e/build-controlplane.sh --helm` built it (`make helm`; cached by version).
fn helm_bin() -> Result<PathBuf> {
    let out = process::run(
        Command::new(repo_root().join("e2e/build-controlplane.sh")).args(["--helm", "--print-env"]),
        None,
        Duration::from_secs(30),
    )?
    .ok("build-controlplane.sh --helm --print-env")?;
    let path = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("HELM_BIN="))
        .map(PathBuf::from)
        .ok_or("build-controlplane.sh printed no HELM_BIN")?;
    if !path.is_file() {
        return Err(format!("{} is not built: make helm", path.display()).into());
    }
    Ok(path)
}

/// Runs helm with the node's kubeconfig and its own config, cache and data directories under
/// the node's state (nothing of the user's ~/.config/helm is read or written).
fn helm(node: &Node, helm: &Path, args: &[&str]) -> Result<process::Output> {
    let home = node.state_dir.join("helm");
    process::run(
        Command::new(helm)
            .args(args)
            .env("KUBECONFIG", &node.kubeconfig)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data")),
        None,
        Duration::from_secs(300),
    )?
    .ok(&format!("helm {}", args.join(" ")))
}

/// The values for this node: the imported image, never pulled; the API server's address for
/// the egress NetworkPolicy (the chart's one required value); and, as the kustomize overlay
/// cluster.sh writes, KUBERNETES_SERVICE_HOST/PORT, the one thing kube-proxy would provide.
fn node_values(node: &Node, image: &Image) -> Result<Value> {
    let api = node
        .env("E2E_APISERVER_URL")?
        .trim_start_matches("https://");
    let (host, port) = api
        .rsplit_once(':')
        .ok_or_else(|| format!("no port in the API server's URL {api}"))?;
    let (repository, tag) = image
        .reference
        .rsplit_once(':')
        .ok_or("no tag in the image reference")?;
    Ok(json!({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "networkPolicy": {"apiServerCIDRs": [format!("{host}/32")]},
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": host},
            {"name": "KUBERNETES_SERVICE_PORT", "value": port},
        ],
    }))
}

/// The webhook's caBundle is the CA of the Secret the pods created, in both webhooks.
async fn check_certificates(node: &Node) -> Result<()> {
    let secret = Api::<Secret>::namespaced(node.client(), NS)
        .get("kube-harden-tls")
        .await?;
    let ca = secret
        .data
        .unwrap_or_default()
        .remove("ca.crt")
        .ok_or("no ca.crt in the Secret kube-harden-tls")?;
    let config = Api::<MutatingWebhookConfiguration>::all(node.client())
        .get("kube-harden")
        .await?;
    let webhooks = config.webhooks.unwrap_or_default();
    if webhooks.len() != 2
        || webhooks
            .iter()
            .any(|w| w.client_config.ca_bundle.as_ref() != Some(&ca))
    {
        return Err("the webhooks' caBundle is not the CA of the Secret kube-harden-tls".into());
    }
    Ok(())
}

/// A legacy Deployment in a fresh enforce + restricted namespace: stored hardened, its pod Ready
/// and running as `uid`, on a read-only root.
async fn legacy_runs_hardened(node: &Node, uid: &str) -> Result<Duration> {
    let ns = node
        .namespace(
            "helm-legacy",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    let created = Instant::now();
    let stored = Api::<Deployment>::namespaced(node.client(), &ns)
        .create(
            &PostParams::default(),
            &legacy_deployment(node.env("E2E_WEBCHECK_IMAGE")?)?,
        )
        .await?;
    let hardened = stored
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("kube-harden.io/hardened");
    if !hardened {
        return Err(format!("the Deployment stored in {ns} is not hardened").into());
    }
    let pods = node
        .wait_deployment(&ns, "legacy-web", Duration::from_secs(120))
        .await?;
    let ready = created.elapsed();
    let (status, body) = node.http_get_pod(&pods[0], 8080, "/")?;
    let seen = hardened_answer(status, &body)?;
    if seen.get("uid").map(String::as_str) != Some(uid) {
        return Err(format!(
            "the hardened pod runs as {:?}, want uid {uid}: {body}",
            seen.get("uid")
        )
        .into());
    }
    Ok(ready)
}

/// The kube-harden pods once the rollout is over: exactly `replicas` (Node::wait_deployment
/// waits for the old ones to be gone, so no review is answered with the old policy).
async fn rolled_out(node: &Node, replicas: usize) -> Result<Vec<Pod>> {
    let pods = node
        .wait_deployment(NS, "kube-harden", Duration::from_secs(240))
        .await?;
    if pods.len() != replicas {
        return Err(format!("{} kube-harden pods, want {replicas}", pods.len()).into());
    }
    Ok(pods)
}

/// `<Kind> <name>` of every cluster-wide `K` that `params` selects.
async fn listed<K>(node: &Node, params: &ListParams) -> Result<Vec<String>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    let list = Api::<K>::all(node.client()).list(params).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|o| o.meta().name.as_ref())
        .map(|n| format!("{kind} {n}"))
        .collect())
}

/// What uninstall must not leave behind: any webhook configuration, kube-harden's cluster-wide
/// objects (admission policies and bindings, RBAC) and its namespace.
async fn leftovers(node: &Node) -> Result<Vec<String>> {
    let ours = ListParams::default().labels(SELECTOR);
    let mut left = listed::<MutatingWebhookConfiguration>(node, &ListParams::default()).await?;
    left.extend(listed::<ValidatingAdmissionPolicy>(node, &ours).await?);
    left.extend(listed::<ValidatingAdmissionPolicyBinding>(node, &ours).await?);
    left.extend(listed::<ClusterRole>(node, &ours).await?);
    left.extend(listed::<ClusterRoleBinding>(node, &ours).await?);
    if Api::<Namespace>::all(node.client())
        .get_opt(NS)
        .await?
        .is_some()
    {
        left.push(format!("Namespace {NS}"));
    }
    Ok(left)
}

async fn install_upgrade_uninstall(node: &Node, helm_path: &Path, image: &Image) -> Result<()> {
    incluster::import(node, image)?;
    let repo = repo_root();
    let chart = repo.join("charts/kube-harden");
    let chart = chart.to_str().ok_or("the chart's path is not UTF-8")?;
    let values_file = node.state_dir.join("helm-values.json");
    std::fs::write(&values_file, node_values(node, image)?.to_string())?;
    let values = values_file.to_str().ok_or("state dir not UTF-8")?;
    let helm = |args: &[&str]| helm(node, helm_path, args);
    eprintln!("helm: {}", helm(&["version", "--short"])?.stdout.trim());

    // Install: the release record in `default`, the chart creating its namespace (as
    // docs/install.md says).
    let t = Instant::now();
    helm(&["install", RELEASE, chart, "-f", values])?;
    let helm_install = t.elapsed();
    let pods = rolled_out(node, 2).await?;
    let install_ready = t.elapsed();
    check_certificates(node).await?;
    let served_before = reviews_served(node, &pods)?;
    let legacy_ready = legacy_runs_hardened(node, "2866").await?;
    let served = reviews_served(node, &pods)? - served_before;
    if served < 3.0 {
        return Err(
            format!("the kube-harden pods served {served} reviews, want at least 3").into(),
        );
    }

    // Upgrade: 3 replicas and another policy (runAsUser 3000); the pods roll, the certificates
    // and caBundle survive, and what is admitted now follows the new policy.
    let policy_file = node.state_dir.join("helm-upgrade.json");
    let policy = "runAsUser: 3000\nrunAsGroup: 3000\nfsGroup: 3000\n";
    std::fs::write(
        &policy_file,
        json!({"replicas": 3, "policy": policy}).to_string(),
    )?;
    let t = Instant::now();
    let upgrade = policy_file.to_str().ok_or("state dir not UTF-8")?;
    helm(&["upgrade", RELEASE, chart, "-f", values, "-f", upgrade])?;
    let helm_upgrade = t.elapsed();
    rolled_out(node, 3).await?;
    let upgrade_ready = t.elapsed();
    check_certificates(node).await?;
    let history = helm(&["history", RELEASE, "-o", "json"])?.stdout;
    let revisions: Vec<Value> = serde_json::from_str(&history)?;
    if revisions.len() != 2 || revisions[1]["status"] != "deployed" {
        return Err(format!("helm history after the upgrade: {history}").into());
    }
    legacy_runs_hardened(node, "3000").await?;

    // Uninstall: nothing of kube-harden left, and pods still created (unhardened).
    let t = Instant::now();
    helm(&["uninstall", RELEASE])?;
    let helm_uninstall = t.elapsed();
    let left = leftovers(node).await?;
    if left.iter().any(|l| !l.starts_with("Namespace")) {
        return Err(format!("after helm uninstall: {left:?}").into());
    }
    process::poll(
        "namespace kube-harden deleted",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || async { Ok(leftovers(node).await?.is_empty().then_some(())) },
    )
    .await?;
    let all_gone = t.elapsed();
    let ns = node
        .namespace("helm-after", &[(MODE_LABEL, "enforce")])
        .await?;
    let mut pod = legacy_pod(node.env("E2E_WEBCHECK_IMAGE")?);
    pod["metadata"]["name"] = json!("after-uninstall");
    let pod: Pod = serde_json::from_value(pod)?;
    let stored = Api::<Pod>::namespaced(node.client(), &ns)
        .create(&PostParams::default(), &pod)
        .await?;
    if stored
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("kube-harden.io/hardened")
    {
        return Err("a pod was hardened after helm uninstall".into());
    }
    node.wait_ready(&ns, "after-uninstall").await?;

    eprintln!(
        "helm: install {:.1} s, to 2/2 Ready {:.1} s, legacy Deployment hardened and Ready {:.1} s \
         ({served} reviews served); upgrade (3 replicas, runAsUser 3000) {:.1} s, rolled out {:.1} s; \
         uninstall {:.1} s, namespace gone {:.1} s; a pod created and Ready afterwards",
        helm_install.as_secs_f64(),
        install_ready.as_secs_f64(),
        legacy_ready.as_secs_f64(),
        helm_upgrade.as_secs_f64(),
        upgrade_ready.as_secs_f64(),
        helm_uninstall.as_secs_f64(),
        all_gone.as_secs_f64(),
    );
    Ok(())
}
