//! Test support: certificates made with rcgen, the real server on 127.0.0.1, and a real
//! HTTP/1.1 or HTTP/2 client over rustls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_harden::harden::Policy;
use kube_harden::metrics::Metrics;
use kube_harden::server::{ServeConfig, Server};
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A CA and the PEM files of a leaf it signed for 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    ca: Issuer<'static, KeyPair>,
}

/// A certificate pair as PEM.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-harden test CA");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            ca: Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn leaf(&self, common_name: &str) -> Pair {
        self.leaf_valid(common_name, None)
    }

    /// The same, valid from `validity.0` to `validity.1` (rcgen's default, 1975 to 4096, when
    /// `None`).
    pub fn leaf_valid(
        &self,
        common_name: &str,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        self.sign(&params)
    }

    /// A certificate with a fresh key for `params`, signed by the CA.
    fn sign(&self, params: &CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client certificate (for --client-ca-file tests).
    pub fn client(&self, common_name: &str) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }
}

/// Lays out a Secret volume as the kubelet does: `..<stamp>/` holds the files, `..data` links to
/// it, and `tls.crt`/`tls.key` link through `..data` (both files change in one rename).
pub fn secret_volume_swap(dir: &Path, stamp: &str, pair: &Pair) {
    let data = dir.join(format!("..{stamp}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &pair.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        let link = dir.join(file);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

pub fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    (cert, key)
}

/// Settings for tests: loopback, port 0, short timeouts.
pub fn config(cert: PathBuf, key: PathBuf) -> ServeConfig {
    ServeConfig {
        webhook_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        tls_cert_file: cert,
        tls_key_file: key,
        client_ca_file: None,
        tls_reload_interval: Duration::from_millis(100),
        max_body_bytes: 1024 * 1024,
        request_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        shutdown_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(5),
        max_connections: 1024,
        metrics_max_connections: 32,
        idle_timeout: Duration::from_secs(30),
        review_timeout: Duration::from_secs(2),
        policy: Policy::default(),
        images: None,
    }
}

/// A running in-process server.
pub struct Running {
    pub webhook: SocketAddr,
    pub metrics: SocketAddr,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Starts a server with a fresh PKI; `tweak` adjusts the settings.
    pub async fn start(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), &pki.leaf("kube-harden"));
        let mut config = config(cert, key);
        tweak(&mut config);
        Self::start_with(pki, dir, config).await
    }

    pub async fn start_with(pki: Pki, dir: tempfile::TempDir, config: ServeConfig) -> Self {
        Self::start_with_metrics(pki, dir, config, Metrics::new()).await
    }

    /// Starts a server that records into `metrics`.
    pub async fn start_with_metrics(
        pki: Pki,
        dir: tempfile::TempDir,
        config: ServeConfig,
        metrics: Metrics,
    ) -> Self {
        let server = Server::bind(config, metrics).await.expect("server binds");
        let webhook = server.webhook_addr().unwrap();
        let metrics = server.metrics_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let running = Self {
            webhook,
            metrics,
            pki,
            dir,
            stop: Some(stop),
            task: Some(task),
        };
        running.wait_ready().await;
        running
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if http_get(self.metrics, "/readyz").await.0 == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server not ready");
    }

    pub async fn client(&self, version: Version) -> Client {
        Client::connect(self.webhook, &self.pki.ca_pem, version, None)
            .await
            .expect("connects")
    }

    pub async fn metrics_text(&self) -> String {
        let (status, body) = http_get(self.metrics, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        body
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops")
                .unwrap();
        }
    }
}

/// `kube-harden serve` in a child process with its stderr in a file (`--shutdown-delay 0s`);
/// killed on drop.
pub struct Logged {
    pub child: Child,
    pub webhook: std::net::SocketAddr,
    pub metrics: std::net::SocketAddr,
    pub stderr: std::path::PathBuf,
    pub pki: Pki,
    _dir: tempfile::TempDir,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `prefix... kube-harden serve <flags>` and waits until it is ready (with
/// `--shutdown-delay 0s` unless `flags` name another).
///
/// The listen addresses are free ports picked here and released before the server binds them:
/// another socket can take one in between (a flood test leaves many local ports in TIME_WAIT).
/// A start that fails with "Address already in use" is tried again on fresh ports; any other
/// failure fails the test.
pub async fn serve_logged(prefix: &[&str], flags: &[&str]) -> Logged {
    for _ in 0..4 {
        match try_serve_logged(prefix, flags).await {
            Ok(served) => return served,
            Err(log) if log.contains("Address already in use") => continue,
            Err(log) => panic!("server did not become ready: {log}"),
        }
    }
    try_serve_logged(prefix, flags)
        .await
        .unwrap_or_else(|log| panic!("server did not become ready: {log}"))
}

/// One start of [`serve_logged`]: the server once ready, or its log.
async fn try_serve_logged(prefix: &[&str], flags: &[&str]) -> Result<Logged, String> {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &pki.leaf("kube-harden"));
    let (webhook, metrics) = (free_addr(), free_addr());
    let stderr = dir.path().join("stderr.log");
    let bin = env!("CARGO_BIN_EXE_kube-harden");
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let child = command
        .arg("serve")
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .args(["--webhook-addr", &webhook.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(if flags.contains(&"--shutdown-delay") {
            &[][..]
        } else {
            &["--shutdown-delay", "0s"][..]
        })
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut served = Logged {
        child,
        webhook,
        metrics,
        stderr,
        pki,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(metrics, "/readyz").await.0 != StatusCode::OK {
        let exited = matches!(served.child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() >= deadline {
            return Err(served.log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(served)
}

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

/// Reads a fixture under tests/fixtures.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// An AdmissionReview for `object` (one owner: kube-harden-testkit, which the benchmarks use too).
pub use kube_harden_testkit::review_for;

/// Applies the base64 JSON patch of an AdmissionReview response to `object`.
pub fn apply_response_patch(response: &Value, object: &Value) -> Value {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    let mut out = object.clone();
    if let Some(patch) = response.pointer("/response/patch").and_then(Value::as_str) {
        assert_eq!(
            response.pointer("/response/patchType"),
            Some(&Value::from("JSONPatch"))
        );
        let bytes = BASE64_STANDARD.decode(patch).expect("base64 patch");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("RFC 6902 patch");
        json_patch::patch(&mut out, &patch).expect("patch applies");
    }
    out
}

/// The value of one sample line of the Prometheus text output (0 when absent).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name_and_labels).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
