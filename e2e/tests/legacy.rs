//! The legacy-app suite (docs/legacy-apps.md): every image of the zoo (e2e/images/, Debian
//! packages, unmodified in behaviour) deployed four ways on a real node: in a plain namespace,
//! in an enforce namespace as is (the node's image-blind webhook), in an enforce namespace as is
//! served by a second, image-aware webhook (`--resolve-images` reading the suite's registry:
//! legacy/aware.rs), and with the annotation that fixes it. Each app's outcomes are asserted;
//! the run writes target/legacy-apps.json, target/legacy-latency.json (both webhooks' review
//! latency and the image lookups, from their metrics) and, when every app ran,
//! docs/legacy-apps.md. The images are pushed to a real OCI registry on 127.0.0.1 (Distribution,
//! e2e/src/registry.rs) and the node's containerd pulls them from it (`imagePullPolicy: Always`);
//! each app's pull, as the kubelet reports it, goes to the JSON. Needs root (the node).
//! `make legacy-e2e`, or `cargo test -p kube-harden-e2e --test legacy -- <app>`.

mod legacy {
    pub mod apps;
    pub mod aware;
    pub mod checks;
    pub mod deploy;
    pub mod registry;
    pub mod report;
}

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube_harden::harden::SKIP_ANNOTATION;
use kube_harden_e2e::node::Node;
use kube_harden_e2e::registry::{Options, Registry};
use kube_harden_e2e::{MODE_LABEL, Result, process, repo_root, target_dir};
use legacy::apps::{self, App};
use legacy::aware::{AWARE_LABEL, Aware, Latency, node_metrics};
use legacy::deploy::{Observation, deploy, deploy_object};
use legacy::registry;
use legacy::report::{AppReport, markdown};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;

/// The node, the registry it pulls the zoo from, and each image's manifest digest (by app).
/// Dropped in this order: the node stops pulling before the registry goes.
struct Started {
    /// The image-aware webhook (stopped first).
    aware: Aware,
    node: Node,
    registry: Registry,
    digests: BTreeMap<String, String>,
}

/// The node with the zoo in its registry, brought up by the first test (an error string if it could
/// not come up: every test then fails with it).
static NODE: OnceLock<Mutex<Option<Result<Started, String>>>> = OnceLock::new();
/// Each finished app's report, in the order the tests ran.
static REPORTS: Mutex<Vec<AppReport>> = Mutex::new(Vec::new());

/// Builds the images (cached: seconds when warm) and returns app -> (digest, archive).
fn build_images() -> Result<BTreeMap<String, (String, PathBuf)>> {
    let out = process::run(
        &mut Command::new(repo_root().join("e2e/images/build.sh")),
        None,
        Duration::from_secs(30 * 60),
    )?
    .ok("e2e/images/build.sh")?;
    eprint!("{}", out.stderr);
    let mut archives = BTreeMap::new();
    for line in out.stdout.lines() {
        if let ["archive", app, digest, path] = line.split_whitespace().collect::<Vec<_>>()[..] {
            archives.insert(app.to_owned(), (digest.to_owned(), PathBuf::from(path)));
        }
    }
    Ok(archives)
}

