//! The connection caps fitted to the open-files limit.

use super::*;

#[test]
fn caps_that_fit_are_kept() {
    assert_eq!(fit_caps(1 << 20, 1024, 32), (1024, 32));
    assert_eq!(fit_caps(1024 + 32 + RESERVED, 1024, 32), (1024, 32));
}

#[test]
fn caps_over_the_limit_are_lowered_webhook_first() {
    // The defaults under a 1024:1024 container limit.
    assert_eq!(fit_caps(1024, 1024, 32), (1024 - 64 - 32, 32));
    // A metrics cap that alone takes the room is cut to a quarter of it.
    assert_eq!(fit_caps(1024, 1024, 5000), (720, 240));
    // Absurdly low limits still leave one connection each.
    assert_eq!(fit_caps(10, 1024, 32), (1, 1));
    assert_eq!(fit_caps(0, 0, 0), (0, 0));
}

#[test]
fn the_soft_limit_ends_at_the_hard_limit() {
    let (before, soft, hard) = raise_soft_limit();
    match hard {
        Some(_) => assert_eq!(soft, hard, "raised from {before:?}"),
        None => assert!(soft >= before.min(Some(UNLIMITED_TARGET))),
    }
}
