//! Real clients for the tests: HTTP/1.1 or HTTP/2 over rustls (verifying the server against the
//! test CA, with a client certificate when asked), a plain-HTTP GET for the metrics listener, and
//! a raw HTTP/1.1 exchange for clients that misbehave on purpose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::pki::Pair;

/// A plain-HTTP GET (the metrics listener).
pub async fn http_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// HTTP version the client negotiates through ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http1,
    Http2,
}

pub const VERSIONS: [Version; 2] = [Version::Http1, Version::Http2];

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One kept-alive client connection.
pub struct Client {
    sender: Sender,
    /// The leaf certificate the server presented.
    pub peer_cert: Vec<u8>,
}

pub fn tls_connector(ca_pem: &str, alpn: &[u8], client: Option<&Pair>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(ca_pem) {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(pair) => builder
            .with_client_auth_cert(
                rustls_pemfile_certs(&pair.cert_pem),
                <rustls::pki_types::PrivateKeyDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
                    pair.key_pem.as_bytes(),
                )
                .unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

fn rustls_pemfile_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Connects with TLS (verifying the server against `ca_pem` for 127.0.0.1).
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[u8],
    client: Option<&Pair>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tls_connector(ca_pem, alpn, client).connect(name, tcp).await
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        ca_pem: &str,
        version: Version,
        client_cert: Option<&Pair>,
    ) -> std::io::Result<Self> {
        let alpn: &[u8] = match version {
            Version::Http1 => b"http/1.1",
            Version::Http2 => b"h2",
        };
        let tls = tls_connect(addr, ca_pem, alpn, client_cert).await?;
        let (_, session) = tls.get_ref();
        assert_eq!(session.alpn_protocol(), Some(alpn), "ALPN negotiated");
        let peer_cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let io = TokioIo::new(tls);
        let sender = match version {
            Version::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H1(sender)
            }
            Version::Http2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        };
        Ok(Self { sender, peer_cert })
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://127.0.0.1{path}"))
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .unwrap();
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// POSTs an AdmissionReview and returns the status and parsed JSON (Null if not JSON).
    pub async fn review(&mut self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (status, bytes) = self
            .request("POST", path, serde_json::to_vec(body).unwrap())
            .await
            .expect("request succeeds");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A raw HTTP/1.1 exchange over TLS, for clients that misbehave on purpose.
pub async fn raw_http1(stream: &mut TlsStream<TcpStream>, chunks: &[(&[u8], Duration)]) -> String {
    for (chunk, pause) in chunks {
        if stream.write_all(chunk).await.is_err() {
            break;
        }
        let _ = stream.flush().await;
        tokio::time::sleep(*pause).await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
