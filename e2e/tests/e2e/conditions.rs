//! Why kube-harden's webhooks carry no `matchConditions` (docs/operations.md, "Requests
//! kube-harden is not spared"): the cases a skip condition would have to get right, on the real
//! API server, with a second mutating webhook (e2e/src/injector.rs) called after kube-harden.
//!
//! 1. With the shipped configuration, a sidecar injected after kube-harden's first call is
//!    hardened on reinvocation: in a Pod that already carries `kube-harden.io/hardened` (as the
//!    Pods of a hardened template do), in one whose author wrote that annotation, and in one
//!    whose `kube-harden.io/skip` the later webhook removes.
//! 2. The evidence against the `kube-harden.io/hardened` candidate: a copy of the enforce webhook
//!    with that `matchConditions` skip is not called for Pods carrying the annotation, and the
//!    condition is evaluated again in the reinvocation round on what kube-harden's first call
//!    (which adds the annotation) left, so it is never reinvoked (k8s.io/apiserver's mutating
//!    dispatcher): the sidecar is stored unhardened in every Pod, and the whole Pod when its
//!    author wrote the annotation.
//! 3. Workload UPDATEs: one that leaves the pod template as it was still hardens a template
//!    admitted before its namespace opted in (a "template unchanged" skip would leave it
//!    unhardened), and one that adds a container hardens it.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_harden::admission::Mode;
use kube_harden::harden::{HARDENED_ANNOTATION, Hardened, Policy, SKIP_ANNOTATION, harden_object};
use kube_harden_e2e::injector::{self, Injector, SIDECAR};
use kube_harden_e2e::ledger::{CHANGES, apply};
use kube_harden_e2e::{Harness, MODE_LABEL, Result, process, subset};
use serde_json::{Value, json};
use std::time::Duration;

use super::admission::legacy_pod;

/// The test-only copy of the enforce webhook with the candidate condition.
const CANDIDATE_CONFIGURATION: &str = "kube-harden-candidate";
pub const CANDIDATE_WEBHOOK: &str = "candidate.e2e.kube-harden.io";
const CANDIDATE_LABEL: &str = "e2e.kube-harden.io/candidate";
/// The skip condition docs/performance.md once suggested: call kube-harden only for objects
/// without `kube-harden.io/hardened`.
const HARDENED_SKIP: &str = "!has(object.metadata.annotations) || \
    !('kube-harden.io/hardened' in object.metadata.annotations)";
const EXCLUSIONS: &str = "apiserver_admission_match_condition_exclusions_total";

/// A container the rules hardened: no privilege escalation, every capability dropped.
fn is_hardened(container: &Value) -> bool {
    let sc = &container["securityContext"];
    sc["allowPrivilegeEscalation"] == false && sc["capabilities"]["drop"] == json!(["ALL"])
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// `legacy_pod` as the rules store it: what a Pod of a hardened template looks like.
fn hardened_pod(name: &str) -> Result<Value> {
    let pod = legacy_pod(name);
    let hardened = harden_object(&pod, &Policy::default())?;
    let out = apply(&pod, &hardened)?;
    assert!(out["metadata"]["annotations"][HARDENED_ANNOTATION].is_string());
    Ok(out)
}

/// `legacy_pod` with an annotation its author wrote.
fn annotated(name: &str, key: &str, value: &str) -> Value {
    let mut pod = legacy_pod(name);
    pod["metadata"]["annotations"] = json!({ key: value });
    pod
}

/// The enforce webhook of the shipped configuration, renamed, for namespaces labelled
/// `CANDIDATE_LABEL=hardened` only, with the candidate skip.
async fn candidate_configuration(h: &Harness) -> Result<MutatingWebhookConfiguration> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(h.client());
    let shipped = serde_json::to_value(api.get("kube-harden").await?)?;
    let mut enforce = shipped["webhooks"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "enforce.kube-harden.io"))
        .cloned()
        .ok_or("the shipped configuration has no enforce webhook")?;
    enforce["name"] = json!(CANDIDATE_WEBHOOK);
    enforce["namespaceSelector"] = json!({"matchLabels": {CANDIDATE_LABEL: "hardened"}});
    enforce["matchConditions"] = json!([{"name": "not-hardened", "expression": HARDENED_SKIP}]);
    Ok(serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CANDIDATE_CONFIGURATION},
        "webhooks": [enforce],
    }))?)
}

/// Records kube-harden's calls for a Pod CREATE in `ns` whose result is `stored`: the first
/// round on `pod` and, when `reinvoked` and the injector added its sidecar after that call, the
/// reinvocation on what the injector left. Returns what the last call decided, applied to what
/// it was sent.
fn record_create(
    h: &Harness,
    ns: &str,
    pod: &Value,
    stored: &Value,
    reinvoked: bool,
) -> Result<Value> {
    let first: Hardened = h.expect_admission(Mode::Enforce, "CREATE", ns, pod)?;
    let after_first = apply(pod, &first)?;
    if !(reinvoked && has_sidecar(stored)) {
        return Ok(after_first);
    }
    let sent = injector::inject(&after_first)?;
    let second = h.expect_admission(Mode::Enforce, "CREATE", ns, &sent)?;
    apply(&sent, &second)
}

