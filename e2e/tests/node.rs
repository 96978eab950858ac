//! The node suite: pods that really run, on a kubelet with containerd and runc, with
//! kube-harden in the admission chain (docs/node.md). One node serves the tests that need one;
//! the killed-run test brings it down first and then kills a run of its own. Tests run one at
//! a time, in the order below. `cargo test -p kube-harden-e2e --test node -- <filter>`.

mod node {
    pub mod hardened;
    pub mod killed;
    pub mod restricted;
}

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;

use kube_harden_e2e::node::{Node, SharedNode};
use kube_harden_e2e::{Result, repo_root, target_dir};
use libtest_mimic::{Arguments, Failed, Trial};

/// The suite's node.
static NODE: LazyLock<SharedNode> = LazyLock::new(|| SharedNode::new(state_dir("e2e-node"), &[]));

/// `target/<name>`: where a node of this suite keeps its state.
pub fn state_dir(name: &str) -> PathBuf {
    target_dir(&repo_root()).join(name)
}

/// Runs `test` with the shared node, bringing it up first if needed.
fn with_node(test: fn(&Node) -> Result<()>) -> Result<(), Failed> {
    NODE.with(test).map_err(Failed::from)
}

/// Brings the shared node down (if it is up) and waits until `down` has finished.
pub fn bring_shared_down() {
    NODE.down();
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        Trial::test("hardened_pod_runs_non_root_read_only_and_answers", || {
            with_node(|n| {
                n.block_on(node::hardened::hardened_pod_runs_non_root_read_only_and_answers(n))
            })
        }),
        Trial::test(
            "restricted_namespace_runs_legacy_deployment_only_when_hardened",
            || {
                with_node(|n| {
                    n.block_on(node::restricted::restricted_namespace_runs_legacy_deployment_only_when_hardened(n))
                })
            },
        ),
        Trial::test("killed_run_leaves_nothing_behind", || {
            bring_shared_down();
            node::killed::killed_run_leaves_nothing_behind()
                .map_err(|e| Failed::from(e.to_string()))
        }),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    bring_shared_down();
    conclusion.exit_code()
}
