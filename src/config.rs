//! Command-line flags (each also an environment variable) and their validation into the
//! settings the commands use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::harden::Policy;
use crate::offline::OutputFormat;

/// kube-harden: adds the security settings Kubernetes workloads are missing.
#[derive(Debug, Parser)]
#[command(name = "kube-harden", version, about, long_about = None)]
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
    /// kubeconfig file; without it, $KUBECONFIG, ~/.kube/config, or the in-cluster config.
    #[arg(long, env = "KUBE_HARDEN_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context to use (default: the current context).
    #[arg(long, env = "KUBE_HARDEN_CONTEXT")]
    pub context: Option<String>,
    /// The policy file (YAML): scan with the policy the webhook runs.
    #[command(flatten)]
    pub policy: PolicyArgs,
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
    #[arg(long, env = "KUBE_HARDEN_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,
    /// Largest AdmissionReview body accepted; larger ones get 413.
    #[arg(long, env = "KUBE_HARDEN_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers and body; slower clients get 408.
    #[arg(long, env = "KUBE_HARDEN_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Time a TLS handshake may take.
    #[arg(long, env = "KUBE_HARDEN_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// After SIGTERM: time /readyz reports not ready while connections are still accepted.
    #[arg(long, env = "KUBE_HARDEN_SHUTDOWN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
    /// After the listener closes: time in-flight requests get to finish.
    #[arg(long, env = "KUBE_HARDEN_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
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
}

impl ServeArgs {
    /// Validates the flags into the server's settings.
    pub fn into_config(self) -> Result<crate::server::ServeConfig> {
        let policy = self.policy.load()?;
        if self.max_body_bytes < 1024 {
            return Err(Error::Config(format!(
                "--max-body-bytes {} is too small for any AdmissionReview",
                self.max_body_bytes
            )));
        }
        for (flag, value) in [
            ("--tls-reload-interval", self.tls_reload_interval),
            ("--request-timeout", self.request_timeout),
            ("--handshake-timeout", self.handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!("{flag} must be greater than zero")));
            }
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
            policy,
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
