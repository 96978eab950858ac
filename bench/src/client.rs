//! A kept-alive HTTPS client connection, HTTP/1.1 or HTTP/2 by ALPN (hyper + rustls, like the
//! server), that POSTs a body and reads the whole answer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// HTTP version, chosen by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1, one request at a time per connection.
    H1,
    /// HTTP/2, requests multiplexed.
    H2,
}

impl Proto {
    /// `HTTP/1.1` or `HTTP/2`.
    pub fn label(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1",
            Proto::H2 => "HTTP/2",
        }
    }
}

/// A TLS client configuration trusting `ca_pem`, optionally with a client certificate.
pub fn tls_config(ca_pem: &[u8], proto: Proto, client: Option<(&[u8], &[u8])>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<_, _>>()
                    .expect("client certificate PEM"),
                PrivateKeyDer::from_pem_slice(key).expect("client key PEM"),
            )
            .expect("client certificate"),
    };
    config.alpn_protocols = vec![match proto {
        Proto::H1 => b"http/1.1".to_vec(),
        Proto::H2 => b"h2".to_vec(),
    }];
    TlsConnector::from(Arc::new(config))
}

/// Where to send: address, TLS settings, and the HTTP/1.1 and HTTP/2 connectors.
#[derive(Clone)]
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    h1: TlsConnector,
    h2: TlsConnector,
}

impl Target {
    /// A target at `addr` whose certificate `ca_pem` signed.
    pub fn new(addr: SocketAddr, ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> Self {
        Self {
            addr,
            h1: tls_config(ca_pem, Proto::H1, client),
            h2: tls_config(ca_pem, Proto::H2, client),
        }
    }

    /// Opens a connection (TCP, TLS handshake, HTTP handshake).
    pub async fn connect(&self, proto: Proto) -> Result<Conn, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::IpAddress(self.addr.ip().into());
        let connector = match proto {
            Proto::H1 => &self.h1,
            Proto::H2 => &self.h2,
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let io = TokioIo::new(tls);
        let sender = match proto {
            Proto::H1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H1(sender)
            }
            Proto::H2 => {
                let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(1 << 20)
                    .initial_connection_window_size(4 << 20)
                    .handshake(io)
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        };
        Ok(Conn {
            sender,
            authority: self.addr.to_string(),
        })
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One open connection. HTTP/2 connections can be shared to send concurrently.
pub struct Conn {
    sender: Sender,
    authority: String,
}

impl Conn {
    /// Another handle on the same HTTP/2 connection; `None` for HTTP/1.1 (one request at a time).
    pub fn share(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H1(_) => None,
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                authority: self.authority.clone(),
            }),
        }
    }

    /// POSTs `body` to `path`; the status and the whole response body.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), String> {
        self.send("POST", path, body).await
    }

    /// Sends a request with a JSON body and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let builder = Request::builder()
            .method(method)
            .header(CONTENT_TYPE, "application/json");
        let response = match &mut self.sender {
            Sender::H1(s) => {
                let req = builder
                    .uri(path)
                    .header(HOST, &self.authority)
                    .body(Full::new(body))
                    .map_err(|e| e.to_string())?;
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await.map_err(|e| e.to_string())?
            }
            Sender::H2(s) => {
                let req = builder
                    .uri(format!("https://{}{path}", self.authority))
                    .body(Full::new(body))
                    .map_err(|e| e.to_string())?;
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await.map_err(|e| e.to_string())?
            }
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    /// Whether the connection can still send.
    pub fn is_open(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }
}
