//! The serving certificate: loaded from PEM files, served through a rustls resolver, and reloaded
//! without a restart when the files change.
//!
//! Kubernetes updates a Secret volume by writing a new timestamped directory and swapping the
//! `..data` symlink; the file names stay the same. A poll that re-reads both files and compares
//! their bytes sees that swap as well as an in-place rewrite. A new pair that does not load,
//! whose key does not match the certificate, or whose certificates are expired or not yet valid
//! is logged and counted, and the old pair keeps serving (the API server would refuse such a
//! certificate, and with `failurePolicy: Ignore` that means pods admitted unhardened). A pair
//! refused only because it is not valid *yet* is tried again once its notBefore has passed. See <https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod>.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::metrics::Metrics;

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The PEM holds no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate of the chain is expired or not valid yet.
    #[error("{path}: certificate {subject} {reason}")]
    Validity {
        /// The certificate file.
        path: PathBuf,
        /// The subject of the certificate at fault.
        subject: String,
        /// "expired at <time>" or "not valid before <time>".
        reason: String,
        /// NotBefore (Unix seconds) when the certificate is only not valid yet: worth another try
        /// from then on.
        valid_from: Option<i64>,
    },
    /// The key does not belong to the certificate, or rustls refuses the pair.
    #[error("certificate {cert} and key {key} do not form a usable pair: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// A loaded certificate pair.
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The raw file contents, to notice changes.
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// NotAfter of the leaf certificate (Unix seconds), when it parses.
    not_after: Option<i64>,
}

/// A pair that could not be used.
struct Failure {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// When it may become usable (a certificate not valid yet): Unix seconds.
    retry_from: Option<i64>,
}

/// The current time, Unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Refuses a chain with a certificate that is expired or not valid yet at `now`.
fn check_validity(
    path: &Path,
    certs: &[CertificateDer<'static>],
    now: i64,
) -> Result<(), TlsError> {
    for der in certs {
        // Certificates x509-parser cannot read are left to rustls and the API server.
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        let (not_before, not_after) = (
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
        let error = |reason: String, valid_from| TlsError::Validity {
            path: path.to_owned(),
            subject: cert.subject().to_string(),
            reason,
            valid_from,
        };
        if now > not_after {
            return Err(error(
                format!("expired at {}", crate::certs::rfc3339(not_after)),
                None,
            ));
        }
        if now < not_before {
            return Err(error(
                format!("is not valid before {}", crate::certs::rfc3339(not_before)),
                Some(not_before),
            ));
        }
    }
    Ok(())
}

/// The serving certificate, swappable while connections are served.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Loaded>,
    /// The last pair that failed to load, so one broken pair is reported once.
    last_failure: RwLock<Option<Failure>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
) -> Result<Loaded, TlsError> {
    let pem_error = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(cert_path, format!("invalid PEM: {e}")))?;
    let Some(leaf) = certs.first() else {
        return Err(pem_error(cert_path, "no CERTIFICATE block".into()));
    };
    check_validity(cert_path, &certs, now())?;
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .ok()
        .map(|(_, cert)| cert.validity().not_after.timestamp());
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| pem_error(key_path, format!("no usable private key: {e}")))?;
    let pair_error = |reason: String| TlsError::Pair {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason,
    };
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| pair_error(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified
        .keys_match()
        .map_err(|e| pair_error(e.to_string()))?;
    Ok(Loaded {
        key: Arc::new(certified),
        cert_pem,
        key_pem,
        not_after,
    })
}

impl CertStore {
    /// Loads the pair; fails when it cannot be used (start-up fails fast on this).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let loaded = parse_pair(cert_path, key_path, read(cert_path)?, read(key_path)?)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(loaded),
            last_failure: RwLock::new(None),
        })
    }

    /// NotAfter of the certificate being served (Unix seconds).
    pub fn not_after(&self) -> Option<i64> {
        self.current.read().map_or(None, |c| c.not_after)
    }

    /// Re-reads the files. `Ok(true)`: a new pair is now served; `Ok(false)`: nothing changed (or
    /// the same broken pair as last time); `Err`: a new pair that cannot be used (old one kept).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert_path)?;
        let key_pem = read(&self.key_path)?;
        let unchanged = self
            .current
            .read()
            .is_ok_and(|c| c.cert_pem == cert_pem && c.key_pem == key_pem);
        // The same broken pair as last time: reported once, unless it was only not valid yet
        // and now is.
        let known_bad = self.last_failure.read().is_ok_and(|f| {
            f.as_ref().is_some_and(|f| {
                f.cert_pem == cert_pem
                    && f.key_pem == key_pem
                    && f.retry_from.is_none_or(|t| now() < t)
            })
        });
        if unchanged || known_bad {
            return Ok(false);
        }
        match parse_pair(
            &self.cert_path,
            &self.key_path,
            cert_pem.clone(),
            key_pem.clone(),
        ) {
            Ok(loaded) => {
                if let Ok(mut current) = self.current.write() {
                    *current = loaded;
                }
                if let Ok(mut failure) = self.last_failure.write() {
                    *failure = None;
                }
                Ok(true)
            }
            Err(e) => {
                let retry_from = match &e {
                    TlsError::Validity { valid_from, .. } => *valid_from,
                    _ => None,
                };
                if let Ok(mut failure) = self.last_failure.write() {
                    *failure = Some(Failure {
                        cert_pem,
                        key_pem,
                        retry_from,
                    });
                }
                Err(e)
            }
        }
    }

    /// Polls the files every `interval` until the task is dropped, recording reloads.
    pub async fn watch(self: Arc<Self>, interval: Duration, metrics: Metrics) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let store = Arc::clone(&self);
            // File reads and key parsing are blocking work.
            let result = tokio::task::spawn_blocking(move || store.reload()).await;
            match result {
                Ok(Ok(true)) => {
                    metrics.tls_reload(true);
                    if let Some(t) = self.not_after() {
                        metrics.set_certificate_expiry(t);
                    }
                    tracing::info!(cert = %self.cert_path.display(), not_after = self.not_after(), "serving certificate reloaded");
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    metrics.tls_reload(false);
                    tracing::error!(error = %e, "new serving certificate cannot be used; keeping the current one");
                }
                Err(e) => tracing::error!(error = %e, "certificate reload task failed"),
            }
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c.key))
    }
}

/// Loads a CA bundle for verifying client certificates.
pub fn load_client_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("invalid PEM: {e}"),
        })?;
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("unusable CA certificate: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(roots)
}

/// The rustls server configuration: TLS 1.3 and 1.2 only, the provider's modern suites, ALPN h2
/// and http/1.1, the certificate from `store`, and client certificates verified against
/// `client_roots` when given.
pub fn server_config(
    store: Arc<CertStore>,
    client_roots: Option<RootCertStore>,
) -> Result<ServerConfig, rustls::Error> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
