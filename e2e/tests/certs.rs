//! Issue 5 end to end: `kube-harden serve --manage-certs` against the real kube-apiserver v1.36.3.
//!
//! ```text
//!  fresh control plane per test ─► manifests/overlays/default rendered with kubectl kustomize:
//!    Namespace + RBAC applied; replicas run as system:serviceaccount:kube-harden:kube-harden
//!    (kubeconfig `as:`), with the Deployment's own flags, so that RBAC is proven sufficient
//!  MutatingWebhookConfiguration kube-harden: url https://127.0.0.1:<replica a>, no caBundle,
//!    failurePolicy Fail (a webhook call that fails makes the pod creation fail, visibly)
//!  race:    two replicas started together on an empty namespace, five rounds ─► one Secret,
//!           one certificate served by both, caBundle = ca.crt, pods hardened via the API server
//!  renewal: two replicas with lifetimes in seconds ─► serving renewals and a whole CA rotation
//!           while fresh TLS connections, kept-alive TLS connections and pod creations through
//!           the API server run; not one may fail
//! ```
//!
//! Not part of the shared harness (tests/e2e.rs): that harness registers its own webhook for
//! every `kube-harden.io/mode=enforce` namespace, which would harden these tests' pods as well and
//! hide whether these replicas' caBundle works. The harness's building blocks are reused
//! (ControlPlane, process, webhook::local_configuration, metrics::Samples). Tests take a lock and
//! run one at a time; every process is stopped on drop (and by watchdogs if the run is killed).
//! Needs `openssl` (the control plane needs it too) for the served certificate and for a
//! kept-alive TLS connection whose identity is certain (one `s_client` = one connection).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_harden::certs::{Bundle, CertInfo, parse_certificates};
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::controlplane::ControlPlane;
use kube_harden_e2e::metrics::Samples;
use kube_harden_e2e::{MODE_LABEL, Result, process, repo_root, webhook};
use serde_json::{Value, json};

/// Where kube-harden runs in the manifests, and its ServiceAccount.
const NAMESPACE: &str = "kube-harden";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:kube-harden:kube-harden";
const SECRET: &str = "kube-harden-tls";
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One test at a time: each starts its own control plane and replicas.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

fn target_dir(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo.join(p) })
        .unwrap_or_else(|| repo.join("target"))
}

/// `KUBE_HARDEN_BIN`, or `cargo build --bin kube-harden` (as the shared harness does), once.
fn binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let repo = repo_root();
        if let Some(bin) = std::env::var_os("KUBE_HARDEN_BIN") {
            let bin = repo.join(bin);
            return if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!("KUBE_HARDEN_BIN={} does not exist", bin.display()))
            };
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = process::run_visible(
            Command::new(cargo)
                .args(["build", "--bin", "kube-harden"])
                .current_dir(&repo),
            Duration::from_secs(30 * 60),
        )
        .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("cargo build --bin kube-harden failed ({status})"));
        }
        Ok(target_dir(&repo).join("debug/kube-harden"))
    })
    .clone()
    .map_err(Into::into)
}

/// A fresh control plane with kube-harden's namespace and RBAC from manifests/overlays/default.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    client: kube::Client,
    /// Admin kubeconfig impersonating kube-harden's ServiceAccount.
    sa_kubeconfig: PathBuf,
    /// The Deployment's args, with the local flags removed.
    deployment_args: Vec<String>,
    /// The overlay, rendered.
    rendered: Vec<Value>,
    runtime: tokio::runtime::Runtime,
    // Last: stopped (on drop) after everything else.
    #[allow(dead_code)]
    controlplane: ControlPlane,
}

