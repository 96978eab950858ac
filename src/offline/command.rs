//! Running `kube-harden harden`: the file (or stdin) in, the hardened documents on stdout, the
//! reports on stderr, the exit code.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::config::HardenArgs;
use crate::error::{Error, Result};
use crate::harden;
use crate::registry::offline::{resolve, resolver};

/// Runs `kube-harden harden` with `args`.
pub fn run(args: &HardenArgs) -> Result<ExitCode> {
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
    let images = match resolver(&args.registry)? {
        Some(resolver) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(resolve(&resolver, super::images_in(&input))),
        None => harden::ImageLookup::new(),
    };
    let outcome = super::harden_stream_with_images(&input, &source_name, &policy, &images);
    let documents = outcome.documents;
    let output = super::render(&documents, args.output).map_err(Error::Render)?;
    eprint!("{}", super::unserved_report(&documents, &source_name));
    if args.explain {
        eprint!("{}", super::explain(&documents));
    }
    if args.findings {
        eprint!("{}", super::findings_report(&documents));
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
    if args.fail_on_findings && super::has_findings(&documents) {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
