//! The real server on 127.0.0.1 for the tests: in-process ([`Running`], with the test
//! settings of [`config`]) or `kube-harden serve` in a child process ([`Logged`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use hyper::StatusCode;
use kube_harden::harden::Policy;
use kube_harden::metrics::Metrics;
use kube_harden::server::{ServeConfig, Server};

use super::client::{Client, Version, http_get};
use super::pki::{Pki, write_pair};

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
