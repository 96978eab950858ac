//! With the webhook stopped and `failurePolicy: Ignore`, pods are still admitted
//! (unhardened), and the API server's own webhook metrics count the failure. Pod Security
//! Admission still has the last word where it is enforced. The webhook is started again at the
//! end so the cluster is left as it was.

use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::metrics::Series;
use kube_harden_e2e::{Harness, MODE_LABEL, PSA_ENFORCE_LABEL, Result, psa_refusal};

use super::admission::legacy_pod;

const FAIL_OPEN: &str = "apiserver_admission_webhook_fail_open_count";

pub async fn webhook_down_admits_unhardened_and_the_apiserver_counts_it(h: &Harness) -> Result<()> {
    let ns = h
        .namespace("webhook-down", &[(MODE_LABEL, "enforce")])
        .await?;
    let restricted = h
        .namespace(
            "webhook-down-restricted",
            &[(MODE_LABEL, "enforce"), (PSA_ENFORCE_LABEL, "restricted")],
        )
        .await?;
    let series = Series::new(
        FAIL_OPEN,
        &[("name", "enforce.kube-harden.io"), ("type", "admit")],
    );
    let before = h.apiserver_metrics().await?.get(&series);

    h.stop_webhook();
    let result = async {
        let stored = h.create(&ns, &legacy_pod("while-down")).await?;
        assert!(
            stored["metadata"]["annotations"]
                .get(HARDENED_ANNOTATION)
                .is_none(),
            "admitted unhardened"
        );
        assert!(
            stored["spec"]["containers"][0]
                .get("securityContext")
                .is_none()
        );
        println!("webhook down: legacy pod admitted unhardened (failurePolicy: Ignore)");

        // Fail-open hands PSA the unhardened pod, which restricted refuses.
        psa_refusal(
            h.create(&restricted, &legacy_pod("while-down")).await,
            "the unhardened pod in a restricted namespace",
        )?;
        println!("webhook down, restricted namespace: refused by PSA");

        let after = h.apiserver_metrics().await?;
        let failures = after.get(&series) - before;
        println!("{series}: +{failures}");
        for line in after
            .family("apiserver_admission_webhook_request_total")
            .filter(|s| s.label("name") == "enforce.kube-harden.io" && s.label("code") != "200")
            .to_string()
            .lines()
        {
            println!("{line}");
        }
        assert_eq!(failures, 2.0, "both calls failed open");
        Ok::<_, kube_harden_e2e::Error>(())
    }
    .await;
    // Back up whatever happened above.
    h.restart_webhook().await?;
    result?;
    let stored = h.create(&ns, &legacy_pod("after-restart")).await?;
    assert!(
        stored["metadata"]["annotations"]
            .get(HARDENED_ANNOTATION)
            .is_some()
    );
    println!("webhook restarted: hardening again");
    Ok(())
}
