//! The I/O of `--manage-certs`: [`CertManager`] reads and writes the Secret (compare-and-swap
//! on its resourceVersion, so replicas agree), writes the serving pair to the files the server
//! reloads, and keeps every webhook's caBundle equal to `ca.crt`; [`start`] runs the first check
//! and then the renewal loop.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::bundle::parse_bundle;
use super::plan::{describe, rfc3339, write_kinds};
use super::{Bundle, CertConfig, CertError, apply, parse_certificates, plan, unix_now};
use crate::metrics::{Metrics, WriteResult};

/// Conflicts (another replica wrote first) tolerated in one check before giving up until the
/// next one.
pub(super) const MAX_ATTEMPTS: usize = 5;
/// Longest a check may take (each API call also has a 30 s read timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Each API call's read timeout: a hung API server must not stall the renewal loop.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed check, the next one comes at most this much later.
const RETRY_DELAY: Duration = Duration::from_secs(10);
/// The field manager recorded for the caBundle patch.
const FIELD_MANAGER: &str = "kube-harden";

/// Whether the API server refused a write because another writer came first.
fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// Keeps the Secret, the files and the caBundle in step (see the module documentation).
pub struct CertManager {
    config: CertConfig,
    secrets: Api<Secret>,
    webhook_configs: Api<MutatingWebhookConfiguration>,
    metrics: Metrics,
    /// The bundle last read or written: re-created from this if the Secret disappears.
    last: Option<Bundle>,
    /// Whether the configuration was missing at the last check (to warn once).
    config_missing: bool,
}

