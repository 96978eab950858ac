//! Prometheus metrics: one registry, label values from bounded sets (no workload names), and a
//! `record_review` that turns one admission [`Report`] into counter increments.
//!
//! The one label whose value comes from the request, `namespace`, is bounded too: a namespace
//! that is not a valid namespace name, or that comes after `--metrics-max-namespaces` distinct
//! ones, is counted as [`OTHER_NAMESPACE`]. Clients cannot grow the number of series.
//!
//! Every metric is documented in docs/metrics.md. Exposition format:
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>.
#![allow(
    clippy::expect_used,
    reason = "registering fixed, distinct metric names at start cannot fail"
)]

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::admission::{Mode, Report, change_label};
use crate::registry::RegistryMetrics;

/// Histogram buckets for admission latency: sub-millisecond resolution where the webhook lives,
/// up to the API server's webhook timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Distinct namespace label values kept by default (`--metrics-max-namespaces`).
pub const DEFAULT_MAX_NAMESPACES: usize = 500;

/// The `namespace` label of reviews whose namespace is past the cap or not a namespace name.
pub const OTHER_NAMESPACE: &str = "_other";

/// The namespace label values in use, at most `limit` (first come, first kept).
struct Namespaces {
    limit: usize,
    known: Mutex<HashSet<String>>,
}

impl Namespaces {
    /// The label for `namespace`: itself while there is room (or once it has a place),
    /// [`OTHER_NAMESPACE`] otherwise. Empty (cluster-scoped, unreadable) stays empty.
    fn label<'a>(&self, namespace: &'a str) -> Cow<'a, str> {
        if namespace.is_empty() {
            return Cow::Borrowed("");
        }
        if !is_namespace_name(namespace) {
            return Cow::Borrowed(OTHER_NAMESPACE);
        }
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.contains(namespace) {
            return Cow::Borrowed(namespace);
        }
        if known.len() < self.limit {
            known.insert(namespace.to_owned());
            return Cow::Borrowed(namespace);
        }
        Cow::Borrowed(OTHER_NAMESPACE)
    }
}

/// A valid namespace name: a DNS label (RFC 1123), at most 63 lower-case letters, digits and
/// `-`, starting and ending with a letter or digit.
fn is_namespace_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=63).contains(&bytes.len())
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
}

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    namespaces: Arc<Namespaces>,
    requests: IntCounterVec,
    changes: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
    tls_reloads: IntCounterVec,
    cert_expiry: Gauge,
    findings: IntCounterVec,
    restricted: IntCounterVec,
    cert_checks: IntCounterVec,
    cert_renewals: IntCounterVec,
    ca_bundle_updates: IntCounterVec,
    ca_expiry: Gauge,
    registry_metrics: RegistryMetrics,
}

impl Metrics {
    /// Registers every metric (and the process collector on Linux), with at most
    /// [`DEFAULT_MAX_NAMESPACES`] namespace label values.
    pub fn new() -> Self {
        Self::with_max_namespaces(DEFAULT_MAX_NAMESPACES)
    }

