//! Command-line flags (each also an environment variable) and their validation into the
//! settings the commands use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::harden::Policy;
use crate::offline::OutputFormat;

/// kube-harden: adds the security settings Kubernetes workloads are missing.
#[derive(Debug, Parser)]
#[command(name = "kube-harden", version = crate::VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Harden manifest files offline and print the result.
    Harden(HardenArgs),
    /// Run the admission webhook server.
    Serve(Box<ServeArgs>),
    /// Read-only scan of a live cluster: what enforce mode would change, what would remain.
    Scan(ScanArgs),
}

/// Output of `kube-harden scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanOutput {
    /// One line per workload.
    Table,
    /// A JSON array of workloads.
    Json,
}

/// Flags of `kube-harden scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Namespaces to scan (repeat or comma-separate); all namespaces when omitted.
    #[arg(
        short = 'n',
        long = "namespace",
        value_delimiter = ',',
        env = "KUBE_HARDEN_SCAN_NAMESPACES"
    )]
    pub namespaces: Vec<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "table",
        env = "KUBE_HARDEN_SCAN_OUTPUT"
    )]
    pub output: ScanOutput,
    /// The cluster.
    #[command(flatten)]
    pub kube: KubeconfigArgs,
    /// kubeconfig context to use (default: the current context).
    #[arg(long, env = "KUBE_HARDEN_CONTEXT")]
    pub context: Option<String>,
    /// The policy file (YAML): scan with the policy the webhook runs.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// `--resolve-images` and the registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The kubeconfig flag, shared by the commands that talk to the API server (`scan`,
/// `serve --manage-certs`).
#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// kubeconfig file; without it, the in-cluster config, $KUBECONFIG or ~/.kube/config.
    #[arg(long, env = "KUBE_HARDEN_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `kube-harden serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS address for the webhook endpoints /mutate (enforce) and /audit.
    #[arg(long, env = "KUBE_HARDEN_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,
    /// Plain-HTTP address for /metrics, /healthz and /readyz.
    #[arg(long, env = "KUBE_HARDEN_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// PEM certificate chain served on the webhook address (reloaded when it changes).
    #[arg(long, env = "KUBE_HARDEN_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,
    /// PEM private key of the certificate (reloaded when it changes).
    #[arg(long, env = "KUBE_HARDEN_TLS_KEY_FILE")]
    pub tls_key_file: PathBuf,
    /// PEM CA bundle; when set, clients (the API server) must present a certificate it signed.
    #[arg(long, env = "KUBE_HARDEN_CLIENT_CA_FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// How often the certificate files are checked for changes.
    #[arg(long, env = "KUBE_HARDEN_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = positive_duration)]
    pub tls_reload_interval: Duration,
    /// Largest AdmissionReview body accepted; larger ones get 413. At least 1024: no
    /// AdmissionReview is smaller.
    #[arg(long, env = "KUBE_HARDEN_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024,
          value_parser = RangedU64ValueParser::<usize>::new().range(1024..))]
    pub max_body_bytes: usize,
    /// Time allowed for a connection's first request to start, a request's headers, and its
    /// body (each); slower clients get 408 or a closed connection. Well under the API server's
    /// 5s webhook timeout, which sends a review at once.
    #[arg(long, env = "KUBE_HARDEN_REQUEST_TIMEOUT", default_value = "2s", value_parser = positive_duration)]
    pub request_timeout: Duration,
    /// Time a TLS handshake may take.
    #[arg(long, env = "KUBE_HARDEN_HANDSHAKE_TIMEOUT", default_value = "2s", value_parser = positive_duration)]
    pub handshake_timeout: Duration,
    /// After SIGTERM: time /readyz reports not ready while connections are still accepted.
    #[arg(long, env = "KUBE_HARDEN_SHUTDOWN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
    /// After the listener closes: time in-flight requests get to finish.
    #[arg(long, env = "KUBE_HARDEN_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Most webhook connections open at once; at the cap the oldest stalled connection (no
    /// request yet, trickling, idle) is closed to make room. Lowered at start if it does not fit
    /// the limit on open files.
    #[arg(long, env = "KUBE_HARDEN_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Most connections open at once on the metrics port (/metrics, /healthz, /readyz); at the
    /// cap the oldest stalled one is closed to make room.
    #[arg(
        long,
        env = "KUBE_HARDEN_METRICS_MAX_CONNECTIONS",
        default_value_t = 32,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub metrics_max_connections: usize,
    /// A webhook connection with no request for this long is closed (longer than the API
    /// server's own 90s idle timeout, so the client normally closes first).
    #[arg(long, env = "KUBE_HARDEN_IDLE_TIMEOUT", default_value = "120s", value_parser = positive_duration)]
    pub idle_timeout: Duration,
    /// Time one review may take; past it the object is admitted unchanged with a warning
    /// (fail-open). Keep it below the webhook's `timeoutSeconds` (5s in the manifests).
    #[arg(long, env = "KUBE_HARDEN_REVIEW_TIMEOUT", default_value = "2s", value_parser = positive_duration)]
    pub review_timeout: Duration,
    /// Most distinct namespaces the metrics label by name; later ones (and names that are not
    /// valid namespace names) are counted as `_other`.
    #[arg(long, env = "KUBE_HARDEN_METRICS_MAX_NAMESPACES", default_value_t = crate::metrics::DEFAULT_MAX_NAMESPACES)]
    pub metrics_max_namespaces: usize,
    /// Log format.
    #[arg(
        long,
        env = "KUBE_HARDEN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `kube_harden=debug`).
    #[arg(long, env = "KUBE_HARDEN_LOG", default_value = "info")]
    pub log_level: String,
    /// The policy file (YAML).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Managed certificates (`--manage-certs`).
    #[command(flatten)]
    pub certs: CertArgs,
    /// `--resolve-images` and the registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl ServeArgs {
    /// The server's settings (clap has checked each flag's range).
    pub fn into_config(self) -> Result<crate::server::ServeConfig> {
        let policy = self.policy.load()?;
        let images = self.registry.settings(false)?;
        if let Some(settings) = &images
            && settings.budget >= self.review_timeout
        {
            return Err(Error::Config(format!(
                "--registry-budget ({:?}) must be less than --review-timeout ({:?}): the review \
                 needs time to harden after waiting for the registry",
                settings.budget, self.review_timeout
            )));
        }
        Ok(crate::server::ServeConfig {
            webhook_addr: self.webhook_addr,
            metrics_addr: self.metrics_addr,
            tls_cert_file: self.tls_cert_file,
            tls_key_file: self.tls_key_file,
            client_ca_file: self.client_ca_file,
            tls_reload_interval: self.tls_reload_interval,
            max_body_bytes: self.max_body_bytes,
            request_timeout: self.request_timeout,
            handshake_timeout: self.handshake_timeout,
            shutdown_delay: self.shutdown_delay,
            shutdown_timeout: self.shutdown_timeout,
            max_connections: self.max_connections,
            metrics_max_connections: self.metrics_max_connections,
            idle_timeout: self.idle_timeout,
            review_timeout: self.review_timeout,
            policy,
            images,
        })
    }
}