impl Cluster {
    fn start(test: &str) -> Result<Self> {
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
        let client = runtime.block_on(async {
            let kubeconfig = Kubeconfig::read_from(&controlplane.kubeconfig)?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await?;
            Ok::<_, kube_harden_e2e::Error>(kube::Client::try_from(config)?)
        })?;

        let overlay = repo.join("manifests/overlays/default");
        let out = process::run(
            Command::new(&controlplane.kubectl)
                .arg("kustomize")
                .arg(&overlay),
            None,
            Duration::from_secs(60),
        )?
        .ok("kubectl kustomize manifests/overlays/default")?;
        let mut rendered = Vec::new();
        for doc in kube_harden::yaml::read_stream(&out.stdout) {
            rendered.push(doc?.value);
        }
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
    async fn create_configuration(&self, port: u16) -> Result<()> {
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

    async fn configuration(&self) -> Result<MutatingWebhookConfiguration> {
        Ok(
            Api::<MutatingWebhookConfiguration>::all(self.client.clone())
                .get(CONFIG)
                .await?,
        )
    }

    /// The caBundle of every webhook (they must all be equal) as PEM.
    async fn ca_bundle(&self) -> Result<String> {
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

    async fn secret(&self) -> Result<Option<Secret>> {
        Ok(Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .get_opt(SECRET)
            .await?)
    }

    async fn enforce_namespace(&self, name: &str) -> Result<String> {
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {MODE_LABEL: "enforce"}}
        }))?;
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name.to_owned())
    }

    /// Creates a pod without any security settings; returns whether it was stored hardened.
    async fn create_legacy_pod(&self, namespace: &str, name: &str) -> Result<bool> {
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

/// A `kube-harden serve` process configured as the overlay's Deployment.
struct Replica {
    name: String,
    metrics_port: u16,
    log_file: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl Replica {
    fn spawn(cluster: &Cluster, name: &str, webhook_port: u16, extra: &[&str]) -> Result<Self> {
        let dir = cluster.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let metrics_port = process::free_port()?;
        let log_file = dir.join("kube-harden.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)?;
        let mut args = cluster.deployment_args.clone();
        args.extend(
            [
                format!("--webhook-addr=127.0.0.1:{webhook_port}"),
                format!("--metrics-addr=127.0.0.1:{metrics_port}"),
                format!("--tls-cert-file={}", dir.join("tls/tls.crt").display()),
                format!("--tls-key-file={}", dir.join("tls/tls.key").display()),
                format!("--kubeconfig={}", cluster.sa_kubeconfig.display()),
                "--log-format=text".into(),
                // The configuration's url is https://127.0.0.1:<port>.
                "--cert-dns-names=127.0.0.1".into(),
                "--shutdown-delay=0s".into(),
                "--shutdown-timeout=2s".into(),
            ]
            .into_iter()
            .chain(extra.iter().map(|s| (*s).to_owned())),
        );
        let child = Command::new(&cluster.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cluster.bin.display()))?;
        // Stops the replica if this test process dies without running its cleanup.
        let watchdog = process::spawn_watchdog(&child, "kube-harden-e2e-certs-watchdog")?;
        Ok(Self {
            name: name.to_owned(),
            metrics_port,
            log_file,
            child: Some(child),
            watchdog: Some(watchdog),
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// `Ok(true)` once /readyz answers 200; an error if the process exited.
    fn ready(&mut self) -> Result<bool> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            return Err(format!(
                "replica {} exited ({status}); log:\n{}",
                self.name,
                self.log()
            )
            .into());
        }
        Ok(matches!(self.http_get("/readyz"), Ok((200, _))))
    }

    fn metrics(&self) -> Result<Samples> {
        match self.http_get("/metrics")? {
            (200, body) => Ok(Samples::parse(&body)),
            (status, body) => Err(format!("GET /metrics: {status}: {body}").into()),
        }
    }

    fn http_get(&self, path: &str) -> Result<(u16, String)> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.metrics_port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or("malformed response")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("malformed status line")?;
        Ok((status, body.to_owned()))
    }

    fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until every replica is ready; returns the time each took.
async fn wait_ready(replicas: &mut [Replica], timeout: Duration) -> Result<Vec<Duration>> {
    let t0 = Instant::now();
    let mut took = vec![None; replicas.len()];
    loop {
        for (replica, took) in replicas.iter_mut().zip(took.iter_mut()) {
            if took.is_none() && replica.ready()? {
                *took = Some(t0.elapsed());
            }
        }
        if took.iter().all(Option::is_some) {
            return Ok(took.into_iter().flatten().collect());
        }
        if t0.elapsed() > timeout {
            let logs: Vec<String> = replicas
                .iter()
                .map(|r| format!("--- {}\n{}", r.name, r.log()))
                .collect();
            return Err(format!(
                "replicas not ready within {timeout:?}:\n{}",
                logs.join("\n")
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The certificate served on `port`, as an independent TLS client sees it.
fn served_certificate(port: u16) -> Result<CertInfo> {
    let out = process::run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ]),
        Some(b""),
        Duration::from_secs(10),
    )?;
    let certs = parse_certificates(&out.stdout)?;
    certs
        .into_iter()
        .next()
        .ok_or_else(|| format!("no certificate from 127.0.0.1:{port}: {}", out.stderr).into())
}

/// `openssl verify` of `leaf` against `ca_bundle` for a TLS server at 127.0.0.1.
fn openssl_verify(dir: &Path, ca_bundle: &str, leaf: &CertInfo) -> Result<()> {
    let ca = dir.join("verify-ca.pem");
    let cert = dir.join("verify-leaf.pem");
    std::fs::write(&ca, ca_bundle)?;
    std::fs::write(&cert, leaf.pem())?;
    let out = process::run(
        Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                "sslserver",
                "-verify_ip",
                "127.0.0.1",
                "-CAfile",
            ])
            .arg(&ca)
            .arg(&cert),
        None,
        Duration::from_secs(10),
    )?
    .ok("openssl verify")?;
    if out.stdout.trim_end().ends_with(": OK") {
        Ok(())
    } else {
        Err(format!("openssl verify: {}{}", out.stdout, out.stderr).into())
    }
}

/// A Pod CREATE AdmissionReview.
fn review_body(uid: &str) -> Vec<u8> {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "direct",
            "operation": "CREATE",
            "userInfo": {"username": "e2e"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "direct", "namespace": "direct"},
                "spec": {"containers": [{"name": "app", "image": "example.com/legacy-app:1.0"}]}
            }
        }
    })
    .to_string()
    .into_bytes()
}