impl fmt::Debug for CertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CertManager {
    /// A manager using `client`.
    pub fn new(client: kube::Client, config: CertConfig, metrics: Metrics) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), &config.namespace),
            webhook_configs: Api::all(client),
            config,
            metrics,
            last: None,
            config_missing: false,
        }
    }

    /// One check: reconcile the Secret, write the files, sync the caBundle. Returns the bundle
    /// now in force.
    pub async fn check(&mut self) -> Result<Bundle, CertError> {
        let trusted = self.trusted_cas().await?;
        let bundle = self.reconcile(trusted.as_deref()).await?;
        self.last = Some(bundle.clone());
        self.write_files(&bundle).await?;
        self.sync_ca_bundle(&bundle.ca_pem).await?;
        if let Ok(parsed) = parse_bundle(&bundle)
            && let Some(ca) = parsed.signing()
        {
            self.metrics.set_ca_expiry(ca.not_after);
        }
        Ok(bundle)
    }

    /// [`Self::check`] with a time limit, counted in `kube_harden_cert_checks_total`.
    pub async fn check_bounded(&mut self) -> Result<Bundle, CertError> {
        let result = match tokio::time::timeout(CHECK_TIMEOUT, self.check()).await {
            Ok(result) => result,
            Err(_) => Err(CertError::Timeout(CHECK_TIMEOUT)),
        };
        self.metrics.cert_check(result.is_ok());
        result
    }

    /// Checks every `--cert-check-interval` (sooner after a failure) until dropped.
    pub async fn run(mut self) {
        let interval = self.config.check_interval;
        let mut delay = interval;
        loop {
            tokio::time::sleep(delay).await;
            delay = match self.check_bounded().await {
                Ok(_) => interval,
                Err(e) => {
                    tracing::error!(error = %e, secret = %self.secret_ref(), "certificate check failed; serving the current certificate");
                    interval.min(RETRY_DELAY)
                }
            };
        }
    }

    /// `namespace/name` of the Secret, for messages.
    fn secret_ref(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.secret)
    }

    /// The CAs (DER) every webhook's caBundle holds; `None` when the configuration does not
    /// exist or has no webhooks (nothing to keep in step).
    async fn trusted_cas(&self) -> Result<Option<Vec<Vec<u8>>>, CertError> {
        let name = &self.config.webhook_config;
        let found = self
            .webhook_configs
            .get_opt(name)
            .await
            .map_err(|source| CertError::Api {
                action: format!("get MutatingWebhookConfiguration {name}"),
                source,
            })?;
        let webhooks = found.and_then(|c| c.webhooks).unwrap_or_default();
        let mut sets = webhooks.iter().map(|w| {
            let pem = w
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            parse_certificates(&pem)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.der)
                .collect::<Vec<_>>()
        });
        let Some(first) = sets.next() else {
            return Ok(None);
        };
        Ok(Some(sets.fold(first, |acc, set| {
            acc.into_iter().filter(|der| set.contains(der)).collect()
        })))
    }

    /// Reads the Secret, renews or creates what is due, and returns the bundle in force.
    async fn reconcile(&self, trusted: Option<&[Vec<u8>]>) -> Result<Bundle, CertError> {
        let name = &self.config.secret;
        let api_error = |action: &str| {
            let action = format!("{action} Secret {}", self.secret_ref());
            move |source: kube::Error| CertError::Api { action, source }
        };
        for _ in 0..MAX_ATTEMPTS {
            let found = self.secrets.get_opt(name).await.map_err(api_error("get"))?;
            let current = match &found {
                Some(secret) => Some(Bundle::from_secret(secret)),
                None => self.last.clone(),
            };
            let now = unix_now();
            let lifetimes = &self.config.lifetimes;
            let names = &self.config.names;
            let actions = plan(current.as_ref(), now, lifetimes, names, trusted);
            if let (Some(current), true, true) = (&current, actions.is_empty(), found.is_some()) {
                return Ok(current.clone());
            }
            let bundle = apply(current.as_ref(), &actions, now, lifetimes, names)?;
            let kinds = write_kinds(&actions, found.is_some());
            let record = |result: WriteResult| {
                for kind in &kinds {
                    self.metrics.cert_renewal(kind, result);
                }
            };
            let kind = kinds.join(",");
            let result = match found {
                Some(mut secret) => {
                    bundle.store(secret.data.get_or_insert_with(BTreeMap::new));
                    // The resourceVersion from the read makes this a compare-and-swap.
                    self.secrets
                        .replace(name, &PostParams::default(), &secret)
                        .await
                        .map_err(api_error("update"))
                }
                None => {
                    let mut data = BTreeMap::new();
                    bundle.store(&mut data);
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(self.config.namespace.clone()),
                            labels: Some(BTreeMap::from([
                                (
                                    "app.kubernetes.io/name".to_owned(),
                                    "kube-harden".to_owned(),
                                ),
                                (
                                    "app.kubernetes.io/managed-by".to_owned(),
                                    "kube-harden".to_owned(),
                                ),
                            ])),
                            ..ObjectMeta::default()
                        },
                        type_: Some("kubernetes.io/tls".to_owned()),
                        data: Some(data),
                        ..Secret::default()
                    };
                    self.secrets
                        .create(&PostParams::default(), &secret)
                        .await
                        .map_err(api_error("create"))
                }
            };
            match result {
                Ok(_) => {
                    record(WriteResult::Success);
                    let leaf = bundle.serving_certificate();
                    tracing::info!(
                        secret = %self.secret_ref(),
                        %kind,
                        changes = %describe(&actions),
                        serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
                        not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
                        "certificate Secret written"
                    );
                    return Ok(bundle);
                }
                Err(CertError::Api { source, .. }) if is_conflict(&source) => {
                    record(WriteResult::Conflict);
                    tracing::info!(secret = %self.secret_ref(), %kind, "another replica wrote the Secret first; using theirs");
                }
                Err(e) => {
                    record(WriteResult::Failure);
                    return Err(e);
                }
            }
        }
        Err(CertError::Conflict(format!("Secret {}", self.secret_ref())))
    }

    /// Writes the serving pair to the files when they differ (key first, each through a
    /// temporary file and a rename, so a reader never sees a partial file).
    async fn write_files(&self, bundle: &Bundle) -> Result<(), CertError> {
        let files = [
            (self.config.key_file.clone(), bundle.key_pem.clone(), 0o600),
            (
                self.config.cert_file.clone(),
                bundle.cert_pem.clone(),
                0o644,
            ),
        ];
        let written = tokio::task::spawn_blocking(move || -> Result<bool, CertError> {
            let same = files
                .iter()
                .all(|(path, text, _)| std::fs::read(path).is_ok_and(|b| b == text.as_bytes()));
            if same {
                return Ok(false);
            }
            for (path, text, mode) in &files {
                write_atomically(path, text.as_bytes(), *mode)?;
            }
            Ok(true)
        })
        .await
        .map_err(|e| CertError::Invalid(format!("file writer failed: {e}")))??;
        if written {
            let leaf = bundle.serving_certificate();
            tracing::info!(
                cert = %self.config.cert_file.display(),
                serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
                not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
                "serving certificate written"
            );
        }
        Ok(())
    }

    /// Sets every webhook's caBundle to `ca_pem` where it differs.
    async fn sync_ca_bundle(&mut self, ca_pem: &str) -> Result<(), CertError> {
        let name = self.config.webhook_config.clone();
        let api_error = |action: &str| {
            let action = format!("{action} MutatingWebhookConfiguration {name}");
            move |source: kube::Error| CertError::Api { action, source }
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some(config) = self
                .webhook_configs
                .get_opt(&name)
                .await
                .map_err(api_error("get"))?
            else {
                if !self.config_missing {
                    tracing::warn!(config = %name, "MutatingWebhookConfiguration not found; its caBundle is set once it exists");
                }
                self.config_missing = true;
                return Ok(());
            };
            self.config_missing = false;
            let stale: Vec<&str> = config
                .webhooks
                .iter()
                .flatten()
                .filter(|w| {
                    w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice())
                        != Some(ca_pem.as_bytes())
                })
                .map(|w| w.name.as_str())
                .collect();
            if stale.is_empty() {
                return Ok(());
            }
            let encoded = BASE64_STANDARD.encode(ca_pem);
            let webhooks: Vec<_> = stale
                .iter()
                .map(|w| json!({"name": w, "clientConfig": {"caBundle": encoded}}))
                .collect();
            // Webhooks merge by name; the resourceVersion makes the patch fail with 409 if the
            // configuration changed since it was read.
            let patch = json!({
                "metadata": {"resourceVersion": config.metadata.resource_version},
                "webhooks": webhooks,
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match self
                .webhook_configs
                .patch(&name, &params, &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    self.metrics.ca_bundle_update(WriteResult::Success);
                    tracing::info!(config = %name, webhooks = ?stale, "caBundle updated");
                    return Ok(());
                }
                Err(e) if is_conflict(&e) => self.metrics.ca_bundle_update(WriteResult::Conflict),
                Err(e) => {
                    self.metrics.ca_bundle_update(WriteResult::Failure);
                    return Err(api_error("patch")(e));
                }
            }
        }
        Err(CertError::Conflict(format!(
            "MutatingWebhookConfiguration {name}"
        )))
    }
}

/// Writes `bytes` to a temporary file beside `path` (mode `mode`), syncs it, and renames it over
/// `path`.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let error = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(error)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(error)
}

/// Start-up with `--manage-certs`: connects, runs the first check (the Secret, the files and the
/// caBundle are in place when this returns), and spawns the renewal loop.
pub async fn start(
    config: CertConfig,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<()>, CertError> {
    let client =
        crate::kube_client::client(config.kubeconfig.as_deref(), None, Some(READ_TIMEOUT)).await?;
    let mut manager = CertManager::new(client, config, metrics);
    let bundle = manager.check_bounded().await?;
    let leaf = bundle.serving_certificate();
    tracing::info!(
        secret = %manager.secret_ref(),
        serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
        not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
        check_interval = %humantime::format_duration(manager.config.check_interval),
        "managed certificates ready"
    );
    Ok(tokio::spawn(manager.run()))
}

#[cfg(test)]
mod tests;
