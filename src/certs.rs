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
//! The decisions ([`plan`]) and the certificate work ([`apply`]) are pure functions of the
//! bundle and the clock; [`CertManager`] does the I/O.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;

use crate::metrics::Metrics;

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

/// Certificates start this long before they are made, so a peer whose clock is a little behind
/// does not see them as not yet valid.
const BACKDATE_SECS: i64 = 5 * 60;
/// Conflicts (another replica wrote first) tolerated in one check before giving up until the
/// next one.
const MAX_ATTEMPTS: usize = 5;
/// Longest a check may take (each API call also has a 30 s read timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// After a failed check, the next one comes at most this much later.
const RETRY_DELAY: Duration = Duration::from_secs(10);
/// The field manager recorded for the caBundle patch.
const FIELD_MANAGER: &str = "kube-harden";

/// A subject alternative name of the serving certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl Name {
    /// An IP address when `s` parses as one, else a DNS name (ASCII letters, digits, `-`, `.`,
    /// and a leading `*.` wildcard).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Name::Ip(ip));
        }
        let name = s.trim_end_matches('.').to_ascii_lowercase();
        let body = name.strip_prefix("*.").unwrap_or(&name);
        let valid = !body.is_empty()
            && body.len() <= 253
            && body.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Name::Dns(name))
        } else {
            Err(format!("{s:?} is neither a DNS name nor an IP address"))
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Dns(name) => f.write_str(name),
            Name::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The names the API server may use for the Service `service` in `namespace`:
/// `service`, `service.namespace`, `service.namespace.svc`, `service.namespace.svc.cluster.local`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// How long certificates live and when they are renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a serving certificate (cut at its CA's expiry).
    pub cert_validity: Duration,
    /// A serving certificate with less than this left is renewed.
    pub cert_renew_before: Duration,
    /// Validity of a CA.
    pub ca_validity: Duration,
    /// A CA with less than this left is rotated.
    pub ca_renew_before: Duration,
}

impl Default for Lifetimes {
    /// One-year serving certificates renewed with 120 days left (at two thirds of their life),
    /// ten-year CAs rotated with a year left.
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            cert_validity: Duration::from_secs(365 * DAY),
            cert_renew_before: Duration::from_secs(120 * DAY),
            ca_validity: Duration::from_secs(3650 * DAY),
            ca_renew_before: Duration::from_secs(365 * DAY),
        }
    }
}

impl Lifetimes {
    /// Checks that renewals happen in time and never back to back. `check_interval` and
    /// `reload_interval` bound how late a replica serves a renewed certificate.
    pub fn validate(
        &self,
        check_interval: Duration,
        reload_interval: Duration,
    ) -> Result<(), String> {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        for (flag, value) in [
            ("--cert-validity", self.cert_validity),
            ("--cert-renew-before", self.cert_renew_before),
            ("--ca-validity", self.ca_validity),
            ("--ca-renew-before", self.ca_renew_before),
            ("--cert-check-interval", check_interval),
        ] {
            if value.as_secs() == 0 {
                return Err(format!("{flag} must be at least 1s"));
            }
        }
        if self.cert_renew_before >= self.cert_validity {
            return Err(format!(
                "--cert-renew-before ({}) must be shorter than --cert-validity ({})",
                h(self.cert_renew_before),
                h(self.cert_validity)
            ));
        }
        if check_interval + reload_interval >= self.cert_renew_before {
            return Err(format!(
                "--cert-check-interval ({}) + --tls-reload-interval ({}) must be shorter than \
                 --cert-renew-before ({}), so every replica serves a renewed certificate before \
                 the old one expires",
                h(check_interval),
                h(reload_interval),
                h(self.cert_renew_before)
            ));
        }
        // A new CA signs from half of --ca-renew-before after it was made; it must not be due for
        // rotation itself by then.
        if self.ca_renew_before > self.ca_validity / 2 {
            return Err(format!(
                "--ca-renew-before ({}) must be at most half of --ca-validity ({})",
                h(self.ca_renew_before),
                h(self.ca_validity)
            ));
        }
        if self.ca_renew_before / 2 <= self.cert_renew_before {
            return Err(format!(
                "--ca-renew-before ({}) must be more than twice --cert-renew-before ({}): serving \
                 certificates are cut at their CA's expiry, which must stay beyond the renewal \
                 point until the next CA signs",
                h(self.ca_renew_before),
                h(self.cert_renew_before)
            ));
        }
        Ok(())
    }
}

/// What the Secret holds, as PEM text.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bundle {
    /// Every CA whose certificates may be served (the caBundle).
    pub ca_pem: String,
    /// The signing CA's private key.
    pub ca_key_pem: String,
    /// The next CA's private key, during a CA rotation.
    pub next_ca_key_pem: Option<String>,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key.
    pub key_pem: String,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("next_ca", &self.next_ca_key_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Reads the bundle from a Secret's data; missing or non-UTF-8 keys read as empty, so the
    /// checks in [`plan`] name what is wrong.
    pub fn from_secret(secret: &Secret) -> Self {
        let get = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
        };
        Self {
            ca_pem: get(CA_CERT).unwrap_or_default(),
            ca_key_pem: get(CA_KEY).unwrap_or_default(),
            next_ca_key_pem: get(CA_NEXT_KEY).filter(|k| !k.is_empty()),
            cert_pem: get(TLS_CERT).unwrap_or_default(),
            key_pem: get(TLS_KEY).unwrap_or_default(),
        }
    }

    /// Writes the bundle into `data`, keeping keys that are not ours.
    fn store(&self, data: &mut BTreeMap<String, ByteString>) {
        let mut put = |key: &str, value: &str| {
            data.insert(key.to_owned(), ByteString(value.as_bytes().to_vec()));
        };
        put(TLS_CERT, &self.cert_pem);
        put(TLS_KEY, &self.key_pem);
        put(CA_CERT, &self.ca_pem);
        put(CA_KEY, &self.ca_key_pem);
        match &self.next_ca_key_pem {
            Some(key) => put(CA_NEXT_KEY, key),
            None => {
                data.remove(CA_NEXT_KEY);
            }
        }
    }

    /// The serving certificate, parsed.
    pub fn serving_certificate(&self) -> Option<CertInfo> {
        parse_certificates(&self.cert_pem)
            .ok()
            .and_then(|c| c.into_iter().next())
    }
}

/// The facts about a certificate that the decisions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DER encoding.
    pub der: Vec<u8>,
    /// Serial number, hex with colons.
    pub serial: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// NotBefore, Unix seconds.
    pub not_before: i64,
    /// NotAfter, Unix seconds.
    pub not_after: i64,
    /// basicConstraints CA.
    pub is_ca: bool,
    /// Subject alternative names (DNS and IP).
    pub names: BTreeSet<Name>,
    /// The subject public key (the BIT STRING's content).
    public_key: Vec<u8>,
}

impl CertInfo {
    /// Parses one DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut names = BTreeSet::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        names.insert(Name::Dns(dns.to_ascii_lowercase()));
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        let bytes: &[u8] = bytes;
                        let ip = <[u8; 4]>::try_from(bytes)
                            .ok()
                            .map(IpAddr::from)
                            .or_else(|| <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from));
                        if let Some(ip) = ip {
                            names.insert(Name::Ip(ip));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            der: der.to_vec(),
            serial: cert.raw_serial_as_string(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            names,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &CertInfo) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (
            x509_parser::parse_x509_certificate(&self.der),
            x509_parser::parse_x509_certificate(&issuer.der),
        ) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }
}

/// Every certificate in a PEM text, in order.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertInfo>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|der| {
            der.map_err(|e| format!("invalid PEM: {e}"))
                .and_then(|der| CertInfo::parse(&der))
        })
        .collect()
}

