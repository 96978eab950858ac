//! The end-to-end suite: one test binary with its own main (libtest-mimic), so one control
//! plane serves every test and is stopped after the last one, pass or fail. Tests run one at a
//! time, in the order below (the metrics test reads what the earlier ones did; the failure test
//! stops the webhook and so comes after it). `cargo test -p kube-harden-e2e -- <filter>` works
//! as usual. What each test proves: docs/e2e.md.

mod e2e {
    pub mod admission;
    pub mod audit;
    pub mod conditions;
    pub mod configuration;
    pub mod demo;
    pub mod ephemeral;
    pub mod failure;
    pub mod fixtures;
    pub mod metrics;
    pub mod optout;
    pub mod scan;
    pub mod workloads;
}

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::OnceLock;

use kube_harden_e2e::{Harness, Result};
use libtest_mimic::{Arguments, Failed, Trial};

static HARNESS: OnceLock<Result<Harness, String>> = OnceLock::new();

/// The shared harness, started by the first test that needs it. If it cannot start, every test
/// fails with the reason (the suite never skips).
fn harness() -> Result<&'static Harness, Failed> {
    HARNESS
        .get_or_init(|| Harness::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| format!("the e2e harness could not start: {e}").into())
}

type TestFn = for<'a> fn(&'a Harness) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! tests {
    ($($path:path),* $(,)?) => {
        vec![$({
            let f: TestFn = |h| Box::pin($path(h));
            let name = stringify!($path).rsplit("::").next().unwrap_or_default().trim().to_owned();
            (name, f)
        }),*]
    };
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // One cluster, shared: the tests run one after the other.
    args.test_threads = Some(1);
    let tests = tests![
        e2e::configuration::webhook_configuration_comes_from_manifests,
        e2e::admission::restricted_namespace_admits_legacy_pod_only_when_hardened,
        e2e::fixtures::psa_fixtures_agree_with_the_api_server,
        e2e::workloads::workloads_are_stored_hardened_and_reapply_changes_nothing,
        e2e::audit::audit_mode_changes_nothing_and_kubectl_prints_the_warnings,
        e2e::optout::opt_outs_explicit_values_and_privileged_pods_hold,
        e2e::ephemeral::ephemeral_container_added_through_the_subresource_is_hardened,
        e2e::scan::scan_predicts_what_the_webhook_then_does,
        e2e::conditions::skip_conditions_would_miss_reinvocation_and_updates,
        e2e::metrics::webhook_metrics_match_what_the_tests_did,
        e2e::failure::webhook_down_admits_unhardened_and_the_apiserver_counts_it,
        e2e::demo::demo_once_runs_through,
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            Trial::test(name, move || {
                let h = harness()?;
                h.block_on(f(h)).map_err(|e| Failed::from(e.to_string()))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(Ok(h)) = HARNESS.get() {
        h.shutdown();
    }
    if HARNESS.get().is_some_and(Result::is_err) {
        eprintln!("e2e: FAILED: the harness could not start (see above); nothing was skipped");
    }
    conclusion.exit_code()
}
