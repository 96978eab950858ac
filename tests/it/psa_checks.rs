//! `kube_harden::psa` against Pod Security Admission's own `restricted` v1.36 fixtures: every
//! `pass/` pod has no violation, and every `fail/` pod fails the check its file name names.
//!
//! The fixtures come from the Go module `k8s.io/pod-security-admission` v0.36.x (its
//! test/testdata), fetched and cached by scripts/psa-fixtures.sh (tests/it/psa_source.rs). Missing
//! fixtures fail the tests: they never skip.

use std::collections::BTreeSet;
use std::path::Path;

use kube_harden::psa::{Check, Violation, check_restricted};
use serde_json::Value;

use super::psa_source;

/// The `*.yaml` pods of `pass/` or `fail/`, sorted, as (file stem, pod).
fn pods(kind: &str) -> Vec<(String, Value)> {
    psa_source::fixtures(Path::new(env!("CARGO_MANIFEST_DIR")), kind)
        .unwrap_or_else(|e| panic!("{e}"))
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
