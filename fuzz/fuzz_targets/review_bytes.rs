//! Arbitrary bytes as an AdmissionReview body, on both endpoints.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kube_harden_fuzz::check_bytes(data);
});
