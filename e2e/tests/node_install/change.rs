//! No gap during change: with kube-harden installed from the shipped manifests, a steady
//! stream of pod creations in an enforce namespace runs through each operator action, one at
//! a time: a rolling restart (`kubectl rollout restart`), an upgrade to a second image (another
//! version string, another digest: `kubectl set image`), a serving-certificate renewal forced
//! as docs/operations.md says (the Secret's `tls.crt` emptied: a replica renews it from the
//! same CA, every replica picks it up), and the deletion of one replica. Each must end with 0
//! failed creations and 0 pods stored unhardened, every stored pod read back and checked, and
//! the API server's own count of fail-open calls unchanged.

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube_harden_e2e::node::Node;
use kube_harden_e2e::stream::{Stream, check_stored};
use kube_harden_e2e::{MODE_LABEL, Result, apiserver_metrics, process};
use serde_json::json;

use crate::image::Image;
use crate::install::{NS, import};

/// Pod creations a second: enough that every second of a change is covered several times,
/// modest enough for a 2-core CI machine.
const RATE: u32 = 5;
/// The stream runs this long before and after each change.
const MARGIN: Duration = Duration::from_secs(3);

/// One scenario's figures (printed; quoted in docs/operations.md).
#[derive(Debug)]
struct Figures {
    created: usize,
    failed: usize,
    unhardened: usize,
    fail_open_calls: f64,
}

/// The API server's count of kube-harden webhook calls that failed open, so far.
async fn fail_open_calls(node: &Node) -> Result<f64> {
    Ok(apiserver_metrics(&node.client())
        .await?
        .family("apiserver_admission_webhook_fail_open_count")
        .filter(|s| s.label("name").ends_with(".kube-harden.io"))
        .sum())
}

