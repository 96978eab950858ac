//! `kube-harden scan`: a read-only look at a live cluster. Lists the workloads of all or chosen
//! namespaces (get/list only), runs the same rules the webhook runs, and reports per workload
//! what enforce mode would change and which findings would remain: the effect of labelling a
//! namespace, before labelling it.
//!
//! Objects are read as raw JSON through the kube client (never typed structs, so the rules see
//! exactly what the webhook would see). Objects a controller owns (a ReplicaSet of a Deployment,
//! a Pod of a ReplicaSet, a Job of a CronJob) are reported through their owner's template.

pub mod command;

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectList, Request, Resource as _,
};

use crate::harden::{self, ChangeName, Finding, Policy, WorkloadKind};

/// Page size of list requests.
const PAGE: u32 = 500;

/// What enforce mode would do to one workload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRow {
    /// The namespace.
    pub namespace: String,
    /// The kind.
    pub kind: &'static str,
    /// The name.
    pub name: String,
    /// Change names enforce mode would apply (what `kube-harden.io/hardened` would say).
    pub would_change: Vec<ChangeName>,
    /// Findings that would remain.
    pub findings: Vec<Finding>,
    /// `restricted` checks that would still fail (empty: compliant after hardening).
    pub restricted_failing: Vec<&'static str>,
    /// Why the rules could not read the object, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No kubeconfig or in-cluster configuration.
    #[error("cannot configure a Kubernetes client: {0}")]
    Config(String),
    /// A list request failed.
    #[error("cannot list {resource}: {source}")]
    List {
        /// The resource path.
        resource: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Whether a controller of a kind kube-harden reports owns the object (a Pod is never one).
fn owned_by_workload(object: &Value) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|owner| {
            owner.get("controller").and_then(Value::as_bool) == Some(true)
                && owner
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| {
                        WorkloadKind::all().any(|k| k != WorkloadKind::Pod && k.as_str() == kind)
                    })
        })
}

/// Runs the rules over listed objects (pure; the I/O is in [`list`]).
pub fn analyze(objects: &[(WorkloadKind, Value)], policy: &Policy) -> Vec<ScanRow> {
    analyze_with_images(objects, policy, &crate::harden::ImageLookup::new())
}

/// The distinct container images of the listed objects, for `--resolve-images`.
pub fn images_in(objects: &[(WorkloadKind, Value)]) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    for (kind, object) in objects.iter().filter(|(_, o)| !owned_by_workload(o)) {
        let object = crate::dom::Json::from(object);
        for image in crate::admission::images_of(&object, *kind) {
            if !images.iter().any(|known| known == image) {
                images.push(image.to_owned());
            }
        }
    }
    images
}

/// [`analyze`] with what the images say about themselves (`--resolve-images`).
pub fn analyze_with_images(
    objects: &[(WorkloadKind, Value)],
    policy: &Policy,
    images: &crate::harden::ImageLookup,
) -> Vec<ScanRow> {
    let mut rows: Vec<ScanRow> = objects
        .iter()
        .filter(|(_, object)| !owned_by_workload(object))
        .map(|(kind, object)| {
            let text = |pointer: &str| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut row = ScanRow {
                namespace: text("/metadata/namespace"),
                kind: kind.as_str(),
                name: text("/metadata/name"),
                would_change: Vec::new(),
                findings: Vec::new(),
                restricted_failing: Vec::new(),
                error: None,
            };
            match harden::harden_workload_with_images(object, *kind, policy, images) {
                Ok(hardened) => {
                    row.would_change = hardened.applied_names();
                    row.findings = hardened.findings;
                    row.restricted_failing = hardened
                        .restricted
                        .unwrap_or_default()
                        .iter()
                        .map(|v| v.check.as_str())
                        .collect();
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    rows
}

/// Lists every workload kind in `namespaces` (all namespaces when empty), page by page.
///
/// kube's [`Request`] and [`ListParams`] build the URLs (paths, `limit`, escaped `continue`
/// tokens), as `Api::list` does; the items are kept as raw JSON rather than `DynamicObject`,
/// whose typed `metadata` would drop or reorder what the webhook would see.
pub async fn list(
    client: &kube::Client,
    namespaces: &[String],
) -> Result<Vec<(WorkloadKind, Value)>, ScanError> {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let mut objects = Vec::new();
    for kind in WorkloadKind::all() {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(kind.group(), kind.version(), kind.as_str()),
            kind.plural(),
        );
        for scope in &scopes {
            let path = DynamicObject::url_path(&resource, *scope);
            let request = Request::new(&path);
            let mut params = ListParams::default().limit(PAGE);
            loop {
                let page: ObjectList<Value> = async {
                    client
                        .request(request.list(&params).map_err(kube::Error::BuildRequest)?)
                        .await
                }
                .await
                .map_err(|source| ScanError::List {
                    resource: path.clone(),
                    source,
                })?;
                objects.extend(page.items.into_iter().map(|item| (kind, item)));
                match page.metadata.continue_.filter(|t| !t.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
        }
    }
    Ok(objects)
}

/// A table: one line per workload.
pub fn render_table(rows: &[ScanRow]) -> String {
    let mut out = String::new();
    let header = [
        "NAMESPACE",
        "KIND",
        "NAME",
        "WOULD CHANGE",
        "FINDINGS",
        "RESTRICTED",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let changes = if r.would_change.is_empty() {
                "-".to_owned()
            } else {
                r.would_change
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let findings = if r.findings.is_empty() {
                "-".to_owned()
            } else {
                let mut names: Vec<&str> = r.findings.iter().map(|f| f.name.as_str()).collect();
                names.sort();
                names.dedup();
                format!("{} ({})", r.findings.len(), names.join(","))
            };
            let restricted = match (&r.error, r.restricted_failing.is_empty()) {
                (Some(e), _) => format!("error: {e}"),
                (None, true) => "pass".to_owned(),
                (None, false) => format!("fail ({})", r.restricted_failing.join(",")),
            };
            [
                r.namespace.clone(),
                r.kind.to_owned(),
                r.name.clone(),
                changes,
                findings,
                restricted,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut line = |cols: [&str; 6]| {
        let mut text = String::new();
        for (i, (col, w)) in cols.iter().zip(widths).enumerate() {
            if i == 5 {
                text.push_str(col);
            } else {
                let _ = write!(text, "{col:<w$}   ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    out
}

#[cfg(test)]
mod tests;
