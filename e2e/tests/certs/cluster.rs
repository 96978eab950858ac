//! The cluster each test gets: a fresh control plane with kube-harden's namespace, RBAC and
//! Deployment flags from manifests/overlays/default, and the kube-harden binary under test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, PostParams};
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::controlplane::ControlPlane;
use kube_harden_e2e::{
    MODE_LABEL, Result, kube_harden_binary, process, repo_root, target_dir, webhook,
};
use serde_json::{Value, json};

/// Where kube-harden runs in the manifests.
pub(crate) const NAMESPACE: &str = "kube-harden";
/// The ServiceAccount the replicas run as.
const SERVICE_ACCOUNT: &str = "system:serviceaccount:kube-harden:kube-harden";
/// The certificate Secret (the overlay's `--cert-secret`).
pub(crate) const SECRET: &str = "kube-harden-tls";
/// The MutatingWebhookConfiguration the replicas keep the caBundle of.
const CONFIG: &str = webhook::CONFIGURATION_NAME;
/// The flags each replica sets itself (addresses, files, identity); the Deployment's values for
/// these are dropped, all its other flags are kept.
const LOCAL_FLAGS: &[&str] = &[
    "--webhook-addr",
    "--metrics-addr",
    "--tls-cert-file",
    "--tls-key-file",
    "--config",
    "--log-format",
    "--kubeconfig",
];

/// Locks `m`, also after a test panicked holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One test at a time: each starts its own control plane and replicas.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

/// The kube-harden binary ([`kube_harden_binary`]: `KUBE_HARDEN_BIN`, or built), once.
fn binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let repo = repo_root();
        kube_harden_binary(&repo, &target_dir(&repo)).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Into::into)
}

/// A fresh control plane with kube-harden's namespace and RBAC from manifests/overlays/default.
pub(crate) struct Cluster {
    /// This test's directory (logs, files of the replicas).
    pub(crate) dir: PathBuf,
    /// The kube-harden binary.
    pub(crate) bin: PathBuf,
    /// An admin client.
    pub(crate) client: kube::Client,
    /// Admin kubeconfig impersonating kube-harden's ServiceAccount.
    pub(crate) sa_kubeconfig: PathBuf,
    /// The Deployment's args, with the local flags removed.
    pub(crate) deployment_args: Vec<String>,
    /// The overlay, rendered.
    rendered: Vec<Value>,
    /// Runs the test's async part.
    pub(crate) runtime: tokio::runtime::Runtime,
    // Last: stopped (on drop) after everything else.
    #[allow(dead_code)]
    controlplane: ControlPlane,
}

