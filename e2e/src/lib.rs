//! End-to-end harness: kube-harden in a real kube-apiserver's admission chain.
//!
//! ```text
//!  Harness::start
//!    e2e/controlplane.sh start ──► etcd + kube-apiserver v1.36.3 on 127.0.0.1 (fresh, empty)
//!    rcgen CA + cert for 127.0.0.1 ──► target/debug/kube-harden serve (free ports, /readyz)
//!    kubectl kustomize manifests/base ──► service → url + caBundle ──► create, probe until effective
//!  tests (one at a time, fresh namespaces) ──► kube client / kubectl v1.36.3 ──► API server
//!                                                    │ admission chain: kube-harden, then PSA
//!    Ledger: what the webhook should have counted ◄──┘ (the rules run locally on what was sent)
//!  Harness::shutdown (also on drop; watchdogs cover a killed run): webhook, control plane
//! ```
//!
//! The control plane is described in e2e/README.md; what the suite proves in docs/e2e.md.
//! Webhook registration: <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.

pub mod controlplane;
pub mod host;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod process;
pub mod registry;
pub mod stream;
pub mod webcheck;
pub mod webhook;

/// Where the PSA fixtures are and how to read them: one file shared with the integration tests.
#[path = "../../tests/it/psa_source.rs"]
mod psa_source;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube_harden::admission::Mode;
use kube_harden::harden::{HARDENED_ANNOTATION, Hardened};
use serde_json::{Value, json};

use crate::controlplane::ControlPlane;
use crate::ledger::Ledger;
use crate::metrics::Samples;
use crate::webhook::{Tls, Webhook};

/// Errors of the harness and the tests.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The namespace label that opts a namespace in: `enforce` or `audit`.
pub const MODE_LABEL: &str = "kube-harden.io/mode";
/// Pod Security Admission's enforce label.
pub const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Pod Security Admission's warn label.
pub const PSA_WARN_LABEL: &str = "pod-security.kubernetes.io/warn";

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

/// The `/metrics` of the API server `client` talks to, parsed.
pub async fn apiserver_metrics(client: &kube::Client) -> Result<Samples> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(Samples::parse(&text))
}

/// Creates namespace `name` with `labels`.
pub async fn create_namespace(
    client: kube::Client,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<()> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}
    }))?;
    Api::<Namespace>::all(client)
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// The message of Pod Security admission's refusal of a request (403, "violates PodSecurity"),
/// or an error saying what `result` was instead (`what` names the request).
pub fn psa_refusal<T>(result: Result<T, kube::Error>, what: &str) -> Result<String> {
    match result {
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("violates PodSecurity") =>
        {
            Ok(status.message)
        }
        Err(e) => Err(format!("{what}: not refused by Pod Security: {e}").into()),
        Ok(_) => Err(format!("{what}: admitted, not refused by Pod Security").into()),
    }
}

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().map(Path::to_path_buf).unwrap_or(here);
    root.canonicalize().unwrap_or(root)
}

/// `CARGO_TARGET_DIR` (relative to `repo` unless absolute), else `<repo>/target`.
pub fn target_dir(repo: &Path) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo.join(p) })
        .unwrap_or_else(|| repo.join("target"));
    // With symlinks resolved: the kernel names mount points by their real path, and the node's
    // scripts find (and unmount) what is theirs by the state dir's path (a CI clone's target/
    // is a symlink).
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// `KUBE_HARDEN_BIN` (relative to the repository root: cargo runs tests in the crate's
/// directory), or `cargo build --bin kube-harden` (a no-op when it is up to date) so the suite
/// never tests a stale binary.
pub fn kube_harden_binary(repo: &Path, target: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("KUBE_HARDEN_BIN") {
        let bin = PathBuf::from(bin);
        let bin = if bin.is_absolute() {
            bin
        } else {
            repo.join(bin)
        };
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("KUBE_HARDEN_BIN={} does not exist", bin.display()).into())
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("e2e: cargo build --bin kube-harden");
    let status = process::run_visible(
        Command::new(cargo)
            .args(["build", "--bin", "kube-harden"])
            .current_dir(repo),
        Duration::from_secs(30 * 60),
    )?;
    if !status.success() {
        return Err(format!("cargo build --bin kube-harden failed ({status})").into());
    }
    Ok(target.join("debug/kube-harden"))
}

/// Pod Security Admission's own `restricted` v1.36 fixtures of `kind` (`pass` or `fail`), sorted,
/// as (file stem, pod): from the Go module `k8s.io/pod-security-admission` v0.36.x, fetched and
/// cached by scripts/psa-fixtures.sh. Missing fixtures are an error naming that script.
pub fn psa_fixtures(kind: &str) -> Result<Vec<(String, Value)>> {
    Ok(psa_source::fixtures(&repo_root(), kind)?)
}

/// Reads a YAML (or JSON) file with one document.
pub fn read_manifest(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(kube_harden::yaml::from_str(&text)?)
}

/// Checks that every field of `expected` is in `actual` with the same value (objects may have
/// more keys in `actual`, e.g. defaults the API server filled in; arrays must have the same
/// length). `null`, `[]` and `{}` count as absent, as the API server drops empty optional
/// fields when it stores an object. Returns the first difference.
pub fn subset(expected: &Value, actual: &Value) -> Result<(), String> {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    fn walk(e: &Value, a: &Value, path: &mut String) -> Result<(), String> {
        match (e, a) {
            (e, Value::Null) if empty(e) => Ok(()),
            (Value::Object(e), Value::Object(a)) => {
                for (k, ev) in e {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    match a.get(k) {
                        Some(av) => walk(ev, av, path)?,
                        None if empty(ev) => {}
                        None => return Err(format!("{path}: missing, expected {ev}")),
                    }
                    path.truncate(len);
                }
                Ok(())
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    return Err(format!("{path}: {} items, expected {}", a.len(), e.len()));
                }
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(ev, av, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            (e, a) if e == a => Ok(()),
            (e, a) => Err(format!("{path}: {a}, expected {e}")),
        }
    }
    walk(expected, actual, &mut String::new())
}
