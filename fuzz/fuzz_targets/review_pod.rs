//! Structure-aware: arbitrary pod specs and workloads inside well-formed AdmissionReviews.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: kube_harden_fuzz::Input| {
    kube_harden_fuzz::check_input(&input);
});
