//! The decisions and the certificate work, stepped through a bundle's life with the tests'
//! clock: renewal, repair, CA rotation, and the write kinds counted in metrics.

use super::*;
use crate::certs::bundle::{parse_bundle, parse_certificates};
use crate::certs::testing::{NOW, fresh, lifetimes, names};

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
    let planned = |trusted: Option<&[Vec<u8>]>| plan(Some(&rotating), at, &l, &names(), trusted);
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
