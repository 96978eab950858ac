//! The manager against the fake API server (conflicts, races, a deleted Secret, a missing
//! configuration), and the files it writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use serde_json::json;

use super::*;
use crate::certs::fake_api as fake;
use crate::certs::testing::{fresh, names};
use crate::certs::{Action, Lifetimes};

#[test]
fn the_files_the_server_loads_are_a_matching_pair() {
    // The server refuses a pair that is not valid at the current time: minted now.
    let now = crate::certs::unix_now();
    let bundle = fresh(now);
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls/tls.crt");
    let key = dir.path().join("tls/tls.key");
    write_atomically(&key, bundle.key_pem.as_bytes(), 0o600).unwrap();
    write_atomically(&cert, bundle.cert_pem.as_bytes(), 0o644).unwrap();
    let store = crate::server::tls::CertStore::load(&cert, &key).unwrap();
    assert_eq!(store.not_after(), Some(now + 1000));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // No temporary files left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tls")).unwrap().count(),
        2
    );
}

struct Fixture {
    state: fake::Shared,
    manager: CertManager,
    metrics: Metrics,
    dir: tempfile::TempDir,
}

fn fixture(secret: Option<&Bundle>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = fake::Shared::default();
    {
        let mut s = state.lock().unwrap();
        s.rv = 1;
        s.secret = secret.map(|b| {
            let mut v = secret_json(b);
            v["metadata"]["resourceVersion"] = "1".into();
            v
        });
        let webhooks = ["enforce.kube-harden.io", "audit.kube-harden.io"].map(|name| {
            json!({
                "name": name,
                "clientConfig": {"url": "https://127.0.0.1:8443/mutate"},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            })
        });
        s.config = Some(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "kube-harden", "resourceVersion": "1"},
            "webhooks": webhooks,
        }));
    }
    let config = CertConfig {
        secret: "kube-harden-tls".into(),
        namespace: "kube-harden".into(),
        webhook_config: "kube-harden".into(),
        names: names(),
        cert_file: dir.path().join("tls/tls.crt"),
        key_file: dir.path().join("tls/tls.key"),
        kubeconfig: None,
        lifetimes: Lifetimes::default(),
        check_interval: Duration::from_secs(60),
    };
    let metrics = Metrics::new();
    let manager = CertManager::new(fake::client(Arc::clone(&state)), config, metrics.clone());
    Fixture {
        state,
        manager,
        metrics,
        dir,
    }
}

fn secret_json(bundle: &Bundle) -> serde_json::Value {
    let mut data = BTreeMap::new();
    bundle.store(&mut data);
    serde_json::to_value(Secret {
        metadata: ObjectMeta {
            name: Some("kube-harden-tls".into()),
            namespace: Some("kube-harden".into()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Secret::default()
    })
    .unwrap()
}

impl Fixture {
    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }

    fn metric(&self, series: &str) -> f64 {
        let text = String::from_utf8(self.metrics.encode()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn stored_secret(&self) -> Bundle {
        let secret = self.state.lock().unwrap().secret.clone().unwrap();
        Bundle::from_secret(&serde_json::from_value(secret).unwrap())
    }

    fn ca_bundles(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.config.as_ref().unwrap()["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let b64 = w["clientConfig"]["caBundle"].as_str().unwrap_or_default();
                String::from_utf8(BASE64_STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect()
    }

    fn files(&self) -> (String, String) {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap();
        (read("tls/tls.crt"), read("tls/tls.key"))
    }
}

fn now_bundle(now: i64) -> Bundle {
    apply(
        None,
        &[Action::NewCa("test".into())],
        now,
        &Lifetimes::default(),
        &names(),
    )
    .unwrap()
}

#[tokio::test]
async fn first_start_creates_the_secret_writes_the_files_and_sets_every_ca_bundle() {
    let mut f = fixture(None);
    let bundle = f.manager.check().await.unwrap();
    assert_eq!(
        f.requests(),
        [
            "GET config",
            "GET secret",
            "POST secret",
            "GET config",
            "PATCH config"
        ]
    );
    assert_eq!(f.stored_secret(), bundle);
    assert_eq!(f.files(), (bundle.cert_pem.clone(), bundle.key_pem.clone()));
    assert_eq!(
        f.ca_bundles(),
        [bundle.ca_pem.clone(), bundle.ca_pem.clone()]
    );
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="success"}"#),
        1.0
    );
    assert_eq!(
        f.metric(r#"kube_harden_ca_bundle_updates_total{result="success"}"#),
        1.0
    );
    // The next check finds nothing to do: reads only.
    assert_eq!(f.manager.check().await.unwrap(), bundle);
    assert_eq!(f.requests(), ["GET config", "GET secret", "GET config"]);
}

#[tokio::test]
async fn losing_the_create_race_uses_the_winners_secret() {
    let winner = now_bundle(unix_now());
    let mut f = fixture(None);
    f.state.lock().unwrap().interfere = Some((http::Method::POST, Some(secret_json(&winner))));
    let bundle = f.manager.check().await.unwrap();
    assert_eq!(bundle, winner);
    assert_eq!(
        f.requests(),
        [
            "GET config",
            "GET secret",
            "POST secret: 409",
            "GET secret",
            "GET config",
            "PATCH config"
        ]
    );
    assert_eq!(f.files(), (winner.cert_pem.clone(), winner.key_pem.clone()));
    assert_eq!(
        f.ca_bundles(),
        [winner.ca_pem.clone(), winner.ca_pem.clone()]
    );
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="conflict"}"#),
        1.0
    );
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="success"}"#),
        0.0
    );
}

