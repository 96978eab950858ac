//! kube-harden installed as a user installs it, on the node: its image imported into
//! containerd, `kubectl apply -k` of the shipped manifests through the local-node overlay
//! (e2e/node/overlay: image reference and pull policy; cluster.sh adds the API server's
//! address, which kube-proxy would otherwise provide). Its pods come up Ready as non-root
//! processes on a read-only root in a namespace enforcing `restricted`, create their
//! certificates from inside the cluster and fill the webhook's caBundle; the API server then
//! reaches them through their Service (`--enable-aggregator-routing`), and a legacy Deployment
//! in an enforce namespace is hardened by them and runs.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, PostParams};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::webcheck::{hardened_answer, legacy_deployment};
use kube_harden_e2e::{MODE_LABEL, PSA_ENFORCE_LABEL, Result, process};

use crate::image::Image;

pub const NS: &str = "kube-harden";

/// What the run measured (printed, and quoted in docs/node.md).
#[derive(Debug, Default)]
struct Figures {
    apply_to_ready: Duration,
    create_to_hardened_ready: Duration,
    apply_to_first_hardened_ready: Duration,
}

/// `cluster.sh import`, then the image as containerd lists it must have the built digest.
pub fn import(node: &Node, image: &Image) -> Result<()> {
    let repo = kube_harden_e2e::repo_root();
    process::run(
        Command::new(repo.join("e2e/cluster.sh"))
            .arg("import")
            .arg(&image.archive)
            .env("E2E_NODE_STATE_DIR", &node.state_dir),
        None,
        Duration::from_secs(120),
    )?
    .ok("cluster.sh import")?;
    let listed = node.ctr(&["images", "ls", &format!("name=={}", image.reference)])?;
    if !listed.contains(&image.digest) {
        return Err(format!(
            "containerd lists {} without digest {}:\n{listed}",
            image.reference, image.digest
        )
        .into());
    }
    Ok(())
}

/// The host PID of a pod's first container (its task in the node's containerd).
fn container_pid(node: &Node, pod: &Pod) -> Result<u32> {
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref()?.first()?.container_id.clone())
        .and_then(|id| id.strip_prefix("containerd://").map(str::to_owned))
        .ok_or("no containerd container ID in the pod's status")?;
    let tasks = node.ctr(&["tasks", "ls"])?;
    tasks
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(id.as_str())).then(|| f.next()?.parse().ok())?
        })
        .ok_or_else(|| format!("container {id} not in ctr tasks ls:\n{tasks}").into())
}

/// What the kernel says about the process: every UID and GID 65532, no effective capability,
/// no_new_privs, a seccomp filter, and its root filesystem mounted read-only.
fn check_process(pid: u32) -> Result<()> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let want = [
        ("Uid:", vec!["65532"; 4]),
        ("Gid:", vec!["65532"; 4]),
        ("CapEff:", vec!["0000000000000000"]),
        ("NoNewPrivs:", vec!["1"]),
        ("Seccomp:", vec!["2"]),
    ];
    for (key, value) in want {
        if field(key) != value {
            return Err(format!(
                "kube-harden (pid {pid}) {key} {:?}, want {value:?}",
                field(key)
            )
            .into());
        }
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let root = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f.get(4) == Some(&"/"))
        .ok_or("no / in the container's mountinfo")?;
    if !root.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro")) {
        return Err(format!(
            "kube-harden's / is mounted {:?}, not read-only",
            root.get(5)
        )
        .into());
    }
    Ok(())
}

