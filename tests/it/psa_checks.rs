//! `kube_harden::psa` against Pod Security Admission's own `restricted` v1.36 fixtures: every
//! `pass/` pod has no violation, and every `fail/` pod fails the check its file name names.
//!
//! The fixtures live in `../shared/psa-fixtures/restricted-v1.36` next to the crate, or wherever
//! `KUBE_HARDEN_PSA_FIXTURES` points. A missing directory fails the tests: they never skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube_harden::psa::{Check, Violation, check_restricted};
use serde_json::Value;

const FIXTURES_ENV: &str = "KUBE_HARDEN_PSA_FIXTURES";

fn fixtures_dir() -> PathBuf {
    let dir = match std::env::var_os(FIXTURES_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/psa-fixtures/restricted-v1.36")
        }
    };
    assert!(
        dir.is_dir(),
        "PSA fixtures not found at {} (set {FIXTURES_ENV} to the restricted-v1.36 directory \
         holding pass/ and fail/)",
        dir.display()
    );
    dir
}

/// The `*.yaml` files of `fixtures/<kind>`, sorted, as (file stem, pod).
fn pods(kind: &str) -> Vec<(String, Value)> {
    let dir = fixtures_dir().join(kind);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())))
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no *.yaml fixtures in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let pod: Value = kube_harden::yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("odd file name {}", path.display()))
                .to_owned();
            (stem, pod)
        })
        .collect()
}

fn check_pod(pod: &Value) -> Vec<Violation> {
    let spec = pod
        .get("spec")
        .unwrap_or_else(|| panic!("fixture without a spec: {pod}"));
    check_restricted(pod.get("metadata"), spec)
}

/// The check a `fail/` file is about: its name without the trailing digits, e.g.
/// `capabilities_restricted3` -> `capabilities_restricted`, compared case-insensitively;
/// `procmount_restricted` is PSA's restricted variant of `procMount`.
fn expected_check(stem: &str) -> Option<Check> {
    let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let prefix = match prefix.to_ascii_lowercase().as_str() {
        "procmount_restricted" => "procmount".to_owned(),
        other => other.to_owned(),
    };
    Check::ALL
        .iter()
        .copied()
        .find(|check| check.as_str().eq_ignore_ascii_case(&prefix))
}

fn render(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("\n    {v}")).collect()
}

#[test]
fn pass_fixtures_have_no_violations() {
    let pods = pods("pass");
    let failures: Vec<String> = pods
        .iter()
        .filter_map(|(stem, pod)| {
            let violations = check_pod(pod);
            (!violations.is_empty()).then(|| format!("pass/{stem}.yaml:{}", render(&violations)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} pass/ fixtures have violations:\n{}",
        failures.len(),
        pods.len(),
        failures.join("\n")
    );
}

#[test]
fn fail_fixtures_fail_the_check_they_are_named_for() {
    let pods = pods("fail");
    let failures: Vec<String> = pods
        .iter()
        .filter_map(|(stem, pod)| {
            let Some(expected) = expected_check(stem) else {
                return Some(format!("fail/{stem}.yaml: no check matches this file name"));
            };
            let violations = check_pod(pod);
            if violations.is_empty() {
                Some(format!(
                    "fail/{stem}.yaml: no violations, expected {expected}"
                ))
            } else if !violations.iter().any(|v| v.check == expected) {
                Some(format!(
                    "fail/{stem}.yaml: expected {expected}, got:{}",
                    render(&violations)
                ))
            } else {
                None
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fail/ fixtures disagree:\n{}",
        failures.len(),
        pods.len(),
        failures.join("\n")
    );
}

#[test]
fn fail_fixtures_cover_every_check() {
    let named: BTreeSet<Check> = pods("fail")
        .iter()
        .filter_map(|(stem, _)| expected_check(stem))
        .collect();
    let missing: Vec<&str> = Check::ALL
        .iter()
        .filter(|check| !named.contains(check))
        .map(|check| check.as_str())
        .collect();
    assert!(missing.is_empty(), "no fail/ fixture for {missing:?}");
}

#[test]
fn file_names_map_to_checks() {
    let cases = [
        (
            "capabilities_restricted3",
            Some(Check::CapabilitiesRestricted),
        ),
        (
            "hostprobesandhostlifecycle2",
            Some(Check::HostProbesAndHostLifecycle),
        ),
        (
            "seccompprofile_baseline1",
            Some(Check::SeccompProfileBaseline),
        ),
        ("procmount_restricted0", Some(Check::ProcMount)),
        ("procmount1", Some(Check::ProcMount)),
        ("windowshostprocess0", Some(Check::WindowsHostProcess)),
        ("restrictedvolumes19", Some(Check::RestrictedVolumes)),
        ("nosuchcheck0", None),
    ];
    for (stem, want) in cases {
        assert_eq!(expected_check(stem), want, "{stem}");
    }
}
