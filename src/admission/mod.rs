//! The admission handler: AdmissionReview bytes in, AdmissionReview bytes out. Synchronous and
//! free of sockets, so its tests (`tests.rs`: bytes in, bytes out) and the benchmarks call it
//! directly; the server only moves bytes.
//!
//! Implements <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request>
//! for `admission.k8s.io/v1`. The request is read with a lean struct rather than
//! `AdmissionReview<DynamicObject>`: `oldObject` is kept as raw bytes and parsed only for the
//! `pods/ephemeralcontainers` subresource (and then only the container names), which halves the
//! JSON work on UPDATE. The response is built with kube's `core::admission` types.
//!
//! Failure behaviour: a body that is not JSON gets HTTP 400; JSON that is not a usable
//! AdmissionReview gets an `invalid` AdmissionResponse. An object the rules cannot read is
//! admitted unchanged with a warning (fail-open, matching `failurePolicy: Ignore`): kube-harden
//! adds protection and must never become the reason a workload cannot be deployed.
//!
//! Parts: `wire` (the request and response as they cross the wire), `slim` (`request.object`
//! with only what the rules read), `respond` (the AdmissionResponse for each outcome); here, the
//! handler itself and what it reports.

use std::collections::HashSet;

use kube::core::admission::Operation;
use serde_json::value::RawValue;

use crate::harden::{self, Change, Finding, Outcome, Policy, WorkloadKind};
use crate::psa::Check;

mod images;
mod respond;
mod slim;
#[cfg(test)]
mod tests;
mod wire;

pub use images::{ImageSource, NoImages, images_of};
use respond::{allowed, fail_open, invalid, respond};
use slim::SlimObject;
use wire::{EnvelopeIn, Named, OldPod, ReviewIn, operation_label};

/// The AdmissionReview API version this webhook speaks.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Which webhook endpoint received the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `/mutate`: return the patch.
    Enforce,
    /// `/audit`: evaluate, return warnings only, never a patch.
    Audit,
}

impl Mode {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// What happened to one request, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// Enforce mode returned a patch.
    Patched,
    /// Audit mode found changes it would make.
    WouldPatch,
    /// Evaluated; nothing to change.
    Unchanged,
    /// Not a kind/operation kube-harden hardens; allowed as is.
    Ignored,
    /// The review could not be used; answered with an error.
    Invalid,
    /// The rules failed on the object; admitted unchanged (fail-open).
    Error,
}

impl RequestOutcome {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Patched => "patched",
            RequestOutcome::WouldPatch => "would_patch",
            RequestOutcome::Unchanged => "unchanged",
            RequestOutcome::Ignored => "ignored",
            RequestOutcome::Invalid => "invalid",
            RequestOutcome::Error => "error",
        }
    }
}

