//! The control plane: a real etcd and kube-apiserver v1.36.3 on 127.0.0.1, started and stopped
//! through `e2e/controlplane.sh` (see e2e/README.md). A watchdog started by the script stops it
//! when the test process dies, so even a killed run leaves no servers behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Result;
use crate::process;

/// How long `controlplane.sh start` may take: normally 5-10 s, but it builds the binaries first
/// when they are missing (a cold build took 6 min on 2 cores; the script allows for 25).
fn start_timeout() -> Duration {
    let secs = std::env::var("E2E_START_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(35 * 60);
    Duration::from_secs(secs)
}

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    script: PathBuf,
    /// `E2E_STATE_DIR`: kubeconfig, certs/, logs/.
    pub state_dir: PathBuf,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The kubectl v1.36.3 built with the API server.
    pub kubectl: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub apiserver_url: String,
    stopped: AtomicBool,
}

impl ControlPlane {
    /// Starts a fresh, empty cluster whose state lives in `state_dir`. Fails (never skips) when
    /// the binaries cannot be built or the servers do not become ready.
    pub fn start(repo: &Path, state_dir: PathBuf) -> Result<Self> {
        let script = repo.join("e2e/controlplane.sh");
        eprintln!("e2e: starting the control plane ({})", state_dir.display());
        let status = process::run_visible(
            Command::new(&script)
                .arg("start")
                .env("E2E_STATE_DIR", &state_dir)
                .env("E2E_WATCH_PID", std::process::id().to_string()),
            start_timeout(),
        )?;
        let mut started = Self {
            script,
            kubeconfig: state_dir.join("kubeconfig"),
            state_dir,
            kubectl: PathBuf::new(),
            apiserver_url: String::new(),
            stopped: AtomicBool::new(false),
        };
        if !status.success() {
            // `start` cleans up after itself; dropping `started` stops anything left.
            return Err(format!(
                "e2e/controlplane.sh start failed ({status}); its output is above, the server logs \
                 are in {}/logs",
                started.state_dir.display()
            )
            .into());
        }
        let env = read_env_file(&started.state_dir.join("env"))?;
        started.kubectl = PathBuf::from(env.get("KUBECTL_BIN").cloned().unwrap_or_default());
        if !started.kubectl.is_file() {
            return Err(format!(
                "the control plane's kubectl is missing ({}): run e2e/build-controlplane.sh",
                started.kubectl.display()
            )
            .into());
        }
        started.apiserver_url = env
            .get("E2E_APISERVER_URL")
            .cloned()
            .ok_or("E2E_APISERVER_URL missing from the control plane's env file")?;
        Ok(started)
    }

    /// Stops both servers (idempotent). The script runs detached (its own process group, output
    /// to `logs/stop.log`), so it finishes even if this process is interrupted meanwhile.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let log = self.state_dir.join("logs/stop.log");
        let result = process::run_detached(
            Command::new(&self.script)
                .arg("stop")
                .env("E2E_STATE_DIR", &self.state_dir),
            &log,
            Duration::from_secs(60),
        );
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match result {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("e2e: controlplane.sh stop: {status}\n{output}"),
            Err(e) => eprintln!("e2e: controlplane.sh stop: {e}\n{output}"),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses the `export K='V'` lines `controlplane.sh` and `cluster.sh` write.
pub(crate) fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect())
}
