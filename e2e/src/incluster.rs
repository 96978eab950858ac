//! kube-harden installed in the node's cluster from its own image (docs/node.md "kube-harden in
//! the cluster"), shared by the kustomize and the Helm installs (tests/node_install,
//! tests/node_helm): the OCI archive `scripts/image-build.sh` assembles, imported into the
//! node's containerd, and the reviews counted by the kube-harden pods themselves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::node::Node;
use crate::{Result, process, repo_root, target_dir};

/// A built archive and what the script printed about it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The OCI archive (`ctr images import` takes it).
    pub archive: PathBuf,
    /// The manifest digest the script printed (`sha256:...`).
    pub digest: String,
    /// The image reference (`kube-harden.local/kube-harden:<version>`).
    pub reference: String,
    /// Cargo.toml's version: the tag and the version label.
    pub version: String,
}

/// kube-harden's version, from the workspace's Cargo.toml (what the script tags with).
pub fn cargo_version(repo: &Path) -> Result<String> {
    let toml = std::fs::read_to_string(repo.join("Cargo.toml"))?;
    toml.lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| "no version in Cargo.toml".into())
}

/// Runs `scripts/image-build.sh` (which builds the static release binary when it is stale:
/// minutes, once) writing `file` under target/image-test/; `version`: another version than
/// Cargo.toml's (the script builds that binary in a target directory of its own).
pub fn build(file: &str, no_build: bool, version: Option<&str>) -> Result<Image> {
    let repo = repo_root();
    let archive = target_dir(&repo).join("image-test").join(file);
    let mut cmd = Command::new(repo.join("scripts/image-build.sh"));
    if no_build {
        cmd.arg("--no-build");
    }
    cmd.arg("-o").arg(&archive).current_dir(&repo);
    // Not the environment `cargo test` gives this process (CARGO_PKG_*, LD_LIBRARY_PATH, ...):
    // with it the release build's fingerprints differ from a shell's, and each side rebuilds
    // kube-harden's dependencies after the other (minutes of LTO each time).
    cmd.env_clear();
    for key in [
        "PATH",
        "HOME",
        "TMPDIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "STATIC_TARGET_DIR",
    ] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    if let Some(version) = version {
        cmd.env("VERSION", version).env_remove("STATIC_TARGET_DIR");
    }
    let out = process::run(&mut cmd, None, Duration::from_secs(60 * 60))?.ok("image-build.sh")?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let [path, digest] = lines[..] else {
        return Err(format!(
            "image-build.sh printed {:?}, not a path and a digest",
            out.stdout
        )
        .into());
    };
    if Path::new(path) != archive {
        return Err(format!(
            "image-build.sh wrote {path}, asked for {}",
            archive.display()
        )
        .into());
    }
    let version = match version {
        Some(v) => v.to_owned(),
        None => cargo_version(&repo)?,
    };
    Ok(Image {
        archive,
        digest: digest.to_owned(),
        reference: format!("kube-harden.local/kube-harden:{version}"),
        version,
    })
}

/// `cluster.sh import`, then the image as containerd lists it must have the built digest.
pub fn import(node: &Node, image: &Image) -> Result<()> {
    let repo = repo_root();
    process::run(
        Command::new(repo.join("e2e/cluster.sh"))
            .arg("import")
            .arg(&image.archive)
            .env("E2E_NODE_STATE_DIR", &node.state_dir),
        None,
        Duration::from_secs(120),
    )?
    .ok("cluster.sh import")?;
    let listed = node.ctr(&["images", "ls", &format!("name=={}", image.reference)])?;
    if !listed.contains(&image.digest) {
        return Err(format!(
            "containerd lists {} without digest {}:\n{listed}",
            image.reference, image.digest
        )
        .into());
    }
    Ok(())
}

/// Reviews counted by the kube-harden pods themselves (their metrics port, from the host).
pub fn reviews_served(node: &Node, pods: &[Pod]) -> Result<f64> {
    let mut total = 0.0;
    for pod in pods {
        let (status, body) = node.http_get_pod(pod, 8080, "/metrics")?;
        if status != 200 {
            return Err(format!("metrics answered {status}").into());
        }
        total += body
            .lines()
            .filter(|l| l.starts_with("kube_harden_admission_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(total)
}
