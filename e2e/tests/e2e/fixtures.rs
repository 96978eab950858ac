//! Every Pod Security Admission `restricted` v1.36 fixture (from the Go module
//! `k8s.io/pod-security-admission` v0.36.x, fetched by scripts/psa-fixtures.sh) goes through a
//! real `restricted` namespace with kube-harden in the chain. pass/ pods are admitted; a fail/ pod
//! is admitted unless its violation is a value its author wrote (kube-harden never overrides one).
//! For each fixture, kube-harden's own Rust `check_restricted` on the locally hardened pod must
//! agree with the API server's decision.

use std::collections::BTreeSet;

use kube_harden::admission::Mode;
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden::psa::check_restricted;
use kube_harden_e2e::ledger::apply;
use kube_harden_e2e::{Harness, MODE_LABEL, PSA_ENFORCE_LABEL, Result, psa_fixtures, subset};
use serde_json::Value;

/// fail/ fixtures whose violation was a missing field: admitted once hardened. The other fail/
/// fixtures are refused by Pod Security Admission (or, for two, by API validation). Recorded
/// in docs/e2e.md and docs/rules.md (tests/it/psa_fixtures.rs holds the same list offline).
const FAIL_ADMITTED: &[&str] = &[
    "allowprivilegeescalation2",
    "allowprivilegeescalation3",
    "capabilities_restricted0",
    "capabilities_restricted1",
    "capabilities_restricted2",
    "runasnonroot0",
    "seccompprofile_restricted0",
    "seccompprofile_restricted2",
    "seccompprofile_restricted3",
];

/// fail/ fixtures a real API server refuses before Pod Security Admission sees them:
/// `procMount: Unmasked` needs `hostUsers: false` (spec validation). The PSA library's tests
/// check pods without API validation; a cluster cannot hold these pods at all.
const FAIL_INVALID: &[&str] = &["procmount0", "procmount1"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Admitted,
    RejectedByPsa(String),
    Invalid(String),
}

pub async fn psa_fixtures_agree_with_the_api_server(h: &Harness) -> Result<()> {
    let ns = h
        .namespace(
            "fixtures",
            &[(PSA_ENFORCE_LABEL, "restricted"), (MODE_LABEL, "enforce")],
        )
        .await?;
    let mut agree = 0;
    let mut disagree = Vec::new();
    let mut not_comparable = Vec::new();
    let mut fail_admitted = BTreeSet::new();
    let mut fail_invalid = BTreeSet::new();
    let mut fail_rejected = 0;
    let mut pass_count = 0;
    let mut fail_count = 0;
    for dir in ["pass", "fail"] {
        let fixtures = psa_fixtures(dir)?;
        assert!(fixtures.len() >= 20, "{} {dir}/ fixtures", fixtures.len());
        for (name, mut pod) in fixtures {
            // Fixture names have underscores and repeat across pass/ and fail/.
            let pod_name = format!("{dir}-{name}").replace('_', "-");
            pod["metadata"]["name"] = Value::String(pod_name.clone());

            let hardened = h.expect_admission(Mode::Enforce, "CREATE", &ns, &pod)?;
            let local = apply(&pod, &hardened)?;
            let violations = check_restricted(local.get("metadata"), &local["spec"]);
            let rust_admits = violations.is_empty();

            let decision = match h.create(&ns, &pod).await {
                Ok(stored) => {
                    // What was stored is what the rules produce locally, and still restricted.
                    subset(&local["spec"], &stored["spec"])
                        .map_err(|e| format!("{dir}/{name}: stored spec: {e}"))?;
                    let annotation = &stored["metadata"]["annotations"][HARDENED_ANNOTATION];
                    assert_eq!(
                        annotation, &local["metadata"]["annotations"][HARDENED_ANNOTATION],
                        "{dir}/{name}"
                    );
                    let stored_violations =
                        check_restricted(stored.get("metadata"), &stored["spec"]);
                    assert!(
                        stored_violations.is_empty(),
                        "{dir}/{name}: stored pod fails restricted: {stored_violations:?}"
                    );
                    Decision::Admitted
                }
                Err(kube::Error::Api(s))
                    if s.code == 403 && s.message.contains("violates PodSecurity") =>
                {
                    Decision::RejectedByPsa(s.message.clone())
                }
                Err(kube::Error::Api(s)) if s.code == 422 => Decision::Invalid(s.message.clone()),
                Err(e) => return Err(format!("{dir}/{name}: unexpected error: {e}").into()),
            };
            match (&decision, rust_admits) {
                (Decision::Admitted, true) | (Decision::RejectedByPsa(_), false) => agree += 1,
                (Decision::Invalid(message), _) => {
                    not_comparable.push(format!("{dir}/{name}: {message}"))
                }
                (_, _) => disagree.push(format!(
                    "{dir}/{name}: API server {decision:?}, check_restricted {violations:?}"
                )),
            }
            if dir == "pass" {
                pass_count += 1;
                assert_eq!(decision, Decision::Admitted, "pass/{name} must be admitted");
            } else {
                fail_count += 1;
                match decision {
                    Decision::Admitted => {
                        fail_admitted.insert(name);
                    }
                    Decision::Invalid(_) => {
                        fail_invalid.insert(name);
                    }
                    Decision::RejectedByPsa(_) => fail_rejected += 1,
                }
            }
        }
    }
    println!("PSA fixtures in a restricted namespace with kube-harden enforcing:");
    println!("  pass/: {pass_count} of {pass_count} admitted");
    println!(
        "  fail/: {} admitted after hardening, {fail_rejected} rejected by Pod Security Admission \
         (explicit values), {} rejected by API validation; {fail_count} in all",
        fail_admitted.len(),
        fail_invalid.len()
    );
    println!(
        "  admitted fail/: {}",
        fail_admitted.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    println!(
        "  check_restricted vs the API server: {agree} of {} agree, {} disagree; {} not comparable:",
        agree + disagree.len(),
        disagree.len(),
        not_comparable.len()
    );
    for line in &not_comparable {
        println!("    {line}");
    }
    for line in &disagree {
        println!("  DISAGREE {line}");
    }
    assert!(disagree.is_empty(), "{} disagreements", disagree.len());
    let expected: BTreeSet<String> = FAIL_ADMITTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        fail_admitted, expected,
        "fail/ fixtures admitted after hardening"
    );
    let expected: BTreeSet<String> = FAIL_INVALID.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        fail_invalid, expected,
        "fail/ fixtures the API server cannot hold"
    );
    assert_eq!(agree, pass_count + fail_count - FAIL_INVALID.len());
    Ok(())
}
