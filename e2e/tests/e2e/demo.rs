//! `make demo-once` (scripts/demo.sh --once) runs through, so the demo cannot rot. It starts its
//! own control plane and webhook beside the suite's, in target/e2e/demo. The API-server-only
//! demo: the node demo (where the machine allows one) needs the host's one node, which the node
//! suite owns (docs/node.md).

use std::process::Command;
use std::time::Duration;

use kube_harden_e2e::{Harness, Result, process};

pub async fn demo_once_runs_through(h: &Harness) -> Result<()> {
    let state = h.run_dir().join("demo");
    let out = process::run(
        Command::new(h.repo().join("scripts/demo.sh"))
            .arg("--once")
            .current_dir(h.repo())
            .env("KUBE_HARDEN_BIN", h.kube_harden_bin())
            .env("DEMO_STATE_DIR", &state)
            .env("DEMO_NODE", "no")
            .env("NO_COLOR", "1"),
        None,
        Duration::from_secs(300),
    )?;
    println!("{}", out.stdout);
    let out = out.ok("scripts/demo.sh --once")?;
    for expected in [
        "Why not on a node: asked for",
        "Warning: kube-harden added:",
        "would violate PodSecurity \"restricted:latest\"",
        "securityContext",
        "kube_harden_admission_requests_total",
        "kubeconfig",
    ] {
        assert!(
            out.stdout.contains(expected),
            "the demo should show {expected:?}"
        );
    }
    Ok(())
}
