//! Names: parsed, printed, and the Service's four.

use super::*;

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
