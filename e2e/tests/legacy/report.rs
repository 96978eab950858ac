//! The legacy-app report: each app's deployments (plain, image-blind, image-aware, fixed) as observed, saved as JSON
//! (target/legacy-apps.json) and rendered as docs/legacy-apps.md. Nothing in the table is
//! written by hand: outcomes, errors, warnings and evidence come from the run; "why" is read
//! off the error (EROFS is the read-only root, EACCES the UID kube-harden chose).

use std::fmt::Write as _;

use serde::Serialize;

use super::apps::{App, WRITABLE};
use super::aware::Latency;
use super::deploy::Observation;

/// One app's outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    /// The app's name (e2e/images/<name>).
    pub name: String,
    /// What the image is.
    pub what: String,
    /// The image's manifest digest.
    pub digest: String,
    /// The kubelet's report of the first pull from the registry (its `Pulled` event).
    pub pull: String,
    /// In a namespace kube-harden ignores.
    pub plain: Observation,
    /// In an enforce namespace, as is (image-blind).
    pub hardened: Observation,
    /// In an enforce namespace, as is, hardened by the image-aware webhook.
    pub aware: Observation,
    /// In an enforce namespace with the fix's annotations (none when it runs as is).
    pub fixed: Option<Observation>,
}

impl AppReport {
    /// What of the fix kube-harden's admission warnings (enforce, no annotation) do not name:
    /// each writable-paths annotation by its key (the directories are the app's to know), a skip
    /// with its value (`kube-harden.io/skip: "runAsUser,runAsGroup"`), an environment variable
    /// with its value (`PGDATA=/var/lib/postgresql/data/pgdata`). Empty when they name it all.
    pub fn fix_not_named(&self, app: &App) -> Vec<String> {
        let needles = app
            .fix
            .iter()
            .map(|(key, value)| match *key {
                WRITABLE => (*key).to_owned(),
                _ => format!("{key}: \"{value}\""),
            })
            .chain(app.fix_env.iter().map(|(k, v)| format!("{k}={v}")));
        needles
            .filter(|needle| !self.hardened.warnings.iter().any(|w| w.contains(needle)))
            .collect()
    }
}

/// Why a hardened app broke, read off its error.
pub fn why(observation: &Observation) -> String {
    let detail = &observation.detail;
    let uid = observation
        .run_as_user
        .map_or_else(|| "the image's user".to_owned(), |u| format!("UID {u}"));
    let mut reasons = Vec::new();
    if ["Read-only file system", "(30:", "EROFS", "Errno 30"]
        .iter()
        .any(|s| detail.contains(s))
    {
        reasons
            .push("writes to the read-only root filesystem (`readOnlyRootFilesystem`)".to_owned());
    }
    if [
        "Permission denied",
        "(13:",
        "EACCES",
        "Errno 13",
        "Operation not permitted",
    ]
    .iter()
    .any(|s| detail.contains(s))
    {
        reasons.push(format!(
            "runs as {uid} (`runAsUser`), which may not use the image's files or operations"
        ));
    }
    if reasons.is_empty() {
        reasons.push("see the error".to_owned());
    }
    reasons.join("; ")
}

/// A date or time token of a log line (`2026/11/30`, `03:16:08`, `2026-11-30T03:16:34Z`).
fn is_timestamp(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_digit())
        && token.contains([':', '/', '-'])
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ':' | '/' | '-' | '.' | 'T' | 'Z'))
}

/// A table cell: no pipes or newlines, and no timestamps, so the table changes only when an
/// outcome does.
fn cell(text: &str) -> String {
    text.split(' ')
        .filter(|t| !is_timestamp(t))
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
        .replace('\n', " ")
}

fn outcome(observation: &Observation) -> String {
    let verdict = if observation.runs {
        "**runs**"
    } else {
        "**breaks**"
    };
    format!("{verdict}: {}", cell(&observation.detail))
}

