//! A replica: `kube-harden serve --manage-certs` run as the overlay's Deployment and its
//! ServiceAccount, on its own ports; its readiness and its certificate metrics.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_harden_e2e::metrics::Samples;
use kube_harden_e2e::{Result, process};

use super::cluster::Cluster;

/// A `kube-harden serve` process configured as the overlay's Deployment.
pub(crate) struct Replica {
    /// Its name in logs and file names.
    pub(crate) name: String,
    metrics_port: u16,
    log_file: PathBuf,
    process: process::Supervised,
}

impl Replica {
    /// Starts replica `name` with its webhook on `webhook_port` and the Deployment's flags plus
    /// `extra`.
    pub(crate) fn spawn(
        cluster: &Cluster,
        name: &str,
        webhook_port: u16,
        extra: &[&str],
    ) -> Result<Self> {
        let dir = cluster.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let metrics_port = process::free_port()?;
        let log_file = dir.join("kube-harden.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)?;
        let mut args = cluster.deployment_args.clone();
        args.extend(
            [
                format!("--webhook-addr=127.0.0.1:{webhook_port}"),
                format!("--metrics-addr=127.0.0.1:{metrics_port}"),
                format!("--tls-cert-file={}", dir.join("tls/tls.crt").display()),
                format!("--tls-key-file={}", dir.join("tls/tls.key").display()),
                format!("--kubeconfig={}", cluster.sa_kubeconfig.display()),
                "--log-format=text".into(),
                // The configuration's url is https://127.0.0.1:<port>.
                "--cert-dns-names=127.0.0.1".into(),
                "--shutdown-delay=0s".into(),
                "--shutdown-timeout=2s".into(),
            ]
            .into_iter()
            .chain(extra.iter().map(|s| (*s).to_owned())),
        );
        let child = Command::new(&cluster.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cluster.bin.display()))?;
        // Stopped on drop, and by a watchdog if this test process dies without its cleanup.
        let process = process::Supervised::watch(child, "kube-harden-e2e-certs-watchdog")?;
        Ok(Self {
            name: name.to_owned(),
            metrics_port,
            log_file,
            process,
        })
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// `Ok(true)` once /readyz answers 200; an error if the process exited.
    pub(crate) fn ready(&mut self) -> Result<bool> {
        if let Some(status) = self.process.try_wait()? {
            return Err(format!(
                "replica {} exited ({status}); log:\n{}",
                self.name,
                self.log()
            )
            .into());
        }
        Ok(matches!(self.http_get("/readyz"), Ok((200, _))))
    }

    /// Its /metrics, parsed.
    pub(crate) fn metrics(&self) -> Result<Samples> {
        match self.http_get("/metrics")? {
            (200, body) => Ok(Samples::parse(&body)),
            (status, body) => Err(format!("GET /metrics: {status}: {body}").into()),
        }
    }

    /// A GET on its metrics port.
    pub(crate) fn http_get(&self, path: &str) -> Result<(u16, String)> {
        process::http_get(
            std::net::SocketAddr::from(([127, 0, 0, 1], self.metrics_port)),
            path,
        )
    }
}

/// Waits until every replica is ready; returns the time each took.
pub(crate) async fn wait_ready(
    replicas: &mut [Replica],
    timeout: Duration,
) -> Result<Vec<Duration>> {
    let t0 = Instant::now();
    let mut took = vec![None; replicas.len()];
    loop {
        for (replica, took) in replicas.iter_mut().zip(took.iter_mut()) {
            if took.is_none() && replica.ready()? {
                *took = Some(t0.elapsed());
            }
        }
        if took.iter().all(Option::is_some) {
            return Ok(took.into_iter().flatten().collect());
        }
        if t0.elapsed() > timeout {
            let logs: Vec<String> = replicas
                .iter()
                .map(|r| format!("--- {}\n{}", r.name, r.log()))
                .collect();
            return Err(format!(
                "replicas not ready within {timeout:?}:\n{}",
                logs.join("\n")
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The sum over `replicas` of the series of `family` with `labels`.
pub(crate) fn cert_metric(
    replicas: &[Replica],
    family: &str,
    labels: &[(&str, &str)],
) -> Result<f64> {
    let mut total = 0.0;
    for replica in replicas {
        total += replica
            .metrics()?
            .family(family)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == *v))
            .sum();
    }
    Ok(total)
}
