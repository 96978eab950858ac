//! Where things are: the repository root, the cargo target directory, and the kube-harden
//! binary the suite runs (built when not given, so it never tests a stale one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Result, process};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().map(Path::to_path_buf).unwrap_or(here);
    root.canonicalize().unwrap_or(root)
}

/// `CARGO_TARGET_DIR` (relative to `repo` unless absolute), else `<repo>/target`.
pub fn target_dir(repo: &Path) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo.join(p) })
        .unwrap_or_else(|| repo.join("target"));
    // With symlinks resolved: the kernel names mount points by their real path, and the node's
    // scripts find (and unmount) what is theirs by the state dir's path (a CI clone's target/
    // is a symlink).
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// `KUBE_HARDEN_BIN` (relative to the repository root: cargo runs tests in the crate's
/// directory), or `cargo build --bin kube-harden` (a no-op when it is up to date) so the suite
/// never tests a stale binary.
pub fn kube_harden_binary(repo: &Path, target: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("KUBE_HARDEN_BIN") {
        let bin = PathBuf::from(bin);
        let bin = if bin.is_absolute() {
            bin
        } else {
            repo.join(bin)
        };
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("KUBE_HARDEN_BIN={} does not exist", bin.display()).into())
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("e2e: cargo build --bin kube-harden");
    let status = process::run_visible(
        Command::new(cargo)
            .args(["build", "--bin", "kube-harden"])
            .current_dir(repo),
        Duration::from_secs(30 * 60),
    )?;
    if !status.success() {
        return Err(format!("cargo build --bin kube-harden failed ({status})").into());
    }
    Ok(target.join("debug/kube-harden"))
}