/// The image-aware column: the outcome, the UID the pod runs as, and what kube-harden's
/// warnings say (what the image told it).
fn aware_cell(report: &AppReport) -> String {
    let aware = &report.aware;
    let id = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let why = if aware.runs {
        String::new()
    } else {
        format!("; why: {}", cell(&why(aware)))
    };
    // Only what differs from the image-blind review: what the image told kube-harden.
    let told: Vec<String> = aware
        .warnings
        .iter()
        .filter(|w| !report.hardened.warnings.contains(w))
        .map(|w| format!("`{}`", cell(w)))
        .collect();
    let told = if told.is_empty() {
        "(warnings as image-blind)".to_owned()
    } else {
        told.join("<br>")
    };
    format!(
        "{} (pod: runAsUser {}, runAsGroup {}, fsGroup {}; emptyDirs {}{why})<br>{told}",
        outcome(aware),
        id(aware.run_as_user),
        id(aware.pod.run_as_group),
        id(aware.pod.fs_group),
        aware.pod.empty_dirs.join(", "),
    )
}

/// Whether image-awareness changed the outcome (the second table's last column).
fn difference(report: &AppReport) -> &'static str {
    match (report.hardened.runs, report.aware.runs) {
        (false, true) => "**breaks -> runs**",
        (true, false) => "**runs -> breaks**",
        (true, true) => "runs both ways",
        (false, false) => "breaks both ways",
    }
}

/// Findings every app of the zoo gets alike (probes, tags), left out of the table.
const ALIKE: [&str; 3] = ["noLivenessProbe", "noReadinessProbe", "imageLatest"];

/// The relevant warnings: what kube-harden added and what it says to do, not the findings about
/// probes and tags that every app of the zoo gets alike.
fn advice(observation: &Observation) -> String {
    let lines: Vec<String> = observation
        .warnings
        .iter()
        .filter(|w| {
            w.strip_prefix("kube-harden finding: ")
                .is_none_or(|f| !ALIKE.iter().any(|a| f.starts_with(a)))
        })
        .map(|w| format!("`{}`", cell(w)))
        .collect();
    if lines.is_empty() {
        "(none)".to_owned()
    } else {
        lines.join("<br>")
    }
}