/// The public key (as in a certificate's SPKI) of a PEM private key.
fn public_key_of(key_pem: &str) -> Result<Vec<u8>, String> {
    KeyPair::from_pem(key_pem)
        .map(|k| k.public_key_raw().to_vec())
        .map_err(|e| format!("no usable private key: {e}"))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64_STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A bundle parsed and checked against itself.
struct Parsed {
    cas: Vec<CertInfo>,
    /// Index in `cas` of the CA whose key is `ca.key`.
    signing: usize,
    /// Index in `cas` of the CA whose key is `ca-next.key`.
    next: Option<usize>,
    /// The serving certificate, or why it cannot be used.
    leaf: Result<CertInfo, String>,
}

impl Parsed {
    fn signing(&self) -> Option<&CertInfo> {
        self.cas.get(self.signing)
    }

    fn next(&self) -> Option<&CertInfo> {
        self.next.and_then(|i| self.cas.get(i))
    }
}

/// Parses the bundle. `Err`: the CA cannot be used (the reason).
fn parse_bundle(bundle: &Bundle) -> Result<Parsed, String> {
    let cas = parse_certificates(&bundle.ca_pem).map_err(|e| format!("{CA_CERT}: {e}"))?;
    if cas.is_empty() {
        return Err(format!("{CA_CERT}: no certificate"));
    }
    let ca_key = public_key_of(&bundle.ca_key_pem).map_err(|e| format!("{CA_KEY}: {e}"))?;
    let signing = cas
        .iter()
        .position(|ca| ca.public_key == ca_key)
        .ok_or_else(|| format!("{CA_KEY} belongs to no certificate in {CA_CERT}"))?;
    if !cas.get(signing).is_some_and(|ca| ca.is_ca) {
        return Err(format!("the certificate of {CA_KEY} is not a CA"));
    }
    let next = bundle
        .next_ca_key_pem
        .as_deref()
        .and_then(|k| public_key_of(k).ok())
        .and_then(|key| {
            cas.iter()
                .position(|ca| ca.public_key == key && ca.is_ca)
                .filter(|&i| i != signing)
        });
    let leaf = parse_certificates(&bundle.cert_pem)
        .map_err(|e| format!("{TLS_CERT}: {e}"))
        .and_then(|certs| {
            certs
                .into_iter()
                .next()
                .ok_or_else(|| format!("{TLS_CERT}: no certificate"))
        })
        .and_then(|leaf| {
            let key = public_key_of(&bundle.key_pem).map_err(|e| format!("{TLS_KEY}: {e}"))?;
            if key == leaf.public_key {
                Ok(leaf)
            } else {
                Err(format!("{TLS_KEY} does not belong to {TLS_CERT}"))
            }
        });
    Ok(Parsed {
        cas,
        signing,
        next,
        leaf,
    })
}

/// One change to the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace everything with a new CA and serving certificate (why).
    NewCa(String),
    /// Remove these expired CAs (DER) from `ca.crt`.
    Prune(Vec<Vec<u8>>),
    /// CA rotation step 1: add a new CA to `ca.crt`, its key in `ca-next.key`.
    AddNextCa,
    /// CA rotation step 2: the next CA signs from now on (with a new serving certificate).
    PromoteNextCa,
    /// A new serving certificate (new key) from the signing CA (why).
    RenewServing(String),
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, secs)
}

/// RFC 3339 (seconds) rendering of a Unix time, for messages.
pub(crate) fn rfc3339(unix: i64) -> String {
    u64::try_from(unix)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// What to change in `bundle` (`None`: there is none) at `now`, so that it serves `names`.
/// `trusted`: the CAs (DER) every webhook's caBundle holds now, `None` when there is no
/// configuration to keep in step. Empty: nothing to do.
pub fn plan(
    bundle: Option<&Bundle>,
    now: i64,
    lifetimes: &Lifetimes,
    names: &BTreeSet<Name>,
    trusted: Option<&[Vec<u8>]>,
) -> Vec<Action> {
    let Some(bundle) = bundle else {
        return vec![Action::NewCa("no Secret yet".into())];
    };
    let parsed = match parse_bundle(bundle) {
        Ok(parsed) => parsed,
        Err(reason) => return vec![Action::NewCa(reason)],
    };
    let Some(signing) = parsed.signing() else {
        return vec![Action::NewCa(format!("{CA_KEY} belongs to no CA"))];
    };
    if signing.not_after <= now {
        return vec![Action::NewCa(format!(
            "the CA expired at {}",
            rfc3339(signing.not_after)
        ))];
    }
    let mut actions = Vec::new();

    let expired: Vec<Vec<u8>> = parsed
        .cas
        .iter()
        .enumerate()
        .filter(|&(i, ca)| i != parsed.signing && Some(i) != parsed.next && ca.not_after <= now)
        .map(|(_, ca)| ca.der.clone())
        .collect();
    if !expired.is_empty() {
        actions.push(Action::Prune(expired));
    }

    let ca_left = signing.not_after - now;
    let ca_renew_before = secs(lifetimes.ca_renew_before);
    let promote = match parsed.next() {
        None => {
            if ca_left < ca_renew_before {
                actions.push(Action::AddNextCa);
            }
            false
        }
        Some(next) => {
            let in_bundle = trusted.is_none_or(|t| t.contains(&next.der));
            ca_left < ca_renew_before / 2 && in_bundle && next.not_after > signing.not_after
        }
    };
    if promote {
        actions.push(Action::PromoteNextCa);
        return actions;
    }

    let reason = match &parsed.leaf {
        Err(reason) => Some(reason.clone()),
        Ok(leaf) => {
            let missing: Vec<String> = names
                .difference(&leaf.names)
                .map(ToString::to_string)
                .collect();
            let renewed_not_after = signing
                .not_after
                .min(now.saturating_add(secs(lifetimes.cert_validity)));
            if !leaf.signed_by(signing) {
                Some("not signed by the current CA".to_owned())
            } else if !missing.is_empty() {
                Some(format!("does not cover {}", missing.join(", ")))
            } else if leaf.not_before > now {
                Some(format!("not valid before {}", rfc3339(leaf.not_before)))
            } else if leaf.not_after - now < secs(lifetimes.cert_renew_before)
                // A renewal must give more time than there is, or it would repeat every check
                // (a CA near its end cuts what it signs).
                && renewed_not_after > leaf.not_after
            {
                Some(format!("expires at {}", rfc3339(leaf.not_after)))
            } else {
                None
            }
        }
    };
    if let Some(reason) = reason {
        actions.push(Action::RenewServing(reason));
    }
    actions
}

fn timestamp(unix: i64) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| CertError::Invalid(format!("time {unix} out of range: {e}")))
}

/// A new self-signed CA (ECDSA P-256): its certificate (DER) and key (PEM).
fn new_ca(now: i64, validity: Duration) -> Result<(Vec<u8>, String), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kube-harden");
    dn.push(
        DnType::CommonName,
        format!("kube-harden webhook CA {}", rfc3339(now)),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = timestamp(now - BACKDATE_SECS)?;
    params.not_after = timestamp(now.saturating_add(secs(validity)))?;
    let cert = params.self_signed(&key)?;
    Ok((cert.der().to_vec(), key.serialize_pem()))
}