/// Creates `pod` (under a generated name) in `ns` until `done` holds for the stored Pod: a
/// configuration or a namespace label just written takes a moment to reach the API server's
/// webhook source. Each Pod kube-harden took part in (it marks what it hardens) is recorded in
/// the ledger, as [`record_create`]. Real creates, not dry runs: the webhook counts the changes
/// of stored objects only, and the ledger the same.
async fn create_until(
    h: &Harness,
    ns: &str,
    pod: &Value,
    reinvoked: bool,
    done: fn(&Value) -> bool,
) -> Result<()> {
    let mut pod = pod.clone();
    let name = pod["metadata"]["name"].take();
    pod["metadata"]["generateName"] = json!(format!("{}-", name.as_str().unwrap_or("probe")));
    let pod = &pod;
    process::poll(
        "the test webhook configurations to take effect",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async move {
            let stored = h.create(ns, pod).await?;
            if marked(&stored) {
                record_create(h, ns, pod, &stored, reinvoked)?;
            }
            Ok(done(&stored).then_some(()))
        },
    )
    .await
}

fn has_sidecar(pod: &Value) -> bool {
    !container(pod, SIDECAR).is_null()
}

fn marked(pod: &Value) -> bool {
    pod["metadata"]["annotations"]
        .get(HARDENED_ANNOTATION)
        .is_some()
}

pub async fn skip_conditions_would_miss_reinvocation_and_updates(h: &Harness) -> Result<()> {
    let injector = Injector::start(&h.run_dir().join("injector")).await?;
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(h.client());
    let candidate = candidate_configuration(h).await?;
    configurations
        .create(&PostParams::default(), &injector.configuration()?)
        .await?;
    configurations
        .create(&PostParams::default(), &candidate)
        .await?;
    let result = async {
        let shipped = h
            .namespace(
                "reinvoked",
                &[(MODE_LABEL, "enforce"), (injector::NAMESPACE_LABEL, "on")],
            )
            .await?;
        let skipping = h
            .namespace(
                "candidate",
                &[
                    (CANDIDATE_LABEL, "hardened"),
                    (injector::NAMESPACE_LABEL, "on"),
                ],
            )
            .await?;
        // Both test configurations in effect: a legacy Pod in the candidate namespace comes back
        // hardened by the candidate webhook and with the sidecar.
        create_until(h, &skipping, &legacy_pod("probe"), false, |p| {
            marked(p) && has_sidecar(p)
        })
        .await?;
        reinvocation_hardens_what_a_later_webhook_adds(h, &shipped).await?;
        hardened_skip_leaves_later_containers_unhardened(h, &skipping, &injector).await?;
        updates_that_keep_the_template_still_harden(h).await
    }
    .await;
    for name in [CANDIDATE_CONFIGURATION, injector::CONFIGURATION_NAME] {
        configurations
            .delete(name, &DeleteParams::default())
            .await?;
    }
    result
}

/// 1: the shipped configuration.
async fn reinvocation_hardens_what_a_later_webhook_adds(h: &Harness, ns: &str) -> Result<()> {
    for pod in [
        hardened_pod("from-template")?,
        annotated("author-marked", HARDENED_ANNOTATION, "resources"),
        annotated("opted-out", SKIP_ANNOTATION, "true"),
    ] {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stored = h.create(ns, &pod).await?;
        assert!(has_sidecar(&stored), "{name}: the injector ran");
        let expected = record_create(h, ns, &pod, &stored, true)?;
        subset(&expected["spec"], &stored["spec"]).map_err(|e| format!("{name}: {e}"))?;
        for c in ["app", SIDECAR] {
            assert!(is_hardened(container(&stored, c)), "{name}: {c} hardened");
        }
        assert!(
            stored["metadata"]["annotations"]
                .get(SKIP_ANNOTATION)
                .is_none()
        );
        println!("shipped configuration, {name}: the injected sidecar is hardened on reinvocation");
    }
    Ok(())
}

