//! The limit on open files (`RLIMIT_NOFILE`) against the connection caps.
//!
//! Every connection is a file descriptor. Containers commonly start with a soft limit of 1024
//! (and often a much higher hard limit): the default `--max-connections` alone would reach it,
//! and once it is reached `accept` fails for both listeners, so a flood on the metrics port could
//! stop reviews. At start, [`fit`] raises the soft limit to the hard limit (an unprivileged
//! process may), logs what it did, and if the caps plus [`RESERVED`] descriptors for everything
//! else still do not fit, lowers the caps (webhook first, the metrics cap only if it alone does
//! not fit) with a warning.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use super::ServeConfig;

/// Descriptors kept for everything but connections: stdio, the runtime's epoll and wakers, the
/// two listeners and the connection each may hold while waiting for a slot, certificate and
/// policy file reads, the API client's connections (`--manage-certs`), `/proc` reads of the
/// process metrics.
pub const RESERVED: u64 = 64;

/// Used when the hard limit is unlimited (Linux refuses an unlimited soft limit on open files).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft limit to the hard one. Returns `(soft before, soft after, hard)`, `None` for
/// unlimited.
fn raise_soft_limit() -> (Option<u64>, Option<u64>, Option<u64>) {
    let before = getrlimit(Resource::Nofile);
    let target = before.maximum.unwrap_or(UNLIMITED_TARGET);
    if before.current.is_some_and(|soft| soft < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = before.current, hard = before.maximum,
                "cannot raise the soft limit on open files");
        }
    }
    let after = getrlimit(Resource::Nofile);
    (before.current, after.current, after.maximum)
}

/// Caps `(webhook, metrics)` that fit `limit` open files with [`RESERVED`] kept aside: unchanged
/// when they fit; else the webhook cap lowered, and the metrics cap too when it alone does not
/// fit; never below 1.
pub fn fit_caps(limit: u64, webhook: usize, metrics: usize) -> (usize, usize) {
    let room = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    if webhook.saturating_add(metrics) <= room {
        return (webhook, metrics);
    }
    // The metrics port needs few connections: at most a quarter of the room.
    let metrics = metrics.min((room / 4).max(1));
    let webhook = webhook.min(room.saturating_sub(metrics)).max(1);
    (webhook, metrics)
}

/// Raises the soft limit on open files and fits the connection caps of `config` to it, logging
/// both.
pub fn fit(config: &mut ServeConfig) {
    let (before, soft, hard) = raise_soft_limit();
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    if before == soft {
        tracing::info!(
            soft = %show(soft), hard = %show(hard),
            "limit on open files: soft limit already at the hard limit, nothing raised"
        );
    } else {
        tracing::info!(
            from = %show(before), to = %show(soft), hard = %show(hard),
            "limit on open files: soft limit raised"
        );
    }
    let Some(limit) = soft else {
        return;
    };
    let asked = (config.max_connections, config.metrics_max_connections);
    let (webhook, metrics) = fit_caps(limit, asked.0, asked.1);
    if (webhook, metrics) != asked {
        tracing::warn!(
            limit,
            reserved = RESERVED,
            max_connections = webhook,
            asked_max_connections = asked.0,
            metrics_max_connections = metrics,
            asked_metrics_max_connections = asked.1,
            "the connection caps do not fit the limit on open files: lowered"
        );
        config.max_connections = webhook;
        config.metrics_max_connections = metrics;
    }
}

#[cfg(test)]
mod tests;