    /// Registers every metric, keeping at most `max_namespaces` distinct namespace label values
    /// (later namespaces are counted as [`OTHER_NAMESPACE`]).
    pub fn with_max_namespaces(max_namespaces: usize) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "kube_harden_admission_requests_total",
                "Admission reviews answered, by endpoint mode, operation, object kind and outcome.",
            ),
            &["mode", "operation", "kind", "outcome"],
        )
        .expect("valid metric");
        let changes = IntCounterVec::new(
            Opts::new(
                "kube_harden_changes_total",
                "Hardening decisions, by namespace, object kind, change name and outcome.",
            ),
            &["namespace", "kind", "change", "outcome"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "kube_harden_admission_duration_seconds",
                "Time from receiving an admission request to having its response, by mode.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["mode"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "kube_harden_errors_total",
                "Requests answered with an error or admitted unchanged because of one, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "kube_harden_tls_reloads_total",
                "Serving certificate reloads from disk, by result (success, failure).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cert_expiry = Gauge::new(
            "kube_harden_tls_certificate_expiry_timestamp_seconds",
            "NotAfter of the serving certificate in use, as a Unix timestamp.",
        )
        .expect("valid metric");
        let findings = IntCounterVec::new(
            Opts::new(
                "kube_harden_findings_total",
                "Risks left standing after hardening, by namespace, object kind and finding name.",
            ),
            &["namespace", "kind", "finding"],
        )
        .expect("valid metric");
        let restricted = IntCounterVec::new(
            Opts::new(
                "kube_harden_restricted_compliant_total",
                "Objects evaluated against the restricted Pod Security Standard after hardening.",
            ),
            &["namespace", "kind", "compliant"],
        )
        .expect("valid metric");
        let cert_checks = IntCounterVec::new(
            Opts::new(
                "kube_harden_cert_checks_total",
                "Checks of the managed certificate Secret and caBundle (--manage-certs), by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cert_renewals = IntCounterVec::new(
            Opts::new(
                "kube_harden_cert_renewals_total",
                "Changes written to the managed certificate Secret by this replica, by kind and result.",
            ),
            &["kind", "result"],
        )
        .expect("valid metric");
        let ca_bundle_updates = IntCounterVec::new(
            Opts::new(
                "kube_harden_ca_bundle_updates_total",
                "caBundle patches of the MutatingWebhookConfiguration by this replica, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let ca_expiry = Gauge::new(
            "kube_harden_ca_certificate_expiry_timestamp_seconds",
            "NotAfter of the CA signing the managed serving certificate, as a Unix timestamp.",
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "kube_harden_build_info",
                "Always 1; labels carry the version of the running binary.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[crate::VERSION]).set(1);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(changes.clone()),
            Box::new(duration.clone()),
            Box::new(errors.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(cert_expiry.clone()),
            Box::new(findings.clone()),
            Box::new(restricted.clone()),
            Box::new(cert_checks.clone()),
            Box::new(cert_renewals.clone()),
            Box::new(ca_bundle_updates.clone()),
            Box::new(ca_expiry.clone()),
            Box::new(build_info),
        ] {
            registry.register(collector).expect("unique metric");
        }
        let registry_metrics = RegistryMetrics::register(&registry);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        Self {
            registry,
            namespaces: Arc::new(Namespaces {
                limit: max_namespaces,
                known: Mutex::new(HashSet::new()),
            }),
            requests,
            changes,
            duration,
            errors,
            tls_reloads,
            cert_expiry,
            findings,
            restricted,
            cert_checks,
            cert_renewals,
            ca_bundle_updates,
            ca_expiry,
            registry_metrics,
        }
    }

    /// The registry client's metrics (`--resolve-images`).
    pub fn registry(&self) -> RegistryMetrics {
        self.registry_metrics.clone()
    }

    /// Records one answered review. Dry runs count as requests but not as changes, findings or
    /// compliance: nothing is stored, so the dashboard would overstate.
    pub fn record_review(&self, mode: Mode, report: &Report, elapsed: Duration) {
        let operation = if report.operation.is_empty() {
            "unknown"
        } else {
            report.operation
        };
        let kind = if report.kind.is_empty() {
            "unknown"
        } else {
            report.kind
        };
        self.requests
            .with_label_values(&[mode.as_str(), operation, kind, report.outcome.as_str()])
            .inc();
        self.duration
            .with_label_values(&[mode.as_str()])
            .observe(elapsed.as_secs_f64());
        if let Some((reason, _)) = &report.error {
            self.error(reason);
        }
        if !report.dry_run {
            let namespace = self.namespaces.label(&report.namespace);
            let namespace = namespace.as_ref();
            for finding in &report.findings {
                self.findings
                    .with_label_values(&[namespace, kind, finding.name.as_str()])
                    .inc();
            }
            if let Some(failing) = &report.restricted {
                let compliant = if failing.is_empty() { "true" } else { "false" };
                self.restricted
                    .with_label_values(&[namespace, kind, compliant])
                    .inc();
            }
            for change in &report.changes {
                self.changes
                    .with_label_values(&[
                        namespace,
                        kind,
                        change.name.as_str(),
                        change_label(mode, change.outcome),
                    ])
                    .inc();
            }
        }
    }

    /// Counts an error by reason.
    pub fn error(&self, reason: &str) {
        self.errors.with_label_values(&[reason]).inc();
    }

    /// Counts a certificate reload.
    pub fn tls_reload(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.tls_reloads.with_label_values(&[result]).inc();
    }

    /// Sets the expiry of the certificate being served.
    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.cert_expiry.set(unix_seconds as f64);
    }

    /// Counts a check of the managed certificates.
    pub fn cert_check(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.cert_checks.with_label_values(&[result]).inc();
    }

    /// Counts a change written to the managed certificate Secret (`kind`: create, restore,
    /// replace, serving, ca_add, ca_promote, ca_prune; `result`: success, conflict, failure).
    pub fn cert_renewal(&self, kind: &str, result: &str) {
        self.cert_renewals.with_label_values(&[kind, result]).inc();
    }

    /// Counts a caBundle patch (`result`: success, conflict, failure).
    pub fn ca_bundle_update(&self, result: &str) {
        self.ca_bundle_updates.with_label_values(&[result]).inc();
    }

    /// Sets the expiry of the CA that signs the managed serving certificate.
    pub fn set_ca_expiry(&self, unix_seconds: i64) {
        self.ca_expiry.set(unix_seconds as f64);
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_labels_are_capped_and_validated() {
        let namespaces = Namespaces {
            limit: 2,
            known: Mutex::new(HashSet::new()),
        };
        assert_eq!(namespaces.label("team-a"), "team-a");
        assert_eq!(namespaces.label("team-b"), "team-b");
        assert_eq!(namespaces.label("team-c"), OTHER_NAMESPACE);
        assert_eq!(
            namespaces.label("team-a"),
            "team-a",
            "a known one keeps its place"
        );
        assert_eq!(namespaces.label(""), "");
        for forged in ["Team", "a\nb", "-a", "a-", "a\"b", &"n".repeat(64)] {
            assert!(!is_namespace_name(forged), "{forged:?}");
        }
        assert!(is_namespace_name(&"n".repeat(63)));
        assert!(is_namespace_name("kube-system"));
        assert!(is_namespace_name("0"));
    }
}