#[tokio::test]
async fn losing_a_renewal_race_uses_the_winners_certificate() {
    // A serving certificate with 10 days left: due (the default renews at 120 days).
    let now = unix_now();
    let old = now_bundle(now - 355 * 86400);
    let winner = apply(
        Some(&old),
        &[Action::RenewServing("test".into())],
        now,
        &Lifetimes::default(),
        &names(),
    )
    .unwrap();
    let mut f = fixture(Some(&old));
    f.state.lock().unwrap().interfere = Some((http::Method::PUT, Some(secret_json(&winner))));
    let bundle = f.manager.check().await.unwrap();
    assert_eq!(bundle, winner);
    let requests = f.requests();
    assert_eq!(
        &requests[..4],
        ["GET config", "GET secret", "PUT secret: 409", "GET secret"],
        "{requests:?}"
    );
    assert!(
        !requests[4..].iter().any(|r| r.contains("secret")),
        "{requests:?}"
    );
    assert_eq!(f.files().0, winner.cert_pem);
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="serving",result="conflict"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_due_renewal_updates_the_secret_with_its_resource_version() {
    let now = unix_now();
    let old = now_bundle(now - 355 * 86400);
    let mut f = fixture(Some(&old));
    let bundle = f.manager.check().await.unwrap();
    assert_eq!(bundle.ca_pem, old.ca_pem, "same CA");
    assert_ne!(bundle.cert_pem, old.cert_pem);
    assert_eq!(f.stored_secret(), bundle);
    assert!(f.requests().contains(&"PUT secret".to_owned()));
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="serving",result="success"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_ca_bundle_patch_that_conflicts_is_read_again_and_retried() {
    let bundle = now_bundle(unix_now());
    let mut f = fixture(Some(&bundle));
    f.state.lock().unwrap().interfere = Some((http::Method::PATCH, None));
    f.manager.check().await.unwrap();
    assert_eq!(
        f.requests(),
        [
            "GET config",
            "GET secret",
            "GET config",
            "PATCH config: 409",
            "GET config",
            "PATCH config"
        ]
    );
    assert_eq!(
        f.ca_bundles(),
        [bundle.ca_pem.clone(), bundle.ca_pem.clone()]
    );
    assert_eq!(
        f.metric(r#"kube_harden_ca_bundle_updates_total{result="conflict"}"#),
        1.0
    );
    assert_eq!(
        f.metric(r#"kube_harden_ca_bundle_updates_total{result="success"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_deleted_secret_is_restored_with_the_same_ca_and_certificate() {
    let mut f = fixture(None);
    let first = f.manager.check().await.unwrap();
    f.state.lock().unwrap().secret = None;
    f.requests();
    let second = f.manager.check().await.unwrap();
    assert_eq!(second, first);
    assert_eq!(
        f.requests(),
        ["GET config", "GET secret", "POST secret", "GET config"]
    );
    assert_eq!(f.stored_secret(), first);
    assert_eq!(
        f.metric(r#"kube_harden_cert_renewals_total{kind="restore",result="success"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_missing_webhook_configuration_is_not_an_error() {
    let mut f = fixture(None);
    f.state.lock().unwrap().config = None;
    let bundle = f.manager.check().await.unwrap();
    assert_eq!(f.files().0, bundle.cert_pem);
    assert_eq!(
        f.requests(),
        ["GET config", "GET secret", "POST secret", "GET config"]
    );
}
