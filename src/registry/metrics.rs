//! The registry client's metrics (docs/metrics.md), registered by [`crate::metrics::Metrics`]
//! beside the others. Every label value comes from a fixed set.
#![allow(
    clippy::expect_used,
    reason = "creating fixed, distinct metric names at start cannot fail"
)]

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, core::Collector,
};

use super::fetch::Reason;

/// Buckets of a registry fetch: a local registry answers in milliseconds, a remote one in
/// hundreds; fetches run up to `--registry-fetch-timeout`.
const FETCH_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The image lookups' counters, histogram and gauges.
#[derive(Clone)]
pub struct RegistryMetrics {
    lookups: IntCounterVec,
    /// `lookups{result="hit"}` and `{result="miss"}`, resolved once (the warm path counts).
    hits: IntCounter,
    misses: IntCounter,
    fetch_duration: Histogram,
    fetch_errors: IntCounterVec,
    fallbacks: IntCounterVec,
    cache_entries: IntGauge,
    cache_bytes: IntGauge,
}

impl RegistryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self::unregistered();
        for collector in metrics.collectors() {
            registry.register(collector).expect("unique metric");
        }
        metrics
    }

    /// The metrics, not registered anywhere (offline commands, tests).
    pub fn unregistered() -> Self {
        let lookups = IntCounterVec::new(
            Opts::new(
                "kube_harden_image_cache_lookups_total",
                "Image facts looked up by reviews, by result (hit: from the cache; miss: fetched).",
            ),
            &["result"],
        )
        .expect("valid metric");
        Self {
            hits: lookups.with_label_values(&["hit"]),
            misses: lookups.with_label_values(&["miss"]),
            lookups,
            fetch_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "kube_harden_image_fetch_duration_seconds",
                    "Time to fetch an image's manifest and config from its registry (successes and failures).",
                )
                .buckets(FETCH_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            fetch_errors: IntCounterVec::new(
                Opts::new(
                    "kube_harden_image_fetch_errors_total",
                    "Registry fetches that failed, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "kube_harden_image_fallbacks_total",
                    "Images of reviewed workloads hardened without their configuration, by reason (timeout: past the budget).",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            cache_entries: IntGauge::new(
                "kube_harden_image_cache_entries",
                "Image facts held in the cache.",
            )
            .expect("valid metric"),
            cache_bytes: IntGauge::new(
                "kube_harden_image_cache_bytes",
                "Estimated bytes of the image facts held in the cache.",
            )
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.lookups.clone()),
            Box::new(self.fetch_duration.clone()),
            Box::new(self.fetch_errors.clone()),
            Box::new(self.fallbacks.clone()),
            Box::new(self.cache_entries.clone()),
            Box::new(self.cache_bytes.clone()),
        ]
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
            self.fetch_errors
                .with_label_values(&[reason.as_str()])
                .inc();
        }
    }

    /// An image hardened without its configuration.
    pub fn fallback(&self, reason: Reason) {
        self.fallbacks.with_label_values(&[reason.as_str()]).inc();
    }

    /// The cache's size.
    pub fn cache_size(&self, entries: usize, bytes: usize) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
