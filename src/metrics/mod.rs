//! Prometheus metrics: one registry, label values from bounded sets (no workload names), and a
//! `record_review` that turns one admission [`Report`] into counter increments.
//!
//! The one label whose value comes from the request, `namespace`, is bounded too: a namespace
//! that is not a valid namespace name, or that comes after `--metrics-max-namespaces` distinct
//! ones, is counted as [`OTHER_NAMESPACE`]. Clients cannot grow the number of series.
//!
//! Every metric is documented in docs/metrics.md. Exposition format:
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>.
//!
//! Each family's labels are a type (`family`): `requests.with(&RequestLabels { .. })`. The
//! registry client's families (`--resolve-images`) are in `registry`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::admission::{Mode, Report, change_label};
use family::{Family, LabelSet, label_set};
pub use registry::RegistryMetrics;

mod family;
mod registry;
#[cfg(test)]
mod tests;

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

label_set!(
    /// `kube_harden_admission_requests_total`
    Request(RequestLabels; 4) { mode, operation, kind, outcome }
);
label_set!(
    /// `kube_harden_changes_total`
    Change(ChangeLabels; 4) { namespace, kind, change, outcome }
);
label_set!(
    /// `kube_harden_admission_duration_seconds`
    ByMode(ModeLabels; 1) { mode }
);
label_set!(
    /// `kube_harden_errors_total`, `kube_harden_image_fetch_errors_total`,
    /// `kube_harden_image_fallbacks_total`
    ByReason(ReasonLabels; 1) { reason }
);
label_set!(
    /// `kube_harden_tls_reloads_total`, `kube_harden_cert_checks_total`,
    /// `kube_harden_ca_bundle_updates_total`, `kube_harden_image_cache_lookups_total`
    ByResult(ResultLabels; 1) { result }
);
label_set!(
    /// `kube_harden_findings_total`
    FindingSet(FindingLabels; 3) { namespace, kind, finding }
);
label_set!(
    /// `kube_harden_restricted_compliant_total`
    Restricted(RestrictedLabels; 3) { namespace, kind, compliant }
);
label_set!(
    /// `kube_harden_cert_renewals_total`
    Renewal(RenewalLabels; 2) { kind, result }
);
label_set!(
    /// `kube_harden_build_info`
    Build(BuildLabels; 1) { version }
);

/// The builder of prometheus' `MetricVec` behind `V` (`IntCounterVec`, `HistogramVec`, ...).
type Builder<V> = <V as family::Vec>::Builder;
/// Counters labelled by `L`.
type Counters<L, const N: usize> = Family<L, Builder<IntCounterVec>, N>;

/// What a certificate write or caBundle patch came to: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Written.
    Success,
    /// Another replica wrote first (a conflict on the resourceVersion).
    Conflict,
    /// Not written.
    Failure,
}

impl WriteResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Success => "success",
            WriteResult::Conflict => "conflict",
            WriteResult::Failure => "failure",
        }
    }
}

/// A counter family labelled by `L`, registered in `registry`.
fn counters<L: LabelSet<N>, const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Counters<L, N> {
    Family::register(registry, |labels| {
        IntCounterVec::new(Opts::new(name, help), labels)
    })
}

/// A gauge without labels, registered in `registry`.
fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    family::register(registry, Gauge::new(name, help))
}

fn success_label(success: bool) -> &'static str {
    if success { "success" } else { "failure" }
}

