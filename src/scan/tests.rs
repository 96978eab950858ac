//! Tests of the scan: rows from listed objects, owners, the table.

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
