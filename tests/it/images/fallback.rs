//! Registries that misbehave on purpose (down, slow past the budget, 401/403/404, a config that
//! is not JSON or is endless, an index without the platform, a digest mismatch, a redirect
//! loop): each review gets today's answer (same patch) plus one warning naming the image and the
//! reason, and prints how long the fallback took.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use kube_harden::admission::{self, Mode};
use kube_harden::harden::Policy;
use serde_json::Value;

use super::super::support::*;
use super::{BUDGET, Behaviour, REVIEW_TIMEOUT, Registry, pod, settings};

/// Reviews a Pod running `host/app:1` through a server resolving images; checks the answer is
/// today's plus a warning with `reason`, and returns how long the review took.
async fn review_falls_back(host: &str, reason: &str) -> Duration {
    let image = format!("{host}/app:1");
    let review = review_for(&pod(&image), "", "Pod", "pods", "CREATE");
    let body = serde_json::to_vec(&review).unwrap();
    let blind = admission::review(&body, Mode::Enforce, &Policy::default());
    let blind: Value = serde_json::from_slice(&blind.body).unwrap();

    let host_owned = host.to_owned();
    let server = Running::start(move |c| {
        c.images = Some(settings(&host_owned));
        c.review_timeout = REVIEW_TIMEOUT;
    })
    .await;
    let mut client = server.client(Version::Http1).await;
    let started = Instant::now();
    let (status, response) = client.review("/mutate", &review).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["response"]["allowed"], true);
    assert_eq!(
        response["response"]["patch"], blind["response"]["patch"],
        "{reason}: the same patch as without lookups"
    );
    let warnings: Vec<&str> = response["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let blind_warnings = blind["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), blind_warnings.len() + 1, "{warnings:?}");
    let fallback = warnings
        .iter()
        .find(|w| w.contains("hardened without its configuration"))
        .unwrap_or_else(|| panic!("no fallback warning in {warnings:?}"));
    assert!(fallback.contains(&image), "{fallback}");
    assert!(fallback.contains(&format!("({reason})")), "{fallback}");
    let metrics = server.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            &format!("kube_harden_image_fallbacks_total{{reason=\"{reason}\"}}")
        ),
        1.0,
        "{metrics}"
    );
    println!("fallback {reason:>16}: review answered in {elapsed:?} (budget {BUDGET:?})");
    server.stop().await;
    elapsed
}

async fn hostile(behaviour: Behaviour, reason: &str) {
    let registry = Registry::start(behaviour).await;
    review_falls_back(&registry.addr.to_string(), reason).await;
    assert!(
        registry.requests.load(Ordering::Relaxed) > 0,
        "the registry was asked"
    );
}

#[tokio::test]
async fn registry_down() {
    let addr = free_addr();
    review_falls_back(&addr.to_string(), "unreachable").await;
}

#[tokio::test]
async fn registry_slow_past_the_budget() {
    hostile(Behaviour::Slow, "timeout").await;
}

#[tokio::test]
async fn registry_401() {
    hostile(Behaviour::Unauthorized, "unauthorized").await;
}

#[tokio::test]
async fn registry_403() {
    hostile(Behaviour::Forbidden, "forbidden").await;
}

#[tokio::test]
async fn registry_404() {
    hostile(Behaviour::NotFound, "not_found").await;
}

#[tokio::test]
async fn config_not_json() {
    hostile(Behaviour::ConfigNotJson, "bad_content").await;
}

#[tokio::test]
async fn config_too_big() {
    hostile(Behaviour::ConfigTooBig, "too_big").await;
}

#[tokio::test]
async fn index_without_the_platform() {
    hostile(Behaviour::NoPlatform, "no_platform").await;
}

#[tokio::test]
async fn digest_mismatch() {
    hostile(Behaviour::DigestMismatch, "digest_mismatch").await;
}

#[tokio::test]
async fn redirect_loop() {
    hostile(Behaviour::RedirectLoop, "redirect").await;
}
