//! The names the serving certificate covers (its subject alternative names): parsed from the
//! flags, read from certificates, and the four names of a Service.

use std::fmt;
use std::net::IpAddr;

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
    pub fn parse(s: &str) -> Result<Self, NameError> {
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
            Err(NameError(s.to_owned()))
        }
    }
}

/// A name that is neither a DNS name nor an IP address (the text given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a DNS name nor an IP address")]
pub struct NameError(pub String);

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

#[cfg(test)]
mod tests;
