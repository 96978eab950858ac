//! Pod Security Admission's own `restricted` v1.36 fixtures (from the Go module
//! `k8s.io/pod-security-admission` v0.36.x, see tests/it/psa_source.rs) run through `harden`,
//! then through our Rust `restricted` checks: every pass/ pod stays valid, and each fail/ pod
//! either now satisfies restricted (its violation was a missing field) or still fails because
//! the author wrote an insecure value explicitly (kept, by design). The expected lists are
//! recorded in docs/rules.md.

use std::collections::BTreeMap;
use std::path::Path;

use kube_harden::harden::{Policy, harden_object};
use kube_harden::psa::check_restricted;
use serde_json::Value;

use super::psa_source;

/// fail/ fixtures that still fail `restricted` after hardening, and the checks they fail. Each is
/// an explicit value kube-harden never overrides (or something no default can fix, like a
/// hostPath volume). Every other fail/ fixture passes after hardening.
const STILL_FAILING: &[(&str, &str)] = &[
    ("allowprivilegeescalation0", "allowPrivilegeEscalation"),
    ("allowprivilegeescalation1", "allowPrivilegeEscalation"),
    ("apparmorprofile0", "appArmorProfile"),
    ("apparmorprofile1", "appArmorProfile"),
    (
        "capabilities_baseline0",
        "capabilities_baseline,capabilities_restricted",
    ),
    (
        "capabilities_baseline1",
        "capabilities_baseline,capabilities_restricted",
    ),
    (
        "capabilities_baseline2",
        "capabilities_baseline,capabilities_restricted",
    ),
    (
        "capabilities_baseline3",
        "capabilities_baseline,capabilities_restricted",
    ),
    ("capabilities_restricted3", "capabilities_restricted"),
    ("hostnamespaces0", "hostNamespaces"),
    ("hostnamespaces1", "hostNamespaces"),
    ("hostnamespaces2", "hostNamespaces"),
    ("hostpathvolumes0", "hostPathVolumes,restrictedVolumes"),
    ("hostpathvolumes1", "hostPathVolumes,restrictedVolumes"),
    ("hostports0", "hostPorts"),
    ("hostports1", "hostPorts"),
    ("hostports2", "hostPorts"),
    ("hostprobesandhostlifecycle0", "hostProbesAndHostLifecycle"),
    ("hostprobesandhostlifecycle1", "hostProbesAndHostLifecycle"),
    ("hostprobesandhostlifecycle2", "hostProbesAndHostLifecycle"),
    ("hostprobesandhostlifecycle3", "hostProbesAndHostLifecycle"),
    ("hostprobesandhostlifecycle4", "hostProbesAndHostLifecycle"),
    ("privileged0", "allowPrivilegeEscalation,privileged"),
    ("privileged1", "allowPrivilegeEscalation,privileged"),
    ("procmount0", "procMount"),
    ("procmount1", "procMount"),
    ("procmount_restricted0", "procMount"),
    ("procmount_restricted1", "procMount"),
    ("restrictedvolumes0", "restrictedVolumes"),
    ("restrictedvolumes1", "restrictedVolumes"),
    ("restrictedvolumes10", "restrictedVolumes"),
    ("restrictedvolumes11", "restrictedVolumes"),
    ("restrictedvolumes12", "restrictedVolumes"),
    ("restrictedvolumes13", "restrictedVolumes"),
    ("restrictedvolumes14", "restrictedVolumes"),
    ("restrictedvolumes15", "restrictedVolumes"),
    ("restrictedvolumes16", "restrictedVolumes"),
    ("restrictedvolumes17", "restrictedVolumes"),
    ("restrictedvolumes18", "restrictedVolumes"),
    ("restrictedvolumes19", "hostPathVolumes,restrictedVolumes"),
    ("restrictedvolumes2", "restrictedVolumes"),
    ("restrictedvolumes3", "restrictedVolumes"),
    ("restrictedvolumes4", "restrictedVolumes"),
    ("restrictedvolumes5", "restrictedVolumes"),
    ("restrictedvolumes6", "restrictedVolumes"),
    ("restrictedvolumes7", "restrictedVolumes"),
    ("restrictedvolumes8", "restrictedVolumes"),
    ("restrictedvolumes9", "restrictedVolumes"),
    ("runasnonroot1", "runAsNonRoot"),
    ("runasnonroot2", "runAsNonRoot"),
    ("runasnonroot3", "runAsNonRoot"),
    ("runasuser0", "runAsUser"),
    ("runasuser1", "runAsUser"),
    ("runasuser2", "runAsUser"),
    (
        "seccompprofile_baseline0",
        "seccompProfile_baseline,seccompProfile_restricted",
    ),
    (
        "seccompprofile_baseline1",
        "seccompProfile_baseline,seccompProfile_restricted",
    ),
    (
        "seccompprofile_baseline2",
        "seccompProfile_baseline,seccompProfile_restricted",
    ),
    (
        "seccompprofile_restricted1",
        "seccompProfile_baseline,seccompProfile_restricted",
    ),
    (
        "seccompprofile_restricted4",
        "seccompProfile_baseline,seccompProfile_restricted",
    ),
    ("selinuxoptions0", "seLinuxOptions"),
    ("selinuxoptions1", "seLinuxOptions"),
    ("selinuxoptions2", "seLinuxOptions"),
    ("selinuxoptions3", "seLinuxOptions"),
    ("selinuxoptions4", "seLinuxOptions"),
    ("sysctls0", "sysctls"),
    ("windowshostprocess0", "hostNamespaces,windowsHostProcess"),
    ("windowshostprocess1", "hostNamespaces,windowsHostProcess"),
];

