//! What the certificate tests share: a clock, names, short lifetimes, a fresh bundle.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Action, Bundle, Lifetimes, Name, apply, plan, service_names};

/// The tests' clock (Unix seconds).
pub(super) const NOW: i64 = 1_800_000_000;

/// The Service's names and 127.0.0.1.
pub(super) fn names() -> BTreeSet<Name> {
    service_names("kube-harden", "kube-harden")
        .iter()
        .chain(["127.0.0.1".to_owned()].iter())
        .map(|n| Name::parse(n).unwrap())
        .collect()
}

/// Lifetimes short enough to step through: a 1000 s certificate, a 10000 s CA.
pub(super) fn lifetimes() -> Lifetimes {
    Lifetimes {
        cert_validity: Duration::from_secs(1000),
        cert_renew_before: Duration::from_secs(300),
        ca_validity: Duration::from_secs(10_000),
        ca_renew_before: Duration::from_secs(2000),
    }
}

/// A new bundle made at `now` (and checked to be what the plan asks for without a Secret).
pub(super) fn fresh(now: i64) -> Bundle {
    let actions = plan(None, now, &lifetimes(), &names(), None);
    assert_eq!(actions, vec![Action::NewCa("no Secret yet".into())]);
    apply(None, &actions, now, &lifetimes(), &names()).unwrap()
}
