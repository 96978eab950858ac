//! The admission handler: AdmissionReview bytes in, AdmissionReview bytes out. Synchronous and
//! free of sockets, so tests and benchmarks call it directly; the server only moves bytes.
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

use std::borrow::Cow;
use std::collections::HashSet;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use kube::core::GroupVersionKind;
use kube::core::admission::{AdmissionResponse, Operation};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::harden::{
    self, Change, Finding, Hardened, Outcome, Policy, SKIP_ANNOTATION, WorkloadKind,
};
use crate::psa::Check;

mod images;
mod slim;
pub use images::{ImageSource, NoImages, images_of};
use slim::SlimObject;

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

/// At most this many findings become warnings; the rest are summarised in one line.
const MAX_FINDING_WARNINGS: usize = 5;

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    object: Option<SlimObject>,
    #[serde(default)]
    old_object: Option<Box<RawValue>>,
}

/// Just the ephemeral container names of the old Pod.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldPod<'a> {
    #[serde(borrow, default)]
    spec: Option<OldPodSpec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldPodSpec<'a> {
    #[serde(borrow, default)]
    ephemeral_containers: Option<Vec<Named<'a>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
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
    let parsed: ReviewIn = match serde_json::from_slice(body) {
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
            harden::harden_workload_with_images(&object, kind, policy, &lookup).map(|mut h| {
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

/// The request's envelope without its objects: what [`admit_unchanged`] needs to answer.
#[derive(Deserialize)]
struct EnvelopeIn {
    #[serde(default)]
    request: Option<EnvelopeRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeRequest {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: Option<GroupVersionKind>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default)]
    dry_run: Option<bool>,
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

fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
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

fn respond(mut report: Report, mode: Mode, hardened: Hardened) -> Reviewed {
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
fn allowed(
    mut report: Report,
    outcome: RequestOutcome,
    patch: Option<json_patch::Patch>,
    warnings: Vec<String>,
) -> Reviewed {
    report.outcome = outcome;
    let mut response = base_response(&report.uid);
    response.allowed = true;
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if let Some(patch) = patch {
        response = match response.with_patch(patch) {
            Ok(patched) => patched,
            Err(e) => return fail_open(report, "serialize_patch", e.to_string()),
        };
    }
    finish(report, response)
}

/// Admits unchanged with a warning: the rules could not read the object.
fn fail_open(mut report: Report, reason: &'static str, message: String) -> Reviewed {
    report.outcome = RequestOutcome::Error;
    let mut response = base_response(&report.uid);
    response.allowed = true;
    response.warnings = Some(vec![format!(
        "kube-harden could not harden this object and admitted it unchanged: {message}"
    )]);
    report.error = Some((reason, message));
    finish(report, response)
}

/// An `invalid` response: the review itself cannot be used.
fn invalid(mut report: Report, reason: &'static str, message: String) -> Reviewed {
    report.outcome = RequestOutcome::Invalid;
    let mut response = AdmissionResponse::invalid(&message);
    response.uid.clone_from(&report.uid);
    report.error = Some((reason, message));
    finish(report, response)
}

/// An allowed response carrying the request's UID.
fn base_response(uid: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.to_owned();
    response.allowed = true;
    response.result = Default::default();
    response
}

/// The response envelope as Kubernetes reads it. kube's `AdmissionResponse` serialises `patch`
/// (a Go `[]byte`) as an array of numbers, which the API server accepts but which is four times
/// the size of the base64 string Kubernetes itself writes; this writes base64.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

fn finish(report: Report, response: AdmissionResponse) -> Reviewed {
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            patch: response.patch.as_deref().map(|p| BASE64_STANDARD.encode(p)),
            patch_type: response.patch.as_ref().map(|_| "JSONPatch"),
            warnings: response.warnings.as_deref(),
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

/// The change outcome label for metrics: in audit mode an applicable change is `would_apply`.
pub fn change_label(mode: Mode, outcome: Outcome) -> &'static str {
    match (mode, outcome) {
        (Mode::Audit, Outcome::Applied) => "would_apply",
        (_, outcome) => outcome.label(),
    }
}