/// Checks that `body` answers review `uid` with a patch.
fn check_review(uid: &str, body: &[u8]) -> Result<()> {
    let review: Value = serde_json::from_slice(body)?;
    let response = &review["response"];
    if response["uid"] == uid && response["allowed"] == true && response["patch"].is_string() {
        Ok(())
    } else {
        Err(format!("unexpected review response: {review}").into())
    }
}

/// One review over a new TLS connection (a new client, so a new connection) that trusts
/// exactly `cas` and checks the name 127.0.0.1 (rustls, through kube's client stack).
async fn review_new_connection(port: u16, cas: &[Vec<u8>], uid: &str) -> Result<()> {
    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse()?);
    config.root_cert = Some(cas.to_vec());
    config.default_retry = false;
    config.read_timeout = Some(Duration::from_secs(10));
    let client = kube::Client::try_from(config)?;
    let request = http::Request::post("/mutate")
        .header("content-type", "application/json")
        .body(review_body(uid))?;
    let text = client.request_text(request).await?;
    check_review(uid, text.as_bytes())
}

/// One TLS connection kept open (an `openssl s_client` process that verifies the server against
/// a CA file and the name 127.0.0.1), carrying HTTP/1.1 requests one after another.
struct KeptAlive {
    child: Child,
    stdin: ChildStdin,
    responses: mpsc::Receiver<Result<(u16, Vec<u8>), String>>,
}

impl KeptAlive {
    fn open(port: u16, ca_file: &Path, log: &Path) -> Result<Self> {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-quiet",
                "-verify_return_error",
                "-verify_ip",
                "127.0.0.1",
                "-alpn",
                "http/1.1",
                "-CAfile",
            ])
            .arg(ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, responses) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let response = read_response(&mut reader);
                let closed = response.is_err();
                if tx.send(response).is_err() || closed {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            responses,
        })
    }

    fn review(&mut self, uid: &str) -> Result<()> {
        let body = review_body(uid);
        write!(
            self.stdin,
            "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )?;
        self.stdin.write_all(&body)?;
        self.stdin.flush()?;
        match self.responses.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok((200, body))) => check_review(uid, &body),
            Ok(Ok((status, body))) => {
                Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err("no response within 10s".into()),
        }
    }
}

impl Drop for KeptAlive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(reader: &mut impl BufRead) -> Result<(u16, Vec<u8>), String> {
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("malformed status line {line:?}"))?;
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in the headers".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value
                .trim()
                .parse()
                .map_err(|_| format!("bad {header:?}"))?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn cert_metric(replicas: &[Replica], family: &str, labels: &[(&str, &str)]) -> Result<f64> {
    let mut total = 0.0;
    for replica in replicas {
        total += replica
            .metrics()?
            .family(family)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == *v))
            .sum();
    }
    Ok(total)
}

fn ders(pem: &str) -> Result<Vec<Vec<u8>>> {
    Ok(parse_certificates(pem)?
        .into_iter()
        .map(|c| c.der)
        .collect())
}

// ------------------------------------------------------------------------------------ race --

#[test]
fn two_replicas_race_for_one_secret_and_serve_its_certificate() -> Result<()> {
    let _serial = serial();
    let cluster = Cluster::start("race")?;
    cluster.runtime.block_on(race(&cluster))
}

