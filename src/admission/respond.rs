//! The AdmissionResponse for each outcome: allowed with the patch and the warnings, admitted
//! unchanged with a warning (fail-open), or `invalid`; serialised as Kubernetes reads it.

use kube::core::Status;
use kube::core::admission::AdmissionResponse;

use super::wire::{Base64, ResponseOut, ReviewOut};
use super::{API_VERSION, Mode, Report, RequestOutcome, Reviewed};
use crate::harden::{Hardened, Patch, SKIP_ANNOTATION};
use crate::psa::Check;

/// At most this many findings become warnings; the rest are summarised in one line.
const MAX_FINDING_WARNINGS: usize = 5;

pub(super) fn respond(mut report: Report, mode: Mode, hardened: Hardened) -> Reviewed {
    let names: Vec<&str> = hardened
        .applied_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    let mut warnings: Vec<String> = hardened
        .warnings
        .iter()
        .map(|w| format!("kube-harden: {w}"))
        .collect();
    let changed = hardened.is_changed();
    let (outcome, patch) = match (mode, changed) {
        (_, false) => (RequestOutcome::Unchanged, None),
        // A patch with no change name only copies the workload's kube-harden annotations to its
        // pod template; the warnings say so.
        (Mode::Enforce, true) => {
            if !names.is_empty() {
                warnings.insert(0, format!("kube-harden added: {}", names.join(", ")));
                warnings.push(format!(
                    "kube-harden: to opt out, annotate {SKIP_ANNOTATION}=\"<names>\" or \"true\""
                ));
            }
            (RequestOutcome::Patched, Some(hardened.patch))
        }
        (Mode::Audit, true) => {
            if !names.is_empty() {
                warnings.insert(
                    0,
                    format!("kube-harden (audit) would add: {}", names.join(", ")),
                );
            }
            (RequestOutcome::WouldPatch, None)
        }
    };
    for finding in hardened.findings.iter().take(MAX_FINDING_WARNINGS) {
        warnings.push(format!("kube-harden finding: {finding}"));
    }
    if hardened.findings.len() > MAX_FINDING_WARNINGS {
        warnings.push(format!(
            "kube-harden: {} more findings (kube-harden harden --findings lists them all)",
            hardened.findings.len() - MAX_FINDING_WARNINGS
        ));
    }
    let restricted: Option<Vec<Check>> = hardened.restricted.map(|violations| {
        let mut checks: Vec<Check> = violations.into_iter().map(|v| v.check).collect();
        checks.dedup();
        checks
    });
    if let Some(failing) = restricted.as_ref().filter(|f| !f.is_empty()) {
        let names: Vec<&str> = failing.iter().map(|c| c.as_str()).collect();
        warnings.push(format!(
            "kube-harden: still fails Pod Security restricted: {}",
            names.join(", ")
        ));
    }
    report.changes = hardened.changes;
    report.findings = hardened.findings;
    report.restricted = restricted;
    allowed(report, outcome, patch, warnings)
}

/// An allowed response, with the patch if any.
pub(super) fn allowed(
    mut report: Report,
    outcome: RequestOutcome,
    patch: Option<Patch>,
    warnings: Vec<String>,
) -> Reviewed {
    report.outcome = outcome;
    // The patch's JSON, written once from the rules' values; the response carries it as
    // base64, written into the answer as a raw JSON string (`wire::Base64`).
    let patch = match patch.as_ref().map(serde_json::to_vec).transpose() {
        Ok(patch) => patch,
        Err(e) => return fail_open(report, "serialize_patch", e.to_string()),
    };
    let warnings = (!warnings.is_empty()).then_some(warnings.as_slice());
    finish(report, true, &Status::default(), patch.as_deref(), warnings)
}

/// Admits unchanged with a warning: the rules could not read the object.
pub(super) fn fail_open(mut report: Report, reason: &'static str, message: String) -> Reviewed {
    report.outcome = RequestOutcome::Error;
    let warnings = [format!(
        "kube-harden could not harden this object and admitted it unchanged: {message}"
    )];
    report.error = Some((reason, message));
    finish(report, true, &Status::default(), None, Some(&warnings))
}

/// An `invalid` response: the review itself cannot be used.
pub(super) fn invalid(mut report: Report, reason: &'static str, message: String) -> Reviewed {
    report.outcome = RequestOutcome::Invalid;
    let response = AdmissionResponse::invalid(&message);
    report.error = Some((reason, message));
    finish(report, response.allowed, &response.result, None, None)
}

/// The AdmissionReview carrying the request's UID, serialised once.
fn finish(
    report: Report,
    allowed: bool,
    status: &Status,
    patch: Option<&[u8]>,
    warnings: Option<&[String]>,
) -> Reviewed {
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &report.uid,
            allowed,
            status,
            patch: patch.map(Base64),
            patch_type: patch.map(|_| "JSONPatch"),
            warnings,
        },
    };
    match serde_json::to_vec(&out) {
        Ok(body) => Reviewed {
            status: 200,
            body,
            report,
        },
        // A response of strings and booleans always serialises; answer 500 if it ever does not.
        Err(e) => Reviewed {
            status: 500,
            body: format!("cannot serialise the response: {e}").into_bytes(),
            report,
        },
    }
}
