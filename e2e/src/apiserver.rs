//! Small helpers against the API server: its `/metrics`, a labelled namespace, and Pod
//! Security admission's refusal of a request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::Result;
use crate::metrics::Samples;

/// The `/metrics` of the API server `client` talks to, parsed.
pub async fn apiserver_metrics(client: &kube::Client) -> Result<Samples> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(Samples::parse(&text))
}

/// Creates namespace `name` with `labels`.
pub async fn create_namespace(
    client: kube::Client,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<()> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}
    }))?;
    Api::<Namespace>::all(client)
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// The message of Pod Security admission's refusal of a request (403, "violates PodSecurity"),
/// or an error saying what `result` was instead (`what` names the request).
pub fn psa_refusal<T>(result: Result<T, kube::Error>, what: &str) -> Result<String> {
    match result {
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("violates PodSecurity") =>
        {
            Ok(status.message)
        }
        Err(e) => Err(format!("{what}: not refused by Pod Security: {e}").into()),
        Ok(_) => Err(format!("{what}: admitted, not refused by Pod Security").into()),
    }
}
