//! A killed test run leaves nothing behind. A driver process brings a node up with
//! `E2E_WATCH_PID` set to itself, a hardened pod starts on it (so there are containers, mounts,
//! a veth, a network namespace and changed sysctls), then the driver is SIGKILLed: nothing of
//! the test runs `down`, only the node's watchdog. The host must then read as it did before:
//! no process, mount, interface, iptables chain or rule, sysctl, cgroup or fixed directory of
//! the run left.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_harden_e2e::host::{BRIDGE, Snapshot};
use kube_harden_e2e::node::{Node, up_command};
use kube_harden_e2e::{MODE_LABEL, Result, kube_harden_binary, process, repo_root, target_dir};

use kube_harden_e2e::webcheck::legacy_pod;

use crate::node::hardened::run;
use crate::state_dir;

pub fn killed_run_leaves_nothing_behind() -> Result<()> {
    let repo = repo_root();
    let state = state_dir("e2e-node-killed");
    // Binaries, images and Debian packages (iptables-save among them) first, so `before` can
    // be read; a no-op when they are there.
    let status = process::run_visible(
        Command::new(repo.join("e2e/cluster.sh")).arg("prepare"),
        Duration::from_secs(45 * 60),
    )?;
    if !status.success() {
        return Err(format!("e2e/cluster.sh prepare failed ({status})").into());
    }
    // One node per host: wait until no other (e.g. another suite's) holds it, so `before` is
    // the host at rest.
    let bridge = Path::new("/sys/class/net").join(BRIDGE);
    let deadline = Instant::now() + Duration::from_secs(30 * 60);
    while bridge.exists() {
        if Instant::now() >= deadline {
            return Err("another node held the host for 30 min".into());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let before = Snapshot::take(&state)?;

    // The driver: brings the node up watching its own PID, says so, then waits to be killed.
    let bin = kube_harden_binary(&repo, &target_dir(&repo))?;
    let up = up_command(&repo, &state, &bin);
    let script = format!("{:?}", up.get_program());
    let mut driver = Command::new("bash")
        .args([
            "-c",
            &format!(r#"E2E_WATCH_PID=$$ {script} up >/dev/null && echo UP && exec sleep 3600"#),
        ])
        .envs(
            up.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = driver.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "UP" {
        let _ = driver.kill();
        let _ = driver.wait();
        return Err(
            format!("the driver's cluster.sh up failed (its output is above): {line:?}").into(),
        );
    }

    // A hardened pod running: containers, mounts, a veth in a network namespace.
    let node = Node::attach(state.clone())?;
    let running = node.block_on(async {
        let ns = node.namespace("killed", &[(MODE_LABEL, "enforce")]).await?;
        run(&node, &ns, &legacy_pod(node.env("E2E_WEBCHECK_IMAGE")?)).await
    });
    let during = Snapshot::take(&state)?;
    let kill = Command::new("kill")
        .args(["-KILL", &driver.id().to_string()])
        .status();
    let _ = driver.wait();
    running?;
    kill?;
    // The snapshot does see a running node (else an empty diff below would prove nothing).
    let seen = during.diff(&before);
    for expected in [
        &format!("link: + {BRIDGE}"),
        "sysctl: + vm.overcommit_memory=1",
    ] {
        if !seen.iter().any(|d| d == expected) {
            return Err(format!(
                "a running node should show {expected:?}; the diff was:\n{}",
                seen.join("\n")
            )
            .into());
        }
    }
    if !seen.iter().any(|d| d.starts_with("mount: +"))
        || !seen.iter().any(|d| d.starts_with("process: +"))
    {
        return Err(format!(
            "a running node should show mounts and processes:\n{}",
            seen.join("\n")
        )
        .into());
    }
    drop(node);

    // Only the watchdog can clean up now.
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(180);
    loop {
        let left = Snapshot::take(&state)?.diff(&before);
        if left.is_empty() {
            eprintln!(
                "node: killed run: {} host changes while up, none {:.1} s after SIGKILL",
                seen.len(),
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "180 s after the driver was killed, the host still differs:\n{}\n(watchdog log: {}/logs/watchdog.log)",
                left.join("\n"),
                state.display()
            )
            .into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