async fn race(c: &Cluster) -> Result<()> {
    const ROUNDS: usize = 5;
    let port_a = process::free_port()?;
    c.create_configuration(port_a).await?;
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), NAMESPACE);
    let mut conflicts = 0.0;
    let mut last_ca = String::new();
    let mut replicas = Vec::new();
    for round in 1..=ROUNDS {
        // An empty namespace: no Secret yet.
        drop(std::mem::take(&mut replicas));
        if c.secret().await?.is_some() {
            secrets.delete(SECRET, &Default::default()).await?;
        }
        let port_b = process::free_port()?;
        // Both at the same moment.
        replicas = vec![
            Replica::spawn(c, &format!("round{round}-a"), port_a, &[])?,
            Replica::spawn(c, &format!("round{round}-b"), port_b, &[])?,
        ];
        let took = wait_ready(&mut replicas, Duration::from_secs(30)).await?;

        let all = secrets.list(&ListParams::default()).await?.items;
        assert_eq!(all.len(), 1, "exactly one Secret in {NAMESPACE}");
        let secret = &all[0];
        assert_eq!(secret.metadata.name.as_deref(), Some(SECRET));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let keys: Vec<&String> = secret
            .data
            .as_ref()
            .map(|d| d.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        let bundle = Bundle::from_secret(secret);
        let stored = bundle.serving_certificate().ok_or("no tls.crt")?;

        let creates = cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", "create"), ("result", "success")],
        )?;
        let lost = cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", "create"), ("result", "conflict")],
        )?;
        assert_eq!(creates, 1.0, "one replica created the Secret");
        conflicts += lost;

        // Both serve the Secret's certificate ...
        let served_a = served_certificate(port_a)?;
        let served_b = served_certificate(port_b)?;
        assert_eq!(
            served_a.der, stored.der,
            "replica a serves the Secret's certificate"
        );
        assert_eq!(
            served_b.der, stored.der,
            "replica b serves the Secret's certificate"
        );
        // ... which chains to the caBundle now in every webhook of the configuration.
        let ca_bundle = c.ca_bundle().await?;
        assert_eq!(ca_bundle, bundle.ca_pem, "caBundle = ca.crt");
        assert_ne!(ca_bundle, last_ca, "a new CA in each round");
        openssl_verify(&c.dir, &ca_bundle, &served_a)?;
        let cas = ders(&ca_bundle)?;
        review_new_connection(port_a, &cas, "race-a").await?;
        review_new_connection(port_b, &cas, "race-b").await?;
        println!(
            "round {round}: ready in {:?} / {:?}; 1 Secret, created by one replica ({lost} lost \
             the create race); both serve serial {}; caBundle = ca.crt, openssl verify OK",
            took[0], took[1], stored.serial
        );
        last_ca = ca_bundle;
    }

    // End to end: the API server calls replica a with the caBundle kube-harden wrote.
    let ns = c.enforce_namespace("e2e-certs-race").await?;
    let before = cert_metric(
        &replicas[..1],
        "kube_harden_admission_requests_total",
        &[("mode", "enforce")],
    )?;
    for i in 0..3 {
        assert!(
            c.create_legacy_pod(&ns, &format!("legacy-{i}")).await?,
            "pod {i} stored hardened"
        );
    }
    let after = cert_metric(
        &replicas[..1],
        "kube_harden_admission_requests_total",
        &[("mode", "enforce")],
    )?;
    assert_eq!(
        after - before,
        3.0,
        "replica a answered the API server's calls"
    );
    println!(
        "race: {ROUNDS} rounds x 2 replicas, 1 Secret each, {conflicts} create conflicts (the \
         loser read the winner's); 3 pods created through the API server (failurePolicy Fail) \
         stored hardened"
    );
    Ok(())
}

// --------------------------------------------------------------------------------- renewal --

/// Lifetimes in seconds: serving certificates renewed every ~3 s, a CA rotation every 20 s
/// (added at 20 s, signing from 30 s, the old one pruned at 40 s).
const SHORT_LIFETIMES: &[&str] = &[
    "--cert-validity=12s",
    "--cert-renew-before=9s",
    "--ca-validity=40s",
    "--ca-renew-before=20s",
    "--cert-check-interval=1s",
    "--tls-reload-interval=1s",
];

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, what: &str, t0: Instant, result: Result<()>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.errors).push(format!("{:.1}s {what}: {e}", t0.elapsed().as_secs_f64()));
            }
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn renewal_while_requests_flow_fails_no_request() -> Result<()> {
    let _serial = serial();
    let cluster = Cluster::start("renewal")?;
    cluster.runtime.block_on(renewal(&cluster))
}

