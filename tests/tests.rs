//! Integration tests, one binary (so they build once): `cargo test --test tests it::<module>`.

mod it {
    mod budget;
    mod harden_cli;
    mod images;
    mod lifecycle;
    mod properties;
    mod psa_checks;
    mod psa_fixtures;
    mod psa_source;
    mod reliability;
    mod server;
    mod support;
    mod transport;
    mod yaml_oracle;
}
