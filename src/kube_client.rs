//! The one place a Kubernetes client is built (`scan`, and `serve --manage-certs`): from a
//! kubeconfig file, or else inferred (in-cluster configuration, or `$KUBECONFIG` /
//! `~/.kube/config`), in the given context.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file cannot be read.
    #[error("{path}: {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig does not describe a usable cluster (or context).
    #[error(transparent)]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// Neither the in-cluster configuration nor a kubeconfig is usable.
    #[error(transparent)]
    Infer(#[from] kube::config::InferConfigError),
    /// The configuration is complete but the client cannot use it.
    #[error(transparent)]
    Client(#[from] kube::Error),
}

/// A client for the cluster of `kubeconfig` (else inferred), in `context` (else the current
/// one). `read_timeout`: the longest wait for a response, the timer reset while a request is
/// written; `None` keeps kube's default.
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    read_timeout: Option<Duration>,
) -> Result<kube::Client, ClientError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|source| ClientError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer().await?,
    };
    if let Some(timeout) = read_timeout {
        config.read_timeout = Some(timeout);
        config.reset_reader_on_write = true;
    }
    Ok(kube::Client::try_from(config)?)
}
