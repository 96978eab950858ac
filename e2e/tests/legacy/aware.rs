//! The image-aware webhook of the legacy suite: a second `kube-harden serve`, with
//! `--resolve-images` pointed at the suite's registry (plain HTTP on 127.0.0.1, the registry the
//! node pulls from), registered for the enforce namespaces that also carry [`AWARE_LABEL`]. The
//! node's own webhook (`cluster.sh`, image-blind) is told to leave those namespaces alone, so
//! each namespace is hardened by exactly one of the two.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube_harden_e2e::metrics::{Samples, Series};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::registry::Registry;
use kube_harden_e2e::webhook::{CONFIGURATION_NAME, Tls, Webhook};
use kube_harden_e2e::{MODE_LABEL, Result, kube_harden_binary, process, repo_root, target_dir};
use serde::Serialize;
use serde_json::{Value, json};

use super::apps;

/// The namespace label that sends its reviews to the image-aware webhook.
pub const AWARE_LABEL: &str = "e2e.kube-harden.io/image-aware";
/// The image-aware webhook's configuration.
const AWARE_CONFIGURATION: &str = "kube-harden-image-aware";
/// How long a review waits for the registry (`--registry-budget`), under `--review-timeout`
/// (4 s), under the configuration's `timeoutSeconds` (5 s). Generous: a loaded 2-core machine
/// must not turn a cold lookup into a fallback.
const BUDGET: &str = "3s";

/// The image-aware `kube-harden serve`, running and registered.
pub struct Aware {
    /// The process (stopped on drop).
    pub webhook: Webhook,
}

fn kubectl_json(node: &Node, args: &[&str], stdin: Option<&str>) -> Result<Value> {
    let out = node
        .kubectl(args, stdin)?
        .ok(&format!("kubectl {}", args.join(" ")))?;
    Ok(serde_json::from_str(&out.stdout)?)
}

/// Adds `{key: AWARE_LABEL, operator}` to every webhook's namespaceSelector of `config`.
fn select(config: &mut Value, operator: &str) -> Result<()> {
    let webhooks = config["webhooks"]
        .as_array_mut()
        .ok_or("the configuration has no webhooks")?;
    for webhook in webhooks {
        let selector = &mut webhook["namespaceSelector"];
        if !selector["matchExpressions"].is_array() {
            selector["matchExpressions"] = json!([]);
        }
        if let Some(expressions) = selector["matchExpressions"].as_array_mut() {
            expressions.push(json!({"key": AWARE_LABEL, "operator": operator}));
        }
    }
    Ok(())
}

impl Aware {
    /// Starts the image-aware webhook (the node's serving certificate, another port), narrows
    /// the node's webhook to namespaces without [`AWARE_LABEL`], registers this one for those
    /// with it, and waits until a dry run in each kind of namespace reaches the right one.
    pub fn start(node: &Node, registry: &Registry) -> Result<Self> {
        let repo = repo_root();
        let bin = kube_harden_binary(&repo, &target_dir(&repo))?;
        let certs = node.state_dir.join("certs");
        let tls = Tls {
            ca_pem: std::fs::read_to_string(node.state_dir.join("controlplane/certs/ca.crt"))?,
            cert_file: certs.join("kube-harden.crt"),
            key_file: certs.join("kube-harden.key"),
        };
        let host = registry.host();
        let webhook = Webhook::start_with(
            bin,
            tls,
            node.state_dir.join("logs/kube-harden-image-aware.log"),
            &[
                "--resolve-images",
                "--registry-insecure",
                &host,
                "--review-timeout",
                "4s",
                "--registry-budget",
                BUDGET,
            ],
        )?;

        let mut blind = kubectl_json(
            node,
            &[
                "get",
                "mutatingwebhookconfiguration",
                CONFIGURATION_NAME,
                "-o",
                "json",
            ],
            None,
        )?;
        let mut aware = blind.clone();
        select(&mut blind, "DoesNotExist")?;
        node.kubectl(&["replace", "-f", "-"], Some(&blind.to_string()))?
            .ok("narrowing the node's webhook")?;
        aware["metadata"] = json!({"name": AWARE_CONFIGURATION});
        select(&mut aware, "Exists")?;
        for webhook_config in aware["webhooks"].as_array_mut().into_iter().flatten() {
            let url = webhook_config["clientConfig"]["url"]
                .as_str()
                .ok_or("a node webhook without clientConfig.url")?;
            // https://127.0.0.1:<port><path>: the same path on this server's port.
            let path = url
                .strip_prefix("https://")
                .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
                .unwrap_or("");
            webhook_config["clientConfig"]["url"] = json!(webhook.url(path));
        }
        node.kubectl(&["create", "-f", "-"], Some(&aware.to_string()))?
            .ok("registering the image-aware webhook")?;
        let started = Self { webhook };
        started.wait_effective(node)?;
        eprintln!(
            "legacy: image-aware kube-harden on {} (--resolve-images, --registry-insecure {host}, \
             budget {BUDGET})",
            started.webhook.url("")
        );
        Ok(started)
    }

