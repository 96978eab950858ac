//! Integration tests, one binary (so they build once). See ../shared/STYLE.md.

mod it {
    mod budget;
    mod harden_cli;
    mod lifecycle;
    mod properties;
    mod psa_checks;
    mod psa_fixtures;
    mod reliability;
    mod server;
    mod support;
}