impl Cluster {
    /// Starts the control plane for `test` and applies the overlay's Namespace and RBAC.
    pub(crate) fn start(test: &str) -> Result<Self> {
        let repo = repo_root();
        let dir = target_dir(&repo).join("e2e-certs").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let bin = binary()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let controlplane = ControlPlane::start(&repo, dir.join("controlplane"))?;
        let client = runtime.block_on(kube_harden::kube_client::client(
            Some(&controlplane.kubeconfig),
            None,
            None,
        ))?;
        let rendered = webhook::render(&controlplane.kubectl, &repo, "manifests/overlays/default")?;
        // The namespace, exactly the RBAC the overlay grants, and the admission policies that
        // narrow it (the ServiceAccount may change only the caBundle, create only its Secret):
        // kube-harden's own requests must pass them.
        let items: Vec<Value> = rendered
            .iter()
            .filter(|d| {
                matches!(
                    d["kind"].as_str(),
                    Some(
                        "Namespace"
                            | "Role"
                            | "RoleBinding"
                            | "ClusterRole"
                            | "ClusterRoleBinding"
                            | "ValidatingAdmissionPolicy"
                            | "ValidatingAdmissionPolicyBinding"
                    )
                )
            })
            .cloned()
            .collect();
        let rbac = items.iter().filter(|d| d["kind"] != "Namespace").count();
        if rbac == 0 {
            return Err("manifests/overlays/default renders no RBAC".into());
        }
        if !items
            .iter()
            .any(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        {
            return Err("manifests/overlays/default renders no admission policy".into());
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        process::run(
            Command::new(&controlplane.kubectl)
                .args(["apply", "-f", "-"])
                .env("KUBECONFIG", &controlplane.kubeconfig),
            Some(list.to_string().as_bytes()),
            Duration::from_secs(60),
        )?
        .ok("kubectl apply (namespace and RBAC)")?;

        let deployment = rendered
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "kube-harden")
            .ok_or("the overlay renders no Deployment kube-harden")?;
        let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .ok_or("the Deployment's container has no args")?
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        let mut deployment_args = Vec::new();
        for arg in args {
            let flag = arg.split('=').next().unwrap_or_default();
            if LOCAL_FLAGS.contains(&flag) {
                if !arg.contains('=') {
                    return Err(format!("Deployment arg {arg}: expected --flag=value").into());
                }
                continue;
            }
            deployment_args.push(arg.replace("$(POD_NAMESPACE)", NAMESPACE));
        }
        if !deployment_args.iter().any(|a| a == "--manage-certs") {
            return Err(format!(
                "the overlay's Deployment does not pass --manage-certs: {deployment_args:?}"
            )
            .into());
        }

        // The admin identity, acting as kube-harden's ServiceAccount.
        let mut kubeconfig: Value =
            kube_harden::yaml::from_str(&std::fs::read_to_string(&controlplane.kubeconfig)?)?;
        for user in kubeconfig["users"]
            .as_array_mut()
            .ok_or("kubeconfig without users")?
        {
            user["user"]["as"] = SERVICE_ACCOUNT.into();
            user["user"]["as-groups"] = serde_json::json!([
                "system:serviceaccounts",
                "system:serviceaccounts:kube-harden",
                "system:authenticated",
            ]);
        }
        let sa_kubeconfig = dir.join("kube-harden.kubeconfig");
        std::fs::write(&sa_kubeconfig, kube_harden::yaml::to_string(&kubeconfig))?;

        Ok(Self {
            dir,
            bin,
            client,
            sa_kubeconfig,
            deployment_args,
            rendered,
            runtime,
            controlplane,
        })
    }

    /// Creates the webhook configuration from the overlay, pointed at `port`, without a
    /// caBundle (kube-harden must set it) and failing closed.
    pub(crate) async fn create_configuration(&self, port: u16) -> Result<()> {
        let url = format!("https://127.0.0.1:{port}");
        let mut config = webhook::local_configuration(&self.rendered, &url, "")?;
        for w in config.webhooks.iter_mut().flatten() {
            w.client_config.ca_bundle = None;
            w.failure_policy = Some("Fail".into());
        }
        Api::<MutatingWebhookConfiguration>::all(self.client.clone())
            .create(&PostParams::default(), &config)
            .await?;
        Ok(())
    }

    /// The MutatingWebhookConfiguration.
    pub(crate) async fn configuration(&self) -> Result<MutatingWebhookConfiguration> {
        Ok(
            Api::<MutatingWebhookConfiguration>::all(self.client.clone())
                .get(CONFIG)
                .await?,
        )
    }

    /// The caBundle of every webhook (they must all be equal) as PEM.
    pub(crate) async fn ca_bundle(&self) -> Result<String> {
        let config = self.configuration().await?;
        let bundles: BTreeSet<String> = config
            .webhooks
            .iter()
            .flatten()
            .map(|w| {
                w.client_config
                    .ca_bundle
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .unwrap_or_default()
            })
            .collect();
        match bundles.len() {
            1 => Ok(bundles.into_iter().next().unwrap_or_default()),
            n => Err(format!("webhooks disagree on the caBundle ({n} different)").into()),
        }
    }

    /// The certificate Secret, if it exists.
    pub(crate) async fn secret(&self) -> Result<Option<Secret>> {
        Ok(Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .get_opt(SECRET)
            .await?)
    }

    /// Creates the namespace `name` labelled for kube-harden enforce; returns its name.
    pub(crate) async fn enforce_namespace(&self, name: &str) -> Result<String> {
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {MODE_LABEL: "enforce"}}
        }))?;
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name.to_owned())
    }

    /// Creates a pod without any security settings; returns whether it was stored hardened.
    pub(crate) async fn create_legacy_pod(&self, namespace: &str, name: &str) -> Result<bool> {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "example.com/legacy-app:1.0"}]}
        }))?;
        let stored = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &pod)
            .await?;
        Ok(stored
            .metadata
            .annotations
            .is_some_and(|a| a.contains_key(HARDENED_ANNOTATION)))
    }
}
