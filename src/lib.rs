//! kube-harden adds the security settings a Kubernetes workload is missing, as a mutating
//! admission webhook or offline on manifest files.
//!
//! ```text
//!  manifest / AdmissionReview bytes
//!        │ parse (serde_json::Value, never typed structs: unknown fields survive)
//!        ▼
//!  harden::harden_object (offline) / harden_workload (webhook, scan)
//!        │ ──► Vec<Change> (applied / already set / skipped + reason)
//!        │     harden::Patch (`add`s only, written straight from the rules' values)
//!        ▼
//!  offline: hardened YAML/JSON/patch      webhook: AdmissionResponse with patch + warnings
//! ```
//!
//! The rules in [`harden`] are pure; I/O lives in [`offline`], [`scan`] and [`server`], each with
//! its command's runner in its `command` module (here only the dispatch).
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
pub mod dom;
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

use std::process::ExitCode;

use config::{Cli, Command};
use error::Result;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Harden(args) => offline::command::run(&args),
        Command::Serve(args) => server::command::run(*args),
        Command::Scan(args) => scan::command::run(&args),
    }
}
