//! Running `kube-harden serve`: logging, the runtime, certificates (`--manage-certs`), the
//! server until SIGTERM or SIGINT.

use std::process::ExitCode;

use crate::config::ServeArgs;
use crate::error::{Error, Result};
use crate::{certs, logging, metrics};

/// Runs `kube-harden serve` with `args` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    logging::init(args.log_format, &args.log_level)?;
    let cert_config = args.cert_config()?;
    let max_namespaces = args.metrics_max_namespaces;
    let mut config = args.into_config()?;
    super::nofile::fit(&mut config);
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
        let server = super::Server::bind(config, metrics).await?;
        server.run(shutdown_signal()).await;
        if let Some(renewals) = renewals {
            renewals.abort();
        }
        Ok(ExitCode::SUCCESS)
    })
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