/// Starts the registry, pushes every image to it (each must keep the digest build.sh gave it),
/// brings the node up and points its containerd at the registry.
fn start() -> Result<Started> {
    let archives = build_images()?;
    let target = target_dir(&repo_root());
    let registry = Registry::start(&target.join("e2e-legacy-registry"), Options::default())?;
    let t0 = Instant::now();
    for (app, (digest, archive)) in &archives {
        let t = Instant::now();
        let pushed = registry.push_archive(archive, &apps::repository(app))?;
        if &pushed != digest {
            return Err(format!("{app}: pushed as {pushed}, built as {digest}").into());
        }
        let size = std::fs::metadata(archive).map_or(0, |m| m.len());
        eprintln!(
            "legacy: pushed {} ({:.0} MB) in {:.2} s",
            registry.reference(&apps::repository(app)),
            size as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "legacy: the zoo ({} images) pushed to {} in {:.1} s",
        archives.len(),
        registry.url(),
        t0.elapsed().as_secs_f64()
    );
    apps::set_registry(&registry.host());
    let node = Node::start(target.join("e2e-legacy"))?;
    let hosts = registry.containerd_hosts(&node.registry_hosts_dir())?;
    eprintln!(
        "legacy: containerd pulls from {} ({})",
        registry.url(),
        hosts.display()
    );
    let aware = Aware::start(&node, &registry)?;
    let digests = archives.into_iter().map(|(app, (d, _))| (app, d)).collect();
    Ok(Started {
        aware,
        node,
        registry,
        digests,
    })
}

fn with_node(test: impl FnOnce(&Started) -> Result<()>) -> Result<(), Failed> {
    let lock = NODE.get_or_init(|| Mutex::new(None));
    let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    match guard.get_or_insert_with(|| start().map_err(|e| e.to_string())) {
        Ok(started) => test(started).map_err(|e| Failed::from(e.to_string())),
        Err(e) => Err(format!("the node could not come up: {e}").into()),
    }
}

fn expect(what: &str, observation: &Observation, runs: bool) -> Result<()> {
    if observation.runs != runs {
        let verb = if runs { "run" } else { "break" };
        return Err(format!(
            "{what}: expected it to {verb}, observed: {} (namespace {}, warnings {:?})",
            observation.detail, observation.namespace, observation.warnings
        )
        .into());
    }
    Ok(())
}

/// The image-aware deployment of `app` ran as its image's user, with the changes that say so.
fn check_image_aware(app: &App, aware: &Observation) -> Result<()> {
    if let Some(uid) = app.image_uid {
        if aware.run_as_user != Some(uid) {
            return Err(format!(
                "{}: image-aware pod runs as {:?}, the image's USER is {uid}",
                app.name, aware.run_as_user
            )
            .into());
        }
        // The process's own report (os.getuid()), not only the pod's spec.
        if !aware.detail.contains(&format!("uid={uid}")) {
            return Err(format!(
                "{}: the image-aware process is not UID {uid}: {}",
                app.name, aware.detail
            )
            .into());
        }
    }
    if let Some(path) = app.image_volume
        && !aware.pod.empty_dirs.iter().any(|m| m == path)
    {
        return Err(format!(
            "{}: image-aware pod has no emptyDir at its image's VOLUME {path}: {:?}",
            app.name, aware.pod
        )
        .into());
    }
    let added = aware
        .warnings
        .iter()
        .find(|w| w.starts_with("kube-harden added: "))
        .map_or("", String::as_str);
    let hardened = aware.hardened.as_deref().unwrap_or_default();
    for change in app.image_changes {
        if !added.contains(change) || !hardened.contains(change) {
            return Err(format!(
                "{}: image-aware, {change} missing from the warnings ({added:?}) or from \
                 kube-harden.io/hardened ({hardened:?})",
                app.name
            )
            .into());
        }
    }
    Ok(())
}

/// Deletes the namespaces of a finished test and waits until they are gone: a hardened pod
/// requests CPU and memory, and the node must have room for the next app's.
fn clean_up(node: &Node, namespaces: &[String]) {
    let mut args = vec!["delete", "namespace", "--wait=true", "--timeout=120s"];
    args.extend(namespaces.iter().map(String::as_str));
    match node.kubectl(&args, None) {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!("legacy: deleting {namespaces:?}: {}", out.stderr.trim()),
        Err(e) => eprintln!("legacy: deleting {namespaces:?}: {e}"),
    }
}

/// One app, four ways: plain, hardened image-blind, hardened image-aware, fixed; its
/// namespaces deleted afterwards.
fn four_ways(started: &Started, app: &App) -> Result<()> {
    let mut namespaces = Vec::new();
    let result = deploy_four_ways(started, app, &mut namespaces);
    clean_up(&started.node, &namespaces);
    result
}

fn deploy_four_ways(started: &Started, app: &App, namespaces: &mut Vec<String>) -> Result<()> {
    let (node, digests) = (&started.node, &started.digests);
    let digest = digests.get(app.name).cloned().unwrap_or_default();
    let enforce = [(MODE_LABEL, "enforce")];
    let ns = node.block_on(node.namespace(&format!("plain-{}", app.name), &[]))?;
    namespaces.push(ns.clone());
    let plain = deploy(node, app, &ns, false)?;
    eprintln!(
        "legacy: {} plain: runs={} {}",
        app.name, plain.runs, plain.detail
    );
    // The first pod of the app: the kubelet pulled it from the registry (the node's containerd
    // had never seen it), by the digest that was pushed.
    let pull = registry::pulled(node, &started.registry, &ns, app.name, &digest)?;
    eprintln!("legacy: {} pulled: {pull}", app.name);
    let ns = node.block_on(node.namespace(&format!("hard-{}", app.name), &enforce))?;
    namespaces.push(ns.clone());
    let hardened = deploy(node, app, &ns, false)?;
    eprintln!(
        "legacy: {} hardened: runs={} {}",
        app.name, hardened.runs, hardened.detail
    );
    let ns = node.block_on(node.namespace(
        &format!("aware-{}", app.name),
        &[(MODE_LABEL, "enforce"), (AWARE_LABEL, "true")],
    ))?;
    namespaces.push(ns.clone());
    let aware = deploy(node, app, &ns, false)?;
    eprintln!(
        "legacy: {} image-aware: runs={} run_as_user={:?} {}",
        app.name, aware.runs, aware.run_as_user, aware.detail
    );
    let fixed = if app.fix.is_empty() && app.fix_env.is_empty() {
        None
    } else {
        let ns = node.block_on(node.namespace(&format!("fix-{}", app.name), &enforce))?;
        namespaces.push(ns.clone());
        let fixed = deploy(node, app, &ns, true)?;
        eprintln!(
            "legacy: {} fixed: runs={} {}",
            app.name, fixed.runs, fixed.detail
        );
        Some(fixed)
    };
    let report = AppReport {
        name: app.name.to_owned(),
        what: app.what.to_owned(),
        digest,
        pull,
        plain,
        hardened,
        aware,
        fixed,
    };
    REPORTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(report.clone());

    if report.plain.hardened.is_some() {
        return Err(format!("{}: hardened in a plain namespace", app.name).into());
    }
    if report.hardened.hardened.is_none() {
        return Err(format!("{}: not hardened in an enforce namespace", app.name).into());
    }
    expect(
        &format!("{} in a plain namespace", app.name),
        &report.plain,
        true,
    )?;
    expect(
        &format!("{} hardened without annotation", app.name),
        &report.hardened,
        app.runs_hardened_as_is,
    )?;
    if report.aware.hardened.is_none() {
        return Err(format!("{}: not hardened by the image-aware webhook", app.name).into());
    }
    expect(
        &format!("{} hardened image-aware without annotation", app.name),
        &report.aware,
        app.runs_image_aware,
    )?;
    check_image_aware(app, &report.aware)?;
    // Issue 14: an app that breaks hardened is a defect unless kube-harden's own warnings name
    // the fix this suite applies.
    let not_named = report.fix_not_named(app);
    if !report.hardened.runs && !not_named.is_empty() {
        return Err(format!(
            "{}: breaks hardened and kube-harden's warnings do not name the fix ({}): {:?}",
            app.name,
            not_named.join(", "),
            report.hardened.warnings
        )
        .into());
    }
    if let Some(fixed) = &report.fixed {
        expect(
            &format!("{} hardened with {:?}", app.name, app.fix),
            fixed,
            true,
        )?;
        if fixed.hardened.is_none() {
            return Err(format!("{}: the fixed workload was not hardened", app.name).into());
        }
    }
    Ok(())
}

/// `kube-harden.io/skip: "runAsUser"` alone, on the vendor image (its USER 10001 owns its files),
/// written on the pod template and on the Deployment's own metadata: the pods must run as the
/// image's user, with neither a runAsUser nor a runAsGroup of kube-harden's. Before issue 14's
/// fixes, the first gave a pod containerd never starts (`user group "2866" is specified without
/// user`: a runAsGroup with no runAsUser), the second pods hardened again at Pod admission (the
/// ReplicaSet's pods carry only the template's annotations).
fn skip_run_as_user_only(started: &Started, on_the_deployment: bool) -> Result<()> {
    let node = &started.node;
    let app = apps::all()
        .into_iter()
        .find(|a| a.name == "vendor-uid")
        .ok_or("no vendor-uid app")?;
    let mut object = apps::manifest(&app, false);
    let skip = json!({SKIP_ANNOTATION: "runAsUser"});
    let (where_, prefix) = if on_the_deployment {
        object["metadata"]["annotations"] = skip;
        ("on the Deployment", "skip-deployment")
    } else {
        object["spec"]["template"]["metadata"]["annotations"] = skip;
        ("on the pod template", "skip-template")
    };
    let enforce = [(MODE_LABEL, "enforce")];
    let ns = node.block_on(node.namespace(prefix, &enforce))?;
    let fix = vec![(SKIP_ANNOTATION.to_owned(), format!("runAsUser ({where_})"))];
    let observed = deploy_object(node, &app, &ns, &object, fix);
    let result = observed.and_then(|observed| check_skip(node, &ns, where_, &observed));
    clean_up(node, &[ns]);
    result
}

/// The vendor-uid pod with the skip ran as the image's user, with no user or group of ours.
fn check_skip(node: &Node, ns: &str, where_: &str, observed: &Observation) -> Result<()> {
    eprintln!(
        "legacy: vendor-uid, skip runAsUser {where_}: runs={} {}",
        observed.runs, observed.detail
    );
    expect(
        &format!("vendor-uid with skip runAsUser {where_}"),
        observed,
        true,
    )?;
    if !observed.detail.contains("uid=10001") {
        return Err(format!("not the image's user: {}", observed.detail).into());
    }
    let pods = node
        .kubectl(
            &[
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app=vendor-uid",
                "-o",
                "json",
            ],
            None,
        )?
        .ok("kubectl get pods")?;
    let pods: serde_json::Value = serde_json::from_str(&pods.stdout)?;
    let pod = &pods["items"][0];
    for sc in [
        &pod["spec"]["securityContext"],
        &pod["spec"]["containers"][0]["securityContext"],
    ] {
        for field in ["runAsUser", "runAsGroup"] {
            if !sc[field].is_null() {
                return Err(format!("{where_}: the pod got {field}: {sc}").into());
            }
        }
    }
    if pod["metadata"]["annotations"][SKIP_ANNOTATION] != "runAsUser" {
        return Err(format!("{where_}: the pod lacks the skip: {}", pod["metadata"]).into());
    }
    Ok(())
}

/// Saves the JSON, and the Markdown table when every app ran.
fn write_report(all: &[App], latency: Option<(Latency, Latency)>) -> Result<()> {
    let reports = REPORTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if reports.is_empty() {
        return Ok(());
    }
    let target = target_dir(&repo_root());
    std::fs::create_dir_all(&target)?;
    if let Some((blind, aware)) = &latency {
        eprintln!("legacy: image-blind webhook: {blind:?}");
        eprintln!("legacy: image-aware webhook: {aware:?}");
        std::fs::write(
            target.join("legacy-latency.json"),
            serde_json::to_string_pretty(&json!({"image_blind": blind, "image_aware": aware}))?,
        )?;
    }
    let json = target.join("legacy-apps.json");
    std::fs::write(&json, serde_json::to_string_pretty(&reports)?)?;
    eprintln!("legacy: wrote {}", json.display());
    let ordered: Vec<(App, AppReport)> = all
        .iter()
        .filter_map(|a| {
            reports
                .iter()
                .find(|r| r.name == a.name)
                .map(|r| (a.clone(), r.clone()))
        })
        .collect();
    if ordered.len() == all.len() {
        let (apps, reports): (Vec<App>, Vec<AppReport>) = ordered.into_iter().unzip();
        let doc = repo_root().join("docs/legacy-apps.md");
        std::fs::write(&doc, markdown(&apps, &reports, latency.as_ref()))?;
        eprintln!("legacy: wrote {}", doc.display());
    } else {
        eprintln!("legacy: not every app ran, docs/legacy-apps.md left as it is");
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let all = apps::all();
    let trials = all
        .iter()
        .cloned()
        .map(|app| {
            Trial::test(format!("legacy::{}", app.name), move || {
                with_node(|started| four_ways(started, &app))
            })
        })
        .chain([false, true].map(|on_the_deployment| {
            let name = if on_the_deployment {
                "legacy::skip_run_as_user_on_the_deployment"
            } else {
                "legacy::skip_run_as_user_on_the_pod_template"
            };
            Trial::test(name, move || {
                with_node(|started| skip_run_as_user_only(started, on_the_deployment))
            })
        }))
        .chain(["vendor-uid", "named-user"].map(|app| {
            Trial::test(format!("legacy::registry_round_trip::{app}"), move || {
                with_node(|started| {
                    let built = started.digests.get(app).ok_or("not built")?;
                    registry::round_trip(&started.registry, app, built)
                })
            })
        }))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let latency = NODE.get().and_then(|lock| {
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let started = guard.as_ref()?.as_ref().ok()?;
        let blind = node_metrics(&started.node).ok()?;
        let aware = started.aware.metrics().ok()?;
        Some((Latency::of(&blind), Latency::of(&aware)))
    });
    if let Err(e) = write_report(&all, latency) {
        eprintln!("legacy: writing the report failed: {e}");
    }
    if let Some(lock) = NODE.get() {
        let node = lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(node); // Node's drop brings it down
    }
    conclusion.exit_code()
}
