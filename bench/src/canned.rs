//! The baseline: a minimal hyper + rustls server with the same stack as kube-harden (tokio
//! multi-thread runtime, rustls with ring, TLS 1.3/1.2, HTTP/1.1 and HTTP/2 by ALPN) that reads
//! the whole body and answers a canned AdmissionReview without parsing anything. Its throughput
//! is the transport's ceiling on this machine.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The answer: an allowed AdmissionReview with a one-operation patch (330 bytes; kube-harden's
/// answer to the Pod CREATE fixture is about ten times that).
pub const CANNED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true,"status":{"metadata":{}},"patch":"W3sib3AiOiJhZGQiLCJwYXRoIjoiL3NwZWMvc2VjdXJpdHlDb250ZXh0L3J1bkFzVXNlciIsInZhbHVlIjoyODY2fV0=","patchType":"JSONPatch","warnings":["kube-harden added: runAsUser"]}}"#;

/// Serves on `listener` until the process ends: [`CANNED`], or for a path of `answers` the bytes
/// it maps to (e.g. kube-harden's own answer to a body, to carry the same bytes back).
pub async fn serve(
    listener: TcpListener,
    cert_pem: &[u8],
    key_pem: &[u8],
    answers: HashMap<String, Bytes>,
) {
    let body = Bytes::from_static(CANNED.as_bytes());
    serve_with(listener, cert_pem, key_pem, move |path, _| {
        answers.get(path).cloned().unwrap_or_else(|| body.clone())
    })
    .await;
}

/// Serves on `listener` until the process ends, answering each request with
/// `answer(path, whole request body)` (same stack as [`serve`]; `patch-shapes` answers there).
pub async fn serve_with<F>(listener: TcpListener, cert_pem: &[u8], key_pem: &[u8], answer: F)
where
    F: Fn(&str, Bytes) -> Bytes + Send + Sync + 'static,
{
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem).expect("key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let answer = Arc::new(answer);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, answer) =
            (acceptor.clone(), Arc::clone(&builder), Arc::clone(&answer));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let answer = Arc::clone(&answer);
                    async move {
                        // Read the whole request, as a real handler must.
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut response = Response::new(Full::new(answer(&path, body)));
                        response
                            .headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(response)
                    }
                });
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