/// The process's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    namespaces: Arc<Namespaces>,
    requests: Counters<Request, 4>,
    changes: Counters<Change, 4>,
    duration: Family<ByMode, Builder<HistogramVec>, 1>,
    errors: Counters<ByReason, 1>,
    tls_reloads: Counters<ByResult, 1>,
    cert_expiry: Gauge,
    findings: Counters<FindingSet, 3>,
    restricted: Counters<Restricted, 3>,
    cert_checks: Counters<ByResult, 1>,
    cert_renewals: Counters<Renewal, 2>,
    ca_bundle_updates: Counters<ByResult, 1>,
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
        let r = &registry;
        let build_info: Family<Build, Builder<IntGaugeVec>, 1> = Family::register(r, |labels| {
            let help = "Always 1; labels carry the version of the running binary.";
            IntGaugeVec::new(Opts::new("kube_harden_build_info", help), labels)
        });
        let version = crate::VERSION;
        build_info.with(&BuildLabels { version }).set(1);
        #[cfg(target_os = "linux")]
        family::register_process(r);
        Self {
            requests: counters(
                r,
                "kube_harden_admission_requests_total",
                "Admission reviews answered, by endpoint mode, operation, object kind and outcome.",
            ),
            changes: counters(
                r,
                "kube_harden_changes_total",
                "Hardening decisions, by namespace, object kind, change name and outcome.",
            ),
            duration: Family::register(r, |labels| {
                let help =
                    "Time from receiving an admission request to having its response, by mode.";
                let opts = HistogramOpts::new("kube_harden_admission_duration_seconds", help);
                HistogramVec::new(opts.buckets(DURATION_BUCKETS.to_vec()), labels)
            }),
            errors: counters(
                r,
                "kube_harden_errors_total",
                "Requests answered with an error or admitted unchanged because of one, by reason.",
            ),
            tls_reloads: counters(
                r,
                "kube_harden_tls_reloads_total",
                "Serving certificate reloads from disk, by result (success, failure).",
            ),
            cert_expiry: gauge(
                r,
                "kube_harden_tls_certificate_expiry_timestamp_seconds",
                "NotAfter of the serving certificate in use, as a Unix timestamp.",
            ),
            findings: counters(
                r,
                "kube_harden_findings_total",
                "Risks left standing after hardening, by namespace, object kind and finding name.",
            ),
            restricted: counters(
                r,
                "kube_harden_restricted_compliant_total",
                "Objects evaluated against the restricted Pod Security Standard after hardening.",
            ),
            cert_checks: counters(
                r,
                "kube_harden_cert_checks_total",
                "Checks of the managed certificate Secret and caBundle (--manage-certs), by result.",
            ),
            cert_renewals: counters(
                r,
                "kube_harden_cert_renewals_total",
                "Changes written to the managed certificate Secret by this replica, by kind and result.",
            ),
            ca_bundle_updates: counters(
                r,
                "kube_harden_ca_bundle_updates_total",
                "caBundle patches of the MutatingWebhookConfiguration by this replica, by result.",
            ),
            ca_expiry: gauge(
                r,
                "kube_harden_ca_certificate_expiry_timestamp_seconds",
                "NotAfter of the CA signing the managed serving certificate, as a Unix timestamp.",
            ),
            registry_metrics: RegistryMetrics::register(r),
            namespaces: Arc::new(Namespaces {
                limit: max_namespaces,
                known: Mutex::new(HashSet::new()),
            }),
            registry,
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
            .with(&RequestLabels {
                mode: mode.as_str(),
                operation,
                kind,
                outcome: report.outcome.as_str(),
            })
            .inc();
        self.duration
            .with(&ModeLabels {
                mode: mode.as_str(),
            })
            .observe(elapsed.as_secs_f64());
        if let Some((reason, _)) = &report.error {
            self.error(reason);
        }
        if !report.dry_run {
            let namespace = self.namespaces.label(&report.namespace);
            let namespace = namespace.as_ref();
            for finding in &report.findings {
                self.findings
                    .with(&FindingLabels {
                        namespace,
                        kind,
                        finding: finding.name.as_str(),
                    })
                    .inc();
            }
            if let Some(failing) = &report.restricted {
                let compliant = if failing.is_empty() { "true" } else { "false" };
                self.restricted
                    .with(&RestrictedLabels {
                        namespace,
                        kind,
                        compliant,
                    })
                    .inc();
            }
            for change in &report.changes {
                self.changes
                    .with(&ChangeLabels {
                        namespace,
                        kind,
                        change: change.name.as_str(),
                        outcome: change_label(mode, change.outcome),
                    })
                    .inc();
            }
        }
    }

    /// Counts an error by reason.
    pub fn error(&self, reason: &str) {
        self.errors.with(&ReasonLabels { reason }).inc();
    }

    /// Counts a certificate reload.
    pub fn tls_reload(&self, success: bool) {
        let result = success_label(success);
        self.tls_reloads.with(&ResultLabels { result }).inc();
    }

    /// Sets the expiry of the certificate being served.
    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.cert_expiry.set(unix_seconds as f64);
    }

    /// Counts a check of the managed certificates.
    pub fn cert_check(&self, success: bool) {
        let result = success_label(success);
        self.cert_checks.with(&ResultLabels { result }).inc();
    }

    /// Counts a change written to the managed certificate Secret (`kind`: create, restore,
    /// replace, serving, ca_add, ca_promote, ca_prune).
    pub fn cert_renewal(&self, kind: &str, result: WriteResult) {
        let result = result.as_str();
        self.cert_renewals
            .with(&RenewalLabels { kind, result })
            .inc();
    }

    /// Counts a caBundle patch.
    pub fn ca_bundle_update(&self, result: WriteResult) {
        let result = result.as_str();
        self.ca_bundle_updates.with(&ResultLabels { result }).inc();
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
