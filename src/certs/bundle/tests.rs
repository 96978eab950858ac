//! The bundle through a Secret, and PEM texts read back.

use super::*;
use crate::certs::testing::{NOW, fresh};

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

#[test]
fn certificates_keep_the_pem_text_they_were_read_from() {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    let a = fresh(NOW);
    let cas = parse_certificates(&a.ca_pem).unwrap();
    // A CA made here is written as canonical PEM: 64-character lines, LF, a final newline.
    let b64 = BASE64_STANDARD.encode(&cas[0].der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let canonical = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    assert_eq!(a.ca_pem, canonical);
    // Text before a block and sections that are not certificates are not part of its PEM.
    let text = format!("# CA\n{}{}{}", a.ca_pem, a.key_pem, a.cert_pem.trim_end());
    let certs = parse_certificates(&text).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].pem(), a.ca_pem);
    assert_eq!(certs[1].pem(), a.cert_pem);
    assert!(parse_certificates("").unwrap().is_empty());
}
