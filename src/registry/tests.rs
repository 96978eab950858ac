//! The resolver against registries that are not there: fallbacks, coalescing, the cache.

use super::*;

fn resolver(budget: Duration) -> Resolver {
    let settings = Settings {
        budget,
        insecure: vec!["127.0.0.1:1".into()],
        ..Settings::default()
    };
    Resolver::new(settings, RegistryMetrics::throwaway()).unwrap()
}

#[tokio::test]
async fn an_unreachable_registry_is_a_warning_and_is_remembered() {
    let resolver = resolver(Duration::from_secs(5));
    let image = "127.0.0.1:1/app:1".to_owned();
    let resolved = resolver.resolve(std::slice::from_ref(&image)).await;
    assert!(resolved.lookup.is_empty());
    assert_eq!(resolved.warnings.len(), 1, "{:?}", resolved.warnings);
    assert!(
        resolved.warnings[0].contains("127.0.0.1:1/app:1"),
        "{:?}",
        resolved.warnings
    );
    assert!(
        resolved.warnings[0].contains("(unreachable)"),
        "{:?}",
        resolved.warnings
    );
    // The failure is cached: no fetch, the same warning, at once.
    let again = resolver.cached(std::slice::from_ref(&image));
    assert!(again.missing.is_empty());
    assert_eq!(again.warnings, resolved.warnings);
}

#[tokio::test]
async fn invalid_references_never_reach_a_registry() {
    let resolver = resolver(Duration::from_secs(5));
    let images = vec![
        "app::1".to_owned(),
        "a@sha256:zz".to_owned(),
        "x y".to_owned(),
    ];
    let resolved = resolver.resolve(&images).await;
    assert_eq!(resolved.warnings.len(), 3, "{:?}", resolved.warnings);
    assert!(
        resolved
            .warnings
            .iter()
            .all(|w| w.contains("(invalid_reference)")),
        "{:?}",
        resolved.warnings
    );
    assert!(resolver.inner.inflight.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_same_image_is_fetched_once_and_the_busy_cap_holds() {
    let settings = Settings {
        max_fetches: 1,
        insecure: vec!["127.0.0.1:1".into()],
        ..Settings::default()
    };
    let resolver = Resolver::new(settings, RegistryMetrics::throwaway()).unwrap();
    let a = resolver.start("127.0.0.1:1/a:1").unwrap();
    let a2 = resolver.start("127.0.0.1:1/a:1").unwrap();
    assert!(a.same_channel(&a2), "a second lookup joins the first fetch");
    let busy = resolver.start("127.0.0.1:1/b:1").unwrap_err();
    assert_eq!(busy.reason, Reason::Busy);
}
