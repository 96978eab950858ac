//! The registry client's metrics (`--resolve-images`, docs/metrics.md): typed families like the
//! others, registered by [`super::Metrics`] in its registry, or by the offline commands and the
//! tests in a throwaway one. Every label value comes from a fixed set ([`Reason`], hit/miss).

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

use super::{ByReason, ByResult, Counters, ReasonLabels, ResultLabels, counters, family};
use crate::registry::Reason;

/// Buckets of a registry fetch: a local registry answers in milliseconds, a remote one in
/// hundreds; fetches run up to `--registry-fetch-timeout`.
const FETCH_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The image lookups' counters, histogram and gauges.
#[derive(Clone)]
pub struct RegistryMetrics {
    /// `kube_harden_image_cache_lookups_total{result="hit"}` and `{result="miss"}`, resolved
    /// once (the warm path counts).
    hits: IntCounter,
    misses: IntCounter,
    fetch_duration: Histogram,
    fetch_errors: Counters<ByReason, 1>,
    fallbacks: Counters<ByReason, 1>,
    cache_entries: IntGauge,
    cache_bytes: IntGauge,
}

impl RegistryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let r = registry;
        let lookups: Counters<ByResult, 1> = counters(
            r,
            "kube_harden_image_cache_lookups_total",
            "Image facts looked up by reviews, by result (hit: from the cache; miss: fetched).",
        );
        Self {
            hits: lookups.with(&ResultLabels { result: "hit" }),
            misses: lookups.with(&ResultLabels { result: "miss" }),
            fetch_duration: family::register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "kube_harden_image_fetch_duration_seconds",
                        "Time to fetch an image's manifest and config from its registry (successes and failures).",
                    )
                    .buckets(FETCH_BUCKETS.to_vec()),
                ),
            ),
            fetch_errors: counters(
                r,
                "kube_harden_image_fetch_errors_total",
                "Registry fetches that failed, by reason.",
            ),
            fallbacks: counters(
                r,
                "kube_harden_image_fallbacks_total",
                "Images of reviewed workloads hardened without their configuration, by reason (timeout: past the budget).",
            ),
            cache_entries: family::register(
                r,
                IntGauge::new(
                    "kube_harden_image_cache_entries",
                    "Image facts held in the cache.",
                ),
            ),
            cache_bytes: family::register(
                r,
                IntGauge::new(
                    "kube_harden_image_cache_bytes",
                    "Estimated bytes of the image facts held in the cache.",
                ),
            ),
        }
    }

    /// The metrics in a throwaway registry of their own, never exposed (the offline commands,
    /// tests and benchmarks).
    pub fn throwaway() -> Self {
        Self::register(&Registry::new())
    }

    /// A lookup answered from the cache (`hit`) or sent to the registry (`miss`).
    pub fn lookup(&self, hit: bool) {
        if hit {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
    }

    /// One fetch finished after `elapsed`, failing with `error` if any.
    pub fn fetched(&self, elapsed: Duration, error: Option<Reason>) {
        self.fetch_duration.observe(elapsed.as_secs_f64());
        if let Some(reason) = error {
            let reason = reason.as_str();
            self.fetch_errors.with(&ReasonLabels { reason }).inc();
        }
    }

    /// An image hardened without its configuration.
    pub fn fallback(&self, reason: Reason) {
        let reason = reason.as_str();
        self.fallbacks.with(&ReasonLabels { reason }).inc();
    }

    /// The cache's size.
    pub fn cache_size(&self, entries: usize, bytes: usize) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
