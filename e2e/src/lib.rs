//! End-to-end harness: kube-harden in a real kube-apiserver's admission chain.
//!
//! ```text
//!  Harness::start
//!    e2e/controlplane.sh start ──► etcd + kube-apiserver v1.36.3 on 127.0.0.1 (fresh, empty)
//!    rcgen CA + cert for 127.0.0.1 ──► target/debug/kube-harden serve (free ports, /readyz)
//!    kubectl kustomize manifests/base ──► service → url + caBundle ──► create, probe until effective
//!  tests (one at a time, fresh namespaces) ──► kube client / kubectl v1.36.3 ──► API server
//!                                                    │ admission chain: kube-harden, then PSA
//!    Ledger: what the webhook should have counted ◄──┘ (the rules run locally on what was sent)
//!  Harness::shutdown (also on drop; watchdogs cover a killed run): webhook, control plane
//! ```
//!
//! The control plane is described in e2e/README.md; what the suite proves in docs/e2e.md.
//! Webhook registration: <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.
pub mod controlplane;
pub mod host;
pub mod incluster;
pub mod injector;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod process;
pub mod registry;
pub mod stream;
pub mod webcheck;
pub mod webhook;

mod apiserver;
mod harness;
mod manifests;
mod repo;

/// Where the PSA fixtures are and how to read them: one file shared with the integration tests.
#[path = "../../tests/it/psa_source.rs"]
mod psa_source;

pub use apiserver::{apiserver_metrics, create_namespace, psa_refusal};
pub use harness::{Baseline, Harness};
pub use manifests::{psa_fixtures, read_manifest, subset};
pub use repo::{kube_harden_binary, repo_root, target_dir};

/// Errors of the harness and the tests.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The namespace label that opts a namespace in: `enforce` or `audit`.
pub const MODE_LABEL: &str = "kube-harden.io/mode";
/// Pod Security Admission's enforce label.
pub const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Pod Security Admission's warn label.
pub const PSA_WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