/// 2: the candidate `kube-harden.io/hardened` skip, on the real dispatcher. The condition is
/// evaluated again in the reinvocation round, on the object kube-harden's first call has just
/// annotated: even a Pod without the annotation is not reinvoked.
async fn hardened_skip_leaves_later_containers_unhardened(
    h: &Harness,
    ns: &str,
    injector: &Injector,
) -> Result<()> {
    let counters = || async {
        let exclusions = h
            .apiserver_metrics()
            .await?
            .family(EXCLUSIONS)
            .filter(|s| s.label("name") == CANDIDATE_WEBHOOK)
            .sum();
        let changes = h
            .webhook_metrics()?
            .family(CHANGES)
            .filter(|s| s.label("namespace") == ns)
            .sum();
        Result::<(f64, f64, usize)>::Ok((exclusions, changes, injector.calls()))
    };

    // Not marked: called in the first round, which marks it; not reinvoked.
    let before = counters().await?;
    let pod = legacy_pod("unmarked");
    let stored = h.create(ns, &pod).await?;
    let after = counters().await?;
    let expected = record_create(h, ns, &pod, &stored, false)?;
    assert!(is_hardened(container(&stored, "app")), "first round");
    let sidecar = container(&stored, SIDECAR);
    assert!(
        !sidecar.is_null() && sidecar.get("securityContext").is_none(),
        "unmarked: the sidecar is stored unhardened: {sidecar}"
    );
    subset(
        &expected["spec"]["initContainers"],
        &stored["spec"]["initContainers"],
    )?;
    assert!(after.0 > before.0, "unmarked: excluded on reinvocation");
    assert!(after.1 > before.1, "unmarked: kube-harden was called");
    assert_eq!(after.2 - before.2, 1, "unmarked: the injector was called");
    println!(
        "candidate skip, unmarked pod: hardened in round 1, not reinvoked: sidecar unhardened"
    );

    for (pod, hardened) in [
        (hardened_pod("from-template")?, true),
        (
            annotated("author-marked", HARDENED_ANNOTATION, "resources"),
            false,
        ),
    ] {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let before = counters().await?;
        let stored = h.create(ns, &pod).await?;
        let after = counters().await?;
        let sidecar = container(&stored, SIDECAR);
        assert!(
            !sidecar.is_null() && sidecar.get("securityContext").is_none(),
            "{name}: the sidecar is stored unhardened: {sidecar}"
        );
        assert_eq!(
            is_hardened(container(&stored, "app")),
            hardened,
            "{name}: the app container as it came"
        );
        assert!(
            after.0 > before.0,
            "{name}: the API server skipped kube-harden"
        );
        assert_eq!(after.1, before.1, "{name}: kube-harden was not called");
        assert_eq!(after.2 - before.2, 1, "{name}: the injector was called");
        println!("candidate skip, {name}: kube-harden not called; the sidecar stored unhardened");
    }
    Ok(())
}

/// Replaces the Deployment `object` after `change`, recording the UPDATE; checks the stored
/// object against the rules and returns it.
async fn update(h: &Harness, ns: &str, mut object: Value, change: fn(&mut Value)) -> Result<Value> {
    change(&mut object);
    let hardened = h.expect_admission(Mode::Enforce, "UPDATE", ns, &object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let stored = serde_json::to_value(
        h.api_for(ns, &object)?
            .replace(
                name,
                &PostParams::default(),
                &serde_json::from_value(object.clone())?,
            )
            .await?,
    )?;
    subset(&apply(&object, &hardened)?["spec"], &stored["spec"])?;
    Ok(stored)
}

/// 3: workload UPDATEs.
async fn updates_that_keep_the_template_still_harden(h: &Harness) -> Result<()> {
    let ns = h.namespace("late-opt-in", &[]).await?;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "before-opt-in", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]}
            }
        }
    });
    // Admitted before the namespace opted in: not sent to kube-harden, stored as written.
    let stored = h.create(&ns, &deployment).await?;
    let template = |d: &Value| d["spec"]["template"]["spec"]["containers"].clone();
    assert!(template(&stored)[0].get("securityContext").is_none());

    Api::<Namespace>::all(h.client())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {MODE_LABEL: "enforce"}}})),
        )
        .await?;
    create_until(h, &ns, &legacy_pod("probe"), false, marked).await?;

    // An UPDATE that leaves the template as it was (a label on the Deployment): hardened now.
    let current = h.get(&ns, &deployment, "before-opt-in").await?;
    let stored = update(h, &ns, current.clone(), |d| {
        d["metadata"]["labels"]["tier"] = json!("frontend");
    })
    .await?;
    assert_eq!(
        current["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"}),
        "the update itself did not touch the template"
    );
    assert!(is_hardened(&template(&stored)[0]), "template hardened");
    println!("UPDATE with the template unchanged: the template admitted before opt-in is hardened");

    // An UPDATE that adds a container: the new one is hardened.
    let stored = update(h, &ns, stored, |d| {
        if let Some(cs) = d["spec"]["template"]["spec"]["containers"].as_array_mut() {
            cs.push(json!({"name": "second", "image": "example.com/second:1"}));
        }
    })
    .await?;
    let second = &template(&stored)[1];
    assert_eq!(second["name"], "second");
    assert!(
        is_hardened(second),
        "the added container is hardened: {second}"
    );
    println!("UPDATE adding a container to the template: hardened");
    Ok(())
}
