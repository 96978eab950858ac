//! Two replicas started together on an empty namespace, five rounds: one Secret is created,
//! both serve its certificate, every webhook's caBundle is its `ca.crt`, and pods are hardened
//! through the API server.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube_harden::certs::Bundle;
use kube_harden_e2e::{Result, process};

use super::clients::{ders, openssl_verify, review_new_connection, served_certificate};
use super::cluster::{Cluster, NAMESPACE, SECRET, serial};
use super::replica::{Replica, cert_metric, wait_ready};

#[test]
fn two_replicas_race_for_one_secret_and_serve_its_certificate() -> Result<()> {
    let _serial = serial();
    let cluster = Cluster::start("race")?;
    cluster.runtime.block_on(race(&cluster))
}

async fn race(c: &Cluster) -> Result<()> {
    const ROUNDS: usize = 5;
    let port_a = process::free_port()?;
    c.create_configuration(port_a).await?;
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), NAMESPACE);
    let mut conflicts = 0.0;
    let mut last_ca = String::new();
    let mut replicas = Vec::new();
    for round in 1..=ROUNDS {
        // An empty namespace: no Secret yet.
        drop(std::mem::take(&mut replicas));
        if c.secret().await?.is_some() {
            secrets.delete(SECRET, &Default::default()).await?;
        }
        let port_b = process::free_port()?;
        // Both at the same moment.
        replicas = vec![
            Replica::spawn(c, &format!("round{round}-a"), port_a, &[])?,
            Replica::spawn(c, &format!("round{round}-b"), port_b, &[])?,
        ];
        let took = wait_ready(&mut replicas, Duration::from_secs(30)).await?;

        let all = secrets.list(&ListParams::default()).await?.items;
        assert_eq!(all.len(), 1, "exactly one Secret in {NAMESPACE}");
        let secret = &all[0];
        assert_eq!(secret.metadata.name.as_deref(), Some(SECRET));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let keys: Vec<&String> = secret
            .data
            .as_ref()
            .map(|d| d.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["ca.crt", "ca.key", "tls.crt", "tls.key"]);
        let bundle = Bundle::from_secret(secret);
        let stored = bundle.serving_certificate().ok_or("no tls.crt")?;

        let creates = cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", "create"), ("result", "success")],
        )?;
        let lost = cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", "create"), ("result", "conflict")],
        )?;
        assert_eq!(creates, 1.0, "one replica created the Secret");
        conflicts += lost;

        // Both serve the Secret's certificate ...
        let served_a = served_certificate(port_a)?;
        let served_b = served_certificate(port_b)?;
        assert_eq!(
            served_a.der, stored.der,
            "replica a serves the Secret's certificate"
        );
        assert_eq!(
            served_b.der, stored.der,
            "replica b serves the Secret's certificate"
        );
        // ... which chains to the caBundle now in every webhook of the configuration.
        let ca_bundle = c.ca_bundle().await?;
        assert_eq!(ca_bundle, bundle.ca_pem, "caBundle = ca.crt");
        assert_ne!(ca_bundle, last_ca, "a new CA in each round");
        openssl_verify(&c.dir, &ca_bundle, &served_a)?;
        let cas = ders(&ca_bundle)?;
        review_new_connection(port_a, &cas, "race-a").await?;
        review_new_connection(port_b, &cas, "race-b").await?;
        println!(
            "round {round}: ready in {:?} / {:?}; 1 Secret, created by one replica ({lost} lost \
             the create race); both serve serial {}; caBundle = ca.crt, openssl verify OK",
            took[0], took[1], stored.serial
        );
        last_ca = ca_bundle;
    }

    // End to end: the API server calls replica a with the caBundle kube-harden wrote.
    let ns = c.enforce_namespace("e2e-certs-race").await?;
    let before = cert_metric(
        &replicas[..1],
        "kube_harden_admission_requests_total",
        &[("mode", "enforce")],
    )?;
    for i in 0..3 {
        assert!(
            c.create_legacy_pod(&ns, &format!("legacy-{i}")).await?,
            "pod {i} stored hardened"
        );
    }
    let after = cert_metric(
        &replicas[..1],
        "kube_harden_admission_requests_total",
        &[("mode", "enforce")],
    )?;
    assert_eq!(
        after - before,
        3.0,
        "replica a answered the API server's calls"
    );
    println!(
        "race: {ROUNDS} rounds x 2 replicas, 1 Secret each, {conflicts} create conflicts (the \
         loser read the winner's); 3 pods created through the API server (failurePolicy Fail) \
         stored hardened"
    );
    Ok(())
}
