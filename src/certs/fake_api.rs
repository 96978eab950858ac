//! A fake API server for [`CertManager`](super::CertManager): one Secret and one
//! MutatingWebhookConfiguration with resourceVersions, compare-and-swap writes, and a write by
//! "another replica" injected just before one of ours, so the conflict paths run
//! deterministically.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

/// What the fake API server holds, and what it was asked.
#[derive(Default)]
pub struct State {
    pub secret: Option<Value>,
    pub config: Option<Value>,
    pub rv: u64,
    /// Before our next request with this method: store this object (for a Secret write)
    /// or just move the resourceVersion on (PATCH), and answer 409.
    pub interfere: Option<(Method, Option<Value>)>,
    pub requests: Vec<String>,
}

/// The state, shared with the test.
pub type Shared = Arc<Mutex<State>>;

fn reply(code: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn status(code: u16, reason: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": reason, "reason": reason, "code": code});
    reply(code, &body)
}

/// A client talking to the fake API server over `state`.
pub fn client(state: Shared) -> kube::Client {
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let state = Arc::clone(&state);
        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
    });
    kube::Client::new(service, "default")
}

fn rv_of(v: &Value) -> &str {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

async fn handle(state: &Shared, req: Request<kube::client::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let is_secret = parts.uri.path().contains("/secrets");
    let kind = if is_secret { "secret" } else { "config" };
    let mut guard = state.lock().unwrap();
    let State {
        secret,
        config,
        rv,
        interfere,
        requests,
    } = &mut *guard;
    let slot = if is_secret { secret } else { config };
    if interfere.as_ref().is_some_and(|(m, _)| *m == parts.method) {
        let (method, winner) = interfere.take().unwrap();
        *rv += 1;
        match winner {
            Some(mut object) => {
                object["metadata"]["resourceVersion"] = rv.to_string().into();
                *slot = Some(object);
            }
            None => {
                if let Some(object) = slot.as_mut() {
                    object["metadata"]["resourceVersion"] = rv.to_string().into();
                }
            }
        }
        requests.push(format!("{method} {kind}: 409"));
        let reason = if method == Method::POST {
            "AlreadyExists"
        } else {
            "Conflict"
        };
        return status(409, reason);
    }
    requests.push(format!("{} {kind}", parts.method));
    match (parts.method, slot.as_mut()) {
        (Method::GET, Some(object)) => reply(200, object),
        (Method::GET, None) => status(404, "NotFound"),
        (Method::POST, Some(_)) => status(409, "AlreadyExists"),
        (Method::POST, None) => {
            *rv += 1;
            body["metadata"]["resourceVersion"] = rv.to_string().into();
            *slot = Some(body.clone());
            reply(201, &body)
        }
        (Method::PUT, Some(object)) if rv_of(&body) == rv_of(object) => {
            *rv += 1;
            body["metadata"]["resourceVersion"] = rv.to_string().into();
            *object = body.clone();
            reply(200, &body)
        }
        (Method::PATCH, Some(object)) if rv_of(&body) == rv_of(object) => {
            // The strategic merge kube-harden sends: webhooks by name, caBundle only.
            for patch in body["webhooks"].as_array().unwrap() {
                let webhook = object["webhooks"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|w| w["name"] == patch["name"])
                    .expect("patched webhook exists");
                webhook["clientConfig"]["caBundle"] = patch["clientConfig"]["caBundle"].clone();
            }
            *rv += 1;
            object["metadata"]["resourceVersion"] = rv.to_string().into();
            reply(200, object)
        }
        (Method::PUT | Method::PATCH, Some(_)) => status(409, "Conflict"),
        (_, None) => status(404, "NotFound"),
        (method, Some(_)) => status(405, method.as_str()),
    }
}
