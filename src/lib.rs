//! kube-harden adds the security settings a Kubernetes workload is missing, as a mutating
//! admission webhook or offline on manifest files.
//!
//! ```text
//!  manifest / AdmissionReview bytes
//!        │ parse (serde_json::Value, never typed structs: unknown fields survive)
//!        ▼
//!  harden::harden_object ──► Vec<Change> (applied / already set / skipped + reason)
//!        │                   json_patch::Patch (additions only)
//!        ▼
//!  offline: hardened YAML/JSON/patch      webhook: AdmissionResponse with patch + warnings
//! ```
//!
//! The rules in [`harden`] are pure; I/O lives in [`offline`] (and the server).

pub mod admission;
pub mod config;
pub mod error;
pub mod harden;
pub mod offline;
pub mod psa;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use config::{Cli, Command, HardenArgs};
use error::{Error, Result};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Harden(args) => run_harden(&args),
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
    let documents = offline::harden_documents(&input, &source_name, &policy)?;
    let output = offline::render(&documents, args.output).map_err(|e| Error::Manifest {
        source_name: source_name.clone(),
        document: 0,
        line: 0,
        message: e.to_string(),
    })?;
    if args.explain {
        eprint!("{}", offline::explain(&documents));
    }
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(io_error(Path::new("-")))?;
    Ok(ExitCode::SUCCESS)
}
