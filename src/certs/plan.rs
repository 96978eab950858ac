//! What to change in the bundle ([`plan()`]) and the change itself ([`apply`]): pure functions
//! of the bundle, the clock, the lifetimes and the names (apply also makes keys). Also how the
//! changes are counted and logged.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;

use super::bundle::parse_bundle;
use super::{Bundle, CA_KEY, CertError, CertInfo, Lifetimes, Name};

/// Certificates start this long before they are made, so a peer whose clock is a little behind
/// does not see them as not yet valid.
pub(super) const BACKDATE_SECS: i64 = 5 * 60;

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

/// Whole seconds, saturating.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, secs)
}

/// `unix` as an RFC 3339 time, for messages and logs.
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
        Err(reason) => return vec![Action::NewCa(reason.to_string())],
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
        Err(reason) => Some(reason.to_string()),
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

/// `unix` as a certificate time.
fn timestamp(unix: i64) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| CertError::Invalid(format!("time {unix} out of range: {e}")))
}

/// A new self-signed CA (ECDSA P-256): its certificate and key (PEM).
fn new_ca(now: i64, validity: Duration) -> Result<(CertInfo, String), CertError> {
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
    let ca = CertInfo::parse(cert.der(), cert.pem())?;
    Ok((ca, key.serialize_pem()))
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
        let (ca, ca_key_pem) = new_ca(now, lifetimes.ca_validity)?;
        let (cert_pem, key_pem) = new_leaf(&ca, &ca_key_pem, names, now, lifetimes.cert_validity)?;
        return Ok(Bundle {
            ca_pem: ca.pem().to_owned(),
            ca_key_pem,
            next_ca_key_pem: None,
            cert_pem,
            key_pem,
        });
    };
    let parsed = parse_bundle(bundle)?;
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
                let (ca, key) = new_ca(now, lifetimes.ca_validity)?;
                cas.push(ca);
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
pub(super) fn write_kinds(actions: &[Action], secret_exists: bool) -> Vec<&'static str> {
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

/// The changes, for the log.
pub(super) fn describe(actions: &[Action]) -> String {
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

#[cfg(test)]
mod tests;
