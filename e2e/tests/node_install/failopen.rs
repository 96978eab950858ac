//! Fail-open on the node: with every kube-harden pod gone (the Deployment scaled to 0), pods in
//! an enforce namespace are still admitted, unhardened, and run; a real Prometheus scraping the
//! real API server's `/metrics`, with kube-harden's alert rules loaded
//! (scripts/monitoring/prometheus.sh, as `make monitoring-check` runs it), evaluates
//! `KubeHardenWebhookFailingOpen`'s expression to a value (the alert goes pending: its `for`
//! is 5 minutes); scaled back, kube-harden hardens new pods again.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::process::{self, Supervised};
use kube_harden_e2e::stream::{not_hardened, stream_pod};
use kube_harden_e2e::webcheck::{hardened_answer, legacy_pod, parse_webcheck};
use kube_harden_e2e::{MODE_LABEL, Result, repo_root};
use serde_json::Value;

use crate::install::NS;

const ALERT: &str = "KubeHardenWebhookFailingOpen";

/// Prometheus, scraping the node's API server every second with the admin client certificate.
struct Prometheus {
    addr: SocketAddr,
    _process: Supervised,
}

impl Prometheus {
    fn start(node: &Node) -> Result<Self> {
        let repo = repo_root();
        let script = repo.join("scripts/monitoring/prometheus.sh");
        let dir = node.state_dir.join("prometheus");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))?;
        process::run(
            Command::new(&script).arg("install"),
            None,
            Duration::from_secs(600),
        )?
        .ok("prometheus.sh install")?;
        let rules = dir.join("rules.yaml");
        process::run(
            Command::new(&script).arg("rules").arg(&rules),
            None,
            Duration::from_secs(60),
        )?
        .ok("prometheus.sh rules")?;
        let api = node.env("E2E_APISERVER_URL")?;
        let target = api
            .strip_prefix("https://")
            .ok_or("the API server URL is not https")?;
        let s = node.state_dir.display();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n\
             - job_name: apiserver\n  scheme: https\n  scrape_timeout: 1s\n\
             \x20 tls_config: {{ca_file: {s}/controlplane/certs/ca.crt, cert_file: {s}/certs/admin.crt, key_file: {s}/certs/admin.key}}\n\
             \x20 static_configs: [{{targets: ['{target}']}}]\n",
            rules = rules.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
        let child = Command::new(&script)
            .arg("run")
            .arg(dir.join("prometheus.yml"))
            .arg(dir.join("data"))
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("prometheus.log"))?)
            .stderr(std::fs::File::create(dir.join("prometheus.err"))?)
            .spawn()?;
        let prometheus = Self {
            addr,
            _process: Supervised::watch(child, "kube-harden-e2e-prometheus")?,
        };
        Ok(prometheus)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = process::http_get(self.addr, path)?;
        if status != 200 {
            return Err(format!("Prometheus {path}: {status} {body}").into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// The alert rule `name` as Prometheus evaluates it: its state and query.
    fn rule(&self, name: &str) -> Result<Value> {
        let rules = self.get("/api/v1/rules?type=alert")?;
        rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .find(|r| r["name"] == name)
            .cloned()
            .ok_or_else(|| format!("Prometheus has no rule {name}: {rules}").into())
    }
}

/// Creates the legacy webcheck pod `name` in `namespace` and waits until it runs Ready; the
/// stored pod and what it reports.
async fn run_webcheck(node: &Node, namespace: &str, name: &str) -> Result<(Value, (u16, String))> {
    let mut pod = legacy_pod(node.env("E2E_WEBCHECK_IMAGE")?);
    pod["metadata"]["name"] = name.into();
    Api::<Pod>::namespaced(node.client(), namespace)
        .create(&PostParams::default(), &serde_json::from_value(pod)?)
        .await?;
    let ready = node.wait_ready(namespace, name).await?;
    let answer = node.http_get_pod(&ready, 8080, "/")?;
    Ok((serde_json::to_value(&ready)?, answer))
}

pub async fn fail_open_when_every_replica_is_gone(node: &Node) -> Result<()> {
    let prometheus = Prometheus::start(node)?;
    let ns = node
        .namespace("fail-open", &[(MODE_LABEL, "enforce")])
        .await?;
    process::poll(
        "Prometheus scraping the API server",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let targets = prometheus.get("/api/v1/targets")?;
            Ok((targets["data"]["activeTargets"][0]["health"] == "up").then_some(()))
        },
    )
    .await?;

    // Every replica gone.
    let t0 = Instant::now();
    node.kubectl(
        &["-n", NS, "scale", "deployment/kube-harden", "--replicas=0"],
        None,
    )?
    .ok("kubectl scale --replicas=0")?;
    let kube_harden_pods: Api<Pod> = Api::namespaced(node.client(), NS);
    process::poll(
        "every kube-harden pod gone",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || async {
            let list = kube_harden_pods.list(&ListParams::default()).await?;
            Ok(list.items.is_empty().then_some(()))
        },
    )
    .await?;
    let gone_after = t0.elapsed();

    // Pods are still admitted, unhardened, and run.
    let (stored, (status, body)) = run_webcheck(node, &ns, "while-down").await?;
    if not_hardened(&stored).is_none() {
        return Err(format!("with no kube-harden pod, the pod was hardened: {stored}").into());
    }
    let seen = parse_webcheck(&body);
    if status != 200 || seen.get("uid").map(String::as_str) != Some("0") {
        return Err(format!("the unhardened pod answered {status}: {body}").into());
    }

    // The alert's expression, evaluated by Prometheus on the API server's metric, while
    // creations keep failing open (a rate needs two samples that differ).
    let pods: Api<Pod> = Api::namespaced(node.client(), &ns);
    let image = node.env("E2E_WEBCHECK_IMAGE")?.to_owned();
    let mut n = 0;
    let rule = process::poll(
        &format!("{ALERT} pending or firing"),
        Duration::from_secs(90),
        Duration::from_secs(1),
        || {
            n += 1;
            let pod = stream_pod(&format!("down-{n:03}"), &image);
            let pods = pods.clone();
            let rule = prometheus.rule(ALERT);
            async move {
                pods.create(&PostParams::default(), &serde_json::from_value(pod)?)
                    .await?;
                let rule = rule?;
                Ok(matches!(rule["state"].as_str(), Some("pending" | "firing")).then_some(rule))
            }
        },
    )
    .await?;
    let fired_after = t0.elapsed();
    let value = &rule["alerts"][0]["value"];
    let webhook = &rule["alerts"][0]["labels"]["name"];
    if webhook != "enforce.kube-harden.io" {
        return Err(format!(
            "{ALERT} is {} for {webhook}, want enforce.kube-harden.io: {rule}",
            rule["state"]
        )
        .into());
    }

    // Back: new pods are hardened again.
    node.kubectl(
        &["-n", NS, "scale", "deployment/kube-harden", "--replicas=2"],
        None,
    )?
    .ok("kubectl scale --replicas=2")?;
    node.wait_deployment(NS, "kube-harden", Duration::from_secs(180))
        .await?;
    let back_after = t0.elapsed();
    let (stored, (status, body)) = run_webcheck(node, &ns, "after").await?;
    if let Some(why) = not_hardened(&stored) {
        return Err(format!("kube-harden is back, yet the pod was not hardened: {why}").into());
    }
    let hardened = hardened_answer(status, &body)?;
    eprintln!(
        "fail-open: replicas gone {:.1} s after scale 0; unhardened pod ran as uid 0; {ALERT} {} \
         ({webhook}, {value}/s) {:.1} s after scale 0; 2/2 Ready again at {:.1} s; new pod hardened ({hardened:?})",
        gone_after.as_secs_f64(),
        rule["state"],
        fired_after.as_secs_f64(),
        back_after.as_secs_f64(),
    );
    Ok(())
}
