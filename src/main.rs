//! The `kube-harden` binary: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: JSON work is allocation-heavy, and glibc malloc costs a third of a review's CPU
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for every rustls user in the process (ring: small, no C toolchain
    // beyond what ring needs, builds for musl).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = kube_harden::config::Cli::parse();
    match kube_harden::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kube-harden: {e}");
            ExitCode::FAILURE
        }
    }
}
