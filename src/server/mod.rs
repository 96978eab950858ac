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
//! ([`conns`]). A handshake, a connection's first request, a request's headers and its body each
//! have a deadline well under the API server's 5 s, bodies have a size limit, and a connection
//! with no request for `--idle-timeout` is closed (GOAWAY on HTTP/2). At start the soft limit on
//! open files is raised, and the caps lowered if they would not fit it ([`nofile`]).
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.

pub mod conns;
mod images;
pub mod nofile;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Mode};
use crate::harden::Policy;
use crate::metrics::Metrics;
use conns::{Activity, Slot, Slots};
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
struct State {
    policy: Policy,
    metrics: Metrics,
    ready: AtomicBool,
    max_body_bytes: usize,
    request_timeout: Duration,
    review_timeout: Duration,
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
async fn accept(
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

/// The deadlines of one connection.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    handshake_timeout: Duration,
    /// A connection that has not started a request this long after it was accepted (after its
    /// TLS handshake, on the webhook port) is closed.
    first_request_timeout: Duration,
    idle_timeout: Duration,
    /// After a graceful close was asked for (idle): time left to finish before the connection
    /// is dropped, for peers that never answer HTTP/2's GOAWAY.
    close_timeout: Duration,
}

/// What ties a connection to the server: the shutdown signal and its connection slot.
struct Watch {
    stop: watch::Receiver<bool>,
    slot: Slot,
}

/// At the webhook's connection cap, a connection stalled for this long may be shed to make room
/// (a review's body arrives in milliseconds; the API server's own timeout is 5 s).
const WEBHOOK_SHED_GRACE: Duration = Duration::from_secs(1);

/// The same on the metrics port, where a probe or a scrape is one small GET (the kubelet's
/// probes time out after 2 s in the manifests).
const METRICS_SHED_GRACE: Duration = Duration::from_millis(500);

/// Resolves once the connection has had no request in flight for its idle limit: the first
/// request timeout until a request was served, `--idle-timeout` after that.
async fn idle_for(activity: &Activity, limits: ConnLimits) {
    loop {
        let timeout = if activity.served() {
            limits.idle_timeout
        } else {
            limits.first_request_timeout
        };
        let deadline = match activity.idle_since() {
            Some(since) => since + timeout,
            None => Instant::now() + timeout,
        };
        if Instant::now() >= deadline && activity.idle_since().is_some() {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// One webhook connection: TLS handshake (bounded), then HTTP/1.1 or HTTP/2 until it closes, the
/// server shuts down, or it stays idle for too long.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<State>,
    mut watch: Watch,
    limits: ConnLimits,
) {
    let _ = tcp.set_nodelay(true);
    let conn_slot = Arc::clone(&watch.slot.conn);
    let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
    let handshake = tokio::select! {
        result = handshake => result,
        _ = watch.stop.wait_for(|stop| *stop) => return,
        () = conn_slot.shed() => {
            tracing::debug!(%peer, "shed a connection still in its TLS handshake: at --max-connections");
            return;
        }
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            state.metrics.error("tls_handshake");
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            state.metrics.error("tls_handshake_timeout");
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    // The first request's deadline counts from here (a handshake has its own).
    conn_slot.activity.restart_idle_clock();
    let service = {
        let conn_slot = Arc::clone(&conn_slot);
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let state = Arc::clone(&state);
            let (in_flight, receiving) = conns::begin(&conn_slot);
            // read_body drops it once the body is in: from then on the request is not stalled.
            req.extensions_mut().insert(receiving);
            async move {
                let response = route_webhook(req, &state).await;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    // Until asked to close: serve. Then finish in-flight requests (HTTP/1.1 closes after the
    // current response, HTTP/2 sends GOAWAY); an idle close gets `close_timeout` for that.
    let closing = tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = watch.stop.wait_for(|stop| *stop) => None,
        () = idle_for(&conn_slot.activity, limits) => {
            tracing::debug!(%peer, "closing idle connection");
            Some(limits.close_timeout)
        }
        () = conn_slot.shed() => {
            tracing::debug!(%peer, "shed a stalled connection: at --max-connections");
            if !conn_slot.activity.served() {
                // Never completed a request (silent or trickling): closed now.
                return;
            }
            // A kept-alive connection, idle: closed gracefully (GOAWAY on HTTP/2), so a client
            // about to reuse it learns first.
            Some(limits.close_timeout)
        }
    };
    conn.as_mut().graceful_shutdown();
    let result = match closing {
        None => conn.await,
        Some(limit) => match tokio::time::timeout(limit, conn).await {
            Ok(result) => result,
            Err(_) => return,
        },
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn route_webhook(req: Request<Incoming>, state: &Arc<State>) -> Response<Full<Bytes>> {
    let mode = match req.uri().path() {
        "/mutate" => Mode::Enforce,
        "/audit" => Mode::Audit,
        _ => return text(StatusCode::NOT_FOUND, "not found: use /mutate or /audit\n"),
    };
    if req.method() != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
        response
            .headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
        return response;
    }
    let started = Instant::now();
    let body = match read_body(req, state).await {
        Ok(body) => body,
        Err((status, reason, message)) => {
            state.metrics.error(reason);
            tracing::warn!(%status, reason, "{message}");
            return text(status, format!("{message}\n"));
        }
    };
    let reviewed = review_within_budget(body, mode, state).await;
    let elapsed = started.elapsed();
    state.metrics.record_review(mode, &reviewed.report, elapsed);
    log_review(mode, &reviewed.report, elapsed);
    let status = StatusCode::from_u16(reviewed.status).unwrap_or(StatusCode::OK);
    let mut response = Response::new(Full::new(Bytes::from(reviewed.body)));
    *response.status_mut() = status;
    let content_type = if status == StatusCode::OK {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Reviews run at most this many at once on the blocking pool: the CPU count (at least 2).
fn review_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Runs the review off the async workers (tokio's blocking pool, at most [`review_slots`] at
/// once), so that no review can stall the accept loop, `/healthz` or other connections, and
/// answers within `--review-timeout`: past it (waiting for a slot included) the object is
/// admitted unchanged with a warning. A review past its deadline keeps its slot until it ends,
/// so abandoned reviews cannot pile up.
async fn review_within_budget(body: Bytes, mode: Mode, state: &Arc<State>) -> admission::Reviewed {
    let deadline = state.review_timeout;
    let work = {
        let (state, body) = (Arc::clone(state), body.clone());
        async move {
            if let Some(resolver) = state.images.clone() {
                return images::review(body, mode, state, resolver).await;
            }
            let permit = Arc::clone(&state.review_slots).acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                admission::review(&body, mode, &state.policy)
            })
            .await
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(reviewed)) => reviewed,
        Ok(Err(e)) => {
            admission::admit_unchanged(&body, "internal", format!("the review stopped: {e}"))
        }
        Err(_) => admission::admit_unchanged(
            &body,
            "deadline",
            format!("the review did not finish within {deadline:?}"),
        ),
    }
}

/// Reads the body within the size limit and the request timeout.
async fn read_body(
    mut req: Request<Incoming>,
    state: &State,
) -> Result<Bytes, (StatusCode, &'static str, String)> {
    // Dropped when this returns: the body is in (or refused), the request no longer stalled.
    let _receiving = req.extensions_mut().remove::<conns::Receiving>();
    let limit = state.max_body_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(state.request_timeout, body.collect()).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "request body not received within {:?}",
                state.request_timeout
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            "body_read",
            format!("cannot read request body: {e}"),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn log_review(mode: Mode, report: &admission::Report, elapsed: Duration) {
    let applied: Vec<&str> = report
        .changes
        .iter()
        .filter(|c| c.outcome == crate::harden::Outcome::Applied)
        .map(|c| c.name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|n| n.as_str())
        .collect();
    let error = report.error.as_ref().map(|(_, message)| message.as_str());
    tracing::info!(
        uid = %report.uid,
        mode = mode.as_str(),
        operation = report.operation,
        kind = report.kind,
        namespace = %report.namespace,
        name = %report.name,
        dry_run = report.dry_run,
        outcome = report.outcome.as_str(),
        changes = %applied.join(","),
        duration_us = elapsed.as_micros() as u64,
        error,
        "admission review"
    );
}

/// Plain HTTP: `/metrics`, `/healthz`, `/readyz`, with its own connection cap and the same
/// deadlines as the webhook (headers, first request, idle).
async fn serve_metrics(
    listener: TcpListener,
    state: Arc<State>,
    slots: Arc<Slots>,
    limits: ConnLimits,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.first_request_timeout);
    loop {
        let (tcp, _) = accept(&listener, &state, "metrics").await;
        let Some(slot) = slots.acquire().await else {
            return;
        };
        let service = {
            let (state, conn) = (Arc::clone(&state), Arc::clone(&slot.conn));
            hyper::service::service_fn(move |req: Request<Incoming>| {
                // A GET has no body to wait for: in flight, not receiving.
                let (in_flight, _) = conns::begin(&conn);
                let response = route_metrics(&req, &state);
                drop(in_flight);
                async move { Ok::<_, Infallible>(response) }
            })
        };
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                () = idle_for(&slot.conn.activity, limits) => {}
                () = slot.conn.shed() => {}
            }
            drop(slot);
        });
    }
}

fn route_metrics(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(state.metrics.encode())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.ready.load(Ordering::SeqCst) {
                text(StatusCode::OK, "ok\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}
