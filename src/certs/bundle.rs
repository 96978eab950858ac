//! The Secret's contents: the bundle of PEM texts ([`Bundle`]), the facts read from a
//! certificate ([`CertInfo`]), and the bundle parsed and checked against itself (which CA
//! signs, which signs next, whether the serving certificate matches its key).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rcgen::KeyPair;
use rustls_pki_types::pem::SectionKind;

use super::{CA_CERT, CA_KEY, CA_NEXT_KEY, Name, TLS_CERT, TLS_KEY};

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
    /// checks in [`plan()`](super::plan()) name what is wrong.
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
    pub(super) fn store(&self, data: &mut BTreeMap<String, ByteString>) {
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
    pub(super) public_key: Vec<u8>,
    /// The PEM block the certificate was read from, ending in a newline.
    pem: String,
}

impl CertInfo {
    /// Parses one DER certificate, read from (or encoded as) the PEM block `pem`.
    pub(super) fn parse(der: &[u8], pem: String) -> Result<Self, ReadError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| ReadError::NotCertificate(e.to_string()))?;
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
            pem,
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

    /// The certificate as PEM: the block it was read from, so a bundle rebuilt from its
    /// certificates keeps their text.
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

/// Every certificate in a PEM text, in order (other sections, such as keys, are skipped).
pub fn parse_certificates(pem: &str) -> Result<Vec<CertInfo>, ReadError> {
    let mut rest = pem.as_bytes();
    let mut certs = Vec::new();
    loop {
        let start = pem.len() - rest.len();
        let Some((kind, der)) = rustls_pki_types::pem::from_buf(&mut rest)? else {
            return Ok(certs);
        };
        if kind != SectionKind::Certificate {
            continue;
        }
        // What was read: anything before the block, the block, and the END line's first line
        // break byte (the reader stops at `\n` or `\r`).
        let read = pem.get(start..pem.len() - rest.len()).unwrap_or_default();
        let block = read
            .rfind("-----BEGIN")
            .map_or(read, |i| read.get(i..).unwrap_or(read));
        let text = format!("{}\n", block.trim_end_matches(['\r', '\n']));
        certs.push(CertInfo::parse(&der, text)?);
    }
}

/// The public key (as in a certificate's SPKI) of a PEM private key.
fn public_key_of(key_pem: &str) -> Result<Vec<u8>, ReadError> {
    KeyPair::from_pem(key_pem)
        .map(|k| k.public_key_raw().to_vec())
        .map_err(ReadError::Key)
}

/// Why a PEM text, a certificate in it or a private key cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The text is not PEM.
    #[error("invalid PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    /// A CERTIFICATE block holds no X.509 certificate (the parser's message).
    #[error("not an X.509 certificate: {0}")]
    NotCertificate(String),
    /// The text holds no private key the certificate library can use.
    #[error("no usable private key: {0}")]
    Key(#[source] rcgen::Error),
}

/// Why the bundle's CA, or its serving certificate, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A Secret key's value cannot be read.
    #[error("{key}: {source}")]
    Unreadable {
        /// The Secret key (`ca.crt`, `tls.key`, ...).
        key: &'static str,
        /// Why.
        source: ReadError,
    },
    /// A Secret key holds no certificate.
    #[error("{0}: no certificate")]
    NoCertificate(&'static str),
    /// `ca.key` is the key of no certificate in `ca.crt`.
    #[error("{CA_KEY} belongs to no certificate in {CA_CERT}")]
    ForeignCaKey,
    /// The certificate of `ca.key` is not a CA.
    #[error("the certificate of {CA_KEY} is not a CA")]
    NotCa,
    /// `tls.key` is not the serving certificate's key.
    #[error("{TLS_KEY} does not belong to {TLS_CERT}")]
    KeyMismatch,
}

/// The error for the value of the Secret key `key`.
fn unreadable(key: &'static str) -> impl Fn(ReadError) -> BundleError {
    move |source| BundleError::Unreadable { key, source }
}

/// A bundle parsed and checked against itself.
pub(super) struct Parsed {
    /// The CAs of `ca.crt`, in order.
    pub(super) cas: Vec<CertInfo>,
    /// Index in `cas` of the CA whose key is `ca.key`.
    pub(super) signing: usize,
    /// Index in `cas` of the CA whose key is `ca-next.key`.
    pub(super) next: Option<usize>,
    /// The serving certificate, or why it cannot be used.
    pub(super) leaf: Result<CertInfo, BundleError>,
}

impl Parsed {
    /// The CA that signs.
    pub(super) fn signing(&self) -> Option<&CertInfo> {
        self.cas.get(self.signing)
    }

    /// The CA that signs next (during a CA rotation).
    pub(super) fn next(&self) -> Option<&CertInfo> {
        self.next.and_then(|i| self.cas.get(i))
    }
}

/// Parses the bundle. `Err`: the CA cannot be used (the reason).
pub(super) fn parse_bundle(bundle: &Bundle) -> Result<Parsed, BundleError> {
    let cas = parse_certificates(&bundle.ca_pem).map_err(unreadable(CA_CERT))?;
    if cas.is_empty() {
        return Err(BundleError::NoCertificate(CA_CERT));
    }
    let ca_key = public_key_of(&bundle.ca_key_pem).map_err(unreadable(CA_KEY))?;
    let signing = cas
        .iter()
        .position(|ca| ca.public_key == ca_key)
        .ok_or(BundleError::ForeignCaKey)?;
    if !cas.get(signing).is_some_and(|ca| ca.is_ca) {
        return Err(BundleError::NotCa);
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
        .map_err(unreadable(TLS_CERT))
        .and_then(|certs| {
            certs
                .into_iter()
                .next()
                .ok_or(BundleError::NoCertificate(TLS_CERT))
        })
        .and_then(|leaf| {
            let key = public_key_of(&bundle.key_pem).map_err(unreadable(TLS_KEY))?;
            if key == leaf.public_key {
                Ok(leaf)
            } else {
                Err(BundleError::KeyMismatch)
            }
        });
    Ok(Parsed {
        cas,
        signing,
        next,
        leaf,
    })
}

#[cfg(test)]
mod tests;
