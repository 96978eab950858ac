//! `kube-harden serve`: the HTTPS webhook endpoint and the plain-HTTP metrics and health endpoint.
//!
//! ```text
//!  TCP accept ─► TLS handshake (rustls, timeout) ─► HTTP/1.1 or HTTP/2 (ALPN) ─► routes
//!     /mutate, /audit: read body (size limit, timeout) ─► admission::review ─► response
//!     metrics + one log line per review observe from the side
//! ```
//!
//! Shutdown (SIGTERM/SIGINT): `/readyz` turns false at once; after `--shutdown-delay` (time for
//! the Service endpoints to drop this pod) the listener closes, in-flight requests finish within
//! `--shutdown-timeout`, and the process exits 0.
//!
//! Hostile or broken clients cannot exhaust the process: each listener has its own cap on open
//! connections (`--max-connections`, `--metrics-max-connections`); at the cap the oldest stalled
//! connection (no request yet, trickling, or idle) is closed to make room for the new one
//! ([`slots`]). A handshake, a connection's first request, a request's headers and its body each
//! have a deadline well under the API server's 5 s, bodies have a size limit, and a connection
//! with no request for `--idle-timeout` is closed (GOAWAY on HTTP/2). At start the soft limit on
//! open files is raised, and the caps lowered if they would not fit it ([`nofile`]).
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.
//!
//! Parts: here the settings, binding and the accept loops; `conn` one connection's life;
//! `routes` what each path answers; [`slots`] the connection caps; [`tls`] certificates and
//! their reload; [`nofile`] the open-files limit.

pub mod command;
mod conn;
mod images;
pub mod nofile;
mod routes;
pub mod slots;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::harden::Policy;
use crate::metrics::Metrics;
use conn::{
    ConnLimits, METRICS_SHED_GRACE, WEBHOOK_SHED_GRACE, Watch, serve_connection, serve_metrics,
};
use routes::review_slots;
use slots::Slots;
use tls::CertStore;

/// Validated settings for the server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// HTTPS address for `/mutate` and `/audit`.
    pub webhook_addr: SocketAddr,
    /// Plain-HTTP address for `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert_file: std::path::PathBuf,
    /// PEM private key.
    pub tls_key_file: std::path::PathBuf,
    /// CA bundle that API server client certificates must chain to (optional).
    pub client_ca_file: Option<std::path::PathBuf>,
    /// How often the certificate files are checked for changes.
    pub tls_reload_interval: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers and body.
    pub request_timeout: Duration,
    /// Time a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Time between the shutdown signal and closing the listener.
    pub shutdown_delay: Duration,
    /// Time in-flight requests get to finish after the listener closes.
    pub shutdown_timeout: Duration,
    /// Most webhook connections open at once; at the cap the oldest stalled one is shed.
    pub max_connections: usize,
    /// Most metrics-port connections open at once; at the cap the oldest stalled one is shed.
    pub metrics_max_connections: usize,
    /// A webhook connection without a request for this long is closed.
    pub idle_timeout: Duration,
    /// Time one review may take (waiting for a hardening slot included); past it the object is
    /// admitted unchanged. Below the webhook's `timeoutSeconds`.
    pub review_timeout: Duration,
    /// The hardening policy.
    pub policy: Policy,
    /// `--resolve-images`: the registry client's settings; `None` hardens image-blind.
    pub images: Option<crate::registry::Settings>,
}

/// Why the server could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The registry client (`--resolve-images`) could not be set up.
    #[error("{0}")]
    Registry(String),
}

/// Shared per-process state of the handlers.
pub(super) struct State {
    policy: Policy,
    metrics: Metrics,
    ready: AtomicBool,
    max_body_bytes: usize,
    request_timeout: Duration,
    review_timeout: Duration,
    /// Bodies up to this size are reviewed on the async worker that read them
    /// ([`routes::inline_max_body`]).
    inline_max_body: usize,
    /// One permit per review running on the blocking pool.
    review_slots: Arc<Semaphore>,
    /// `--resolve-images`.
    images: Option<crate::registry::Resolver>,
}

/// A server whose sockets are bound; [`Server::run`] serves until the shutdown future resolves.
pub struct Server {
    config: ServeConfig,
    webhook: TcpListener,
    metrics_listener: TcpListener,
    certs: Arc<CertStore>,
    acceptor: TlsAcceptor,
    state: Arc<State>,
}

