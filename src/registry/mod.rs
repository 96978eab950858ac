//! `--resolve-images`: reads each container image's OCI config from its registry, so the rules
//! can fit the image ([`crate::harden::ImageFacts`]).
//!
//! ```text
//!  review: images of the pod spec
//!     │ Resolver::cached (no I/O): facts, recent failures, and what is missing
//!     │ Resolver::resolve: one fetch per missing image (coalesced, spawned), waited for at most
//!     │   the budget; a fetch past it goes on in the background and fills the cache
//!     ▼
//!  ImageLookup (+ a warning per image hardened without its configuration)
//! ```
//!
//! Nothing here can delay a review past `--registry-budget` or fail it: an image that cannot be
//! read (registry down, slow, 401/403/404, garbage, too big, no manifest for the platform, a digest
//! mismatch) is left out of the lookup, so the rules treat it as today, image-blind, and the review
//! carries a warning naming the image and the reason (`kube_harden_image_fallbacks_total`).

mod cache;
mod credentials;
mod facts;
mod fetch;
pub(crate) mod offline;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::{Client, Reference};
use tokio::sync::watch;

pub use cache::Limits;
pub use credentials::Credentials;
pub use facts::{Platform, parse_config};
pub use fetch::{FetchError, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, Reason};

use crate::harden::{ImageFacts, ImageLookup};
use crate::metrics::RegistryMetrics;
use cache::{Cache, Cached};

/// The resolver's settings (from the `--registry-*` flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest a review waits for its images.
    pub budget: Duration,
    /// Longest one fetch runs (in the background past the budget).
    pub fetch_timeout: Duration,
    /// The nodes' platform, for image indexes.
    pub platform: Platform,
    /// Registry credentials (docker config.json).
    pub credentials: Credentials,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// PEM CA certificates trusted for registries, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Cache bounds and TTLs.
    pub limits: Limits,
    /// Most fetches of different images at once; more are not started (reason `busy`).
    pub max_fetches: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            budget: Duration::from_millis(1000),
            fetch_timeout: Duration::from_secs(10),
            platform: Platform::default(),
            credentials: Credentials::default(),
            insecure: Vec::new(),
            ca_file: None,
            limits: Limits {
                entries: 10_000,
                bytes: 32 * 1024 * 1024,
                tag_ttl: Duration::from_secs(60),
                error_ttl: Duration::from_secs(30),
            },
            max_fetches: 64,
        }
    }
}

/// The facts found for a set of images, and the warnings for the others.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Facts per image, as written.
    pub lookup: ImageLookup,
    /// One line per image hardened without its configuration, naming it and why.
    pub warnings: Vec<String>,
    /// Images not known yet (only from [`Resolver::cached`]).
    pub missing: Vec<String>,
}

type Outcome = Option<Result<Arc<ImageFacts>, FetchError>>;

/// Reads images' facts through the cache; cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: Settings,
    cache: Cache,
    metrics: RegistryMetrics,
    /// Fetches running, by image as written: later lookups of the same image wait on it.
    inflight: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
}