/// Reviews counted by the kube-harden pods themselves (their metrics port, from the host).
pub fn reviews_served(node: &Node, pods: &[Pod]) -> Result<f64> {
    let mut total = 0.0;
    for pod in pods {
        let (status, body) = node.http_get_pod(pod, 8080, "/metrics")?;
        if status != 200 {
            return Err(format!("metrics answered {status}").into());
        }
        total += body
            .lines()
            .filter(|l| l.starts_with("kube_harden_admission_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(total)
}

pub async fn shipped_manifests_run_in_cluster_and_harden(node: &Node, image: &Image) -> Result<()> {
    import(node, image)?;
    let overlay = node.env("E2E_KUBE_HARDEN_OVERLAY")?;
    let applied = Instant::now();
    node.kubectl(&["apply", "-k", overlay], None)?
        .ok("kubectl apply -k")?;
    let mut figures = Figures::default();

    // Ready, as the image and the manifests say: 2 replicas, non-root, read-only root.
    let pods = node
        .wait_deployment(NS, "kube-harden", Duration::from_secs(180))
        .await?;
    figures.apply_to_ready = applied.elapsed();
    let namespace = Api::<Namespace>::all(node.client()).get(NS).await?;
    let labels = namespace.metadata.labels.unwrap_or_default();
    if labels.get(PSA_ENFORCE_LABEL).map(String::as_str) != Some("restricted") {
        return Err(format!("namespace {NS} does not enforce restricted: {labels:?}").into());
    }
    for pod in &pods {
        let container = pod
            .spec
            .as_ref()
            .map(|s| &s.containers[0])
            .ok_or("no spec")?;
        if container.image.as_deref() != Some(image.reference.as_str()) {
            return Err(format!("pod runs {:?}, want {}", container.image, image.reference).into());
        }
        check_process(container_pid(node, pod)?)?;
    }

    // Certificates from inside the cluster: the Secret the pods created, its CA in both
    // webhooks' caBundle, patched by kube-harden (its field manager).
    let secret = Api::<Secret>::namespaced(node.client(), NS)
        .get("kube-harden-tls")
        .await?;
    let managed_by = secret
        .metadata
        .labels
        .unwrap_or_default()
        .get("app.kubernetes.io/managed-by")
        .cloned();
    if managed_by.as_deref() != Some("kube-harden") {
        return Err(format!("Secret kube-harden-tls managed by {managed_by:?}").into());
    }
    let ca = secret
        .data
        .unwrap_or_default()
        .remove("ca.crt")
        .ok_or("no ca.crt in the Secret")?;
    let config = Api::<MutatingWebhookConfiguration>::all(node.client())
        .get("kube-harden")
        .await?;
    let webhooks = config.webhooks.unwrap_or_default();
    for webhook in &webhooks {
        let service = webhook
            .client_config
            .service
            .as_ref()
            .ok_or("a webhook without a Service")?;
        if webhook.client_config.ca_bundle.as_ref() != Some(&ca) || service.name != "kube-harden" {
            return Err(format!(
                "webhook {}: caBundle is not the Secret's CA, or no Service",
                webhook.name
            )
            .into());
        }
    }
    let managers: Vec<String> = config
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    if webhooks.len() != 2 || !managers.iter().any(|m| m == "kube-harden") {
        return Err(format!("{} webhooks, field managers {managers:?}", webhooks.len()).into());
    }
    let served_before = reviews_served(node, &pods)?;

    // A legacy Deployment where enforcement and Pod Security restricted are both on.
    let legacy_ns = node
        .namespace(
            "legacy",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    let created = Instant::now();
    let stored = Api::<Deployment>::namespaced(node.client(), &legacy_ns)
        .create(
            &PostParams::default(),
            &legacy_deployment(node.env("E2E_WEBCHECK_IMAGE")?)?,
        )
        .await?;
    let annotations: BTreeMap<String, String> = stored.metadata.annotations.unwrap_or_default();
    let pod_sc = stored.spec.and_then(|s| s.template.spec?.security_context);
    if !annotations.contains_key("kube-harden.io/hardened")
        || pod_sc.and_then(|s| s.run_as_non_root) != Some(true)
    {
        return Err(
            format!("the stored Deployment is not hardened: annotations {annotations:?}").into(),
        );
    }
    let legacy = node
        .wait_deployment(&legacy_ns, "legacy-web", Duration::from_secs(120))
        .await?;
    figures.create_to_hardened_ready = created.elapsed();
    figures.apply_to_first_hardened_ready = applied.elapsed();
    let (status, body) = node.http_get_pod(&legacy[0], 8080, "/")?;
    let seen = hardened_answer(status, &body)?;
    // Deployment, ReplicaSet and Pod: at least three reviews, all served by the pods.
    let served = reviews_served(node, &pods)? - served_before;
    if served < 3.0 {
        return Err(
            format!("the kube-harden pods served {served} reviews, want at least 3").into(),
        );
    }
    eprintln!(
        "install: apply -k to 2/2 Ready {:.1} s; legacy Deployment created to hardened pod Ready {:.1} s; \
         apply to first hardened pod Ready {:.1} s; {served} reviews served in-cluster; legacy pod {seen:?}",
        figures.apply_to_ready.as_secs_f64(),
        figures.create_to_hardened_ready.as_secs_f64(),
        figures.apply_to_first_hardened_ready.as_secs_f64(),
    );
    Ok(())
}
