//! The webhook's /metrics reflects exactly what the tests did. Every request the
//! earlier tests sent through the webhook was recorded in the ledger with the decisions of the
//! same rules run locally; the counters must match it series by series, and the number of
//! reviews must equal the number of calls the API server counted.

use kube_harden_e2e::ledger::{CHANGES, REQUESTS};

use super::conditions::CANDIDATE_WEBHOOK;
use kube_harden_e2e::metrics::Samples;
use kube_harden_e2e::{Harness, Result};

pub async fn webhook_metrics_match_what_the_tests_did(h: &Harness) -> Result<()> {
    let baseline = h.baseline();
    let now = h.webhook_metrics()?;
    let apiserver = h.apiserver_metrics().await?;
    let delta = now.since(&baseline.webhook);
    let counted = delta.filter(|s| s.name == REQUESTS || s.name == CHANGES);
    let expected = h.ledger().expected().clone();

    println!("kube_harden_admission_requests_total since the webhook started (after its probe):");
    print!("{}", counted.family(REQUESTS));
    let changes = counted.family(CHANGES);
    println!(
        "kube_harden_changes_total: {} series, {} decisions (first 10 shown)",
        changes.0.len(),
        changes.sum()
    );
    for (series, value) in changes.0.iter().take(10) {
        println!("{series} {value}");
    }

    if counted != expected {
        let mut report = String::new();
        let series: std::collections::BTreeSet<_> =
            counted.0.keys().chain(expected.0.keys()).collect();
        for s in series {
            let (c, e) = (counted.get(s), expected.get(s));
            if c != e {
                report.push_str(&format!("{s}: counted {c}, expected {e}\n"));
            }
        }
        return Err(
            format!("the webhook's counters differ from what the tests did:\n{report}").into(),
        );
    }
    assert!(expected.sum() > 0.0, "the earlier tests sent requests");

    // Nothing went wrong on the way.
    let errors = delta.family("kube_harden_errors_total");
    assert_eq!(errors, Samples::default(), "errors:\n{errors}");

    // The API server's own count of calls per webhook equals the webhook's count of reviews.
    let api_delta = apiserver.since(&baseline.apiserver);
    // The conditions test's copy of the enforce webhook calls /mutate too.
    for (webhook, also, mode) in [
        ("enforce.kube-harden.io", CANDIDATE_WEBHOOK, "enforce"),
        ("audit.kube-harden.io", "", "audit"),
    ] {
        let calls = api_delta
            .family("apiserver_admission_webhook_request_total")
            .filter(|s| s.label("name") == webhook || s.label("name") == also);
        let reviews = counted
            .family(REQUESTS)
            .filter(|s| s.label("mode") == mode)
            .sum();
        println!(
            "{webhook}: API server calls {}, webhook reviews {reviews}",
            calls.sum()
        );
        assert!(
            calls
                .0
                .keys()
                .all(|s| s.label("code") == "200" && s.label("rejected") == "false"),
            "{webhook}: every call answered 200 and allowed:\n{calls}"
        );
        assert_eq!(
            calls.sum(),
            reviews,
            "{webhook}: API server calls vs webhook reviews"
        );
    }
    println!(
        "{} reviews and {} decisions, exactly as the tests did",
        counted.family(REQUESTS).sum(),
        changes.sum()
    );
    Ok(())
}
