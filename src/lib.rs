//! kube-harden adds the security settings a Kubernetes workload is missing, as a mutating
//! admission webhook or offline on manifest files.
//!
//! ```text
//!  manifest / AdmissionReview bytes
//!        │ parse (serde_json::Value, never typed structs: unknown fields survive)
//!        ▼
//!  harden::harden_object (offline) / harden_workload (webhook, scan)
//!        │ ──► Vec<Change> (applied / already set / skipped + reason)
//!        │     json_patch::Patch (additions only)
//!        ▼
//!  offline: hardened YAML/JSON/patch      webhook: AdmissionResponse with patch + warnings
//! ```
//!
//! The rules in [`harden`] are pure; I/O lives in [`offline`] (and the server).
// The library reads objects, requests and files from outside: nothing in it may panic. Tests
// may (clippy.toml allows these in `#[cfg(test)]` code); a module that must opt out says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod admission;
pub mod certs;
pub mod config;
pub mod error;
pub mod harden;
pub mod kube_client;
pub mod logging;
pub mod metrics;
pub mod offline;
pub mod psa;
pub mod registry;
pub mod scan;
pub mod server;
pub mod yaml;

/// kube-harden's version: `--version`, the `kube_harden_build_info` metric and the image label.
/// Cargo.toml's, unless the build sets `KUBE_HARDEN_VERSION` (scripts/image-build.sh does for
/// an image whose version differs, e.g. the second image of the upgrade test).
pub const VERSION: &str = match option_env!("KUBE_HARDEN_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use config::{Cli, Command, HardenArgs, ScanArgs, ScanOutput, ServeArgs};
use error::{Error, Result};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Harden(args) => run_harden(&args),
        Command::Serve(args) => run_serve(*args),
        Command::Scan(args) => run_scan(&args),
    }
}

fn run_scan(args: &ScanArgs) -> Result<ExitCode> {
    let policy = args.policy.load()?;
    let images = offline_resolver(&args.registry)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let rows = runtime.block_on(async {
        let client = scan_client(args).await?;
        let objects = scan::list(&client, &args.namespaces).await?;
        let images = match &images {
            Some(resolver) => resolve_offline(resolver, scan::images_in(&objects)).await,
            None => harden::ImageLookup::new(),
        };
        Ok::<_, Error>(scan::analyze_with_images(&objects, &policy, &images))
    })?;
    let output = match args.output {
        ScanOutput::Table => scan::render_table(&rows),
        ScanOutput::Json => {
            let mut text = serde_json::to_string_pretty(&rows).map_err(Error::Render)?;
            text.push('\n');
            text
        }
    };
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|source| Error::Io {
            path: "-".into(),
            source,
        })?;
    Ok(ExitCode::SUCCESS)
}

async fn scan_client(args: &ScanArgs) -> Result<kube::Client> {
    kube_client::client(
        args.kube.kubeconfig.as_deref(),
        args.context.as_deref(),
        None,
    )
    .await
    .map_err(|e| scan::ScanError::Config(e.to_string()).into())
}

fn run_serve(args: ServeArgs) -> Result<ExitCode> {
    logging::init(args.log_format, &args.log_level)?;
    let cert_config = args.cert_config()?;
    let max_namespaces = args.metrics_max_namespaces;
    let mut config = args.into_config()?;
    server::nofile::fit(&mut config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let metrics = metrics::Metrics::with_max_namespaces(max_namespaces);
        // --manage-certs: the Secret, the certificate files and the caBundle are in place
        // before the server loads the files; renewals then run beside it.
        let renewals = match cert_config {
            Some(cert_config) => Some(certs::start(cert_config, metrics.clone()).await?),
            None => None,
        };
        let server = server::Server::bind(config, metrics).await?;
        server.run(shutdown_signal()).await;
        if let Some(renewals) = renewals {
            renewals.abort();
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `--resolve-images` for `harden` and `scan`: credentials from the user's docker config unless
/// `--registry-credentials` names a file.
fn offline_resolver(args: &config::RegistryArgs) -> Result<Option<registry::Resolver>> {
    args.settings(true)?
        .map(|settings| {
            registry::Resolver::new(settings, registry::RegistryMetrics::unregistered())
        })
        .transpose()
        .map_err(Error::Config)
}

/// Resolves `images` within the budget; each image hardened without its configuration gets a
/// line on stderr.
async fn resolve_offline(
    resolver: &registry::Resolver,
    images: Vec<String>,
) -> harden::ImageLookup {
    let resolved = resolver.resolve(&images).await;
    for warning in &resolved.warnings {
        eprintln!("kube-harden: {warning}");
    }
    resolved.lookup
}

/// Resolves on SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run_harden(args: &HardenArgs) -> Result<ExitCode> {
    let policy = args.policy.load()?;
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut input = String::new();
    let source_name = if args.file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(io_error(&args.file))?;
        "<stdin>".to_owned()
    } else {
        input = std::fs::read_to_string(&args.file).map_err(io_error(&args.file))?;
        args.file.display().to_string()
    };
    let images = match offline_resolver(&args.registry)? {
        Some(resolver) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(resolve_offline(&resolver, offline::images_in(&input))),
        None => harden::ImageLookup::new(),
    };
    let outcome = offline::harden_stream_with_images(&input, &source_name, &policy, &images);
    let documents = outcome.documents;
    let output = offline::render(&documents, args.output).map_err(Error::Render)?;
    eprint!("{}", offline::unserved_report(&documents, &source_name));
    if args.explain {
        eprint!("{}", offline::explain(&documents));
    }
    if args.findings {
        eprint!("{}", offline::findings_report(&documents));
    }
    // The good documents are written even when others failed (docs/configuration.md).
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(io_error(Path::new("-")))?;
    if !outcome.errors.is_empty() {
        for error in &outcome.errors {
            eprintln!("kube-harden: {error}");
        }
        eprintln!(
            "kube-harden: {} of {} documents could not be read or hardened and were left out of the output",
            outcome.errors.len(),
            outcome.errors.len() + documents.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if args.fail_on_findings && offline::has_findings(&documents) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