/// Flags of `kube-harden harden`.
#[derive(Debug, Args)]
pub struct HardenArgs {
    /// Manifest file (YAML stream, JSON object or List); `-` for stdin.
    #[arg(short = 'f', long = "filename", env = "KUBE_HARDEN_FILE")]
    pub file: PathBuf,
    /// Output: the hardened documents (yaml, json) or one JSON patch per document (patch).
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "yaml",
        env = "KUBE_HARDEN_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Print every decision (applied, already set, skipped and why) to stderr.
    #[arg(long, env = "KUBE_HARDEN_EXPLAIN")]
    pub explain: bool,
    /// Print the findings (risks hardening cannot fix) and the Pod Security `restricted`
    /// verdict of each workload to stderr.
    #[arg(long, env = "KUBE_HARDEN_FINDINGS")]
    pub findings: bool,
    /// Exit with status 2 when any workload has findings or fails `restricted` after hardening
    /// (the output is still written): a gate for CI pipelines.
    #[arg(long, env = "KUBE_HARDEN_FAIL_ON_FINDINGS")]
    pub fail_on_findings: bool,
    /// The policy file (YAML); defaults apply without one.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// `--resolve-images` and the registry settings.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `--resolve-images` and the registry client's settings (docs/configuration.md, "Image
/// lookups"), shared by `serve`, `harden` and `scan`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Read each container image's configuration (USER, VOLUMEs, Env) from its registry and
    /// harden to fit it; an image that cannot be read within the budget is hardened as without
    /// this flag, with a warning.
    #[arg(long, env = "KUBE_HARDEN_RESOLVE_IMAGES")]
    pub resolve_images: bool,
    /// Longest a review (or the offline command, per run) waits for the registries; a fetch
    /// still running then goes on in the background and fills the cache. `serve`: less than
    /// --review-timeout.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_BUDGET", default_value = "1s", value_parser = positive_duration)]
    pub registry_budget: Duration,
    /// Longest one fetch (manifest and config of one image) runs.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_FETCH_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub registry_fetch_timeout: Duration,
    /// The nodes' platform (os/arch[/variant]): the manifest read from a multi-platform image.
    #[arg(
        long,
        env = "KUBE_HARDEN_IMAGE_PLATFORM",
        default_value = "linux/amd64"
    )]
    pub image_platform: crate::registry::Platform,
    /// docker config.json with registry credentials (`serve`: a Secret in kube-harden's own
    /// namespace, mounted as a file). `harden`/`scan` default to $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_CREDENTIALS")]
    pub registry_credentials: Option<PathBuf>,
    /// Registries (host:port) spoken to over plain HTTP (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', env = "KUBE_HARDEN_REGISTRY_INSECURE")]
    pub registry_insecure: Vec<String>,
    /// PEM CA certificates trusted for registries, besides the system's.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_CA_FILE")]
    pub registry_ca_file: Option<PathBuf>,
    /// How long a tag's digest is reused before the registry is asked again.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_TAG_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub registry_tag_ttl: Duration,
    /// How long a failed fetch is remembered before the registry is asked again.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_ERROR_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub registry_error_ttl: Duration,
    /// Most images in the cache.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_CACHE_ENTRIES", default_value_t = 10_000,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub registry_cache_entries: usize,
    /// Most bytes of image facts in the cache.
    #[arg(long, env = "KUBE_HARDEN_REGISTRY_CACHE_BYTES", default_value_t = 32 * 1024 * 1024,
          value_parser = RangedU64ValueParser::<usize>::new().range(1024..))]
    pub registry_cache_bytes: usize,
}