fn load(kind: &str) -> Vec<(String, Value)> {
    psa_source::fixtures(Path::new(env!("CARGO_MANIFEST_DIR")), kind)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn harden_and_check(pod: &Value) -> Vec<String> {
    let hardened = harden_object(pod, &Policy::default()).expect("fixture hardens");
    let mut out = pod.clone();
    hardened.patch.apply(&mut out).expect("patch applies");
    let mut checks: Vec<String> = check_restricted(out.get("metadata"), &out["spec"])
        .into_iter()
        .map(|v| v.check.as_str().to_owned())
        .collect();
    checks.sort();
    checks.dedup();
    checks
}

#[test]
fn pass_fixtures_stay_valid_after_hardening() {
    let pass = load("pass");
    assert!(pass.len() >= 20, "{} pass fixtures", pass.len());
    for (name, pod) in &pass {
        assert_eq!(harden_and_check(pod), Vec::<String>::new(), "pass/{name}");
    }
    println!(
        "pass/: {} of {} still pass restricted after hardening",
        pass.len(),
        pass.len()
    );
}

#[test]
fn fail_fixtures_pass_unless_the_violation_is_explicit() {
    let fail = load("fail");
    assert!(fail.len() >= 70, "{} fail fixtures", fail.len());
    let mut still: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fixed = Vec::new();
    for (name, pod) in &fail {
        let checks = harden_and_check(pod);
        if checks.is_empty() {
            fixed.push(name.clone());
        } else {
            still.insert(name.clone(), checks);
        }
    }
    println!(
        "fail/: {} now pass restricted, {} still fail:",
        fixed.len(),
        still.len()
    );
    for (name, checks) in &still {
        println!("  {name}: {}", checks.join(", "));
    }
    println!("now passing: {}", fixed.join(", "));
    let expected: BTreeMap<String, Vec<String>> = STILL_FAILING
        .iter()
        .map(|(name, checks)| {
            (
                name.to_string(),
                checks.split(',').map(str::to_owned).collect(),
            )
        })
        .collect();
    assert_eq!(still, expected);
}
