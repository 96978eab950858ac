//! Certificate management end to end: `kube-harden serve --manage-certs` against the real
//! kube-apiserver v1.36.3.
//!
//! ```text
//!  fresh control plane per test ─► manifests/overlays/default rendered with kubectl kustomize:
//!    Namespace + RBAC applied; replicas run as system:serviceaccount:kube-harden:kube-harden
//!    (kubeconfig `as:`), with the Deployment's own flags, so that RBAC is proven sufficient
//!  MutatingWebhookConfiguration kube-harden: url https://127.0.0.1:<replica a>, no caBundle,
//!    failurePolicy Fail (a webhook call that fails makes the pod creation fail, visibly)
//!  race:    two replicas started together on an empty namespace, five rounds ─► one Secret,
//!           one certificate served by both, caBundle = ca.crt, pods hardened via the API server
//!  renewal: two replicas with lifetimes in seconds ─► serving renewals and a whole CA rotation
//!           while fresh TLS connections, kept-alive TLS connections and pod creations through
//!           the API server run; not one may fail
//! ```
//!
//! Not part of the shared harness (tests/e2e.rs): that harness registers its own webhook for
//! every `kube-harden.io/mode=enforce` namespace, which would harden these tests' pods as well and
//! hide whether these replicas' caBundle works. The harness's building blocks are reused
//! (ControlPlane, process, webhook::local_configuration, metrics::Samples). Tests take a lock and
//! run one at a time; every process is stopped on drop (and by watchdogs if the run is killed).
//! Needs `openssl` (the control plane needs it too) for the served certificate and for a
//! kept-alive TLS connection whose identity is certain (one `s_client` = one connection).
//!
//! Parts: `cluster` (the control plane and the overlay), `replica` (a kube-harden process),
//! `clients` (what a TLS client and the API server see), `race` and `renewal` (the tests).

mod certs {
    pub mod clients;
    pub mod cluster;
    pub mod race;
    pub mod renewal;
    pub mod replica;
}
