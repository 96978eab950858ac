//! Two replicas with lifetimes in seconds go through serving-certificate renewals and a whole
//! CA rotation while new TLS connections, kept-alive TLS connections and pod creations through
//! the API server run: not one may fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube_harden::certs::{Bundle, parse_certificates};
use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::{Result, process};
use serde_json::json;

use super::clients::{KeptAlive, ders, review_new_connection, served_certificate};
use super::cluster::{Cluster, lock, serial};
use super::replica::{Replica, cert_metric, wait_ready};

/// Lifetimes in seconds: serving certificates renewed every ~3 s, a CA rotation every 20 s
/// (added at 20 s, signing from 30 s, the old one pruned at 40 s).
const SHORT_LIFETIMES: &[&str] = &[
    "--cert-validity=12s",
    "--cert-renew-before=9s",
    "--ca-validity=40s",
    "--ca-renew-before=20s",
    "--cert-check-interval=1s",
    "--tls-reload-interval=1s",
];

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, what: &str, t0: Instant, result: Result<()>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.errors).push(format!("{:.1}s {what}: {e}", t0.elapsed().as_secs_f64()));
            }
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn renewal_while_requests_flow_fails_no_request() -> Result<()> {
    let _serial = serial();
    let cluster = Cluster::start("renewal")?;
    cluster.runtime.block_on(renewal(&cluster))
}

