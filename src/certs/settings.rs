//! The `--manage-certs` settings: certificate lifetimes (and the checks that they work
//! together) and the validated configuration the manager runs with. The flags themselves are
//! declared in `crate::config`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::Name;

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
    ) -> Result<(), LifetimesError> {
        for (flag, value) in [
            ("--cert-validity", self.cert_validity),
            ("--cert-renew-before", self.cert_renew_before),
            ("--ca-validity", self.ca_validity),
            ("--ca-renew-before", self.ca_renew_before),
            ("--cert-check-interval", check_interval),
        ] {
            if value.as_secs() == 0 {
                return Err(LifetimesError::Zero(flag));
            }
        }
        if self.cert_renew_before >= self.cert_validity {
            return Err(LifetimesError::RenewalAfterExpiry {
                renew_before: self.cert_renew_before,
                validity: self.cert_validity,
            });
        }
        if check_interval + reload_interval >= self.cert_renew_before {
            return Err(LifetimesError::RenewalTooLate {
                check_interval,
                reload_interval,
                renew_before: self.cert_renew_before,
            });
        }
        // A new CA signs from half of --ca-renew-before after it was made; it must not be due for
        // rotation itself by then.
        if self.ca_renew_before > self.ca_validity / 2 {
            return Err(LifetimesError::CaRotationCascades {
                ca_renew_before: self.ca_renew_before,
                ca_validity: self.ca_validity,
            });
        }
        if self.ca_renew_before / 2 <= self.cert_renew_before {
            return Err(LifetimesError::CaCutsRenewal {
                ca_renew_before: self.ca_renew_before,
                renew_before: self.cert_renew_before,
            });
        }
        Ok(())
    }
}

/// Lifetimes that cannot work together (the flags named as the user gives them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimesError {
    /// A duration flag is zero.
    #[error("{0} must be at least 1s")]
    Zero(&'static str),
    /// The serving certificate would be due for renewal as soon as it is made.
    #[error(
        "--cert-renew-before ({}) must be shorter than --cert-validity ({})",
        human(*.renew_before),
        human(*.validity)
    )]
    RenewalAfterExpiry {
        /// `--cert-renew-before`.
        renew_before: Duration,
        /// `--cert-validity`.
        validity: Duration,
    },
    /// A replica could still serve the old certificate when it expires.
    #[error(
        "--cert-check-interval ({}) + --tls-reload-interval ({}) must be shorter than \
         --cert-renew-before ({}), so every replica serves a renewed certificate before \
         the old one expires",
        human(*.check_interval),
        human(*.reload_interval),
        human(*.renew_before)
    )]
    RenewalTooLate {
        /// `--cert-check-interval`.
        check_interval: Duration,
        /// `--tls-reload-interval`.
        reload_interval: Duration,
        /// `--cert-renew-before`.
        renew_before: Duration,
    },
    /// A new CA would be due for rotation before it signs.
    #[error(
        "--ca-renew-before ({}) must be at most half of --ca-validity ({})",
        human(*.ca_renew_before),
        human(*.ca_validity)
    )]
    CaRotationCascades {
        /// `--ca-renew-before`.
        ca_renew_before: Duration,
        /// `--ca-validity`.
        ca_validity: Duration,
    },
    /// Serving certificates cut at the CA's expiry would be due for renewal before the next CA
    /// signs.
    #[error(
        "--ca-renew-before ({}) must be more than twice --cert-renew-before ({}): serving \
         certificates are cut at their CA's expiry, which must stay beyond the renewal \
         point until the next CA signs",
        human(*.ca_renew_before),
        human(*.renew_before)
    )]
    CaCutsRenewal {
        /// `--ca-renew-before`.
        ca_renew_before: Duration,
        /// `--cert-renew-before`.
        renew_before: Duration,
    },
}

/// A duration as the flags take it (`1year 2months`).
fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
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

#[cfg(test)]
mod tests;
