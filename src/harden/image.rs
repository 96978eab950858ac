//! What an image's own configuration says about how it expects to run.
//!
//! The registry client (outside `harden`, with its I/O, cache and budget) reads each
//! container image's OCI config and hands the rules an [`ImageLookup`]: image reference, as
//! written in the container's `image` field, to the [`ImageFacts`] its config holds. The rules
//! stay pure: an image missing from the lookup (no registry, a fetch that failed or ran past
//! its budget, the offline command without `--resolve-images`) is hardened image-blind, as
//! before.

use std::collections::HashMap;

/// The parts of an image's OCI config (`config` in the image configuration, see
/// <https://github.com/opencontainers/image-spec/blob/main/config.md>) the rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `config.User` as written: `None` or `""` when unset; `"1001"`, `"1001:1001"`, `"app"`,
    /// `"app:staff"` otherwise.
    pub user: Option<String>,
    /// The keys of `config.Volumes`: the directories the image declares it writes.
    pub volumes: Vec<String>,
    /// `config.Env`, each entry `NAME=value`.
    pub env: Vec<String>,
    /// The digest of the platform manifest the facts were read from (`sha256:...`), for
    /// warnings and metrics.
    pub digest: String,
}

/// Facts per image reference, keyed by the container's `image` field exactly as written.
pub type ImageLookup = HashMap<String, ImageFacts>;
