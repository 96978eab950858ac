//! Certificates without dependencies (`serve --manage-certs`): kube-harden keeps its own CA and
//! serving certificate in a Secret, writes the serving pair to `--tls-cert-file` /
//! `--tls-key-file` (the server's file reload serves it: one serving mechanism), keeps the
//! MutatingWebhookConfiguration's `caBundle` equal to the Secret's `ca.crt`, and renews before
//! expiry. The user's view, RBAC and limits: docs/certificates.md.
//!
//! ```text
//!  at start (before the server binds), then every --cert-check-interval:
//!    GET Secret ─► missing ─► new CA + serving cert ─► CREATE ─► 409: another replica won ─┐
//!       │                     (or, if this replica knew it: the same bundle, re-created)   │
//!       └─► present ─► parse + check ─► plan ─► nothing to do: use it        GET again ◄───┘
//!                                          └─► renew / rotate ─► UPDATE with resourceVersion
//!                                                                  └─► 409: re-read, use theirs
//!    files: tls.key, tls.crt (temp file + rename) when they differ ─► the server reloads them
//!    MutatingWebhookConfiguration --webhook-config: every webhook's caBundle := ca.crt
//!       (strategic merge patch keyed by webhook name, with resourceVersion; retried on 409)
//! ```
//!
//! The Secret (type `kubernetes.io/tls`): `tls.crt`/`tls.key` (the serving pair), `ca.crt` (every
//! CA whose certificates may be served: the caBundle), `ca.key` (the CA that signs) and, during a
//! CA rotation only, `ca-next.key` (the CA that signs next).
//!
//! The serving certificate is renewed (new key, same CA) when less than `--cert-renew-before` is
//! left, or when it does not match its key, was not signed by the CA, or lacks a required name.
//! The CA is unchanged, so the caBundle stays valid and no call fails while replicas move over.
//!
//! CA rotation in three steps, so the API server always trusts what any replica serves:
//! 1. the CA has less than `--ca-renew-before` left: a new CA joins `ca.crt` (and so the
//!    caBundle), its key in `ca-next.key`; the old CA still signs;
//! 2. once less than half of `--ca-renew-before` is left, and the configuration's caBundle holds
//!    the new CA: the new CA signs, starting with a new serving certificate;
//! 3. the old CA leaves `ca.crt` when it expires (a serving certificate never outlives its CA).
//!
//! A Secret without a usable CA (unreadable, no key, key mismatch, expired) gets a new CA.
//!
//! The decisions ([`plan()`]) and the certificate work ([`apply`]) are pure functions of the
//! bundle and the clock; [`CertManager`] does the I/O. The webhook side of this (what the API
//! server expects of `caBundle` and the serving certificate):
//! <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#contacting-the-webhook>.
//!
//! Parts: [`name`] (the serving certificate's names), [`settings`] (lifetimes and the validated
//! `--manage-certs` settings), [`bundle`] (the Secret's PEM texts, parsed and checked),
//! [`plan`](mod@plan) (what to change, and the change: pure), [`manager`] (the Kubernetes and
//! file I/O).

pub mod bundle;
pub mod manager;
pub mod name;
pub mod plan;
pub mod settings;

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod testing;

use std::path::PathBuf;
use std::time::Duration;

pub use bundle::{Bundle, BundleError, CertInfo, ReadError, parse_certificates};
pub use manager::{CertManager, start};
pub use name::{Name, NameError, service_names};
pub(crate) use plan::rfc3339;
pub use plan::{Action, apply, plan, unix_now};
pub use settings::{CertConfig, Lifetimes, LifetimesError};

/// Secret key of the serving certificate.
pub const TLS_CERT: &str = "tls.crt";
/// Secret key of the serving certificate's private key.
pub const TLS_KEY: &str = "tls.key";
/// Secret key of the CA bundle (what the caBundle holds).
pub const CA_CERT: &str = "ca.crt";
/// Secret key of the signing CA's private key.
pub const CA_KEY: &str = "ca.key";
/// Secret key of the next CA's private key (only during a CA rotation).
pub const CA_NEXT_KEY: &str = "ca-next.key";

/// Why managing the certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No Kubernetes client could be configured.
    #[error("Kubernetes client configuration: {0}")]
    Client(#[from] crate::kube_client::ClientError),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was attempted.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Certificate generation failed.
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate just made cannot be read back.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The bundle is inconsistent.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A value is out of range, or a step cannot be carried out.
    #[error("{0}")]
    Invalid(String),
    /// Other writers kept winning.
    #[error("{0}: still conflicting after {n} attempts", n = manager::MAX_ATTEMPTS)]
    Conflict(String),
    /// A check took too long.
    #[error("certificate check did not finish within {0:?}")]
    Timeout(Duration),
}
