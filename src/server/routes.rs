//! What each path answers: `/mutate` and `/audit` (body read within its limits, reviewed within
//! `--review-timeout`: a small body on the async worker that read it, any other on the blocking
//! pool, with image lookups too; observed in metrics and one log line) on the webhook;
//! `/metrics`, `/healthz`, `/readyz` on the metrics port.
//!
//! Why small bodies are reviewed inline: handing a review to the blocking pool and back costs two
//! thread wake-ups, which cost more than the review of a typical pod. `kube-harden-bench server`
//! (docs/performance.md, "The review on the worker that read it"), same binary otherwise, back to
//! back: Pod CREATE 18.0k -> 29.0k reviews/s per server core on HTTP/1.1, 15.6k -> 28.1k on
//! HTTP/2; server CPU at 5k reviews/s 0.49 -> 0.27 cores.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::State;
use super::slots;
use crate::admission::{self, Mode};

pub(super) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(super) async fn route_webhook(
    req: Request<Incoming>,
    state: &Arc<State>,
) -> Response<Full<Bytes>> {
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
    crate::logging::review(mode, &reviewed.report, elapsed);
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
pub(super) fn review_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Bodies up to this size are reviewed on the async worker that read them. A review costs at
/// most about 1 ms per 64 KiB of body in a release build (the per-review budget bounds every
/// shape; docs/performance.md, "The budget of one review"), so one cannot stall the accept loop,
/// `/healthz` or other connections: a pod is 5-20 KB, a Deployment up to ~50 KB.
pub(super) const INLINE_MAX_BODY: usize = 64 * 1024;

/// Below this `--review-timeout`, every review runs on the blocking pool, where the deadline is
/// enforced while it runs: an inline review cannot be interrupted, and a deadline this short is
/// within reach of its CPU time (a debug build, a loaded node).
pub(super) const INLINE_MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// Largest body reviewed inline under `review_timeout`: [`INLINE_MAX_BODY`], or 0 below
/// [`INLINE_MIN_TIMEOUT`].
pub(super) fn inline_max_body(review_timeout: Duration) -> usize {
    if review_timeout >= INLINE_MIN_TIMEOUT {
        INLINE_MAX_BODY
    } else {
        0
    }
}

/// Runs the review within `--review-timeout` ([`run_review`]; with image lookups, each pass of
/// `images::review`): past it (waiting for a slot included) the object is admitted unchanged
/// with a warning. A review past its deadline keeps its slot until it ends, so abandoned reviews
/// cannot pile up.
async fn review_within_budget(body: Bytes, mode: Mode, state: &Arc<State>) -> admission::Reviewed {
    let deadline = state.review_timeout;
    let work = {
        let (state, body) = (Arc::clone(state), body.clone());
        async move {
            if let Some(resolver) = state.images.clone() {
                return super::images::review(body, mode, state, resolver).await;
            }
            run_review(&state, body, move |body, state| {
                admission::review(body, mode, &state.policy)
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

/// Runs `review` over `body`: right here for a body of at most [`State::inline_max_body`] (far
/// under the deadline, and cheaper than a thread hand-off), else on tokio's blocking pool holding
/// one of the [`review_slots`], so that no long review can stall the accept loop, `/healthz` or
/// other connections.
pub(super) async fn run_review<T: Send + 'static>(
    state: &Arc<State>,
    body: Bytes,
    review: impl FnOnce(&[u8], &State) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if body.len() <= state.inline_max_body {
        return Ok(review(&body, state));
    }
    let permit = Arc::clone(&state.review_slots).acquire_owned().await;
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        review(&body, &state)
    })
    .await
}

/// Reads the body within the size limit and the request timeout.
async fn read_body(
    mut req: Request<Incoming>,
    state: &State,
) -> Result<Bytes, (StatusCode, &'static str, String)> {
    // Dropped when this returns: the body is in (or refused), the request no longer stalled.
    let _receiving = req.extensions_mut().remove::<slots::Receiving>();
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

pub(super) fn route_metrics(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_reviewed_inline_unless_the_deadline_is_short() {
        let default = Duration::from_secs(2);
        assert_eq!(inline_max_body(default), INLINE_MAX_BODY);
        assert_eq!(inline_max_body(INLINE_MIN_TIMEOUT), INLINE_MAX_BODY);
        assert_eq!(inline_max_body(Duration::from_millis(99)), 0);
        assert_eq!(inline_max_body(Duration::from_nanos(1)), 0);
    }
}