impl Resolver {
    /// A resolver; the error says which setting is wrong (an unreadable CA file).
    pub fn new(settings: Settings, metrics: RegistryMetrics) -> Result<Self, String> {
        // The process installs ring as the default provider (main.rs); tests and library users
        // may not have.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut extra_root_certificates = Vec::new();
        if let Some(path) = &settings.ca_file {
            let data = std::fs::read(path)
                .map_err(|e| format!("--registry-ca-file {}: {e}", path.display()))?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let protocol = if settings.insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(settings.insecure.clone())
        };
        let config = ClientConfig {
            protocol,
            extra_root_certificates,
            // Indexes are resolved here, for the configured platform (fetch.rs).
            platform_resolver: None,
            connect_timeout: Some(settings.fetch_timeout),
            read_timeout: Some(settings.fetch_timeout),
            user_agent: concat!("kube-harden/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| format!("registry client: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                cache: Cache::new(settings.limits),
                settings,
                metrics,
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The budget a review waits at most.
    pub fn budget(&self) -> Duration {
        self.inner.settings.budget
    }

    /// What the cache knows of `images`, without I/O: facts, warnings for recent failures, and
    /// the images to fetch (`missing`).
    pub fn cached<S: AsRef<str>>(&self, images: &[S]) -> Resolved {
        let now = Instant::now();
        let mut resolved = Resolved::default();
        // One lock for all of the review's images.
        let mut cache = self.inner.cache.reader();
        for (i, image) in images.iter().enumerate() {
            let image = image.as_ref();
            // A pod has a few images: a scan beats hashing.
            if images
                .get(..i)
                .is_some_and(|before| before.iter().any(|b| b.as_ref() == image))
            {
                continue;
            }
            // The reference is parsed only to fetch (`start`): the warm path is string lookups.
            let digest = image.rsplit_once('@').map(|(_, digest)| digest);
            match cache.get(image, digest, now) {
                Cached::Facts(facts) => {
                    self.inner.metrics.lookup(true);
                    resolved.lookup.insert(image.to_owned(), facts);
                }
                Cached::Failed(e) => {
                    self.inner.metrics.lookup(true);
                    self.fallback(&mut resolved, image, &e);
                }
                Cached::StaleTag(_) | Cached::Unknown => resolved.missing.push(image.to_owned()),
            }
        }
        resolved
    }

    /// The facts of `images`: from the cache, else fetched, waiting at most the budget.
    pub async fn resolve<S: AsRef<str>>(&self, images: &[S]) -> Resolved {
        let deadline = tokio::time::Instant::now() + self.inner.settings.budget;
        let mut resolved = self.cached(images);
        let missing = std::mem::take(&mut resolved.missing);
        let waits: Vec<_> = missing
            .into_iter()
            .map(|image| {
                self.inner.metrics.lookup(false);
                let rx = self.start(&image);
                async move {
                    let outcome = match rx {
                        Ok(mut rx) => {
                            match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some))
                                .await
                            {
                                Ok(Ok(done)) => done.clone().unwrap_or_else(|| {
                                    Err(FetchError::new(Reason::Transport, "fetch lost"))
                                }),
                                Ok(Err(_)) => {
                                    Err(FetchError::new(Reason::Transport, "the fetch stopped"))
                                }
                                Err(_) => Err(FetchError::new(
                                    Reason::Timeout,
                                    "the registry did not answer within the budget",
                                )),
                            }
                        }
                        Err(e) => Err(e),
                    };
                    (image, outcome)
                }
            })
            .collect();
        for (image, outcome) in futures_util::future::join_all(waits).await {
            match outcome {
                Ok(facts) => {
                    resolved.lookup.insert(image, facts);
                }
                Err(e) => self.fallback(&mut resolved, &image, &e),
            }
        }
        resolved
    }

    fn fallback(&self, resolved: &mut Resolved, image: &str, error: &FetchError) {
        self.inner.metrics.fallback(error.reason);
        resolved.warnings.push(format!(
            "image {image:?} hardened without its configuration: {error}"
        ));
    }

    /// Joins the fetch of `image` or starts it.
    fn start(&self, image: &str) -> Result<watch::Receiver<Outcome>, FetchError> {
        let mut inflight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = inflight.get(image) {
            return Ok(rx.clone());
        }
        let reference = parse_reference(image).inspect_err(|e| {
            // Remembered like any failure: the next review is answered from the cache.
            self.inner.cache.put_error(image, e.clone(), Instant::now());
        })?;
        if inflight.len() >= self.inner.settings.max_fetches {
            return Err(FetchError::new(
                Reason::Busy,
                format!(
                    "{} other images are being fetched",
                    self.inner.settings.max_fetches
                ),
            ));
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(image.to_owned(), rx.clone());
        let this = self.clone();
        let image = image.to_owned();
        tokio::spawn(async move {
            let outcome = this.fetch(&image, &reference).await;
            this.inner
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&image);
            let _ = tx.send(Some(outcome));
        });
        Ok(rx)
    }

    /// One fetch, within `--registry-fetch-timeout`, its result cached.
    async fn fetch(
        &self,
        image: &str,
        reference: &Reference,
    ) -> Result<Arc<ImageFacts>, FetchError> {
        let inner = &self.inner;
        let started = Instant::now();
        let auth = inner
            .settings
            .credentials
            .for_registry(reference.resolve_registry());
        let work = async {
            // A tag whose answer is stale: one HEAD tells whether the cached digest still holds.
            if let Cached::StaleTag(digest) = inner.cache.get(image, None, Instant::now()) {
                let now = fetch::head(&inner.client, reference, &auth).await?;
                if now == digest
                    && let Cached::Facts(facts) = inner.cache.get(image, Some(&now), Instant::now())
                {
                    return Ok((now, facts));
                }
            }
            let (digest, facts) =
                fetch::fetch(&inner.client, reference, &auth, &inner.settings.platform).await?;
            Ok((digest, Arc::new(facts)))
        };
        let timeout = inner.settings.fetch_timeout;
        let outcome = match tokio::time::timeout(timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(FetchError::new(
                Reason::Timeout,
                format!("the registry did not answer within {timeout:?}"),
            )),
        };
        inner
            .metrics
            .fetched(started.elapsed(), outcome.as_ref().err().map(|e| e.reason));
        let now = Instant::now();
        let outcome = match outcome {
            Ok((digest, facts)) => {
                inner.cache.put(image, &digest, Arc::clone(&facts), now);
                Ok(facts)
            }
            Err(e) => {
                inner.cache.put_error(image, e.clone(), now);
                Err(e)
            }
        };
        let (entries, bytes) = inner.cache.size();
        inner.metrics.cache_size(entries, bytes);
        outcome
    }
}

/// An image reference as the kubelet reads it (`nginx` is `docker.io/library/nginx:latest`).
fn parse_reference(image: &str) -> Result<Reference, FetchError> {
    Reference::try_from(image).map_err(|e| {
        FetchError::new(
            Reason::InvalidReference,
            format!("not an image reference: {e}"),
        )
    })
}

#[cfg(test)]
mod tests;
