//! Deploys one legacy app in one namespace and watches what really happens on the node: the
//! admission warnings kubectl prints, what kube-harden stored, and then either the app's
//! readiness check passing (with no container restart) or the first failure: a container that
//! exited (its exit code and the last lines of its log), one the kubelet refused to create, or
//! a Job that failed.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use kube_harden::harden::HARDENED_ANNOTATION;
use kube_harden_e2e::Result;
use kube_harden_e2e::node::Node;
use serde::Serialize;
use serde_json::Value;

use super::apps::{App, Kind, manifest};

/// How long an app gets to start and answer (postgres runs initdb first).
const START_TIMEOUT: Duration = Duration::from_secs(150);

/// What one deployment of an app came to.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// The namespace it ran in.
    pub namespace: String,
    /// The fix applied: pod-template annotations and container environment variables.
    pub fix: Vec<(String, String)>,
    /// Every `Warning:` line kubectl printed when the workload was created.
    pub warnings: Vec<String>,
    /// `kube-harden.io/hardened` on the stored workload, if kube-harden changed it.
    pub hardened: Option<String>,
    /// The UID the container ran as, if it got that far (`id -u` is not available in every
    /// image: from the pod's securityContext, else the image's USER).
    pub run_as_user: Option<i64>,
    /// The pod's identity and writable mounts as stored: `runAsGroup`, `fsGroup` and each
    /// emptyDir mount path of the container (what kube-harden wrote, read back).
    pub pod: PodFacts,
    /// Whether the readiness check passed with no container restart.
    pub runs: bool,
    /// The check's evidence when it runs; the failure otherwise.
    pub detail: String,
}

fn kubectl_json(node: &Node, args: &[&str]) -> Result<Value> {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    let out = node
        .kubectl(&full, None)?
        .ok(&format!("kubectl {}", args.join(" ")))?;
    Ok(serde_json::from_str(&out.stdout)?)
}

/// The last non-empty lines of a container's log (the previous run's, if it restarted).
fn log_tail(node: &Node, namespace: &str, pod: &str, previous: bool) -> String {
    let mut args = vec!["-n", namespace, "logs", pod, "--tail=40"];
    if previous {
        args.push("--previous");
    }
    let text = node
        .kubectl(&args, None)
        .map(|o| format!("{}{}", o.stdout, o.stderr))
        .unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "error",
                "denied",
                "read-only",
                "fatal",
                "emerg",
                "cannot",
                "can't",
                "failed",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    let chosen = if errors.is_empty() { &lines } else { &errors };
    chosen[chosen.len().saturating_sub(2)..].join(" / ")
}

/// Why the pod's container is broken, if it is: exited, restarted, or refused by the kubelet.
fn broken(node: &Node, namespace: &str, pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = pod["status"]["containerStatuses"].as_array()?.first()?;
    let waiting = &status["state"]["waiting"];
    if let Some(reason) = waiting["reason"].as_str()
        && !matches!(
            reason,
            "ContainerCreating" | "PodInitializing" | "CrashLoopBackOff"
        )
    {
        return Some(format!(
            "{reason}: {}",
            waiting["message"].as_str().unwrap_or_default()
        ));
    }
    let restarts = status["restartCount"].as_i64().unwrap_or(0);
    let (terminated, previous) = match &status["state"]["terminated"] {
        Value::Object(_) => (&status["state"]["terminated"], false),
        _ => (&status["lastState"]["terminated"], true),
    };
    if restarts == 0 && !terminated.is_object() {
        return None;
    }
    // The log of a container that exited a moment ago may not be readable yet: a few tries.
    let mut tail = log_tail(node, namespace, name, previous);
    for _ in 0..6 {
        if !tail.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        tail = log_tail(node, namespace, name, previous);
    }
    Some(format!(
        "exit {} ({}): {tail}",
        terminated["exitCode"],
        terminated["reason"].as_str().unwrap_or("?"),
    ))
}