    /// Dry-runs a pod in an image-aware and in an image-blind enforce namespace until each
    /// review reaches its own webhook and only it (the request counters of both servers).
    fn wait_effective(&self, node: &Node) -> Result<()> {
        let aware_ns = node.block_on(node.namespace(
            "probe-aware",
            &[(MODE_LABEL, "enforce"), (AWARE_LABEL, "true")],
        ))?;
        let blind_ns = node.block_on(node.namespace("probe-blind", &[(MODE_LABEL, "enforce")]))?;
        // An image the registry does not have: a 404, so the lookup costs one round trip.
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
            "spec": {"containers": [{"name": "probe", "image": apps::image("no-such-app")}]}
        })
        .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut ok = true;
            for (ns, to_aware) in [(&aware_ns, true), (&blind_ns, false)] {
                let before = (self.requests()?, node_requests(node)?);
                node.kubectl(
                    &["-n", ns, "create", "--dry-run=server", "-f", "-"],
                    Some(&pod),
                )?
                .ok("dry-run probe")?;
                let after = (self.requests()?, node_requests(node)?);
                let (aware, blind) = (after.0 - before.0, after.1 - before.1);
                ok &= if to_aware {
                    aware > 0.0 && blind == 0.0
                } else {
                    aware == 0.0 && blind > 0.0
                };
            }
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(
                    "the two webhooks' namespace selectors did not take effect in 60 s".into(),
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// This server's `/metrics`.
    pub fn metrics(&self) -> Result<Samples> {
        Ok(Samples::parse(&self.webhook.metrics_text()?))
    }

    fn requests(&self) -> Result<f64> {
        Ok(self
            .metrics()?
            .family("kube_harden_admission_requests_total")
            .sum())
    }
}

/// The node's (image-blind) webhook's `/metrics`.
pub fn node_metrics(node: &Node) -> Result<Samples> {
    let url = node.env("E2E_WEBHOOK_METRICS_URL")?;
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {url}"))?
        .parse()?;
    match process::http_get(addr, "/metrics")? {
        (200, body) => Ok(Samples::parse(&body)),
        (status, body) => Err(format!("GET {url}/metrics: {status}: {body}").into()),
    }
}

fn node_requests(node: &Node) -> Result<f64> {
    Ok(node_metrics(node)?
        .family("kube_harden_admission_requests_total")
        .sum())
}

/// Review latency and image lookups of one webhook over the suite, from its metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Mutating reviews (`kube_harden_admission_duration_seconds_count`, every endpoint).
    pub reviews: f64,
    /// Their mean duration, in milliseconds.
    pub mean_review_ms: f64,
    /// The upper bound of the histogram bucket holding their median, in milliseconds.
    pub p50_review_ms: f64,
    /// The same for their 99th percentile.
    pub p99_review_ms: f64,
    /// Image fetches from the registry (`kube_harden_image_fetch_duration_seconds_count`).
    pub fetches: f64,
    /// Their mean duration, in milliseconds.
    pub mean_fetch_ms: f64,
    /// Cache lookups by result (`kube_harden_image_cache_lookups_total`).
    pub lookups: Vec<(String, f64)>,
    /// Fallbacks to the image-blind rules, by reason (`kube_harden_image_fallbacks_total`).
    pub fallbacks: Vec<(String, f64)>,
}

fn mean_ms(samples: &Samples, family: &str) -> (f64, f64) {
    let count = samples.family(&format!("{family}_count")).sum();
    let sum = samples.family(&format!("{family}_sum")).sum();
    let mean = if count > 0.0 { sum / count * 1e3 } else { 0.0 };
    (count, mean)
}

/// The `le` of the first bucket of histogram `family` (summed over its other labels) whose
/// count reaches `q` of the total, in milliseconds (0 with no samples).
fn quantile_ms(samples: &Samples, family: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (series, count) in &samples.family(&format!("{family}_bucket")).0 {
        let le = match series.label("le") {
            "+Inf" => f64::INFINITY,
            le => le.parse().unwrap_or(f64::INFINITY),
        };
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += count,
            None => buckets.push((le, *count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, c)| total > 0.0 && *c >= q * total)
        .map_or(0.0, |(le, _)| le * 1e3)
}

fn by_label(samples: &Samples, family: &str) -> Vec<(String, f64)> {
    samples
        .family(family)
        .0
        .iter()
        .map(|(series, v): (&Series, &f64)| {
            let labels: Vec<String> = series
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (labels.join(","), *v)
        })
        .collect()
}

impl Latency {
    /// The figures in `samples` (a server's `/metrics`).
    pub fn of(samples: &Samples) -> Self {
        let (reviews, mean_review_ms) = mean_ms(samples, "kube_harden_admission_duration_seconds");
        let (fetches, mean_fetch_ms) = mean_ms(samples, "kube_harden_image_fetch_duration_seconds");
        let family = "kube_harden_admission_duration_seconds";
        Self {
            reviews,
            mean_review_ms,
            p50_review_ms: quantile_ms(samples, family, 0.5),
            p99_review_ms: quantile_ms(samples, family, 0.99),
            fetches,
            mean_fetch_ms,
            lookups: by_label(samples, "kube_harden_image_cache_lookups_total"),
            fallbacks: by_label(samples, "kube_harden_image_fallbacks_total"),
        }
    }
}
