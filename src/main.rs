//! The `kube-harden` binary: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kube_harden::config::Cli::parse();
    match kube_harden::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kube-harden: {e}");
            ExitCode::FAILURE
        }
    }
}
