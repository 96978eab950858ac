//! Prometheus metrics: one registry, label values from bounded sets (no workload names), and a
//! `record_review` that turns one admission [`Report`] into counter increments.
//!
//! Every metric is documented in docs/metrics.md. Exposition format:
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>.
#![allow(
    clippy::expect_used,
    reason = "registering fixed, distinct metric names at start cannot fail"
)]

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::admission::{Mode, Report, change_label};

/// Histogram buckets for admission latency: sub-millisecond resolution where the webhook lives,
/// up to the API server's webhook timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
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
}

impl Metrics {
    /// Registers every metric (and the process collector on Linux).
    pub fn new() -> Self {
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
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
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
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        Self {
            registry,
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
        }
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
            for finding in &report.findings {
                self.findings
                    .with_label_values(&[report.namespace.as_str(), kind, finding.name.as_str()])
                    .inc();
            }
            if let Some(failing) = &report.restricted {
                let compliant = if failing.is_empty() { "true" } else { "false" };
                self.restricted
                    .with_label_values(&[report.namespace.as_str(), kind, compliant])
                    .inc();
            }
            for change in &report.changes {
                self.changes
                    .with_label_values(&[
                        report.namespace.as_str(),
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
