//! `--resolve-images` for the offline commands (`harden`, `scan`): a resolver built from the
//! flags, whose metrics go to a throwaway registry, and the warnings it gives on stderr.

use crate::config::RegistryArgs;
use crate::error::{Error, Result};
use crate::harden::ImageLookup;
use crate::metrics::RegistryMetrics;

use super::Resolver;

/// The resolver of `--resolve-images` (`None` without it): credentials from the user's docker
/// config unless `--registry-credentials` names a file.
pub(crate) fn resolver(args: &RegistryArgs) -> Result<Option<Resolver>> {
    args.settings(true)?
        .map(|settings| Resolver::new(settings, RegistryMetrics::throwaway()))
        .transpose()
        .map_err(Error::Config)
}

/// Resolves `images` within the budget; each image hardened without its configuration gets a
/// line on stderr.
pub(crate) async fn resolve(resolver: &Resolver, images: Vec<String>) -> ImageLookup {
    let resolved = resolver.resolve(&images).await;
    for warning in &resolved.warnings {
        eprintln!("kube-harden: {warning}");
    }
    resolved.lookup
}