/// A new serving certificate (ECDSA P-256, new key) for `names`, signed by the CA `ca`.
fn new_leaf(
    ca: &CertInfo,
    ca_key_pem: &str,
    names: &BTreeSet<Name>,
    now: i64,
    validity: Duration,
) -> Result<(String, String), CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(ca.der.clone()), ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|name| match name {
            Name::Dns(dns) => dns.clone().try_into().map(SanType::DnsName),
            Name::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_, _>>()?;
    let common_name = names
        .iter()
        .find_map(|n| match n {
            Name::Dns(dns) if dns.contains(".svc") => Some(dns.clone()),
            _ => None,
        })
        .or_else(|| names.iter().next().map(ToString::to_string))
        .unwrap_or_else(|| "kube-harden".to_owned());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kube-harden");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = timestamp(now - BACKDATE_SECS)?;
    params.not_after = timestamp(ca.not_after.min(now.saturating_add(secs(validity))))?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Carries out `actions` (from [`plan`]) on `bundle` at `now`. Makes keys, so not
/// deterministic; everything else is.
pub fn apply(
    bundle: Option<&Bundle>,
    actions: &[Action],
    now: i64,
    lifetimes: &Lifetimes,
    names: &BTreeSet<Name>,
) -> Result<Bundle, CertError> {
    let fresh = bundle.is_none() || actions.iter().any(|a| matches!(a, Action::NewCa(_)));
    let (Some(bundle), false) = (bundle, fresh) else {
        let (ca_der, ca_key_pem) = new_ca(now, lifetimes.ca_validity)?;
        let ca = CertInfo::parse(&ca_der).map_err(CertError::Invalid)?;
        let (cert_pem, key_pem) = new_leaf(&ca, &ca_key_pem, names, now, lifetimes.cert_validity)?;
        return Ok(Bundle {
            ca_pem: ca.pem(),
            ca_key_pem,
            next_ca_key_pem: None,
            cert_pem,
            key_pem,
        });
    };
    let parsed = parse_bundle(bundle).map_err(CertError::Invalid)?;
    let mut out = bundle.clone();
    if parsed.next.is_none() {
        out.next_ca_key_pem = None;
    }
    let mut cas = parsed.cas.clone();
    let mut signing = parsed
        .signing()
        .cloned()
        .ok_or_else(|| CertError::Invalid("no signing CA".into()))?;
    let mut cas_changed = false;
    let mut renew = false;
    for action in actions {
        match action {
            Action::NewCa(_) => {}
            Action::Prune(expired) => {
                cas.retain(|ca| !expired.contains(&ca.der));
                cas_changed = true;
            }
            Action::AddNextCa => {
                let (der, key) = new_ca(now, lifetimes.ca_validity)?;
                cas.push(CertInfo::parse(&der).map_err(CertError::Invalid)?);
                out.next_ca_key_pem = Some(key);
                cas_changed = true;
            }
            Action::PromoteNextCa => {
                let (Some(next), Some(key)) = (parsed.next(), out.next_ca_key_pem.take()) else {
                    return Err(CertError::Invalid("no next CA to promote".into()));
                };
                signing = next.clone();
                out.ca_key_pem = key;
                renew = true;
            }
            Action::RenewServing(_) => renew = true,
        }
    }
    if cas_changed {
        out.ca_pem = cas.iter().map(CertInfo::pem).collect();
    }
    if renew {
        // Names only ever join: a replica that still requires an old name does not fight one
        // that requires a new name.
        let mut all = names.clone();
        if let Ok(leaf) = &parsed.leaf {
            all.extend(leaf.names.iter().cloned());
        }
        let (cert_pem, key_pem) = new_leaf(
            &signing,
            &out.ca_key_pem,
            &all,
            now,
            lifetimes.cert_validity,
        )?;
        out.cert_pem = cert_pem;
        out.key_pem = key_pem;
    }
    Ok(out)
}

/// The `kind` labels of `kube_harden_cert_renewals_total` for a write of `actions`: one per
/// change, so a write that renews the serving certificate and prunes a CA counts for both.
fn write_kinds(actions: &[Action], secret_exists: bool) -> Vec<&'static str> {
    if actions.iter().any(|a| matches!(a, Action::NewCa(_))) {
        return vec![if secret_exists { "replace" } else { "create" }];
    }
    let restore = (!secret_exists).then_some("restore");
    restore
        .into_iter()
        .chain(actions.iter().map(|a| match a {
            Action::NewCa(_) => "create",
            Action::Prune(_) => "ca_prune",
            Action::AddNextCa => "ca_add",
            Action::PromoteNextCa => "ca_promote",
            Action::RenewServing(_) => "serving",
        }))
        .collect()
}

fn describe(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::NewCa(why) => format!("new CA ({why})"),
            Action::Prune(cas) => format!("remove {} expired CA(s)", cas.len()),
            Action::AddNextCa => "add the next CA".to_owned(),
            Action::PromoteNextCa => "the next CA signs from now on".to_owned(),
            Action::RenewServing(why) => format!("new serving certificate (current one {why})"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why managing the certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No Kubernetes client could be configured.
    #[error("Kubernetes client configuration: {0}")]
    Client(String),
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
    /// The bundle is inconsistent, or a value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Other writers kept winning.
    #[error("{0}: still conflicting after {n} attempts", n = MAX_ATTEMPTS)]
    Conflict(String),
    /// A check took too long.
    #[error("certificate check did not finish within {0:?}")]
    Timeout(Duration),
}

/// Settings of `--manage-certs`, validated.
#[derive(Debug, Clone)]
pub struct CertConfig {
    /// The Secret holding the bundle.
    pub secret: String,
    /// Its namespace.
    pub namespace: String,
    /// The MutatingWebhookConfiguration whose webhooks get the caBundle.
    pub webhook_config: String,
    /// Names the serving certificate must cover.
    pub names: BTreeSet<Name>,
    /// Where the serving certificate is written.
    pub cert_file: PathBuf,
    /// Where its key is written.
    pub key_file: PathBuf,
    /// kubeconfig file; `None`: in-cluster config or `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// Certificate lifetimes.
    pub lifetimes: Lifetimes,
    /// How often the Secret and the configuration are checked.
    pub check_interval: Duration,
}

/// A Kubernetes client from `kubeconfig`, or else inferred (in-cluster, or `$KUBECONFIG`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, CertError> {
    let error = |e: &dyn fmt::Display| CertError::Client(e.to_string());
    let mut config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CertError::Client(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| error(&e))?
        }
        None => kube::Config::infer().await.map_err(|e| error(&e))?,
    };
    // A hung API server must not stall the renewal loop.
    config.read_timeout = Some(Duration::from_secs(30));
    config.reset_reader_on_write = true;
    kube::Client::try_from(config).map_err(|e| error(&e))
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// Keeps the Secret, the files and the caBundle in step (see the module documentation).
pub struct CertManager {
    config: CertConfig,
    secrets: Api<Secret>,
    webhook_configs: Api<MutatingWebhookConfiguration>,
    metrics: Metrics,
    /// The bundle last read or written: re-created from this if the Secret disappears.
    last: Option<Bundle>,
    /// Whether the configuration was missing at the last check (to warn once).
    config_missing: bool,
}

