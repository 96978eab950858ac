//! What the tests expect the webhook to have counted. Before each request that reaches the
//! webhook, a test records it here; the expectation is computed by running the same rules
//! locally (`kube_harden::harden`) on the object sent, so the metrics test can demand that the
//! webhook's `/metrics` equal this ledger exactly, series by series.

use std::collections::HashSet;

use kube_harden::admission::{Mode, RequestOutcome, change_label};
use kube_harden::harden::{self, Hardened, Policy, WorkloadKind};
use serde_json::Value;

use crate::Result;
use crate::metrics::{Samples, Series};

/// `kube_harden_admission_requests_total`.
pub const REQUESTS: &str = "kube_harden_admission_requests_total";
/// `kube_harden_changes_total`.
pub const CHANGES: &str = "kube_harden_changes_total";

/// Expected counter increments.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    expected: Samples,
}

impl Ledger {
    /// The expected increments of the requests and changes counters.
    pub fn expected(&self) -> &Samples {
        &self.expected
    }

    fn add(&mut self, series: Series, n: f64) {
        *self.expected.0.entry(series).or_insert(0.0) += n;
    }

    /// Records one review of `object` (a Pod or workload, as sent) in `namespace`, and returns
    /// what the rules decide for it.
    pub fn admission(
        &mut self,
        mode: Mode,
        operation: &str,
        namespace: &str,
        object: &Value,
    ) -> Result<Hardened> {
        let kind =
            WorkloadKind::of_object(object).ok_or("the ledger only records Pods and workloads")?;
        let hardened = harden::harden_workload(object, kind, &Policy::default())?;
        self.record(mode, operation, namespace, kind, &hardened);
        Ok(hardened)
    }

    /// Records one `pods/ephemeralcontainers` UPDATE: `pod` is the Pod as sent (with the new
    /// ephemeral containers), `existing` the names of those it had before.
    pub fn ephemeral(
        &mut self,
        namespace: &str,
        pod: &Value,
        existing: &HashSet<&str>,
    ) -> Result<Hardened> {
        let hardened = harden::harden_new_ephemeral_containers(
            &kube_harden::dom::Json::from(pod),
            existing,
            &Policy::default(),
        )?;
        self.record(
            Mode::Enforce,
            "UPDATE",
            namespace,
            WorkloadKind::Pod,
            &hardened,
        );
        Ok(hardened)
    }

    fn record(
        &mut self,
        mode: Mode,
        operation: &str,
        namespace: &str,
        kind: WorkloadKind,
        hardened: &Hardened,
    ) {
        let outcome = match (mode, hardened.is_changed()) {
            (_, false) => RequestOutcome::Unchanged,
            (Mode::Enforce, true) => RequestOutcome::Patched,
            (Mode::Audit, true) => RequestOutcome::WouldPatch,
        };
        self.add(
            Series::new(
                REQUESTS,
                &[
                    ("mode", mode.as_str()),
                    ("operation", operation),
                    ("kind", kind.as_str()),
                    ("outcome", outcome.as_str()),
                ],
            ),
            1.0,
        );
        for change in &hardened.changes {
            self.add(
                Series::new(
                    CHANGES,
                    &[
                        ("namespace", namespace),
                        ("kind", kind.as_str()),
                        ("change", change.name.as_str()),
                        ("outcome", change_label(mode, change.outcome)),
                    ],
                ),
                1.0,
            );
        }
    }
}

/// `object` with `hardened`'s patch applied: what the webhook's patch makes of it.
pub fn apply(object: &Value, hardened: &Hardened) -> Result<Value> {
    let mut out = object.clone();
    hardened.patch.apply(&mut out)?;
    Ok(out)
}
