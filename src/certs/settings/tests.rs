//! Lifetimes and the `--manage-certs` flags.

use std::time::Duration;

use super::*;

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
        .to_string()
        .contains("--cert-renew-before")
    );
    assert!(
        err(Lifetimes::default(), Duration::from_secs(200 * 86400))
            .to_string()
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
        .to_string()
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
        .to_string()
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
            .to_string()
            .contains("at most half of --ca-validity")
    );
    assert!(
        err(Lifetimes::default(), Duration::ZERO)
            .to_string()
            .contains("at least 1s")
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
    use clap::Parser as _;
    let argv = [
        "kube-harden",
        "serve",
        "--tls-cert-file=c",
        "--tls-key-file=k",
    ];
    let err = crate::config::Cli::try_parse_from(argv.iter().chain(&["--manage-certs"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("required") && err.contains("--cert-namespace"),
        "{err}"
    );
    let err = serve_args(&["--manage-certs", "--cert-namespace="])
        .cert_config()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("--cert-namespace must not be empty"),
        "{err}"
    );
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