impl fmt::Debug for CertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CertManager {
    /// A manager using `client`.
    pub fn new(client: kube::Client, config: CertConfig, metrics: Metrics) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), &config.namespace),
            webhook_configs: Api::all(client),
            config,
            metrics,
            last: None,
            config_missing: false,
        }
    }

    /// One check: reconcile the Secret, write the files, sync the caBundle. Returns the bundle
    /// now in force.
    pub async fn check(&mut self) -> Result<Bundle, CertError> {
        let trusted = self.trusted_cas().await?;
        let bundle = self.reconcile(trusted.as_deref()).await?;
        self.last = Some(bundle.clone());
        self.write_files(&bundle).await?;
        self.sync_ca_bundle(&bundle.ca_pem).await?;
        if let Ok(parsed) = parse_bundle(&bundle)
            && let Some(ca) = parsed.signing()
        {
            self.metrics.set_ca_expiry(ca.not_after);
        }
        Ok(bundle)
    }

    /// [`Self::check`] with a time limit, counted in `kube_harden_cert_checks_total`.
    pub async fn check_bounded(&mut self) -> Result<Bundle, CertError> {
        let result = match tokio::time::timeout(CHECK_TIMEOUT, self.check()).await {
            Ok(result) => result,
            Err(_) => Err(CertError::Timeout(CHECK_TIMEOUT)),
        };
        self.metrics.cert_check(result.is_ok());
        result
    }

    /// Checks every `--cert-check-interval` (sooner after a failure) until dropped.
    pub async fn run(mut self) {
        let interval = self.config.check_interval;
        let mut delay = interval;
        loop {
            tokio::time::sleep(delay).await;
            delay = match self.check_bounded().await {
                Ok(_) => interval,
                Err(e) => {
                    tracing::error!(error = %e, secret = %self.secret_ref(), "certificate check failed; serving the current certificate");
                    interval.min(RETRY_DELAY)
                }
            };
        }
    }

    fn secret_ref(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.secret)
    }

    /// The CAs (DER) every webhook's caBundle holds; `None` when the configuration does not
    /// exist or has no webhooks (nothing to keep in step).
    async fn trusted_cas(&self) -> Result<Option<Vec<Vec<u8>>>, CertError> {
        let name = &self.config.webhook_config;
        let found = self
            .webhook_configs
            .get_opt(name)
            .await
            .map_err(|source| CertError::Api {
                action: format!("get MutatingWebhookConfiguration {name}"),
                source,
            })?;
        let webhooks = found.and_then(|c| c.webhooks).unwrap_or_default();
        let mut sets = webhooks.iter().map(|w| {
            let pem = w
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            parse_certificates(&pem)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.der)
                .collect::<Vec<_>>()
        });
        let Some(first) = sets.next() else {
            return Ok(None);
        };
        Ok(Some(sets.fold(first, |acc, set| {
            acc.into_iter().filter(|der| set.contains(der)).collect()
        })))
    }

    /// Reads the Secret, renews or creates what is due, and returns the bundle in force.
    async fn reconcile(&self, trusted: Option<&[Vec<u8>]>) -> Result<Bundle, CertError> {
        let name = &self.config.secret;
        let api_error = |action: &str| {
            let action = format!("{action} Secret {}", self.secret_ref());
            move |source: kube::Error| CertError::Api { action, source }
        };
        for _ in 0..MAX_ATTEMPTS {
            let found = self.secrets.get_opt(name).await.map_err(api_error("get"))?;
            let current = match &found {
                Some(secret) => Some(Bundle::from_secret(secret)),
                None => self.last.clone(),
            };
            let now = unix_now();
            let lifetimes = &self.config.lifetimes;
            let names = &self.config.names;
            let actions = plan(current.as_ref(), now, lifetimes, names, trusted);
            if let (Some(current), true, true) = (&current, actions.is_empty(), found.is_some()) {
                return Ok(current.clone());
            }
            let bundle = apply(current.as_ref(), &actions, now, lifetimes, names)?;
            let kinds = write_kinds(&actions, found.is_some());
            let record = |result: &str| {
                for kind in &kinds {
                    self.metrics.cert_renewal(kind, result);
                }
            };
            let kind = kinds.join(",");
            let result = match found {
                Some(mut secret) => {
                    bundle.store(secret.data.get_or_insert_with(BTreeMap::new));
                    // The resourceVersion from the read makes this a compare-and-swap.
                    self.secrets
                        .replace(name, &PostParams::default(), &secret)
                        .await
                        .map_err(api_error("update"))
                }
                None => {
                    let mut data = BTreeMap::new();
                    bundle.store(&mut data);
                    let secret = Secret {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(self.config.namespace.clone()),
                            labels: Some(BTreeMap::from([
                                (
                                    "app.kubernetes.io/name".to_owned(),
                                    "kube-harden".to_owned(),
                                ),
                                (
                                    "app.kubernetes.io/managed-by".to_owned(),
                                    "kube-harden".to_owned(),
                                ),
                            ])),
                            ..ObjectMeta::default()
                        },
                        type_: Some("kubernetes.io/tls".to_owned()),
                        data: Some(data),
                        ..Secret::default()
                    };
                    self.secrets
                        .create(&PostParams::default(), &secret)
                        .await
                        .map_err(api_error("create"))
                }
            };
            match result {
                Ok(_) => {
                    record("success");
                    let leaf = bundle.serving_certificate();
                    tracing::info!(
                        secret = %self.secret_ref(),
                        %kind,
                        changes = %describe(&actions),
                        serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
                        not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
                        "certificate Secret written"
                    );
                    return Ok(bundle);
                }
                Err(CertError::Api { source, .. }) if is_conflict(&source) => {
                    record("conflict");
                    tracing::info!(secret = %self.secret_ref(), %kind, "another replica wrote the Secret first; using theirs");
                }
                Err(e) => {
                    record("failure");
                    return Err(e);
                }
            }
        }
        Err(CertError::Conflict(format!("Secret {}", self.secret_ref())))
    }

    /// Writes the serving pair to the files when they differ (key first, each through a
    /// temporary file and a rename, so a reader never sees a partial file).
    async fn write_files(&self, bundle: &Bundle) -> Result<(), CertError> {
        let files = [
            (self.config.key_file.clone(), bundle.key_pem.clone(), 0o600),
            (
                self.config.cert_file.clone(),
                bundle.cert_pem.clone(),
                0o644,
            ),
        ];
        let written = tokio::task::spawn_blocking(move || -> Result<bool, CertError> {
            let same = files
                .iter()
                .all(|(path, text, _)| std::fs::read(path).is_ok_and(|b| b == text.as_bytes()));
            if same {
                return Ok(false);
            }
            for (path, text, mode) in &files {
                write_atomically(path, text.as_bytes(), *mode)?;
            }
            Ok(true)
        })
        .await
        .map_err(|e| CertError::Invalid(format!("file writer failed: {e}")))??;
        if written {
            let leaf = bundle.serving_certificate();
            tracing::info!(
                cert = %self.config.cert_file.display(),
                serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
                not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
                "serving certificate written"
            );
        }
        Ok(())
    }

    /// Sets every webhook's caBundle to `ca_pem` where it differs.
    async fn sync_ca_bundle(&mut self, ca_pem: &str) -> Result<(), CertError> {
        let name = self.config.webhook_config.clone();
        let api_error = |action: &str| {
            let action = format!("{action} MutatingWebhookConfiguration {name}");
            move |source: kube::Error| CertError::Api { action, source }
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some(config) = self
                .webhook_configs
                .get_opt(&name)
                .await
                .map_err(api_error("get"))?
            else {
                if !self.config_missing {
                    tracing::warn!(config = %name, "MutatingWebhookConfiguration not found; its caBundle is set once it exists");
                }
                self.config_missing = true;
                return Ok(());
            };
            self.config_missing = false;
            let stale: Vec<&str> = config
                .webhooks
                .iter()
                .flatten()
                .filter(|w| {
                    w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice())
                        != Some(ca_pem.as_bytes())
                })
                .map(|w| w.name.as_str())
                .collect();
            if stale.is_empty() {
                return Ok(());
            }
            let encoded = BASE64_STANDARD.encode(ca_pem);
            let webhooks: Vec<_> = stale
                .iter()
                .map(|w| json!({"name": w, "clientConfig": {"caBundle": encoded}}))
                .collect();
            // Webhooks merge by name; the resourceVersion makes the patch fail with 409 if the
            // configuration changed since it was read.
            let patch = json!({
                "metadata": {"resourceVersion": config.metadata.resource_version},
                "webhooks": webhooks,
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match self
                .webhook_configs
                .patch(&name, &params, &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    self.metrics.ca_bundle_update("success");
                    tracing::info!(config = %name, webhooks = ?stale, "caBundle updated");
                    return Ok(());
                }
                Err(e) if is_conflict(&e) => self.metrics.ca_bundle_update("conflict"),
                Err(e) => {
                    self.metrics.ca_bundle_update("failure");
                    return Err(api_error("patch")(e));
                }
            }
        }
        Err(CertError::Conflict(format!(
            "MutatingWebhookConfiguration {name}"
        )))
    }
}

/// Writes `bytes` to a temporary file beside `path` (mode `mode`), syncs it, and renames it over
/// `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let error = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(error)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(error)
}

