//! A second mutating webhook, as a sidecar injector or a platform policy would be: it runs after
//! kube-harden (its configuration's name sorts after `kube-harden`, and the API server calls
//! configurations in name order), adds a container to every Pod it sees and removes the
//! `kube-harden.io/skip` annotation. The tests use it to check what kube-harden's
//! `reinvocationPolicy: IfNeeded` guarantees, and what a `matchConditions` skip would break
//! (docs/operations.md, "Requests kube-harden is not spared").
//!
//! HTTPS on 127.0.0.1 (hyper, HTTP/1.1, rustls), answering `admission.k8s.io/v1` reviews with
//! an RFC 6902 patch. Registration: <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#reinvocation-policy>.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::Result;
use crate::webhook::Tls;

/// The name of the container the injector adds.
pub const SIDECAR: &str = "injected-sidecar";
/// Its configuration's name: sorts after `kube-harden`, so it is called after kube-harden.
pub const CONFIGURATION_NAME: &str = "zz-e2e-injector";
/// The namespace label that sends a namespace's Pods to the injector (value `on`).
pub const NAMESPACE_LABEL: &str = "e2e.kube-harden.io/injector";

/// The running injector: its URL, the CA of its certificate, and how many reviews it answered.
pub struct Injector {
    /// `https://127.0.0.1:<port>/inject`.
    pub url: String,
    /// The CA that signed its serving certificate (the configuration's `caBundle`).
    pub ca_pem: String,
    calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Injector {
    /// Makes a certificate in `dir` and starts serving on a free port of 127.0.0.1 (on the
    /// current tokio runtime).
    pub async fn start(dir: &Path) -> Result<Self> {
        let tls = Tls::create(dir)?;
        let certs =
            CertificateDer::pem_file_iter(&tls.cert_file)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&tls.key_file)?;
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let calls = counted.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| answer(req, calls.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            url: format!("https://127.0.0.1:{port}/inject"),
            ca_pem: tls.ca_pem,
            calls,
            task,
        })
    }

    /// How many reviews it has answered.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Its MutatingWebhookConfiguration: Pods on CREATE in namespaces labelled
    /// [`NAMESPACE_LABEL`]`=on`, never reinvoked, failing closed (a test must not pass because
    /// the injector was silently skipped).
    pub fn configuration(&self) -> Result<MutatingWebhookConfiguration> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": CONFIGURATION_NAME},
            "webhooks": [{
                "name": "inject.e2e.kube-harden.io",
                "clientConfig": {
                    "url": self.url,
                    "caBundle": ByteString(self.ca_pem.as_bytes().to_vec()),
                },
                "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "on"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}],
                "reinvocationPolicy": "Never",
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
            }]
        }))?)
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the injector does to a Pod: `pod` with the sidecar appended (unless it has one) and
/// without `kube-harden.io/skip`. The tests compute what kube-harden is sent on reinvocation
/// with it.
pub fn inject(pod: &Value) -> Result<Value> {
    let mut out = pod.clone();
    json_patch::patch(
        &mut out,
        &json_patch::Patch(serde_json::from_value(patch_for(pod))?),
    )?;
    Ok(out)
}

/// The RFC 6902 operations of [`inject`].
fn patch_for(pod: &Value) -> Value {
    let mut ops = Vec::new();
    let has_sidecar = pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == SIDECAR));
    if !has_sidecar {
        ops.push(json!({"op": "add", "path": "/spec/containers/-",
                        "value": {"name": SIDECAR, "image": "example.com/sidecar:1"}}));
    }
    if pod["metadata"]["annotations"]
        .get(kube_harden::harden::SKIP_ANNOTATION)
        .is_some()
    {
        ops.push(json!({"op": "remove", "path": "/metadata/annotations/kube-harden.io~1skip"}));
    }
    Value::Array(ops)
}

async fn answer(
    req: Request<Incoming>,
    calls: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let request = &review["request"];
    calls.fetch_add(1, Ordering::SeqCst);
    let patch = serde_json::to_vec(&patch_for(&request["object"])).unwrap_or_default();
    let out = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": request["uid"],
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": BASE64_STANDARD.encode(patch),
        }
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::to_vec(&out).unwrap_or_default(),
        )))
        .unwrap_or_default())
}