impl RegistryArgs {
    /// The resolver's settings; `None` without `--resolve-images`. `docker_default`: without
    /// `--registry-credentials`, read the user's docker config (the offline commands).
    pub fn settings(&self, docker_default: bool) -> Result<Option<crate::registry::Settings>> {
        use crate::registry::{Credentials, Limits, Settings};
        if !self.resolve_images {
            return Ok(None);
        }
        let credentials = match &self.registry_credentials {
            Some(path) => Credentials::from_file(path),
            None if docker_default => Credentials::from_docker_config(),
            None => Ok(Credentials::default()),
        }
        .map_err(Error::Config)?;
        Ok(Some(Settings {
            budget: self.registry_budget,
            fetch_timeout: self.registry_fetch_timeout,
            platform: self.image_platform.clone(),
            credentials,
            insecure: self.registry_insecure.clone(),
            ca_file: self.registry_ca_file.clone(),
            limits: Limits {
                entries: self.registry_cache_entries,
                bytes: self.registry_cache_bytes,
                tag_ttl: self.registry_tag_ttl,
                error_ttl: self.registry_error_ttl,
            },
            ..Settings::default()
        }))
    }
}

/// The policy file flag, shared by the commands that harden.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy file (YAML): defaults and switches; see docs/configuration.md.
    #[arg(long = "config", env = "KUBE_HARDEN_CONFIG")]
    pub config: Option<PathBuf>,
}

impl PolicyArgs {
    /// Loads and validates the policy, or the default policy without `--config`.
    pub fn load(&self) -> Result<Policy> {
        match &self.config {
            None => Ok(Policy::default()),
            Some(path) => load_policy(path),
        }
    }
}

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Policy::from_yaml(&text).map_err(|source| Error::Policy {
        path: path.to_owned(),
        source,
    })
}