impl Server {
    /// Loads the certificate and binds both addresses. Fails fast with a clear error.
    pub async fn bind(config: ServeConfig, metrics: Metrics) -> Result<Self, ServeError> {
        let certs = Arc::new(CertStore::load(
            &config.tls_cert_file,
            &config.tls_key_file,
        )?);
        let client_roots = config
            .client_ca_file
            .as_deref()
            .map(tls::load_client_roots)
            .transpose()?;
        let tls_config = tls::server_config(Arc::clone(&certs), client_roots)?;
        if let Some(t) = certs.not_after() {
            metrics.set_certificate_expiry(t);
        }
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        let images = config
            .images
            .clone()
            .map(|settings| crate::registry::Resolver::new(settings, metrics.registry()))
            .transpose()
            .map_err(ServeError::Registry)?;
        let webhook = bind(config.webhook_addr).await?;
        let metrics_listener = bind(config.metrics_addr).await?;
        let state = Arc::new(State {
            policy: config.policy.clone(),
            metrics,
            ready: AtomicBool::new(false),
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            review_timeout: config.review_timeout,
            inline_max_body: routes::inline_max_body(config.review_timeout),
            review_slots: Arc::new(Semaphore::new(review_slots())),
            images,
        });
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(tls_config)),
            config,
            webhook,
            metrics_listener,
            certs,
            state,
        })
    }

    /// The bound webhook address (useful with port 0).
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.local_addr().ok()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            config,
            webhook,
            metrics_listener,
            certs,
            acceptor,
            state,
        } = self;
        let reload = tokio::spawn(
            Arc::clone(&certs).watch(config.tls_reload_interval, state.metrics.clone()),
        );
        let limits = ConnLimits {
            handshake_timeout: config.handshake_timeout,
            first_request_timeout: config.request_timeout,
            idle_timeout: config.idle_timeout,
            close_timeout: config.request_timeout,
        };
        let metrics_slots = Slots::new(config.metrics_max_connections, METRICS_SHED_GRACE);
        let metrics_task = tokio::spawn(serve_metrics(
            metrics_listener,
            Arc::clone(&state),
            metrics_slots,
            limits,
        ));

        // One slot per open connection; the drain waits until every slot is back.
        let slots = Slots::new(config.max_connections, WEBHOOK_SHED_GRACE);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .max_concurrent_streams(250);
        let builder = Arc::new(builder);

        state.ready.store(true, Ordering::SeqCst);
        tracing::info!(
            webhook = %config.webhook_addr, metrics = %config.metrics_addr,
            max_connections = slots.max(), metrics_max_connections = config.metrics_max_connections,
            "kube-harden serving"
        );
        let accept_loop = async {
            loop {
                let (tcp, peer) = accept(&webhook, &state, "webhook").await;
                // At the cap: the oldest stalled connection is shed, and this one waits for its
                // slot (open files stay bounded by the cap, plus this one).
                let Some(slot) = slots.acquire().await else {
                    return;
                };
                tokio::spawn(serve_connection(
                    tcp,
                    peer,
                    acceptor.clone(),
                    Arc::clone(&builder),
                    Arc::clone(&state),
                    Watch {
                        stop: stop_rx.clone(),
                        slot,
                    },
                    limits,
                ));
            }
        };
        // Readiness turns false at the signal; connections are still accepted during the delay,
        // so the endpoints controller can drop this pod before any connection is refused.
        let stop_accepting = async {
            shutdown.await;
            state.ready.store(false, Ordering::SeqCst);
            tracing::info!(delay = ?config.shutdown_delay, "shutting down: not ready");
            tokio::time::sleep(config.shutdown_delay).await;
        };
        tokio::select! {
            () = accept_loop => {}
            () = stop_accepting => {}
        }
        drop(webhook);
        let _ = stop_tx.send(true);
        if !slots.drain(config.shutdown_timeout).await {
            tracing::warn!(
                open = slots.open(),
                "connections still open after the shutdown timeout"
            );
        }
        reload.abort();
        metrics_task.abort();
        tracing::info!("kube-harden stopped");
    }
}

/// The next connection of `listener`. On an error (out of file descriptors and the like) it is
/// counted and logged, and the loop backs off instead of spinning.
pub(super) async fn accept(
    listener: &TcpListener,
    state: &State,
    port: &'static str,
) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(e) => {
                state.metrics.error("accept");
                tracing::warn!(port, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
