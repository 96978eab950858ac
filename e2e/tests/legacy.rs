//! The legacy-app suite (docs/legacy-apps.md): every image of the zoo (e2e/images/, Debian
//! packages, unmodified in behaviour) deployed three ways on a real node: in a plain namespace,
//! in an enforce namespace as is, and there with the annotation that fixes it. Each app's three
//! outcomes are asserted; the run writes target/legacy-apps.json and, when every app ran,
//! docs/legacy-apps.md. Needs root (the node). `make legacy-e2e`, or
//! `cargo test -p kube-harden-e2e --test legacy -- <app>`.

mod legacy {
    pub mod apps;
    pub mod checks;
    pub mod deploy;
    pub mod report;
}

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use kube_harden_e2e::node::Node;
use kube_harden_e2e::{MODE_LABEL, Result, process, repo_root, target_dir};
use legacy::apps::{self, App};
use legacy::deploy::{Observation, deploy};
use legacy::report::{AppReport, markdown};
use libtest_mimic::{Arguments, Failed, Trial};

/// The node and each image's manifest digest (by app).
type Started = (Node, BTreeMap<String, String>);

/// The node with the zoo imported, brought up by the first test (an error string if it could
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

/// Brings the node up and imports every image; returns the node and app -> digest.
fn start() -> Result<Started> {
    let archives = build_images()?;
    let state = target_dir(&repo_root()).join("e2e-legacy");
    let node = Node::start(state.clone())?;
    let paths: Vec<&PathBuf> = archives.values().map(|(_, p)| p).collect();
    process::run(
        Command::new(repo_root().join("e2e/cluster.sh"))
            .arg("import")
            .args(paths)
            .env("E2E_NODE_STATE_DIR", &state),
        None,
        Duration::from_secs(600),
    )?
    .ok("e2e/cluster.sh import")?;
    let digests = archives.into_iter().map(|(app, (d, _))| (app, d)).collect();
    Ok((node, digests))
}

fn with_node(
    test: impl FnOnce(&Node, &BTreeMap<String, String>) -> Result<()>,
) -> Result<(), Failed> {
    let lock = NODE.get_or_init(|| Mutex::new(None));
    let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    match guard.get_or_insert_with(|| start().map_err(|e| e.to_string())) {
        Ok((node, digests)) => test(node, digests).map_err(|e| Failed::from(e.to_string())),
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

/// One app, three ways.
fn three_ways(node: &Node, digests: &BTreeMap<String, String>, app: &App) -> Result<()> {
    let enforce = [(MODE_LABEL, "enforce")];
    let ns = node.block_on(node.namespace(&format!("plain-{}", app.name), &[]))?;
    let plain = deploy(node, app, &ns, false)?;
    eprintln!(
        "legacy: {} plain: runs={} {}",
        app.name, plain.runs, plain.detail
    );
    let ns = node.block_on(node.namespace(&format!("hard-{}", app.name), &enforce))?;
    let hardened = deploy(node, app, &ns, false)?;
    eprintln!(
        "legacy: {} hardened: runs={} {}",
        app.name, hardened.runs, hardened.detail
    );
    let fixed = if app.fix.is_empty() && app.fix_env.is_empty() {
        None
    } else {
        let ns = node.block_on(node.namespace(&format!("fix-{}", app.name), &enforce))?;
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
        digest: digests.get(app.name).cloned().unwrap_or_default(),
        plain,
        hardened,
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

/// Saves the JSON, and the Markdown table when every app ran.
fn write_report(all: &[App]) -> Result<()> {
    let reports = REPORTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if reports.is_empty() {
        return Ok(());
    }
    let target = target_dir(&repo_root());
    std::fs::create_dir_all(&target)?;
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
        std::fs::write(&doc, markdown(&apps, &reports))?;
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
                with_node(|node, digests| three_ways(node, digests, &app))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Err(e) = write_report(&all) {
        eprintln!("legacy: writing the report failed: {e}");
    }
    if let Some(lock) = NODE.get() {
        let node = lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(node); // Node's drop brings it down
    }
    conclusion.exit_code()
}