/// The kubelet's last failure to create the pod's sandbox, if it failed twice (it retries, so
/// the pod stays ContainerCreating and its status says nothing).
fn sandbox_refused(node: &Node, namespace: &str, pod: &str) -> Result<Option<String>> {
    let selector = format!("involvedObject.name={pod},reason=FailedCreatePodSandBox");
    let events = kubectl_json(
        node,
        &[
            "-n",
            namespace,
            "get",
            "events",
            "--field-selector",
            &selector,
        ],
    )?;
    let items = events["items"].as_array().cloned().unwrap_or_default();
    let count: i64 = items.iter().map(|e| e["count"].as_i64().unwrap_or(1)).sum();
    Ok((count >= 2)
        .then(|| {
            items
                .last()
                .and_then(|e| e["message"].as_str())
                .map(str::to_owned)
        })
        .flatten()
        .map(|m| format!("FailedCreatePodSandBox: {m}")))
}

fn run_as(pod: &Value, field: &str) -> Option<i64> {
    pod["spec"]["containers"][0]["securityContext"][field]
        .as_i64()
        .or_else(|| pod["spec"]["securityContext"][field].as_i64())
}

fn run_as_user(pod: &Value) -> Option<i64> {
    run_as(pod, "runAsUser")
}

/// A pod's identity and writable mounts, as stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PodFacts {
    /// `runAsGroup` of the container, else the pod's.
    pub run_as_group: Option<i64>,
    /// The pod's `fsGroup`.
    pub fs_group: Option<i64>,
    /// Where the first container mounts an emptyDir.
    pub empty_dirs: Vec<String>,
}

impl PodFacts {
    fn of(pod: &Value) -> Self {
        let empty: Vec<&str> = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["emptyDir"].is_object())
            .filter_map(|v| v["name"].as_str())
            .collect();
        let empty_dirs = pod["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["name"].as_str().is_some_and(|n| empty.contains(&n)))
            .filter_map(|m| m["mountPath"].as_str().map(str::to_owned))
            .collect();
        Self {
            run_as_group: run_as(pod, "runAsGroup"),
            fs_group: pod["spec"]["securityContext"]["fsGroup"].as_i64(),
            empty_dirs,
        }
    }
}

