//! The webhook as it runs in production, minus the cluster plumbing: the project's own binary
//! (`kube-harden serve`) on 127.0.0.1 with a serving certificate for that address, and the
//! MutatingWebhookConfiguration from manifests/base with `clientConfig.service` swapped for
//! `clientConfig.url` + `caBundle` (the control plane has no Service network).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;

use crate::Result;
use crate::process;

/// The name of the configuration in manifests/base.
pub const CONFIGURATION_NAME: &str = "kube-harden";

/// A CA made for this run and a serving certificate it signed for 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The CA certificate (PEM): the configuration's `caBundle`.
    pub ca_pem: String,
    /// The serving certificate chain file.
    pub cert_file: PathBuf,
    /// Its private key file.
    pub key_file: PathBuf,
}

impl Tls {
    /// Makes the CA and the serving certificate (ECDSA P-256) and writes them to `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "kube-harden e2e webhook CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate()?;
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &issuer)?;

        let tls = Self {
            ca_pem: ca_cert.pem(),
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
        };
        std::fs::write(dir.join("ca.crt"), &tls.ca_pem)?;
        std::fs::write(&tls.cert_file, cert.pem())?;
        std::fs::write(&tls.key_file, key.serialize_pem())?;
        Ok(tls)
    }
}

/// The `kube-harden serve` process.
#[derive(Debug)]
pub struct Webhook {
    bin: PathBuf,
    tls: Tls,
    log_file: PathBuf,
    /// More `serve` flags (e.g. `--resolve-images`).
    args: Vec<String>,
    /// HTTPS port of /mutate and /audit.
    pub webhook_port: u16,
    /// Plain-HTTP port of /metrics, /healthz, /readyz.
    pub metrics_port: u16,
    process: Option<process::Supervised>,
}

impl Webhook {
    /// Picks two free ports and starts the server; returns once `/readyz` answers 200.
    pub fn start(bin: PathBuf, tls: Tls, log_file: PathBuf) -> Result<Self> {
        Self::start_with(bin, tls, log_file, &[])
    }

    /// [`Webhook::start`] with more `serve` flags.
    pub fn start_with(bin: PathBuf, tls: Tls, log_file: PathBuf, args: &[&str]) -> Result<Self> {
        let mut webhook = Self {
            bin,
            tls,
            log_file,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            webhook_port: process::free_port()?,
            metrics_port: process::free_port()?,
            process: None,
        };
        webhook.spawn()?;
        Ok(webhook)
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.webhook_port)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(process::Supervised::is_running)
    }

    /// Starts the process (again) on the same ports and waits until it is ready.
    pub fn spawn(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--tls-cert-file")
            .arg(&self.tls.cert_file)
            .arg("--tls-key-file")
            .arg(&self.tls.key_file)
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{}", self.webhook_port))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{}", self.metrics_port))
            .args(["--shutdown-delay", "0s", "--shutdown-timeout", "2s"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        // Stops the server if this test process dies without running its cleanup.
        self.process = Some(process::Supervised::watch(
            child,
            "kube-harden-e2e-watchdog",
        )?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.is_running() {
                return Err(format!(
                    "kube-harden exited during start-up; log:\n{}",
                    self.log_tail(30)
                )
                .into());
            }
            if matches!(self.http_get("/readyz"), Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "kube-harden not ready within 30 s; log:\n{}",
                    self.log_tail(30)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: SIGTERM, then SIGKILL after 10 s (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics_text(&self) -> Result<String> {
        match self.http_get("/metrics")? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("GET /metrics: {status}: {body}").into()),
        }
    }

    /// A plain HTTP/1.0 GET on the metrics port.
    fn http_get(&self, path: &str) -> Result<(u16, String)> {
        process::http_get(
            std::net::SocketAddr::from(([127, 0, 0, 1], self.metrics_port)),
            path,
        )
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kubectl kustomize manifests/base`, as parsed documents.
pub fn render_base(kubectl: &Path, repo: &Path) -> Result<Vec<Value>> {
    render(kubectl, repo, "manifests/base")
}

/// `kubectl kustomize <repo>/<kustomization>` (e.g. `manifests/overlays/default`), as parsed
/// documents.
pub fn render(kubectl: &Path, repo: &Path, kustomization: &str) -> Result<Vec<Value>> {
    let out = process::run(
        Command::new(kubectl)
            .arg("kustomize")
            .arg(repo.join(kustomization)),
        None,
        Duration::from_secs(60),
    )?
    .ok(&format!("kubectl kustomize {kustomization}"))?;
    let mut docs = Vec::new();
    for doc in kube_harden::yaml::read_stream(&out.stdout) {
        docs.push(doc?.value);
    }
    Ok(docs)
}

/// The MutatingWebhookConfiguration from the rendered base, pointed at `url_base`
/// (`https://127.0.0.1:<port>`): each webhook's `service` (and its `path`) becomes
/// `url: <url_base><path>`, with the CA as `caBundle`. Everything else is kept as rendered.
pub fn local_configuration(
    rendered: &[Value],
    url_base: &str,
    ca_pem: &str,
) -> Result<MutatingWebhookConfiguration> {
    let doc = rendered
        .iter()
        .find(|d| {
            d["kind"] == "MutatingWebhookConfiguration"
                && d["metadata"]["name"] == CONFIGURATION_NAME
        })
        .ok_or("manifests/base renders no MutatingWebhookConfiguration named kube-harden")?;
    let mut config: MutatingWebhookConfiguration = serde_json::from_value(doc.clone())?;
    let webhooks = config
        .webhooks
        .as_mut()
        .filter(|w| !w.is_empty())
        .ok_or("the MutatingWebhookConfiguration has no webhooks")?;
    for webhook in webhooks {
        let service = webhook
            .client_config
            .service
            .take()
            .ok_or_else(|| format!("webhook {} has no clientConfig.service", webhook.name))?;
        let path = service.path.unwrap_or_default();
        webhook.client_config.url = Some(format!("{url_base}{path}"));
        webhook.client_config.ca_bundle = Some(ByteString(ca_pem.as_bytes().to_vec()));
    }
    Ok(config)
}
