//! The registered MutatingWebhookConfiguration is manifests/base as rendered by kustomize, with
//! only `clientConfig` changed (url + caBundle instead of the Service).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::Api;
use kube_harden_e2e::webhook::{self, CONFIGURATION_NAME};
use kube_harden_e2e::{Harness, Result};
use serde_json::{Value, json};

pub async fn webhook_configuration_comes_from_manifests(h: &Harness) -> Result<()> {
    let rendered = webhook::render_base(&h.controlplane().kubectl, h.repo())?;
    let base = rendered
        .iter()
        .find(|d| d["kind"] == "MutatingWebhookConfiguration")
        .ok_or("no MutatingWebhookConfiguration in manifests/base")?;
    let api: Api<MutatingWebhookConfiguration> = Api::all(h.client());
    let stored = serde_json::to_value(api.get(CONFIGURATION_NAME).await?)?;

    let base_hooks = base["webhooks"].as_array().ok_or("no webhooks")?;
    let stored_hooks = stored["webhooks"].as_array().ok_or("no webhooks stored")?;
    let names: Vec<&Value> = base_hooks.iter().map(|w| &w["name"]).collect();
    assert_eq!(
        names,
        [
            &json!("enforce.kube-harden.io"),
            &json!("audit.kube-harden.io")
        ]
    );
    assert_eq!(base_hooks.len(), stored_hooks.len());

    let rules = json!([
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
         "resources": ["pods"], "scope": "Namespaced"},
        {"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
         "resources": ["pods/ephemeralcontainers"], "scope": "Namespaced"},
        {"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
         "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
         "scope": "Namespaced"},
        {"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
         "resources": ["replicationcontrollers"], "scope": "Namespaced"},
        {"operations": ["CREATE", "UPDATE"], "apiGroups": ["batch"], "apiVersions": ["v1"],
         "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
    ]);
    for ((b, s), (mode, path)) in base_hooks
        .iter()
        .zip(stored_hooks)
        .zip([("enforce", "/mutate"), ("audit", "/audit")])
    {
        let name = &b["name"];
        // The manifest's settings, as the issue asks.
        assert_eq!(b["rules"], rules, "{name}: rules");
        assert_eq!(b["failurePolicy"], "Ignore", "{name}");
        assert_eq!(b["reinvocationPolicy"], "IfNeeded", "{name}");
        assert_eq!(b["timeoutSeconds"], 5, "{name}");
        assert_eq!(b["sideEffects"], "None", "{name}");
        assert_eq!(b["matchPolicy"], "Equivalent", "{name}");
        assert_eq!(b["admissionReviewVersions"], json!(["v1"]), "{name}");
        assert_eq!(
            b["namespaceSelector"],
            json!({"matchExpressions": [
                {"key": "kube-harden.io/mode", "operator": "In", "values": [mode]},
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                 "values": ["kube-system", "kube-harden"]},
            ]}),
            "{name}"
        );
        assert_eq!(
            b["clientConfig"]["service"],
            json!({"name": "kube-harden", "namespace": "kube-harden", "path": path, "port": 443}),
            "{name}"
        );
        // What the API server holds: the same, except clientConfig.
        let mut b_rest = b.clone();
        let mut s_rest = s.clone();
        let b_obj = b_rest.as_object_mut().ok_or("webhook is not an object")?;
        let s_obj = s_rest.as_object_mut().ok_or("webhook is not an object")?;
        b_obj.remove("clientConfig");
        let client_config = s_obj.remove("clientConfig").unwrap_or_default();
        // The API server fills in objectSelector {} and matchConditions defaults.
        for key in s_obj.keys().cloned().collect::<Vec<_>>() {
            if !b_obj.contains_key(&key) {
                assert!(
                    matches!(&s_obj[&key], Value::Object(m) if m.is_empty()),
                    "{name}: the API server has {key}: {}",
                    s_obj[&key]
                );
                s_obj.remove(&key);
            }
        }
        assert_eq!(
            b_rest, s_rest,
            "{name}: stored settings differ from manifests/base"
        );
        assert_eq!(client_config["url"], json!(h.webhook_url(path)), "{name}");
        assert!(client_config["caBundle"].is_string(), "{name}: caBundle");
        assert!(client_config.get("service").is_none(), "{name}: service");
    }
    println!(
        "registered {} webhooks from manifests/base with url {}",
        stored_hooks.len(),
        h.webhook_url("/{mutate,audit}")
    );
    Ok(())
}