async fn renewal(c: &Cluster) -> Result<()> {
    let load_for = Duration::from_secs(
        std::env::var("E2E_CERTS_LOAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(48),
    );
    let port_a = process::free_port()?;
    let port_b = process::free_port()?;
    let ports = [port_a, port_b];
    c.create_configuration(port_a).await?;
    let mut replicas = vec![
        Replica::spawn(c, "a", port_a, SHORT_LIFETIMES)?,
        Replica::spawn(c, "b", port_b, SHORT_LIFETIMES)?,
    ];
    wait_ready(&mut replicas, Duration::from_secs(30)).await?;
    let ns = c.enforce_namespace("e2e-certs-renewal").await?;

    let initial = Bundle::from_secret(&c.secret().await?.ok_or("no Secret")?);
    let first_serial = initial.serving_certificate().ok_or("no tls.crt")?.serial;
    let ca_file = c.dir.join("initial-ca.pem");
    std::fs::write(&ca_file, &initial.ca_pem)?;
    let kept: Vec<KeptAlive> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            KeptAlive::open(port, &ca_file, &c.dir.join(format!("kept-alive-{i}.log")))
        })
        .collect::<Result<_>>()?;

    let t0 = Instant::now();
    let deadline = t0 + load_for;
    let trusted = Arc::new(Mutex::new(ders(&c.ca_bundle().await?)?));
    let (fresh, kept_tally, pods) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );

    // New TLS connections, trusting the caBundle as it is now (as the API server does).
    let fresh_task = {
        let (trusted, tally) = (Arc::clone(&trusted), Arc::clone(&fresh));
        tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let cas = lock(&trusted).clone();
                let port = ports[(n % 2) as usize];
                let result = review_new_connection(port, &cas, &format!("fresh-{n}")).await;
                tally.record(&format!("new connection to :{port}"), t0, result);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // Two connections opened before the first renewal, used throughout.
    let kept_task = {
        let tally = Arc::clone(&kept_tally);
        let mut kept = kept;
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let i = (n % 2) as usize;
                let result = kept[i].review(&format!("kept-{n}"));
                tally.record(&format!("kept-alive connection {i}"), t0, result);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    // Pods through the API server: its webhook client, its caBundle, failurePolicy Fail.
    let pods_task = {
        let (tally, client, ns) = (Arc::clone(&pods), c.client.clone(), ns.clone());
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("legacy-{n}")},
                    "spec": {"containers": [{"name": "app", "image": "example.com/legacy-app:1.0"}]}
                }))
                .unwrap_or_default();
                let result = match api.create(&PostParams::default(), &pod).await {
                    Ok(stored)
                        if stored
                            .metadata
                            .annotations
                            .as_ref()
                            .is_some_and(|a| a.contains_key(HARDENED_ANNOTATION)) =>
                    {
                        Ok(())
                    }
                    Ok(_) => Err("stored unhardened".into()),
                    Err(e) => Err(e.into()),
                };
                tally.record(&format!("pod legacy-{n}"), t0, result);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };

    // Observe: the caBundle (for the fresh connections), the Secret, what each replica serves.
    let mut ca_bundles: Vec<String> = Vec::new();
    let mut secret_serials = BTreeSet::new();
    let mut served: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut issuers = BTreeSet::new();
    let mut observe_errors = Vec::new();
    while Instant::now() < deadline {
        match c.ca_bundle().await {
            Ok(bundle) => {
                if ca_bundles.last() != Some(&bundle) {
                    println!(
                        "{:5.1}s caBundle: {} CA(s)",
                        t0.elapsed().as_secs_f64(),
                        parse_certificates(&bundle).map(|c| c.len()).unwrap_or(0)
                    );
                    *lock(&trusted) = ders(&bundle)?;
                    ca_bundles.push(bundle);
                }
            }
            Err(e) => observe_errors.push(format!("caBundle: {e}")),
        }
        if let Ok(Some(secret)) = c.secret().await
            && let Some(leaf) = Bundle::from_secret(&secret).serving_certificate()
        {
            secret_serials.insert(leaf.serial);
        }
        for port in ports {
            match tokio::task::spawn_blocking(move || served_certificate(port)).await? {
                Ok(cert) => {
                    issuers.insert(cert.issuer.clone());
                    served.entry(cert.serial).or_default().insert(port);
                }
                Err(e) => observe_errors.push(format!("served certificate on :{port}: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    fresh_task.await?;
    kept_task.await?;
    pods_task.await?;
    let elapsed = t0.elapsed();

    let metric = |kind: &str| {
        cert_metric(
            &replicas,
            "kube_harden_cert_renewals_total",
            &[("kind", kind), ("result", "success")],
        )
    };
    let (serving, ca_add, ca_promote, ca_prune) = (
        metric("serving")?,
        metric("ca_add")?,
        metric("ca_promote")?,
        metric("ca_prune")?,
    );
    let conflicts = cert_metric(
        &replicas,
        "kube_harden_cert_renewals_total",
        &[("result", "conflict")],
    )?;
    let write_failures = cert_metric(
        &replicas,
        "kube_harden_cert_renewals_total",
        &[("result", "failure")],
    )?;
    let check_failures = cert_metric(
        &replicas,
        "kube_harden_cert_checks_total",
        &[("result", "failure")],
    )?;
    let reloads = cert_metric(
        &replicas,
        "kube_harden_tls_reloads_total",
        &[("result", "success")],
    )?;
    let reload_failures = cert_metric(
        &replicas,
        "kube_harden_tls_reloads_total",
        &[("result", "failure")],
    )?;
    let server_errors = cert_metric(&replicas, "kube_harden_errors_total", &[])?;
    let (fresh_ok, fresh_failed) = fresh.counts();
    let (kept_ok, kept_failed) = kept_tally.counts();
    let (pods_ok, pods_failed) = pods.counts();

    println!(
        "renewal: {:.1}s of load against 2 replicas",
        elapsed.as_secs_f64()
    );
    println!("  new TLS connections:        {fresh_ok} ok, {fresh_failed} failed");
    println!("  2 kept-alive connections:   {kept_ok} ok, {kept_failed} failed");
    println!("  pods via the API server:    {pods_ok} hardened, {pods_failed} failed");
    println!(
        "  Secret writes: serving {serving}, ca_add {ca_add}, ca_promote {ca_promote}, ca_prune \
         {ca_prune}; conflicts {conflicts} (lost races, theirs used); failed writes \
         {write_failures}, failed checks {check_failures}"
    );
    println!(
        "  serving certificates: {} in the Secret (first {first_serial}), {} seen served over \
         TLS; {} issuing CAs seen served; {} caBundle states",
        secret_serials.len(),
        served.len(),
        issuers.len(),
        ca_bundles.len()
    );
    println!(
        "  file reloads {reloads}, failed reloads {reload_failures}; server errors {server_errors}"
    );
    let mut errors: Vec<String> = Vec::new();
    for tally in [&fresh, &kept_tally, &pods] {
        errors.extend(lock(&tally.errors).iter().cloned());
    }
    errors.extend(observe_errors);
    for e in errors.iter().take(20) {
        println!("  error: {e}");
    }
    if !errors.is_empty() {
        for r in &replicas {
            println!("--- log of {}\n{}", r.name, r.log());
        }
    }

    assert_eq!(
        fresh_failed + kept_failed + pods_failed,
        0,
        "no request failed"
    );
    assert!(fresh_ok >= 100, "new connections: {fresh_ok}");
    assert!(kept_ok >= 100, "kept-alive requests: {kept_ok}");
    assert!(pods_ok >= 50, "pods: {pods_ok}");
    assert!(errors.is_empty(), "{errors:?}");
    // Renewals happened, through the Secret, and were served.
    assert!(serving >= 5.0, "serving renewals: {serving}");
    assert!(secret_serials.len() >= 5, "{secret_serials:?}");
    assert!(served.len() >= 5, "{served:?}");
    assert!(
        served
            .keys()
            .all(|s| secret_serials.contains(s) || *s == first_serial),
        "every certificate served was the Secret's: {served:?} / {secret_serials:?}"
    );
    // Both replicas served the renewed certificates, not only the one that wrote them.
    assert!(
        served.values().filter(|p| p.len() == 2).count() >= 3,
        "{served:?}"
    );
    // A whole CA rotation: added, signing, old one removed; certificates of both CAs served.
    assert!(ca_add >= 1.0 && ca_promote >= 1.0 && ca_prune >= 1.0);
    assert!(issuers.len() >= 2, "{issuers:?}");
    assert!(
        ca_bundles.len() >= 3,
        "1 CA, 2 CAs, 1 CA: {}",
        ca_bundles.len()
    );
    assert_eq!(
        write_failures + check_failures + reload_failures + server_errors,
        0.0
    );
    Ok(())
}
