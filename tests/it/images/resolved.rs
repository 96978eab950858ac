//! The well-behaved registry: facts are read and cached (by tag and by digest, one fetch for
//! concurrent reviews, one HEAD for a stale tag), `harden --resolve-images` uses them and falls
//! back when the registry is down, and `serve` hardens to fit the image (and refuses a registry
//! budget not under the review timeout).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use kube_harden::metrics::RegistryMetrics;
use kube_harden::registry::Resolver;
use serde_json::{Value, json};

use super::super::support::*;
use super::{Behaviour, Image, Registry, ample, pod};

/// The well-behaved registry: the facts arrive, are cached, and a second lookup of the same
/// image (by tag and by digest) does not ask the registry again.
#[tokio::test]
async fn good_registry_facts_are_read_and_cached() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let resolver = Resolver::new(ample(&host), RegistryMetrics::throwaway()).unwrap();
    let image = format!("{host}/app:1");
    let started = Instant::now();
    let resolved = resolver.resolve(std::slice::from_ref(&image)).await;
    println!("cold fetch from a local registry: {:?}", started.elapsed());
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let facts = &resolved.lookup[&image];
    assert_eq!(facts.user.as_deref(), Some("1001:1001"));
    assert_eq!(facts.volumes, ["/data"]);
    assert_eq!(facts.env, ["TMPDIR=/scratch"]);
    assert_eq!(facts.digest, Image::new(Behaviour::Good).manifest_digest);
    let asked = registry.requests.load(Ordering::Relaxed);
    let again = resolver.cached(std::slice::from_ref(&image));
    assert!(again.missing.is_empty());
    assert_eq!(again.lookup[&image], *facts);
    assert_eq!(registry.requests.load(Ordering::Relaxed), asked);
}

/// Concurrent reviews of one image share one fetch.
#[tokio::test]
async fn concurrent_lookups_of_one_image_are_one_fetch() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let resolver = Resolver::new(ample(&host), RegistryMetrics::throwaway()).unwrap();
    let image = vec![format!("{host}/app:1")];
    let lookups = (0..20).map(|_| resolver.resolve(&image));
    let all = futures_util::future::join_all(lookups).await;
    assert!(
        all.iter()
            .all(|r| r.lookup.len() == 1 && r.warnings.is_empty())
    );
    // One fetch: the index, the manifest, the config, each after a `GET /v2/` (oci-client asks
    // it before every anonymous request). A second fetch would double that.
    let asked = registry.requests.load(Ordering::Relaxed);
    assert!(asked <= 6, "{asked} requests for 20 concurrent lookups");
}

/// `kube-harden harden --resolve-images`: the same documents as without it when the registry is
/// down, with the warning on stderr; no warning when the registry answers. `HOME` and
/// `DOCKER_CONFIG` point at an empty directory: no credentials.
#[tokio::test]
async fn offline_harden_resolves_images_and_falls_back() {
    let good = Registry::start(Behaviour::Good).await;
    let down = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pods.yaml");
    let good_image = format!("{}/app:1", good.addr);
    let down_image = format!("{down}/app:1");
    let list = json!({"apiVersion": "v1", "kind": "List",
                      "items": [pod(&good_image), pod(&down_image)]});
    std::fs::write(&manifest, serde_json::to_vec(&list).unwrap()).unwrap();
    let run = |extra: &[String]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kube-harden"));
        command
            .args(["harden", "-f"])
            .arg(&manifest)
            .args(extra)
            .env("HOME", dir.path())
            .env("DOCKER_CONFIG", dir.path());
        // On the blocking pool: the registry answers from this test's runtime.
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let blind = run(&["-o".into(), "json".into()]).await;
    let insecure = format!("--registry-insecure={},{down}", good.addr);
    let started = Instant::now();
    let resolved = run(&[
        "--resolve-images".into(),
        "--registry-budget=20s".into(),
        insecure,
        "-o".into(),
        "json".into(),
    ])
    .await;
    println!("offline harden --resolve-images: {:?}", started.elapsed());
    assert!(resolved.status.success(), "{resolved:?}");
    let items = |out: &std::process::Output| -> Vec<Value> {
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list["items"].as_array().unwrap().clone()
    };
    let (blind, resolved_items) = (items(&blind), items(&resolved));
    // The image that was read: its USER (1001:1001) instead of 2866.
    let user = |pod: &Value| pod.pointer("/spec/securityContext/runAsUser").cloned();
    assert_eq!(user(&blind[0]), Some(json!(2866)));
    assert_eq!(
        user(&resolved_items[0]),
        Some(json!(1001)),
        "{:#}",
        resolved_items[0]
    );
    // The image that was not: exactly today's answer.
    assert_eq!(resolved_items[1], blind[1]);
    let stderr = String::from_utf8_lossy(&resolved.stderr);
    assert!(
        stderr.contains(&down_image) && stderr.contains("(unreachable)"),
        "{stderr}"
    );
    assert!(!stderr.contains(&good_image), "{stderr}");
    assert!(good.requests.load(Ordering::Relaxed) > 0);
}