/// Everything the server needs to record about a review.
#[derive(Debug, Clone)]
pub struct Report {
    /// The request UID (empty when unreadable).
    pub uid: String,
    /// `CREATE`, `UPDATE`, ... (empty when unreadable).
    pub operation: &'static str,
    /// The object's kind, as a bounded label: a workload kind or `other`.
    pub kind: &'static str,
    /// Namespace of the object (empty for cluster-scoped or unreadable).
    pub namespace: String,
    /// Name of the object (empty on CREATE with generateName).
    pub name: String,
    /// Whether this is a dry run (nothing will be stored).
    pub dry_run: bool,
    /// What happened.
    pub outcome: RequestOutcome,
    /// The rules' decisions.
    pub changes: Vec<Change>,
    /// What went wrong, for `Invalid` and `Error`: a stable reason label and a message.
    pub error: Option<(&'static str, String)>,
    /// Risks left standing in the hardened pod spec.
    pub findings: Vec<Finding>,
    /// The `restricted` checks the hardened pod spec fails (empty: compliant); `None` when not
    /// evaluated.
    pub restricted: Option<Vec<Check>>,
}

impl Report {
    /// A report of nothing read yet, with `outcome`.
    fn empty(outcome: RequestOutcome) -> Self {
        Self {
            uid: String::new(),
            operation: "",
            kind: "",
            namespace: String::new(),
            name: String::new(),
            dry_run: false,
            outcome,
            changes: Vec::new(),
            error: None,
            findings: Vec::new(),
            restricted: None,
        }
    }
}

/// The answer to one review: HTTP status and body.
#[derive(Debug)]
pub struct Reviewed {
    /// 200, or 400 when the body is not JSON.
    pub status: u16,
    /// The AdmissionReview (or a plain-text error for 400).
    pub body: Vec<u8>,
    /// For metrics and logs.
    pub report: Report,
}

/// Reviews one AdmissionReview body.
pub fn review(body: &[u8], mode: Mode, policy: &Policy) -> Reviewed {
    review_with_images(body, mode, policy, &mut NoImages)
}

/// [`review`], with the facts `images` has about the pod spec's images (`--resolve-images`);
/// its warnings join the response's.
pub fn review_with_images(
    body: &[u8],
    mode: Mode,
    policy: &Policy,
    images: &mut dyn ImageSource,
) -> Reviewed {
    let mut report = Report::empty(RequestOutcome::Invalid);
    // One UTF-8 check of the whole body rather than one per string the parser keeps (`from_str`
    // skips them); a body that is not UTF-8 is read as bytes, exactly as before (the parser only
    // checks the strings it reads, so such a body may still be a valid review).
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<ReviewIn>(text),
        Err(_) => serde_json::from_slice::<ReviewIn>(body),
    };
    let parsed: ReviewIn = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.is_data() => {
            return invalid(
                report,
                "not_admission_review",
                format!("not an AdmissionReview: {e}"),
            );
        }
        Err(e) => {
            let message = format!("request body is not JSON: {e}");
            report.error = Some(("malformed_body", message.clone()));
            return Reviewed {
                status: 400,
                body: message.into_bytes(),
                report,
            };
        }
    };
    if parsed.kind != "AdmissionReview" || parsed.api_version != API_VERSION {
        if let Some(req) = &parsed.request {
            report.uid.clone_from(&req.uid);
        }
        let message = format!(
            "expected kind AdmissionReview, apiVersion {API_VERSION}; got kind {:?}, apiVersion {:?}",
            parsed.kind, parsed.api_version
        );
        return invalid(report, "wrong_api_version", message);
    }
    let Some(req) = parsed.request else {
        return invalid(
            report,
            "missing_request",
            "AdmissionReview has no request".into(),
        );
    };
    report.uid = req.uid;
    report.operation = operation_label(&req.operation);
    report.namespace = req.namespace.unwrap_or_default();
    report.name = req.name.unwrap_or_default();
    report.dry_run = req.dry_run.unwrap_or(false);
    let workload = WorkloadKind::from_group_kind(&req.kind.group, &req.kind.kind);
    report.kind = workload.map_or("other", WorkloadKind::as_str);

    let Some(kind) = workload else {
        return allowed(report, RequestOutcome::Ignored, None, Vec::new());
    };
    let sub_resource = req.sub_resource.as_deref().unwrap_or_default();
    let target = match (kind, sub_resource, &req.operation) {
        (WorkloadKind::Pod, "", Operation::Create) => Target::Object,
        (WorkloadKind::Pod, "ephemeralcontainers", Operation::Update) => Target::NewEphemeral,
        (WorkloadKind::Pod, _, _) => Target::None,
        (_, "", Operation::Create | Operation::Update) => Target::Object,
        _ => Target::None,
    };
    if target == Target::None {
        return allowed(report, RequestOutcome::Ignored, None, Vec::new());
    }
    let Some(SlimObject {
        value: object,
        over_budget,
    }) = req.object
    else {
        return invalid(report, "missing_object", "request.object is missing".into());
    };
    if over_budget {
        let limit = slim::MAX_KEPT_VALUES;
        let message = format!(
            "more JSON values in the object's spec and annotations than the limit of {limit}"
        );
        return fail_open(report, "budget", message);
    }
    let result = match target {
        Target::NewEphemeral => match existing_ephemeral_names(req.old_object.as_deref()) {
            Ok(names) => {
                let existing: HashSet<&str> = names.iter().map(|n| n.name.as_ref()).collect();
                harden::harden_new_ephemeral_containers(&object, &existing, policy)
            }
            Err(message) => {
                return fail_open(report, "missing_old_object", message);
            }
        },
        _ => {
            let (lookup, image_warnings) = if images.enabled() {
                images.lookup(&images_of(&object, kind))
            } else {
                Default::default()
            };
            harden::harden_json(&object, kind, policy, &lookup).map(|mut h| {
                h.warnings.extend(images::capped(image_warnings));
                h
            })
        }
    };
    match result {
        Ok(hardened) => respond(report, mode, hardened),
        Err(e) => fail_open(report, e.metric_label(), e.to_string()),
    }
}

/// Admits the object of `body` unchanged, with a warning, without reviewing it: the server's
/// answer when a review does not finish within its deadline (`reason` is the metric label,
/// from a fixed set). Reads only the request's envelope (uid, kind, namespace, name); the
/// objects are skipped, not stored.
pub fn admit_unchanged(body: &[u8], reason: &'static str, message: String) -> Reviewed {
    let mut report = Report::empty(RequestOutcome::Error);
    if let Some(req) = serde_json::from_slice::<EnvelopeIn>(body)
        .ok()
        .and_then(|e| e.request)
    {
        report.uid = req.uid;
        report.operation = req.operation.as_ref().map_or("", operation_label);
        report.kind = req.kind.as_ref().map_or("other", |gvk| {
            WorkloadKind::from_group_kind(&gvk.group, &gvk.kind)
                .map_or("other", WorkloadKind::as_str)
        });
        report.namespace = req.namespace.unwrap_or_default();
        report.name = req.name.unwrap_or_default();
        report.dry_run = req.dry_run.unwrap_or(false);
    }
    fail_open(report, reason, message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Object,
    NewEphemeral,
    None,
}

/// The names of the ephemeral containers the Pod already had.
fn existing_ephemeral_names(old: Option<&RawValue>) -> Result<Vec<Named<'_>>, String> {
    let old = old.ok_or("request.oldObject is missing; ephemeral containers left unchanged")?;
    let pod: OldPod<'_> = serde_json::from_str(old.get())
        .map_err(|e| format!("request.oldObject is not a Pod: {e}"))?;
    Ok(pod
        .spec
        .and_then(|s| s.ephemeral_containers)
        .unwrap_or_default())
}

/// The change outcome label for metrics: in audit mode an applicable change is `would_apply`.
pub fn change_label(mode: Mode, outcome: Outcome) -> &'static str {
    match (mode, outcome) {
        (Mode::Audit, Outcome::Applied) => "would_apply",
        (_, outcome) => outcome.label(),
    }
}