/// Flags of `kube-harden serve` for certificates it manages itself (docs/certificates.md).
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Manage the certificates: create (or read) a CA and serving certificate in a Secret, write
    /// the pair to --tls-cert-file/--tls-key-file, set the webhook configuration's caBundle, and
    /// renew before expiry.
    #[arg(long, env = "KUBE_HARDEN_MANAGE_CERTS", requires = "cert_namespace")]
    pub manage_certs: bool,
    /// The Secret holding the CA and serving certificate.
    #[arg(
        long,
        env = "KUBE_HARDEN_CERT_SECRET",
        default_value = "kube-harden-tls"
    )]
    pub cert_secret: String,
    /// Namespace of the Secret and of the Service (required with --manage-certs; in a pod, from
    /// the downward API's metadata.namespace).
    #[arg(long, env = "KUBE_HARDEN_CERT_NAMESPACE")]
    pub cert_namespace: Option<String>,
    /// The MutatingWebhookConfiguration whose webhooks get the caBundle (all of its webhooks).
    #[arg(
        long,
        env = "KUBE_HARDEN_WEBHOOK_CONFIG",
        default_value = "kube-harden"
    )]
    pub webhook_config: String,
    /// The Service in front of the webhook: the serving certificate covers <name>,
    /// <name>.<namespace>, <name>.<namespace>.svc and <name>.<namespace>.svc.cluster.local.
    #[arg(long, env = "KUBE_HARDEN_SERVICE_NAME", default_value = "kube-harden")]
    pub service_name: String,
    /// More DNS names or IP addresses for the serving certificate (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', env = "KUBE_HARDEN_CERT_DNS_NAMES")]
    pub cert_dns_names: Vec<String>,
    /// Validity of a serving certificate (cut at its CA's expiry).
    #[arg(long, env = "KUBE_HARDEN_CERT_VALIDITY", default_value = "365days", value_parser = humantime::parse_duration)]
    pub cert_validity: Duration,
    /// Renew the serving certificate when less than this is left (the default: at two thirds of
    /// its life).
    #[arg(long, env = "KUBE_HARDEN_CERT_RENEW_BEFORE", default_value = "120days", value_parser = humantime::parse_duration)]
    pub cert_renew_before: Duration,
    /// Validity of a CA.
    #[arg(long, env = "KUBE_HARDEN_CA_VALIDITY", default_value = "3650days", value_parser = humantime::parse_duration)]
    pub ca_validity: Duration,
    /// Rotate the CA when less than this is left: the new CA joins the caBundle at once and signs
    /// from half of this before expiry.
    #[arg(long, env = "KUBE_HARDEN_CA_RENEW_BEFORE", default_value = "365days", value_parser = humantime::parse_duration)]
    pub ca_renew_before: Duration,
    /// How often the Secret and the caBundle are checked (renewals, changes by other replicas, a
    /// deleted Secret or configuration).
    #[arg(long, env = "KUBE_HARDEN_CERT_CHECK_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub cert_check_interval: Duration,
    /// The cluster whose Secret and webhook configuration are managed.
    #[command(flatten)]
    pub kube: KubeconfigArgs,
}

impl ServeArgs {
    /// Validates the `--manage-certs` flags; `None` without `--manage-certs`.
    pub fn cert_config(&self) -> Result<Option<crate::certs::CertConfig>> {
        use crate::certs::{CertConfig, Lifetimes, Name, service_names};
        let c = &self.certs;
        if !c.manage_certs {
            return Ok(None);
        }
        let config_error = |m: String| Error::Config(m);
        // clap requires --cert-namespace with --manage-certs; it may still be empty.
        let namespace = c.cert_namespace.clone().unwrap_or_default();
        for (flag, value) in [
            ("--cert-namespace", &namespace),
            ("--cert-secret", &c.cert_secret),
            ("--webhook-config", &c.webhook_config),
            ("--service-name", &c.service_name),
        ] {
            if value.is_empty() {
                return Err(config_error(format!("{flag} must not be empty")));
            }
        }
        let names = service_names(&c.service_name, &namespace)
            .iter()
            .chain(&c.cert_dns_names)
            .map(|n| Name::parse(n).map_err(|e| config_error(format!("--cert-dns-names: {e}"))))
            .collect::<Result<_>>()?;
        let lifetimes = Lifetimes {
            cert_validity: c.cert_validity,
            cert_renew_before: c.cert_renew_before,
            ca_validity: c.ca_validity,
            ca_renew_before: c.ca_renew_before,
        };
        lifetimes
            .validate(c.cert_check_interval, self.tls_reload_interval)
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Some(CertConfig {
            secret: c.cert_secret.clone(),
            namespace,
            webhook_config: c.webhook_config.clone(),
            names,
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
            kubeconfig: c.kube.kubeconfig.clone(),
            lifetimes,
            check_interval: c.cert_check_interval,
        }))
    }
}

/// A duration flag's value: humantime syntax (`2s`, `1m30s`), greater than zero.
fn positive_duration(text: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