/// Start-up with `--manage-certs`: connects, runs the first check (the Secret, the files and the
/// caBundle are in place when this returns), and spawns the renewal loop.
pub async fn start(
    config: CertConfig,
    metrics: Metrics,
) -> Result<tokio::task::JoinHandle<()>, CertError> {
    let client = client(config.kubeconfig.as_deref()).await?;
    let mut manager = CertManager::new(client, config, metrics);
    let bundle = manager.check_bounded().await?;
    let leaf = bundle.serving_certificate();
    tracing::info!(
        secret = %manager.secret_ref(),
        serial = leaf.as_ref().map(|c| c.serial.as_str()).unwrap_or_default(),
        not_after = %leaf.as_ref().map(|c| rfc3339(c.not_after)).unwrap_or_default(),
        check_interval = %humantime::format_duration(manager.config.check_interval),
        "managed certificates ready"
    );
    Ok(tokio::spawn(manager.run()))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn names() -> BTreeSet<Name> {
        service_names("kube-harden", "kube-harden")
            .iter()
            .chain(["127.0.0.1".to_owned()].iter())
            .map(|n| Name::parse(n).unwrap())
            .collect()
    }

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            cert_validity: Duration::from_secs(1000),
            cert_renew_before: Duration::from_secs(300),
            ca_validity: Duration::from_secs(10_000),
            ca_renew_before: Duration::from_secs(2000),
        }
    }

    fn fresh(now: i64) -> Bundle {
        let actions = plan(None, now, &lifetimes(), &names(), None);
        assert_eq!(actions, vec![Action::NewCa("no Secret yet".into())]);
        apply(None, &actions, now, &lifetimes(), &names()).unwrap()
    }

    fn plan_at(bundle: &Bundle, now: i64) -> Vec<Action> {
        plan(Some(bundle), now, &lifetimes(), &names(), None)
    }

    fn step(bundle: &Bundle, now: i64) -> (Vec<Action>, Bundle) {
        let actions = plan_at(bundle, now);
        let next = apply(Some(bundle), &actions, now, &lifetimes(), &names()).unwrap();
        (actions, next)
    }

    fn is_renewal(actions: &[Action]) -> bool {
        matches!(actions, [Action::RenewServing(_)])
    }

    #[test]
    fn a_new_bundle_is_a_ca_and_a_serving_certificate_it_signed() {
        let bundle = fresh(NOW);
        let parsed = parse_bundle(&bundle).unwrap();
        assert_eq!(parsed.cas.len(), 1);
        let ca = &parsed.cas[0];
        assert!(ca.is_ca);
        assert_eq!(ca.not_after, NOW + 10_000);
        assert_eq!(ca.not_before, NOW - BACKDATE_SECS);
        assert!(
            ca.subject.contains("kube-harden webhook CA"),
            "{}",
            ca.subject
        );
        let leaf = parsed.leaf.unwrap();
        assert!(!leaf.is_ca);
        assert!(leaf.signed_by(ca));
        assert_eq!(leaf.names, names());
        assert_eq!(leaf.not_after, NOW + 1000);
        assert!(
            leaf.subject.contains("kube-harden.kube-harden.svc"),
            "{}",
            leaf.subject
        );
        assert_eq!(bundle.next_ca_key_pem, None);
        assert!(bundle.key_pem.contains("PRIVATE KEY"));
        // Nothing to do until the renewal point.
        assert_eq!(plan_at(&bundle, NOW), vec![]);
        assert_eq!(plan_at(&bundle, NOW + 700), vec![]);
    }

    #[test]
    fn the_files_the_server_loads_are_a_matching_pair() {
        // The server refuses a pair that is not valid at the current time: minted now.
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let bundle = fresh(now);
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls/tls.crt");
        let key = dir.path().join("tls/tls.key");
        write_atomically(&key, bundle.key_pem.as_bytes(), 0o600).unwrap();
        write_atomically(&cert, bundle.cert_pem.as_bytes(), 0o644).unwrap();
        let store = crate::server::tls::CertStore::load(&cert, &key).unwrap();
        assert_eq!(store.not_after(), Some(now + 1000));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary files left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tls")).unwrap().count(),
            2
        );
    }

    #[test]
    fn serving_certificate_is_renewed_with_the_same_ca_when_little_time_is_left() {
        let bundle = fresh(NOW);
        let (actions, renewed) = step(&bundle, NOW + 701);
        assert!(is_renewal(&actions), "{actions:?}");
        let Action::RenewServing(why) = &actions[0] else {
            unreachable!()
        };
        assert!(why.starts_with("expires at "), "{why}");
        assert_eq!(renewed.ca_pem, bundle.ca_pem, "CA unchanged");
        assert_eq!(renewed.ca_key_pem, bundle.ca_key_pem);
        assert_ne!(renewed.key_pem, bundle.key_pem, "new key");
        let old = bundle.serving_certificate().unwrap();
        let new = renewed.serving_certificate().unwrap();
        assert_ne!(old.serial, new.serial);
        assert_eq!(new.not_after, NOW + 701 + 1000);
        let ca = &parse_certificates(&bundle.ca_pem).unwrap()[0];
        assert!(new.signed_by(ca));
        assert_eq!(plan_at(&renewed, NOW + 701), vec![]);
    }

    #[test]
    fn serving_certificate_missing_a_name_is_renewed_and_keeps_its_other_names() {
        let bundle = fresh(NOW);
        let mut more = names();
        more.insert(Name::parse("webhook.example.com").unwrap());
        let actions = plan(Some(&bundle), NOW, &lifetimes(), &more, None);
        assert_eq!(
            actions,
            vec![Action::RenewServing(
                "does not cover webhook.example.com".into()
            )]
        );
        let renewed = apply(Some(&bundle), &actions, NOW, &lifetimes(), &more).unwrap();
        assert_eq!(renewed.serving_certificate().unwrap().names, more);
        // A replica that does not know the new name is content with the union.
        assert_eq!(plan_at(&renewed, NOW), vec![]);
    }

    #[test]
    fn mismatched_key_or_foreign_signature_renews_the_serving_certificate() {
        let a = fresh(NOW);
        let b = fresh(NOW);
        let wrong_key = Bundle {
            key_pem: b.key_pem.clone(),
            ..a.clone()
        };
        assert_eq!(
            plan_at(&wrong_key, NOW),
            vec![Action::RenewServing(
                "tls.key does not belong to tls.crt".into()
            )]
        );
        let foreign = Bundle {
            cert_pem: b.cert_pem.clone(),
            key_pem: b.key_pem.clone(),
            ..a.clone()
        };
        assert_eq!(
            plan_at(&foreign, NOW),
            vec![Action::RenewServing("not signed by the current CA".into())]
        );
        let garbage = Bundle {
            cert_pem: "junk".into(),
            ..a.clone()
        };
        assert!(is_renewal(&plan_at(&garbage, NOW)));
        let (_, fixed) = step(&garbage, NOW);
        assert_eq!(fixed.ca_pem, a.ca_pem);
        assert_eq!(plan_at(&fixed, NOW), vec![]);
    }

    #[test]
    fn an_unusable_ca_is_replaced() {
        let a = fresh(NOW);
        let b = fresh(NOW);
        let cases = [
            (
                Bundle {
                    ca_key_pem: b.ca_key_pem.clone(),
                    ..a.clone()
                },
                "ca.key belongs to no certificate in ca.crt",
            ),
            (
                Bundle {
                    ca_key_pem: String::new(),
                    ..a.clone()
                },
                "ca.key: no usable private key",
            ),
            (
                Bundle {
                    ca_pem: String::new(),
                    ..a.clone()
                },
                "ca.crt: no certificate",
            ),
            (
                // The serving certificate's key in place of the CA's.
                Bundle {
                    ca_pem: a.cert_pem.clone(),
                    ca_key_pem: a.key_pem.clone(),
                    ..a.clone()
                },
                "the certificate of ca.key is not a CA",
            ),
        ];
        for (bundle, reason) in cases {
            match plan_at(&bundle, NOW).as_slice() {
                [Action::NewCa(why)] => assert!(why.starts_with(reason), "{why} / {reason}"),
                other => panic!("{reason}: {other:?}"),
            }
        }
        assert_eq!(
            plan_at(&a, NOW + 10_000),
            vec![Action::NewCa(format!(
                "the CA expired at {}",
                rfc3339(NOW + 10_000)
            ))]
        );
        let replaced = apply(
            Some(&a),
            &plan_at(&a, NOW + 10_000),
            NOW + 10_000,
            &lifetimes(),
            &names(),
        )
        .unwrap();
        assert_ne!(replaced.ca_pem, a.ca_pem);
        assert_eq!(plan_at(&replaced, NOW + 10_000), vec![]);
    }

    #[test]
    fn ca_rotation_adds_then_promotes_then_prunes_and_everything_served_stays_trusted() {
        let l = lifetimes();
        let mut bundle = fresh(NOW);
        let mut now = NOW;
        let mut kinds = Vec::new();
        let mut last_leaf = bundle.serving_certificate().unwrap();
        // Walk the clock in steps of 50 s through more than a whole CA life.
        while now < NOW + 2 * 10_000 {
            now += 50;
            let actions = plan(Some(&bundle), now, &l, &names(), None);
            if actions.is_empty() {
                continue;
            }
            let next = apply(Some(&bundle), &actions, now, &l, &names()).unwrap();
            let step_kinds = write_kinds(&actions, true);
            let kind = step_kinds.join(",");
            kinds.extend(step_kinds.iter().copied());
            // Whatever was served until now and whatever is served next chains to a CA in the
            // new bundle (the caBundle), unless it has expired.
            let cas = parse_certificates(&next.ca_pem).unwrap();
            let leaf = next.serving_certificate().unwrap();
            assert!(cas.iter().any(|ca| leaf.signed_by(ca)), "{kind} at {now}");
            assert!(
                last_leaf.not_after <= now || cas.iter().any(|ca| last_leaf.signed_by(ca)),
                "{kind} at {now}: the previous certificate lost its CA"
            );
            // A serving certificate never outlives its CA.
            let signer = cas.iter().find(|ca| leaf.signed_by(ca)).unwrap();
            assert!(leaf.not_after <= signer.not_after);
            for kind in step_kinds {
                match kind {
                    "ca_add" => assert_eq!(cas.len(), 2),
                    "ca_promote" => {
                        assert_eq!(cas.len(), 2);
                        assert_ne!(leaf.issuer, last_leaf.issuer, "new issuer");
                    }
                    "ca_prune" => assert_eq!(cas.len(), 1),
                    "serving" => {}
                    other => panic!("unexpected {other} at {now}"),
                }
            }
            last_leaf = leaf;
            bundle = next;
        }
        let rotation: Vec<&str> = kinds.iter().copied().filter(|k| *k != "serving").collect();
        assert_eq!(
            rotation,
            [
                "ca_add",
                "ca_promote",
                "ca_prune",
                "ca_add",
                "ca_promote",
                "ca_prune"
            ],
            "{kinds:?}"
        );
        // Serving renewals every ~700 s, never back to back.
        let serving = kinds.iter().filter(|k| **k == "serving").count();
        assert!((20..=32).contains(&serving), "{serving}: {kinds:?}");
    }

    #[test]
    fn promotion_waits_until_the_webhook_configuration_trusts_the_next_ca() {
        let l = lifetimes();
        let bundle = fresh(NOW);
        let ca_end = NOW + 10_000;
        let (actions, rotating) = step(&bundle, ca_end - 1999);
        assert!(actions.contains(&Action::AddNextCa), "{actions:?}");
        let cas = parse_certificates(&rotating.ca_pem).unwrap();
        let old_only = vec![cas[0].der.clone()];
        let both = vec![cas[0].der.clone(), cas[1].der.clone()];
        let at = ca_end - 999;
        let planned =
            |trusted: Option<&[Vec<u8>]>| plan(Some(&rotating), at, &l, &names(), trusted);
        assert!(!planned(Some(&old_only)).contains(&Action::PromoteNextCa));
        assert!(planned(Some(&both)).contains(&Action::PromoteNextCa));
        assert!(planned(None).contains(&Action::PromoteNextCa));
    }

    #[test]
    fn a_serving_certificate_cut_by_its_ca_is_not_renewed_in_a_loop() {
        // The rotation is stuck (the configuration never trusts the next CA): the serving
        // certificate from the old CA cannot outlive it, so renewing gains nothing.
        let l = lifetimes();
        let bundle = fresh(NOW);
        let ca_end = NOW + 10_000;
        let (_, rotating) = step(&bundle, ca_end - 1999);
        let stuck: Vec<Vec<u8>> = vec![];
        let mut current = rotating;
        let mut renewals = 0;
        for now in (ca_end - 1000..ca_end - 1).step_by(10) {
            let actions = plan(Some(&current), now, &l, &names(), Some(&stuck));
            assert!(!actions.contains(&Action::PromoteNextCa));
            if !actions.is_empty() {
                renewals += 1;
                current = apply(Some(&current), &actions, now, &l, &names()).unwrap();
            }
        }
        assert!(renewals <= 1, "{renewals}");
    }

    #[test]
    fn secret_round_trip_keeps_foreign_keys() {
        let bundle = Bundle {
            next_ca_key_pem: Some("next".into()),
            ..fresh(NOW)
        };
        let mut data = BTreeMap::from([("other".to_owned(), ByteString(b"x".to_vec()))]);
        bundle.store(&mut data);
        let secret = Secret {
            data: Some(data.clone()),
            ..Secret::default()
        };
        assert_eq!(Bundle::from_secret(&secret), bundle);
        let without_next = Bundle {
            next_ca_key_pem: None,
            ..bundle
        };
        without_next.store(&mut data);
        assert!(!data.contains_key(CA_NEXT_KEY));
        assert!(data.contains_key("other"));
        assert_eq!(Bundle::from_secret(&Secret::default()), Bundle::default());
    }

    #[test]
    fn names_parse_and_print() {
        assert_eq!(
            Name::parse("127.0.0.1").unwrap(),
            Name::Ip([127, 0, 0, 1].into())
        );
        assert_eq!(Name::parse("::1").unwrap().to_string(), "::1");
        assert_eq!(
            Name::parse("Kube-Harden.NS.svc.").unwrap(),
            Name::Dns("kube-harden.ns.svc".into())
        );
        assert!(Name::parse("*.example.com").is_ok());
        for bad in ["", "a..b", "-a.b", "a b", "ü.example"] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            service_names("kh", "ns"),
            ["kh", "kh.ns", "kh.ns.svc", "kh.ns.svc.cluster.local"]
        );
    }

    #[test]
    fn lifetimes_are_validated() {
        let reload = Duration::from_secs(10);
        let minute = Duration::from_secs(60);
        assert_eq!(Lifetimes::default().validate(minute, reload), Ok(()));
        let short = Lifetimes {
            cert_validity: Duration::from_secs(20),
            cert_renew_before: Duration::from_secs(15),
            ca_validity: Duration::from_secs(90),
            ca_renew_before: Duration::from_secs(40),
        };
        assert_eq!(
            short.validate(Duration::from_secs(1), Duration::from_secs(1)),
            Ok(())
        );
        let err = |l: Lifetimes, check: Duration| l.validate(check, reload).unwrap_err();
        assert!(
            err(
                Lifetimes {
                    cert_renew_before: Duration::from_secs(365 * 86400),
                    ..Lifetimes::default()
                },
                minute
            )
            .contains("--cert-renew-before")
        );
        assert!(
            err(Lifetimes::default(), Duration::from_secs(200 * 86400))
                .contains("--cert-check-interval")
        );
        assert!(
            err(
                Lifetimes {
                    ca_renew_before: Duration::from_secs(200 * 86400),
                    ..Lifetimes::default()
                },
                minute
            )
            .contains("more than twice")
        );
        assert!(
            err(
                Lifetimes {
                    ca_validity: Duration::from_secs(300 * 86400),
                    ..Lifetimes::default()
                },
                minute
            )
            .contains("--ca-validity")
        );
        // Would rotate again right after each promotion.
        let cascading = Lifetimes {
            ca_validity: Duration::from_secs(60),
            ..short
        };
        assert!(
            cascading
                .validate(Duration::from_secs(1), Duration::from_secs(1))
                .unwrap_err()
                .contains("at most half of --ca-validity")
        );
        assert!(err(Lifetimes::default(), Duration::ZERO).contains("at least 1s"));
    }

    #[test]
    fn parse_certificates_reads_a_bundle_in_order() {
        let a = fresh(NOW);
        let b = fresh(NOW + 1);
        let both = format!("{}{}", a.ca_pem, b.ca_pem);
        let cas = parse_certificates(&both).unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0].pem(), a.ca_pem);
        assert_ne!(cas[0].subject, cas[1].subject);
        assert!(
            parse_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }

    fn serve_args(extra: &[&str]) -> crate::config::ServeArgs {
        use clap::Parser as _;
        let mut argv = vec![
            "kube-harden",
            "serve",
            "--tls-cert-file",
            "/run/tls/tls.crt",
            "--tls-key-file",
            "/run/tls/tls.key",
        ];
        argv.extend_from_slice(extra);
        match crate::config::Cli::try_parse_from(argv).unwrap().command {
            crate::config::Command::Serve(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_without_manage_certs_change_nothing() {
        assert!(serve_args(&[]).cert_config().unwrap().is_none());
    }

    #[test]
    fn flags_with_manage_certs() {
        let err = serve_args(&["--manage-certs"]).cert_config().unwrap_err();
        assert!(err.to_string().contains("--cert-namespace"), "{err}");
        let config = serve_args(&[
            "--manage-certs",
            "--cert-namespace",
            "ns",
            "--cert-dns-names",
            "127.0.0.1,webhook.example.com",
        ])
        .cert_config()
        .unwrap()
        .unwrap();
        assert_eq!(config.secret, "kube-harden-tls");
        assert_eq!(config.webhook_config, "kube-harden");
        assert_eq!(config.namespace, "ns");
        assert_eq!(config.cert_file, PathBuf::from("/run/tls/tls.crt"));
        assert_eq!(config.lifetimes, Lifetimes::default());
        assert_eq!(config.check_interval, Duration::from_secs(60));
        let names: Vec<String> = config.names.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "kube-harden",
                "kube-harden.ns",
                "kube-harden.ns.svc",
                "kube-harden.ns.svc.cluster.local",
                "webhook.example.com",
                "127.0.0.1"
            ]
        );
        let short = serve_args(&[
            "--manage-certs",
            "--cert-namespace=ns",
            "--cert-validity=20s",
            "--cert-renew-before=15s",
            "--ca-validity=90s",
            "--ca-renew-before=40s",
            "--cert-check-interval=1s",
            "--tls-reload-interval=1s",
        ]);
        assert!(short.cert_config().is_ok());
        let slow = serve_args(&[
            "--manage-certs",
            "--cert-namespace=ns",
            "--cert-validity=20s",
            "--cert-renew-before=15s",
        ]);
        let err = slow.cert_config().unwrap_err().to_string();
        assert!(err.contains("--cert-check-interval"), "{err}");
        let bad_name = serve_args(&[
            "--manage-certs",
            "--cert-namespace=ns",
            "--cert-dns-names=a b",
        ]);
        assert!(bad_name.cert_config().is_err());
    }

    #[test]
    fn write_kinds_count_every_change() {
        let renew = Action::RenewServing("x".into());
        assert_eq!(write_kinds(&[Action::NewCa("x".into())], false), ["create"]);
        assert_eq!(write_kinds(&[Action::NewCa("x".into())], true), ["replace"]);
        assert_eq!(write_kinds(&[], false), ["restore"]);
        assert_eq!(
            write_kinds(std::slice::from_ref(&renew), false),
            ["restore", "serving"]
        );
        assert_eq!(write_kinds(std::slice::from_ref(&renew), true), ["serving"]);
        assert_eq!(
            write_kinds(&[Action::Prune(vec![]), Action::AddNextCa, renew], true),
            ["ca_prune", "ca_add", "serving"]
        );
        assert_eq!(write_kinds(&[Action::PromoteNextCa], true), ["ca_promote"]);
    }

    /// A fake API server for [`CertManager`]: one Secret and one MutatingWebhookConfiguration
    /// with resourceVersions, compare-and-swap writes, and a write by "another replica" injected
    /// just before one of ours, so the conflict paths run deterministically.
    mod fake {
        use std::sync::{Arc, Mutex};

        use bytes::Bytes;
        use http::{Method, Request, Response};
        use http_body_util::{BodyExt as _, Full};
        use serde_json::{Value, json};

        #[derive(Default)]
        pub struct State {
            pub secret: Option<Value>,
            pub config: Option<Value>,
            pub rv: u64,
            /// Before our next request with this method: store this object (for a Secret write)
            /// or just move the resourceVersion on (PATCH), and answer 409.
            pub interfere: Option<(Method, Option<Value>)>,
            pub requests: Vec<String>,
        }

        pub type Shared = Arc<Mutex<State>>;

        fn reply(code: u16, body: &Value) -> Response<Full<Bytes>> {
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        }

        fn status(code: u16, reason: &str) -> Response<Full<Bytes>> {
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": reason, "reason": reason, "code": code});
            reply(code, &body)
        }

        pub fn client(state: Shared) -> kube::Client {
            let service = tower::service_fn(move |req: Request<kube::client::Body>| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
            });
            kube::Client::new(service, "default")
        }

        fn rv_of(v: &Value) -> &str {
            v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
        }

        async fn handle(state: &Shared, req: Request<kube::client::Body>) -> Response<Full<Bytes>> {
            let (parts, body) = req.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let is_secret = parts.uri.path().contains("/secrets");
            let kind = if is_secret { "secret" } else { "config" };
            let mut guard = state.lock().unwrap();
            let State {
                secret,
                config,
                rv,
                interfere,
                requests,
            } = &mut *guard;
            let slot = if is_secret { secret } else { config };
            if interfere.as_ref().is_some_and(|(m, _)| *m == parts.method) {
                let (method, winner) = interfere.take().unwrap();
                *rv += 1;
                match winner {
                    Some(mut object) => {
                        object["metadata"]["resourceVersion"] = rv.to_string().into();
                        *slot = Some(object);
                    }
                    None => {
                        if let Some(object) = slot.as_mut() {
                            object["metadata"]["resourceVersion"] = rv.to_string().into();
                        }
                    }
                }
                requests.push(format!("{method} {kind}: 409"));
                let reason = if method == Method::POST {
                    "AlreadyExists"
                } else {
                    "Conflict"
                };
                return status(409, reason);
            }
            requests.push(format!("{} {kind}", parts.method));
            match (parts.method, slot.as_mut()) {
                (Method::GET, Some(object)) => reply(200, object),
                (Method::GET, None) => status(404, "NotFound"),
                (Method::POST, Some(_)) => status(409, "AlreadyExists"),
                (Method::POST, None) => {
                    *rv += 1;
                    body["metadata"]["resourceVersion"] = rv.to_string().into();
                    *slot = Some(body.clone());
                    reply(201, &body)
                }
                (Method::PUT, Some(object)) if rv_of(&body) == rv_of(object) => {
                    *rv += 1;
                    body["metadata"]["resourceVersion"] = rv.to_string().into();
                    *object = body.clone();
                    reply(200, &body)
                }
                (Method::PATCH, Some(object)) if rv_of(&body) == rv_of(object) => {
                    // The strategic merge kube-harden sends: webhooks by name, caBundle only.
                    for patch in body["webhooks"].as_array().unwrap() {
                        let webhook = object["webhooks"]
                            .as_array_mut()
                            .unwrap()
                            .iter_mut()
                            .find(|w| w["name"] == patch["name"])
                            .expect("patched webhook exists");
                        webhook["clientConfig"]["caBundle"] =
                            patch["clientConfig"]["caBundle"].clone();
                    }
                    *rv += 1;
                    object["metadata"]["resourceVersion"] = rv.to_string().into();
                    reply(200, object)
                }
                (Method::PUT | Method::PATCH, Some(_)) => status(409, "Conflict"),
                (_, None) => status(404, "NotFound"),
                (method, Some(_)) => status(405, method.as_str()),
            }
        }
    }

    struct Fixture {
        state: fake::Shared,
        manager: CertManager,
        metrics: Metrics,
        dir: tempfile::TempDir,
    }

    fn fixture(secret: Option<&Bundle>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let state = fake::Shared::default();
        {
            let mut s = state.lock().unwrap();
            s.rv = 1;
            s.secret = secret.map(|b| {
                let mut v = secret_json(b);
                v["metadata"]["resourceVersion"] = "1".into();
                v
            });
            let webhooks = ["enforce.kube-harden.io", "audit.kube-harden.io"].map(|name| {
                json!({
                    "name": name,
                    "clientConfig": {"url": "https://127.0.0.1:8443/mutate"},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                })
            });
            s.config = Some(json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "kube-harden", "resourceVersion": "1"},
                "webhooks": webhooks,
            }));
        }
        let config = CertConfig {
            secret: "kube-harden-tls".into(),
            namespace: "kube-harden".into(),
            webhook_config: "kube-harden".into(),
            names: names(),
            cert_file: dir.path().join("tls/tls.crt"),
            key_file: dir.path().join("tls/tls.key"),
            kubeconfig: None,
            lifetimes: Lifetimes::default(),
            check_interval: Duration::from_secs(60),
        };
        let metrics = Metrics::new();
        let manager = CertManager::new(fake::client(Arc::clone(&state)), config, metrics.clone());
        Fixture {
            state,
            manager,
            metrics,
            dir,
        }
    }

    use std::sync::Arc;

    fn secret_json(bundle: &Bundle) -> serde_json::Value {
        let mut data = BTreeMap::new();
        bundle.store(&mut data);
        serde_json::to_value(Secret {
            metadata: ObjectMeta {
                name: Some("kube-harden-tls".into()),
                namespace: Some("kube-harden".into()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data),
            ..Secret::default()
        })
        .unwrap()
    }

    impl Fixture {
        fn requests(&self) -> Vec<String> {
            std::mem::take(&mut self.state.lock().unwrap().requests)
        }

        fn metric(&self, series: &str) -> f64 {
            let text = String::from_utf8(self.metrics.encode()).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or(0.0)
        }

        fn stored_secret(&self) -> Bundle {
            let secret = self.state.lock().unwrap().secret.clone().unwrap();
            Bundle::from_secret(&serde_json::from_value(secret).unwrap())
        }

        fn ca_bundles(&self) -> Vec<String> {
            let s = self.state.lock().unwrap();
            s.config.as_ref().unwrap()["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    let b64 = w["clientConfig"]["caBundle"].as_str().unwrap_or_default();
                    String::from_utf8(BASE64_STANDARD.decode(b64).unwrap()).unwrap()
                })
                .collect()
        }

        fn files(&self) -> (String, String) {
            let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap();
            (read("tls/tls.crt"), read("tls/tls.key"))
        }
    }

    fn now_bundle(now: i64) -> Bundle {
        apply(
            None,
            &[Action::NewCa("test".into())],
            now,
            &Lifetimes::default(),
            &names(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn first_start_creates_the_secret_writes_the_files_and_sets_every_ca_bundle() {
        let mut f = fixture(None);
        let bundle = f.manager.check().await.unwrap();
        assert_eq!(
            f.requests(),
            [
                "GET config",
                "GET secret",
                "POST secret",
                "GET config",
                "PATCH config"
            ]
        );
        assert_eq!(f.stored_secret(), bundle);
        assert_eq!(f.files(), (bundle.cert_pem.clone(), bundle.key_pem.clone()));
        assert_eq!(
            f.ca_bundles(),
            [bundle.ca_pem.clone(), bundle.ca_pem.clone()]
        );
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="success"}"#),
            1.0
        );
        assert_eq!(
            f.metric(r#"kube_harden_ca_bundle_updates_total{result="success"}"#),
            1.0
        );
        // The next check finds nothing to do: reads only.
        assert_eq!(f.manager.check().await.unwrap(), bundle);
        assert_eq!(f.requests(), ["GET config", "GET secret", "GET config"]);
    }

    #[tokio::test]
    async fn losing_the_create_race_uses_the_winners_secret() {
        let winner = now_bundle(unix_now());
        let mut f = fixture(None);
        f.state.lock().unwrap().interfere = Some((http::Method::POST, Some(secret_json(&winner))));
        let bundle = f.manager.check().await.unwrap();
        assert_eq!(bundle, winner);
        assert_eq!(
            f.requests(),
            [
                "GET config",
                "GET secret",
                "POST secret: 409",
                "GET secret",
                "GET config",
                "PATCH config"
            ]
        );
        assert_eq!(f.files(), (winner.cert_pem.clone(), winner.key_pem.clone()));
        assert_eq!(
            f.ca_bundles(),
            [winner.ca_pem.clone(), winner.ca_pem.clone()]
        );
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="conflict"}"#),
            1.0
        );
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="create",result="success"}"#),
            0.0
        );
    }

    #[tokio::test]
    async fn losing_a_renewal_race_uses_the_winners_certificate() {
        // A serving certificate with 10 days left: due (the default renews at 120 days).
        let now = unix_now();
        let old = now_bundle(now - 355 * 86400);
        let winner = apply(
            Some(&old),
            &[Action::RenewServing("test".into())],
            now,
            &Lifetimes::default(),
            &names(),
        )
        .unwrap();
        let mut f = fixture(Some(&old));
        f.state.lock().unwrap().interfere = Some((http::Method::PUT, Some(secret_json(&winner))));
        let bundle = f.manager.check().await.unwrap();
        assert_eq!(bundle, winner);
        let requests = f.requests();
        assert_eq!(
            &requests[..4],
            ["GET config", "GET secret", "PUT secret: 409", "GET secret"],
            "{requests:?}"
        );
        assert!(
            !requests[4..].iter().any(|r| r.contains("secret")),
            "{requests:?}"
        );
        assert_eq!(f.files().0, winner.cert_pem);
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="serving",result="conflict"}"#),
            1.0
        );
    }

    #[tokio::test]
    async fn a_due_renewal_updates_the_secret_with_its_resource_version() {
        let now = unix_now();
        let old = now_bundle(now - 355 * 86400);
        let mut f = fixture(Some(&old));
        let bundle = f.manager.check().await.unwrap();
        assert_eq!(bundle.ca_pem, old.ca_pem, "same CA");
        assert_ne!(bundle.cert_pem, old.cert_pem);
        assert_eq!(f.stored_secret(), bundle);
        assert!(f.requests().contains(&"PUT secret".to_owned()));
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="serving",result="success"}"#),
            1.0
        );
    }

    #[tokio::test]
    async fn a_ca_bundle_patch_that_conflicts_is_read_again_and_retried() {
        let bundle = now_bundle(unix_now());
        let mut f = fixture(Some(&bundle));
        f.state.lock().unwrap().interfere = Some((http::Method::PATCH, None));
        f.manager.check().await.unwrap();
        assert_eq!(
            f.requests(),
            [
                "GET config",
                "GET secret",
                "GET config",
                "PATCH config: 409",
                "GET config",
                "PATCH config"
            ]
        );
        assert_eq!(
            f.ca_bundles(),
            [bundle.ca_pem.clone(), bundle.ca_pem.clone()]
        );
        assert_eq!(
            f.metric(r#"kube_harden_ca_bundle_updates_total{result="conflict"}"#),
            1.0
        );
        assert_eq!(
            f.metric(r#"kube_harden_ca_bundle_updates_total{result="success"}"#),
            1.0
        );
    }

    #[tokio::test]
    async fn a_deleted_secret_is_restored_with_the_same_ca_and_certificate() {
        let mut f = fixture(None);
        let first = f.manager.check().await.unwrap();
        f.state.lock().unwrap().secret = None;
        f.requests();
        let second = f.manager.check().await.unwrap();
        assert_eq!(second, first);
        assert_eq!(
            f.requests(),
            ["GET config", "GET secret", "POST secret", "GET config"]
        );
        assert_eq!(f.stored_secret(), first);
        assert_eq!(
            f.metric(r#"kube_harden_cert_renewals_total{kind="restore",result="success"}"#),
            1.0
        );
    }

    #[tokio::test]
    async fn a_missing_webhook_configuration_is_not_an_error() {
        let mut f = fixture(None);
        f.state.lock().unwrap().config = None;
        let bundle = f.manager.check().await.unwrap();
        assert_eq!(f.files().0, bundle.cert_pem);
        assert_eq!(
            f.requests(),
            ["GET config", "GET secret", "POST secret", "GET config"]
        );
    }
}