/// docs/legacy-apps.md.
pub fn markdown(
    apps: &[App],
    reports: &[AppReport],
    latency: Option<&(Latency, Latency)>,
) -> String {
    let mut md = String::new();
    md.push_str(
        "# Legacy apps on a real node\n\n\
         <!-- Generated by `make legacy-e2e` (e2e/tests/legacy.rs) from its run: do not edit. -->\n\n\
         Each app of the zoo (`e2e/images/`, built from Debian bookworm packages by\n\
         `e2e/images/build.sh`, pushed to a real OCI registry on 127.0.0.1 and pulled from it by\n\
         the node's containerd) is deployed on the node (`e2e/cluster.sh`: kubelet, containerd,\n\
         runc) with its usual manifest, which has no securityContext: in a plain namespace, in a\n\
         namespace labelled `kube-harden.io/mode=enforce` (the node's webhook, image-blind), in\n\
         one served by an image-aware webhook (the second table), and with the fix. \"Runs\" means a check from the host to the pod's IP passed with no container\n\
         restart (HTTP, redis PING/SET/GET, a PostgreSQL INSERT and SELECT), or the CronJob's Job\n\
         completed. Errors are the container's own last log lines. The suite fails when an app\n\
         breaks hardened and kube-harden's warnings do not name the fix it applies (\"warnings\n\
         name the fix\": the writable-paths annotation, a skip with its value, an environment\n\
         variable with its value). Two more tests deploy vendor-uid with\n\
         `kube-harden.io/skip: \"runAsUser\"` alone, on the pod template and on the Deployment's\n\
         own metadata: its pod must run as the image's user (UID 10001), with neither a\n\
         `runAsUser` nor a `runAsGroup` (a group without a user is a pod containerd never starts).\n\n",
    );
    md.push_str(
        "| app | plain namespace | hardened, no annotation | why | kube-harden's warnings (enforce) | \
         warnings name the fix | fix | hardened with the fix |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (app, report) in apps.iter().zip(reports) {
        let fix = if app.fix.is_empty() && app.fix_env.is_empty() {
            "none needed".to_owned()
        } else {
            app.fix
                .iter()
                .map(|(k, v)| format!("pod template annotation `{k}: \"{v}\"`"))
                .chain(
                    app.fix_env
                        .iter()
                        .map(|(k, v)| format!("container env `{k}={v}`")),
                )
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let why = if report.hardened.runs {
            "-".to_owned()
        } else {
            why(&report.hardened)
        };
        let names = if app.fix.is_empty() && app.fix_env.is_empty() {
            "-"
        } else if report.fix_not_named(app).is_empty() {
            "yes"
        } else {
            "**no**"
        };
        let fixed = report
            .fixed
            .as_ref()
            .map_or_else(|| "-".to_owned(), outcome);
        let _ = writeln!(
            md,
            "| **{}**: {} | {} | {} | {} | {} | {} | {} | {} |",
            app.name,
            cell(app.what),
            outcome(&report.plain),
            outcome(&report.hardened),
            cell(&why),
            advice(&report.hardened),
            names,
            fix,
            fixed
        );
    }
    md.push_str(
        "\n## Image-blind vs image-aware\n\n\
         Each app is also deployed, with no annotation, in an enforce namespace served by a second\n\
         `kube-harden serve` with `--resolve-images` pointed at the suite's registry (the one the\n\
         node pulls from; plain HTTP on 127.0.0.1, budget 3 s): it reads each image's config (USER,\n\
         VOLUMEs, Env) and fits the hardening to it ([image-aware.md](image-aware.md)). The node's\n\
         webhook (the first table's) stays image-blind. The suite fails if vendor-uid or volume-data\n\
         break image-aware with no annotation, if their pods do not run as the image's UID (the\n\
         pod's `runAsUser` and the process's own `os.getuid()`), or if kube-harden's warnings do\n\
         not list the image-aware changes (`imageUser`, `imageVolumes`), or if volume-data's pod\n\
         has no emptyDir at its image's VOLUME. The image-aware column shows the stored pod's\n\
         identity and emptyDirs and only the warnings that differ from the image-blind review's.\n\n\
         | app | hardened, no annotation, image-blind | hardened, no annotation, image-aware | difference |\n\
         | --- | --- | --- | --- |\n",
    );
    for (app, report) in apps.iter().zip(reports) {
        let blind_uid = report
            .hardened
            .run_as_user
            .map_or_else(|| "the image's user".to_owned(), |u| format!("UID {u}"));
        let _ = writeln!(
            md,
            "| **{}** | {} (runs as {blind_uid}) | {} | {} |",
            app.name,
            outcome(&report.hardened),
            aware_cell(report),
            difference(report)
        );
    }
    if let Some((blind, aware)) = latency {
        let _ = writeln!(
            md,
            "\nReview latency over this run, from each webhook's metrics: image-blind {:.1} ms \
             mean over {} reviews (p50 <= {} ms, p99 <= {} ms: histogram bucket bounds); \
             image-aware {:.1} ms mean over {} reviews (p50 <= {} ms, p99 <= {} ms), with {} \
             registry fetches of {:.1} ms mean (manifest and config; the cache answers the rest: \
             {}).",
            blind.mean_review_ms,
            blind.reviews,
            blind.p50_review_ms,
            blind.p99_review_ms,
            aware.mean_review_ms,
            aware.reviews,
            aware.p50_review_ms,
            aware.p99_review_ms,
            aware.fetches,
            aware.mean_fetch_ms,
            aware
                .lookups
                .iter()
                .map(|(labels, n)| format!("{labels} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md.push_str(
        "\nImages (`127.0.0.1:<port>/legacy/<app>:1` in the suite's registry; manifest digests, \
         the ones the pods ran; the same package versions give the same digests, checked by \
         `e2e/images/repro-check.sh`):\n\n",
    );
    for report in reports {
        let _ = writeln!(md, "- `legacy/{}:1`: `{}`", report.name, report.digest);
    }
    md
}
