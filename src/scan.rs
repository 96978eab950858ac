//! `kube-harden scan`: a read-only look at a live cluster. Lists the workloads of all or chosen
//! namespaces (get/list only), runs the same rules the webhook runs, and reports per workload
//! what enforce mode would change and which findings would remain: the effect of labelling a
//! namespace, before labelling it.
//!
//! Objects are read as raw JSON through the kube client (never typed structs, so the rules see
//! exactly what the webhook would see). Objects a controller owns (a ReplicaSet of a Deployment,
//! a Pod of a ReplicaSet, a Job of a CronJob) are reported through their owner's template.

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
        for image in crate::admission::images_of(object, *kind) {
            if !images.contains(&image) {
                images.push(image);
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
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})
    }

    #[test]
    fn owned_objects_are_reported_through_their_owner() {
        let owned_pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop",
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
        let operator_pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "shop",
                         "ownerReferences": [{"kind": "PostgresCluster", "name": "db", "controller": true}]},
            "spec": {"containers": [{"name": "pg", "image": "pg:16"}]}});
        let objects = vec![
            (WorkloadKind::Deployment, deployment("web", json!({}))),
            (WorkloadKind::Pod, owned_pod),
            (WorkloadKind::Pod, operator_pod),
        ];
        let rows = analyze(&objects, &Policy::default());
        let names: Vec<(&str, &str)> = rows.iter().map(|r| (r.kind, r.name.as_str())).collect();
        assert_eq!(names, [("Deployment", "web"), ("Pod", "db-0")]);
    }

    #[test]
    fn rows_say_what_enforce_would_do() {
        let objects = vec![
            (
                WorkloadKind::Deployment,
                deployment("opted-out", json!({"kube-harden.io/skip": "true"})),
            ),
            (WorkloadKind::Deployment, deployment("legacy", json!({}))),
        ];
        let rows = analyze(&objects, &Policy::default());
        assert_eq!(rows[0].name, "legacy");
        assert!(
            rows[0]
                .would_change
                .contains(&ChangeName::ReadOnlyRootFilesystem)
        );
        assert!(rows[0].restricted_failing.is_empty());
        assert_eq!(rows[1].would_change, Vec::<ChangeName>::new());
        assert!(rows[1].restricted_failing.contains(&"runAsNonRoot"));
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE   KIND         NAME"),
            "{table}"
        );
        assert!(lines[1].contains("runAsNonRoot,runAsUser"), "{table}");
        assert!(lines[1].ends_with("pass"), "{table}");
        assert!(
            lines[2].contains("fail (allowPrivilegeEscalation"),
            "{table}"
        );
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[0]["wouldChange"][0], "runAsNonRoot");
        assert_eq!(json[0]["findings"][0]["name"], "noLivenessProbe");
    }

    /// An API server that answers every list with nothing, except pods: two pages, the first
    /// with a continue token that needs escaping. Records the request URIs.
    fn paging_api(uris: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> kube::Client {
        use http_body_util::Full;
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let uri = req.uri().to_string();
            uris.lock().unwrap().push(uri.clone());
            let pod = |name: &str| json!({"metadata": {"name": name, "namespace": "shop"}});
            let page = if !uri.contains("/pods?") {
                json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
            } else if uri.contains("continue=") {
                json!({"kind": "PodList", "apiVersion": "v1",
                       "metadata": {"continue": ""}, "items": [pod("b")]})
            } else {
                json!({"kind": "PodList", "apiVersion": "v1",
                       "metadata": {"continue": "a+b/c=="}, "items": [pod("a")]})
            };
            let response = http::Response::new(Full::new(bytes::Bytes::from(page.to_string())));
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        kube::Client::new(service, "default")
    }

    #[tokio::test]
    async fn lists_every_kind_page_by_page() {
        let uris = std::sync::Arc::default();
        let client = paging_api(std::sync::Arc::clone(&uris));
        let objects = list(&client, &["shop".to_owned()]).await.unwrap();
        let names: Vec<(WorkloadKind, &str)> = objects
            .iter()
            .map(|(kind, o)| (*kind, o["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(names, [(WorkloadKind::Pod, "a"), (WorkloadKind::Pod, "b")]);
        // kube's query builder starts with an empty pair (`?&limit=`); the API server skips it.
        let uris: Vec<String> = uris
            .lock()
            .unwrap()
            .iter()
            .map(|u| u.replace("?&", "?"))
            .collect();
        assert_eq!(
            uris,
            [
                "/api/v1/namespaces/shop/pods?limit=500",
                "/api/v1/namespaces/shop/pods?limit=500&continue=a%2Bb%2Fc%3D%3D",
                "/apis/apps/v1/namespaces/shop/deployments?limit=500",
                "/apis/apps/v1/namespaces/shop/statefulsets?limit=500",
                "/apis/apps/v1/namespaces/shop/daemonsets?limit=500",
                "/apis/apps/v1/namespaces/shop/replicasets?limit=500",
                "/api/v1/namespaces/shop/replicationcontrollers?limit=500",
                "/apis/batch/v1/namespaces/shop/jobs?limit=500",
                "/apis/batch/v1/namespaces/shop/cronjobs?limit=500",
            ]
        );
        let all = list(&paging_api(Default::default()), &[]).await.unwrap();
        assert_eq!(all.len(), 2);
    }
}
