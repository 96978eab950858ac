//! Running `kube-harden scan`: the client from the kubeconfig, the listing, the report on stdout.

use std::io::Write;
use std::process::ExitCode;

use crate::config::{ScanArgs, ScanOutput};
use crate::error::{Error, Result};
use crate::registry::offline::{resolve, resolver};
use crate::{harden, kube_client};

/// Runs `kube-harden scan` with `args`.
pub fn run(args: &ScanArgs) -> Result<ExitCode> {
    let policy = args.policy.load()?;
    let images = resolver(&args.registry)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let rows = runtime.block_on(async {
        let client = scan_client(args).await?;
        let objects = super::list(&client, &args.namespaces).await?;
        let images = match &images {
            Some(resolver) => resolve(resolver, super::images_in(&objects)).await,
            None => harden::ImageLookup::new(),
        };
        Ok::<_, Error>(super::analyze_with_images(&objects, &policy, &images))
    })?;
    let output = match args.output {
        ScanOutput::Table => super::render_table(&rows),
        ScanOutput::Json => {
            let mut text = serde_json::to_string_pretty(&rows).map_err(Error::Render)?;
            text.push('\n');
            text
        }
    };
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|source| Error::Io {
            path: "-".into(),
            source,
        })?;
    Ok(ExitCode::SUCCESS)
}

async fn scan_client(args: &ScanArgs) -> Result<kube::Client> {
    kube_client::client(
        args.kube.kubeconfig.as_deref(),
        args.context.as_deref(),
        None,
    )
    .await
    .map_err(|e| super::ScanError::Config(e.to_string()).into())
}
