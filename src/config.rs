//! Command-line flags (each also an environment variable) and their validation into the
//! settings the commands use.

use std::path::{Path, PathBuf};

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