/// Runs `change` under the stream in a fresh enforce namespace and checks every stored pod.
async fn under_stream<F>(node: &Node, scenario: &'static str, change: F) -> Result<Figures>
where
    F: std::future::Future<Output = Result<()>>,
{
    let ns = node
        .namespace(&scenario.replace(' ', "-"), &[(MODE_LABEL, "enforce")])
        .await?;
    let fail_open_before = fail_open_calls(node).await?;
    let stream = Stream::start(node.client(), &ns, node.env("E2E_WEBCHECK_IMAGE")?, RATE)?;
    tokio::time::sleep(MARGIN).await;
    let t0 = Instant::now();
    let changed = change.await;
    let change_took = t0.elapsed();
    tokio::time::sleep(MARGIN).await;
    let (tally, ran) = stream.stop().await?;
    changed.map_err(|e| format!("{scenario}: {e}"))?;
    let (stored, unhardened) = check_stored(node.client(), &ns).await?;
    let figures = Figures {
        created: tally.created,
        failed: tally.failed.len(),
        unhardened: unhardened.len(),
        fail_open_calls: fail_open_calls(node).await? - fail_open_before,
    };
    eprintln!(
        "no-gap: {scenario}: {} pods created in {:.1} s ({RATE}/s), {} failed, {} unhardened, \
         {} fail-open calls; change took {:.1} s",
        figures.created,
        ran.as_secs_f64(),
        figures.failed,
        figures.unhardened,
        figures.fail_open_calls,
        change_took.as_secs_f64()
    );
    if !tally.failed.is_empty() || !unhardened.is_empty() || stored != tally.created {
        return Err(format!(
            "{scenario}: {} created, {stored} stored; failed: {:?}; unhardened: {:?}\n{}",
            tally.created,
            tally.failed,
            unhardened,
            node.describe(NS)
        )
        .into());
    }
    if figures.fail_open_calls != 0.0 {
        return Err(format!(
            "{scenario}: the API server counted {} fail-open calls, yet no pod was stored unhardened",
            figures.fail_open_calls
        )
        .into());
    }
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(node.client())
        .delete(&ns, &DeleteParams::background())
        .await;
    Ok(figures)
}

/// The kube-harden Deployment settled: 2 replicas updated and Ready, no old pod left.
async fn settled(node: &Node) -> Result<Vec<Pod>> {
    node.wait_deployment(NS, "kube-harden", Duration::from_secs(180))
        .await
}

/// The kube-harden pods' names.
fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

async fn rolling_restart(node: &Node) -> Result<()> {
    let before = names(&settled(node).await?);
    node.kubectl(
        &["-n", NS, "rollout", "restart", "deployment/kube-harden"],
        None,
    )?
    .ok("kubectl rollout restart")?;
    let after = names(&settled(node).await?);
    if after.iter().any(|n| before.contains(n)) {
        return Err(format!("pods {before:?} still there after the restart: {after:?}").into());
    }
    Ok(())
}

async fn upgrade(node: &Node, to: &Image) -> Result<()> {
    import(node, to)?;
    node.kubectl(
        &[
            "-n",
            NS,
            "set",
            "image",
            "deployment/kube-harden",
            &format!("kube-harden={}", to.reference),
        ],
        None,
    )?
    .ok("kubectl set image")?;
    let pods = settled(node).await?;
    for pod in &pods {
        let (status, body) = node.http_get_pod(pod, 8080, "/metrics")?;
        let want = format!("version=\"{}\"", to.version);
        if status != 200
            || !body
                .lines()
                .any(|l| l.starts_with("kube_harden_build_info") && l.contains(&want))
        {
            return Err(format!(
                "pod {:?} does not report version {} in kube_harden_build_info",
                pod.metadata.name, to.version
            )
            .into());
        }
    }
    Ok(())
}

/// The SHA-256 fingerprint of a PEM certificate (openssl), or of what `addr` serves.
fn fingerprint(pem: Option<&[u8]>, addr: Option<&str>) -> Result<String> {
    let pem = match (pem, addr) {
        (Some(pem), _) => pem.to_vec(),
        (None, Some(addr)) => process::run(
            std::process::Command::new("openssl").args(["s_client", "-connect", addr]),
            Some(b""),
            Duration::from_secs(10),
        )?
        .stdout
        .into_bytes(),
        (None, None) => return Err("nothing to fingerprint".into()),
    };
    let out = process::run(
        std::process::Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256"]),
        Some(&pem),
        Duration::from_secs(10),
    )?
    .ok("openssl x509")?;
    Ok(out.stdout.trim().to_owned())
}

fn secret_cert(secret: &Secret) -> Option<ByteString> {
    secret.data.as_ref()?.get("tls.crt").cloned()
}

/// The operator's forced renewal (docs/operations.md): the serving certificate emptied in the
/// Secret (a `kubernetes.io/tls` Secret must keep the key); a replica's next check finds it unusable and writes a new one from the same CA;
/// every replica then serves it.
async fn certificate_renewal(node: &Node) -> Result<()> {
    let pods = settled(node).await?;
    let secrets: Api<Secret> = Api::namespaced(node.client(), NS);
    let old = secret_cert(&secrets.get("kube-harden-tls").await?)
        .ok_or("no tls.crt in kube-harden-tls")?;
    let ca = secrets
        .get("kube-harden-tls")
        .await?
        .data
        .unwrap_or_default()
        .remove("ca.crt");
    secrets
        .patch(
            "kube-harden-tls",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tls.crt": ""}})),
        )
        .await?;
    let new = process::poll(
        "a renewed tls.crt in the Secret",
        Duration::from_secs(150),
        Duration::from_millis(500),
        || async {
            let secret = secrets.get("kube-harden-tls").await?;
            Ok(secret_cert(&secret).filter(|c| !c.0.is_empty() && *c != old))
        },
    )
    .await?;
    let after = secrets
        .get("kube-harden-tls")
        .await?
        .data
        .unwrap_or_default()
        .remove("ca.crt");
    if after != ca {
        return Err(
            "the renewal changed the CA; it should renew the serving certificate only".into(),
        );
    }
    let want = fingerprint(Some(&new.0), None)?;
    for pod in &pods {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .ok_or("a kube-harden pod without an IP")?;
        let addr = format!("{ip}:8443");
        process::poll(
            &format!("{addr} serving the renewed certificate"),
            Duration::from_secs(150),
            Duration::from_secs(1),
            || async { Ok((fingerprint(None, Some(&addr))? == want).then_some(())) },
        )
        .await?;
    }
    Ok(())
}

async fn delete_one_replica(node: &Node) -> Result<()> {
    let pods = settled(node).await?;
    let victim = pods[0]
        .metadata
        .name
        .clone()
        .ok_or("a pod without a name")?;
    let pods: Api<Pod> = Api::namespaced(node.client(), NS);
    pods.delete(&victim, &DeleteParams::default()).await?;
    // Until it has shut down, the deleted pod is still listed (and Ready for a probe period).
    process::poll(
        &format!("{victim} gone"),
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async { Ok(pods.get_opt(&victim).await?.is_none().then_some(())) },
    )
    .await?;
    let after = names(&settled(node).await?);
    if after.contains(&victim) {
        return Err(format!("{victim} still there: {after:?}").into());
    }
    Ok(())
}

/// Every scenario runs, even after one failed; the failures are reported together.
pub async fn no_gap_during_change(node: &Node, upgrade_to: &Image) -> Result<()> {
    let results = [
        under_stream(node, "rolling restart", rolling_restart(node)).await,
        under_stream(node, "upgrade", upgrade(node, upgrade_to)).await,
        under_stream(node, "certificate renewal", certificate_renewal(node)).await,
        under_stream(node, "replica deletion", delete_one_replica(node)).await,
    ];
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n").into())
    }
}
