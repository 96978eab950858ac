//! The [`Harness`]: starts the control plane and the webhook, registers the webhook and waits
//! until the API server calls it, gives the tests a client, fresh namespaces and the ledger of
//! what the webhook should have counted, and shuts everything down (also on drop).

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube_harden::admission::Mode;
use kube_harden::harden::{HARDENED_ANNOTATION, Hardened};
use serde_json::{Value, json};

use crate::controlplane::ControlPlane;
use crate::ledger::Ledger;
use crate::metrics::Samples;
use crate::webhook::{Tls, Webhook};
use crate::{
    MODE_LABEL, Result, apiserver_metrics, create_namespace, kube_harden_binary, process,
    repo_root, target_dir, webhook,
};

/// Counters sampled when the webhook (re)started and its configuration was effective.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The webhook's own `/metrics`.
    pub webhook: Samples,
    /// The API server's `/metrics`.
    pub apiserver: Samples,
    /// How many times the webhook has been started in this run.
    pub generation: u32,
}

/// Everything a test needs: the cluster, the webhook, a client, and the ledger.
pub struct Harness {
    repo: PathBuf,
    run_dir: PathBuf,
    bin: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    webhook: Mutex<Option<Webhook>>,
    ledger: Mutex<Ledger>,
    baseline: Mutex<Baseline>,
    namespaces: AtomicU32,
    // Last, so it is dropped after the webhook.
    controlplane: ControlPlane,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Harness {
    /// Starts the control plane and the webhook, registers the webhook, and waits until the
    /// API server calls it. Any failure is an error: the suite never skips.
    pub fn start() -> Result<Self> {
        let t0 = Instant::now();
        let repo = repo_root();
        let target = target_dir(&repo);
        let run_dir = std::env::var_os("E2E_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("e2e"));
        for sub in ["webhook", "manifests", "demo"] {
            let _ = std::fs::remove_dir_all(run_dir.join(sub));
        }
        std::fs::create_dir_all(run_dir.join("webhook"))?;
        std::fs::create_dir_all(run_dir.join("manifests"))?;
        let bin = kube_harden_binary(&repo, &target)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let controlplane = ControlPlane::start(&repo, run_dir.join("controlplane"))?;
        let client = runtime.block_on(kube_harden::kube_client::client(
            Some(&controlplane.kubeconfig),
            None,
            None,
        ))?;
        let tls = Tls::create(&run_dir.join("webhook"))?;
        let webhook = Webhook::start(
            bin.clone(),
            tls.clone(),
            run_dir.join("webhook/kube-harden.log"),
        )?;
        let harness = Self {
            repo,
            run_dir,
            bin,
            runtime,
            client,
            webhook: Mutex::new(Some(webhook)),
            ledger: Mutex::new(Ledger::default()),
            baseline: Mutex::new(Baseline::default()),
            namespaces: AtomicU32::new(0),
            controlplane,
        };
        harness.block_on(harness.register(&tls))?;
        eprintln!(
            "e2e: control plane and webhook ready in {:.1} s (kubeconfig {})",
            t0.elapsed().as_secs_f64(),
            harness.controlplane.kubeconfig.display()
        );
        Ok(harness)
    }

    /// Renders manifests/base, creates the configuration with url + caBundle, and waits until
    /// the API server uses it.
    async fn register(&self, tls: &Tls) -> Result<()> {
        let rendered = webhook::render_base(&self.controlplane.kubectl, &self.repo)?;
        let url_base = self.webhook_url("");
        let config = webhook::local_configuration(&rendered, &url_base, &tls.ca_pem)?;
        std::fs::write(
            self.run_dir
                .join("manifests/mutatingwebhookconfiguration.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client());
        api.create(&PostParams::default(), &config).await?;
        let probe = self.namespace("probe", &[(MODE_LABEL, "enforce")]).await?;
        self.wait_effective(&probe).await
    }

    /// Dry-run creates a legacy pod in `namespace` (mode=enforce) until the answer carries
    /// kube-harden's annotation, then samples the baseline counters.
    async fn wait_effective(&self, namespace: &str) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client(), namespace);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe"},
            "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}]}
        }))?;
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        process::poll(
            "the webhook configuration to take effect",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || async {
                let stored = pods.create(&dry_run, &pod).await?;
                Ok(stored
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(HARDENED_ANNOTATION))
                    .then_some(()))
            },
        )
        .await?;
        let webhook = self.webhook_metrics()?;
        let apiserver = self.apiserver_metrics().await?;
        let mut baseline = lock(&self.baseline);
        *baseline = Baseline {
            webhook,
            apiserver,
            generation: baseline.generation + 1,
        };
        *lock(&self.ledger) = Ledger::default();
        Ok(())
    }

    /// Runs a test's future on the harness's runtime (the client belongs to it).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A client with the admin kubeconfig.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The repository root.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// Scratch space of this run (target/e2e).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The kube-harden binary under test.
    pub fn kube_harden_bin(&self) -> &Path {
        &self.bin
    }

    /// The control plane.
    pub fn controlplane(&self) -> &ControlPlane {
        &self.controlplane
    }

    /// `https://127.0.0.1:<webhook port><path>`.
    pub fn webhook_url(&self, path: &str) -> String {
        lock(&self.webhook)
            .as_ref()
            .map(|w| w.url(path))
            .unwrap_or_default()
    }

    /// Runs the control plane's kubectl (v1.36.3) with the admin kubeconfig, for at most 60 s.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<process::Output> {
        process::run(
            Command::new(&self.controlplane.kubectl)
                .args(args)
                .env("KUBECONFIG", &self.controlplane.kubeconfig),
            stdin.map(str::as_bytes),
            Duration::from_secs(60),
        )
    }

    /// Creates a fresh namespace `e2e-<n>-<prefix>` with `labels` and returns its name.
    pub async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<String> {
        let n = self.namespaces.fetch_add(1, Ordering::SeqCst) + 1;
        let name = format!("e2e-{n}-{prefix}");
        create_namespace(self.client(), &name, labels).await?;
        Ok(name)
    }

    /// An API for the kind of `object` (from its apiVersion and kind) in `namespace`.
    pub fn api_for(&self, namespace: &str, object: &Value) -> Result<Api<DynamicObject>> {
        let api_version = object["apiVersion"].as_str().ok_or("no apiVersion")?;
        let kind = object["kind"].as_str().ok_or("no kind")?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        Ok(Api::namespaced_with(self.client(), namespace, &resource))
    }

    /// Creates `object` as it is (raw JSON, so nothing is lost to typed structs).
    pub async fn create(&self, namespace: &str, object: &Value) -> Result<Value, kube::Error> {
        let api = self
            .api_for(namespace, object)
            .map_err(|e| kube::Error::Service(e.to_string().into()))?;
        let dynamic: DynamicObject =
            serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
        let stored = api.create(&PostParams::default(), &dynamic).await?;
        serde_json::to_value(stored).map_err(kube::Error::SerdeError)
    }

    /// Reads the stored object of `object`'s kind named `name`.
    pub async fn get(&self, namespace: &str, object: &Value, name: &str) -> Result<Value> {
        let stored = self.api_for(namespace, object)?.get(name).await?;
        Ok(serde_json::to_value(stored)?)
    }

    /// Records that `object` is about to be sent through `mode`'s webhook; returns what the
    /// rules decide for it.
    pub fn expect_admission(
        &self,
        mode: Mode,
        operation: &str,
        namespace: &str,
        object: &Value,
    ) -> Result<Hardened> {
        lock(&self.ledger).admission(mode, operation, namespace, object)
    }

    /// Records a `pods/ephemeralcontainers` UPDATE.
    pub fn expect_ephemeral(
        &self,
        namespace: &str,
        pod: &Value,
        existing: &HashSet<&str>,
    ) -> Result<Hardened> {
        lock(&self.ledger).ephemeral(namespace, pod, existing)
    }

    /// What the webhook should have counted since it last started.
    pub fn ledger(&self) -> Ledger {
        lock(&self.ledger).clone()
    }

    /// The counters sampled when the webhook last started.
    pub fn baseline(&self) -> Baseline {
        lock(&self.baseline).clone()
    }

    /// The webhook's `/metrics`, parsed.
    pub fn webhook_metrics(&self) -> Result<Samples> {
        let text = lock(&self.webhook)
            .as_ref()
            .ok_or("the webhook is not running")?
            .metrics_text()?;
        Ok(Samples::parse(&text))
    }

    /// The API server's `/metrics`, parsed.
    pub async fn apiserver_metrics(&self) -> Result<Samples> {
        apiserver_metrics(&self.client).await
    }

    /// How many times the API server has called webhook `name` (e.g. `enforce.kube-harden.io`)
    /// for `operation` so far, by its `apiserver_admission_webhook_request_total`.
    pub async fn webhook_calls(&self, name: &str, operation: &str) -> Result<f64> {
        Ok(self
            .apiserver_metrics()
            .await?
            .family("apiserver_admission_webhook_request_total")
            .filter(|s| s.label("name") == name && s.label("operation") == operation)
            .sum())
    }

    /// The webhook's log so far.
    pub fn webhook_log(&self) -> String {
        lock(&self.webhook)
            .as_ref()
            .map(Webhook::log)
            .unwrap_or_default()
    }

    /// Stops the webhook process; the configuration stays registered.
    pub fn stop_webhook(&self) {
        if let Some(webhook) = lock(&self.webhook).as_mut() {
            webhook.stop();
        }
    }

    /// Starts the webhook again on the same port and waits until the API server calls it;
    /// the ledger and baseline start afresh (the new process's counters start at zero).
    pub async fn restart_webhook(&self) -> Result<()> {
        {
            let mut guard = lock(&self.webhook);
            let webhook = guard.as_mut().ok_or("no webhook")?;
            webhook.spawn()?;
        }
        let probe = self.namespace("probe", &[(MODE_LABEL, "enforce")]).await?;
        self.wait_effective(&probe).await
    }

    /// Stops the webhook and the control plane (idempotent; also done on drop).
    pub fn shutdown(&self) {
        if let Some(mut webhook) = lock(&self.webhook).take() {
            webhook.stop();
        }
        self.controlplane.stop();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown();
    }
}