async fn renewal(c: &Cluster) -> Result<()> {
    let load_for = Duration::from_secs(
        std::env::var("E2E_CERTS_LOAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(48),
    );
    let port_a = process::free_port()?;
    let port_b = process::free_port()?;
    let ports = [port_a, port_b];
    c.create_configuration(port_a).await?;
    let mut replicas = vec![
        Replica::spawn(c, "a", port_a, SHORT_LIFETIMES)?,
        Replica::spawn(c, "b", port_b, SHORT_LIFETIMES)?,
    ];
    wait_ready(&mut replicas, Duration::from_secs(30)).await?;
    let ns = c.enforce_namespace("e2e-certs-renewal").await?;

    let initial = Bundle::from_secret(&c.secret().await?.ok_or("no Secret")?);
    let first_serial = initial.serving_certificate().ok_or("no tls.crt")?.serial;
    let ca_file = c.dir.join("initial-ca.pem");
    std::fs::write(&ca_file, &initial.ca_pem)?;
    let kept: Vec<KeptAlive> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            KeptAlive::open(port, &ca_file, &c.dir.join(format!("kept-alive-{i}.log")))
        })
        .collect::<Result<_>>()?;

    let t0 = Instant::now();
    let deadline = t0 + load_for;
    let trusted = Arc::new(Mutex::new(ders(&c.ca_bundle().await?)?));
    let (fresh, kept_tally, pods) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );

    // New TLS connections, trusting the caBundle as it is now (as the API server does).
    let fresh_task = {
        let (trusted, tally) = (Arc::clone(&trusted), Arc::clone(&fresh));
        tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let cas = lock(&trusted).clone();
                let port = ports[(n % 2) as usize];
                let result = review_new_connection(port, &cas, &format!("fresh-{n}")).await;
                tally.record(&format!("new connection to :{port}"), t0, result);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Two connections opened before the first renewal, used throughout.
    let kept_task = {
        let tally = Arc::clone(&kept_tally);
        let mut kept = kept;
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let i = (n % 2) as usize;
                let result = kept[i].review(&format!("kept-{n}"));
                tally.record(&format!("kept-alive connection {i}"), t0, result);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    // Pods through the API server: its webhook client, its caBundle, failurePolicy Fail.
    let pods_task = {
        let (tally, client, ns) = (Arc::clone(&pods), c.client.clone(), ns.clone());
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("legacy-{n}")},
                    "spec": {"containers": [{"name": "app", "image": "example.com/legacy-app:1.0"}]}
                }))
                .unwrap_or_default();
                let result = match api.create(&PostParams::default(), &pod).await {
                    Ok(stored)
                        if stored
                            .metadata
                            .annotations
                            .as_ref()
                            .is_some_and(|a| a.contains_key(HARDENED_ANNOTATION)) =>
                    {
                        Ok(())
                    }
                    Ok(_) => Err("stored unhardened".into()),
                    Err(e) => Err(e.into()),
                };
                tally.record(&format!("pod legacy-{n}"), t0, result);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };

    // Observe: the caBundle (for the fresh connections), the Secret, what each replica serves.
    let mut ca_bundles: Vec<String> = Vec::new();
    let mut secret_serials = BTreeSet::new();
    let mut served: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut issuers = BTreeSet::new();
    let mut observe_errors = Vec::new();
    while Instant::now() < deadline {
        match c.ca_bundle().await {
            Ok(bundle) => {
                if ca_bundles.last() != Some(&bundle) {
                    println!(
                        "{:5.1}s caBundle: {} CA(s)",
                        t0.elapsed().as_secs_f64(),
                        parse_certificates(&bundle).map(|c| c.len()).unwrap_or(0)
                    );
                    *lock(&trusted) = ders(&bundle)?;
                    ca_bundles.push(bundle);
                }
            }
            Err(e) => observe_errors.push(format!("caBundle: {e}")),
        }
        if let Ok(Some(secret)) = c.secret().await
            && let Some(leaf) = Bundle::from_secret(&secret).serving_certificate()
        {
            secret_serials.insert(leaf.serial);
        }
        for port in ports {
            match tokio::task::spawn_blocking(move || served_certificate(port)).await? {
                Ok(cert) => {
                    issuers.insert(cert.issuer.clone());
                    served.entry(cert.serial).or_default().insert(port);
                }
                Err(e) => observe_errors.push(format!("served certificate on :{port}: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    fresh_task.await?;
    kept_task.await?;
    pods_task.await?;
    let elapsed = t0.elapsed();

    let metric = |kind: &str| {
        cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", kind), ("result", "success")],
        )
    };
    let (serving, ca_add, ca_promote, ca_prune) = (
        metric("serving")?,
        metric("ca_add")?,
        metric("ca_promote")?,
        metric("ca_prune")?,
    );
    let conflicts = cert_metric(
        &replicas,
        "kube_harden_cert_renewals_total",
        &[("result", "conflict")],
    )?;
    let write_failures = cert_metric(
        &replicas,
        "kube_harden_cert_renewals_total",
        &[("result", "failure")],
    )?;
    let check_failures = cert_metric(
        &replicas,
        "kube_harden_cert_checks_total",
        &[("result", "failure")],
    )?;
    let reloads = cert_metric(
        &replicas,
        "kube_harden_tls_reloads_total",
        &[("result", "success")],
    )?;
    let reload_failures = cert_metric(
        &replicas,
        "kube_harden_tls_reloads_total",
        &[("result", "failure")],
    )?;
    let server_errors = cert_metric(&replicas, "kube_harden_errors_total", &[])?;
    let (fresh_ok, fresh_failed) = fresh.counts();
    let (kept_ok, kept_failed) = kept_tally.counts();
    let (pods_ok, pods_failed) = pods.counts();

    println!(
        "renewal: {:.1}s of load against 2 replicas",
        elapsed.as_secs_f64()
    );
    println!("  new TLS connections:        {fresh_ok} ok, {fresh_failed} failed");
    println!("  2 kept-alive connections:   {kept_ok} ok, {kept_failed} failed");
    println!("  pods via the API server:    {pods_ok} hardened, {pods_failed} failed");
    println!(
        "  Secret writes: serving {serving}, ca_add {ca_add}, ca_promote {ca_promote}, ca_prune \
         {ca_prune}; conflicts {conflicts} (lost races, theirs used); failed writes \
         {write_failures}, failed checks {check_failures}"
    );
    println!(
        "  serving certificates: {} in the Secret (first {first_serial}), {} seen served over \
         TLS; {} issuing CAs seen served; {} caBundle states",
        secret_serials.len(),
        served.len(),
        issuers.len(),
        ca_bundles.len()
    );
    println!(
        "  file reloads {reloads}, failed reloads {reload_failures}; server errors {server_errors}"
    );
    let mut errors: Vec<String> = Vec::new();
    for tally in [&fresh, &kept_tally, &pods] {
        errors.extend(lock(&tally.errors).iter().cloned());
    }
    errors.extend(observe_errors);
    for e in errors.iter().take(20) {
        println!("  error: {e}");
    }
    if !errors.is_empty() {
        for r in &replicas {
            println!("--- log of {}\n{}", r.name, r.log());
        }
    }

    assert_eq!(
        fresh_failed + kept_failed + pods_failed,
        0,
        "no request failed"
    );
    assert!(fresh_ok >= 100, "new connections: {fresh_ok}");
    assert!(kept_ok >= 100, "kept-alive requests: {kept_ok}");
    assert!(pods_ok >= 50, "pods: {pods_ok}");
    assert!(errors.is_empty(), "{errors:?}");
    // Renewals happened, through the Secret, and were served.
    assert!(serving >= 5.0, "serving renewals: {serving}");
    assert!(secret_serials.len() >= 5, "{secret_serials:?}");
    assert!(served.len() >= 5, "{served:?}");
    assert!(
        served
            .keys()
            .all(|s| secret_serials.contains(s) || *s == first_serial),
        "every certificate served was the Secret's: {served:?} / {secret_serials:?}"
    );
    // Both replicas served the renewed certificates, not only the one that wrote them.
    assert!(
        served.values().filter(|p| p.len() == 2).count() >= 3,
        "{served:?}"
    );
    // A whole CA rotation: added, signing, old one removed; certificates of both CAs served.
    assert!(ca_add >= 1.0 && ca_promote >= 1.0 && ca_prune >= 1.0);
    assert!(issuers.len() >= 2, "{issuers:?}");
    assert!(
        ca_bundles.len() >= 3,
        "1 CA, 2 CAs, 1 CA: {}",
        ca_bundles.len()
    );
    assert_eq!(
        write_failures + check_failures + reload_failures + server_errors,
        0.0
    );
    Ok(())
}
