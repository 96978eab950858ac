//! Where Pod Security Admission's own `restricted` v1.36 fixtures are, and reading them. One
//! owner for the integration tests (tests/it/psa_*.rs) and the end-to-end tests (e2e/src/lib.rs
//! includes this file).
//!
//! The fixtures come from the Go module `k8s.io/pod-security-admission` v0.36.x, the version the
//! e2e control plane pins (e2e/controlplane/kube-apiserver/go.mod), and its `test/testdata/`:
//! `scripts/psa-fixtures.sh` downloads it through the Go module proxy, caches the set under
//! `~/.cache/kube-harden/psa-fixtures/` and prints its directory (pass/ and fail/). `make unit`
//! and `make e2e` run it first and pass the directory in `KUBE_HARDEN_PSA_FIXTURES`; without the
//! variable the tests run the script themselves. A missing set fails the tests, naming the
//! command that fetches it: they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The variable naming the fixtures directory (the one holding pass/ and fail/).
const FIXTURES_ENV: &str = "KUBE_HARDEN_PSA_FIXTURES";

/// The script that fetches the fixtures and prints their directory, relative to the repository.
const FETCH_SCRIPT: &str = "scripts/psa-fixtures.sh";

/// The `*.yaml` pods of the fixtures' `kind` directory (`pass` or `fail`), sorted by name, as
/// (file stem, pod). `repo` is the repository root (where the fetch script is). Missing, empty
/// or unreadable fixtures are an error that says how to fetch them.
pub fn fixtures(repo: &Path, kind: &str) -> Result<Vec<(String, Value)>, String> {
    load(&fixtures_dir(repo)?, kind)
}

/// The fixtures directory: `KUBE_HARDEN_PSA_FIXTURES`, or what `scripts/psa-fixtures.sh` (run
/// from `repo`) prints. Looked up once per process.
fn fixtures_dir(repo: &Path) -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| locate(repo)).clone()
}

fn locate(repo: &Path) -> Result<PathBuf, String> {
    let dir = match std::env::var_os(FIXTURES_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let output = Command::new(repo.join(FETCH_SCRIPT))
                .current_dir(repo)
                .output()
                .map_err(|e| format!("cannot run {FETCH_SCRIPT} to fetch the PSA fixtures: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "{FETCH_SCRIPT} ({}) could not fetch the PSA fixtures from the Go module \
                     k8s.io/pod-security-admission (it needs go and the Go module proxy): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    for kind in ["pass", "fail"] {
        if !dir.join(kind).is_dir() {
            return Err(format!(
                "no PSA fixtures at {} (no {kind}/ in it): `{FETCH_SCRIPT}` (or `make \
                 psa-fixtures`) fetches them and prints their directory; {FIXTURES_ENV} must name \
                 that directory or be unset",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

fn load(dir: &Path, kind: &str) -> Result<Vec<(String, Value)>, String> {
    let dir = dir.join(kind);
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("odd file name {}", path.display()))?
            .to_owned();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let pod = kube_harden::yaml::from_str(&text)
            .map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
        out.push((stem, pod));
    }
    if out.is_empty() {
        return Err(format!("no *.yaml fixtures in {}", dir.display()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