/// Creates the app's workload in `namespace` (with its fix when `fixed`) and observes it.
pub fn deploy(node: &Node, app: &App, namespace: &str, fixed: bool) -> Result<Observation> {
    let fix = if fixed {
        app.fix
            .iter()
            .chain(app.fix_env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    } else {
        Vec::new()
    };
    deploy_object(node, app, namespace, &manifest(app, fixed), fix)
}

/// Creates `object`, a manifest of `app` (`fix`: what it adds to the legacy one, for the
/// report), in `namespace` and observes it.
pub fn deploy_object(
    node: &Node,
    app: &App,
    namespace: &str,
    object: &Value,
    fix: Vec<(String, String)>,
) -> Result<Observation> {
    let created = node
        .kubectl(
            &["-n", namespace, "create", "-f", "-"],
            Some(&serde_json::to_string(object)?),
        )?
        .ok(&format!("creating {} in {namespace}", app.name))?;
    let warnings = created
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .map(str::to_owned)
        .collect();
    let kind = object["kind"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let stored = kubectl_json(node, &["-n", namespace, "get", &kind, app.name])?;
    let hardened = stored["metadata"]["annotations"][HARDENED_ANNOTATION]
        .as_str()
        .map(str::to_owned);
    let mut observation = Observation {
        namespace: namespace.to_owned(),
        fix,
        warnings,
        hardened,
        run_as_user: None,
        pod: PodFacts::default(),
        runs: false,
        detail: String::new(),
    };
    let (runs, detail) = match app.kind {
        Kind::Server { port, check } => {
            watch_server(node, app, namespace, port, check, &mut observation)?
        }
        Kind::CronJob { expect } => run_job(node, app, namespace, expect, &mut observation)?,
    };
    observation.runs = runs;
    observation.detail = detail;
    Ok(observation)
}

fn watch_server(
    node: &Node,
    app: &App,
    namespace: &str,
    port: u16,
    check: fn(IpAddr, u16) -> Result<String>,
    observation: &mut Observation,
) -> Result<(bool, String)> {
    let selector = format!("app={}", app.name);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no pod yet");
    while Instant::now() < deadline {
        let pods = kubectl_json(node, &["-n", namespace, "get", "pods", "-l", &selector])?;
        if let Some(pod) = pods["items"].as_array().and_then(|p| p.first()) {
            observation.run_as_user = run_as_user(pod);
            observation.pod = PodFacts::of(pod);
            if let Some(why) = broken(node, namespace, pod) {
                return Ok((false, why));
            }
            let running = pod["status"]["containerStatuses"][0]["state"]["running"].is_object();
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            if !running && let Some(why) = sandbox_refused(node, namespace, name)? {
                return Ok((false, why));
            }
            match pod["status"]["podIP"].as_str().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if running => match check(ip, port) {
                    Ok(evidence) => {
                        // Still no restart after the check: it answered, it did not flap.
                        let again = kubectl_json(node, &["-n", namespace, "get", "pod", name])?;
                        if let Some(why) = broken(node, namespace, &again) {
                            return Ok((false, why));
                        }
                        return Ok((true, evidence));
                    }
                    Err(e) => last = format!("check: {e}"),
                },
                _ => last = format!("pod phase {}", pod["status"]["phase"]),
            }
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    Ok((
        false,
        format!("no answer within {START_TIMEOUT:?} ({last})"),
    ))
}

fn run_job(
    node: &Node,
    app: &App,
    namespace: &str,
    expect: &str,
    observation: &mut Observation,
) -> Result<(bool, String)> {
    let job = format!("{}-run", app.name);
    node.kubectl(
        &[
            "-n",
            namespace,
            "create",
            "job",
            &job,
            &format!("--from=cronjob/{}", app.name),
        ],
        None,
    )?
    .ok("kubectl create job --from=cronjob")?;
    let deadline = Instant::now() + START_TIMEOUT;
    let selector = format!("job-name={job}");
    while Instant::now() < deadline {
        let status = kubectl_json(node, &["-n", namespace, "get", "job", &job])?;
        let pods = kubectl_json(node, &["-n", namespace, "get", "pods", "-l", &selector])?;
        let pod = pods["items"].as_array().and_then(|p| p.first()).cloned();
        if let Some(pod) = &pod {
            observation.run_as_user = run_as_user(pod);
            observation.pod = PodFacts::of(pod);
        }
        let pod_name = pod
            .as_ref()
            .and_then(|p| p["metadata"]["name"].as_str())
            .unwrap_or_default()
            .to_owned();
        if status["status"]["succeeded"].as_i64().unwrap_or(0) > 0 {
            let log = node
                .kubectl(&["-n", namespace, "logs", &pod_name], None)?
                .stdout;
            let found = log
                .lines()
                .rev()
                .find_map(|l| l.find(expect).map(|at| &l[at..]));
            return Ok(match found {
                Some(line) => (true, format!("Job complete; log: \"{}\"", line.trim())),
                None => (
                    false,
                    format!("Job complete but its log lacks {expect:?}: {log:?}"),
                ),
            });
        }
        if status["status"]["failed"].as_i64().unwrap_or(0) > 0 {
            let why = pod
                .as_ref()
                .and_then(|p| broken(node, namespace, p))
                .unwrap_or_else(|| log_tail(node, namespace, &pod_name, false));
            return Ok((false, format!("Job failed: {why}")));
        }
        if let Some(pod) = &pod
            && let Some(why) = broken(node, namespace, pod)
            && why.starts_with("Create")
        {
            return Ok((false, why));
        }
        if pod
            .as_ref()
            .is_some_and(|p| p["status"]["phase"] == "Pending")
            && let Some(why) = sandbox_refused(node, namespace, &pod_name)?
        {
            return Ok((false, why));
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    Ok((false, format!("Job not finished within {START_TIMEOUT:?}")))
}
