//! One connection's life: its slot, TLS handshake (webhook) and HTTP/1.1 or HTTP/2, its
//! deadlines (first request, headers, idle), until it closes, is shed, or the server shuts down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::routes::{route_metrics, route_webhook};
use super::slots::{self, Activity, Slot, Slots};
use super::{State, accept};

/// The deadlines of one connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    pub(super) handshake_timeout: Duration,
    /// A connection that has not started a request this long after it was accepted (after its
    /// TLS handshake, on the webhook port) is closed.
    pub(super) first_request_timeout: Duration,
    pub(super) idle_timeout: Duration,
    /// After a graceful close was asked for (idle): time left to finish before the connection
    /// is dropped, for peers that never answer HTTP/2's GOAWAY.
    pub(super) close_timeout: Duration,
}

/// What ties a connection to the server: the shutdown signal and its connection slot.
pub(super) struct Watch {
    pub(super) stop: watch::Receiver<bool>,
    pub(super) slot: Slot,
}

/// At the webhook's connection cap, a connection stalled for this long may be shed to make room
/// (a review's body arrives in milliseconds; the API server's own timeout is 5 s).
pub(super) const WEBHOOK_SHED_GRACE: Duration = Duration::from_secs(1);

/// The same on the metrics port, where a probe or a scrape is one small GET (the kubelet's
/// probes time out after 2 s in the manifests).
pub(super) const METRICS_SHED_GRACE: Duration = Duration::from_millis(500);

/// Resolves once the connection has had no request in flight for its idle limit: the first
/// request timeout until a request was served, `--idle-timeout` after that.
pub(super) async fn idle_for(activity: &Activity, limits: ConnLimits) {
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
pub(super) async fn serve_connection(
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
            let (in_flight, receiving) = slots::begin(&conn_slot);
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

/// Plain HTTP: `/metrics`, `/healthz`, `/readyz`, with its own connection cap and the same
/// deadlines as the webhook (headers, first request, idle).
pub(super) async fn serve_metrics(
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
                let (in_flight, _) = slots::begin(&conn);
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