/// A tag past `--registry-tag-ttl` is checked with one HEAD: the digest has not changed, so the
/// facts come from the cache and the manifests and config are not fetched again.
#[tokio::test]
async fn a_stale_tag_is_checked_with_a_head() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let mut stale = ample(&host);
    stale.limits.tag_ttl = Duration::ZERO;
    let resolver = Resolver::new(stale, RegistryMetrics::throwaway()).unwrap();
    let image = vec![format!("{host}/app:1")];
    let first = resolver.resolve(&image).await;
    let full = registry.requests.load(Ordering::Relaxed);
    let second = resolver.resolve(&image).await;
    let head = registry.requests.load(Ordering::Relaxed) - full;
    assert_eq!(first.lookup, second.lookup);
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    // GET /v2/ then HEAD of the tag; a full fetch is 6 requests.
    assert!(
        head <= 2,
        "{head} requests to check a stale tag (a full fetch: {full})"
    );
}

/// `serve` refuses a registry budget that leaves the review no time to harden.
#[test]
fn serve_refuses_a_budget_not_under_the_review_timeout() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args([
            "serve",
            "--tls-cert-file=/nonexistent",
            "--tls-key-file=/nonexistent",
            "--resolve-images",
            "--registry-budget=2s",
            "--review-timeout=2s",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--registry-budget") && stderr.contains("--review-timeout"),
        "{stderr}"
    );
}

/// Through the server: the image's USER reaches the rules (runAsUser 1001, not 2866), on the
/// cold review and on the next one, answered from the cache.
#[tokio::test]
async fn serve_hardens_to_fit_the_image() {
    let registry = Registry::start(Behaviour::Good).await;
    let host = registry.addr.to_string();
    let image = format!("{host}/app:1");
    let object = pod(&image);
    let review = review_for(&object, "", "Pod", "pods", "CREATE");
    let server = Running::start(move |c| {
        c.images = Some(ample(&host));
        c.review_timeout = Duration::from_secs(30);
    })
    .await;
    let mut client = server.client(Version::Http1).await;
    for round in ["cold", "warm"] {
        let started = Instant::now();
        let (status, response) = client.review("/mutate", &review).await;
        println!("serve, {round} cache: {:?}", started.elapsed());
        assert_eq!(status, StatusCode::OK);
        let hardened = apply_response_patch(&response, &object);
        assert_eq!(
            hardened.pointer("/spec/securityContext/runAsUser"),
            Some(&json!(1001)),
            "{round}: {hardened:#}"
        );
    }
    let metrics = server.metrics_text().await;
    let lookups = |result: &str| {
        metric(
            &metrics,
            &format!("kube_harden_image_cache_lookups_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!((lookups("miss"), lookups("hit")), (1.0, 1.0), "{metrics}");
    server.stop().await;
}
