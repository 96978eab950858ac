//! Identity rules (`runAsUser`, `runAsGroup`, `runAsNonRoot`): on the pod, or per container
//! when one keeps root; what a container inherits.

use super::*;

#[test]
fn container_running_as_root_keeps_root_and_others_get_identity_per_container() {
    let input = pod(json!({"containers": [
        {"name": "root", "image": "a", "securityContext": {"runAsUser": 0}},
        {"name": "app", "image": "b"}
    ]}));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert!(
        sc.get("runAsUser").is_none() && sc.get("runAsNonRoot").is_none(),
        "{sc}"
    );
    assert!(sc.get("runAsGroup").is_none(), "{sc}");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    let root = &out["spec"]["containers"][0]["securityContext"];
    assert_eq!(root["runAsUser"], 0);
    assert!(root.get("runAsNonRoot").is_none(), "{root}");
    let app = &out["spec"]["containers"][1]["securityContext"];
    assert_eq!(app["runAsUser"], 2866);
    assert_eq!(app["runAsGroup"], 2866);
    assert_eq!(app["runAsNonRoot"], true);
    assert_eq!(
        outcome(&h, ChangeName::RunAsUser, Some("root")),
        skipped(SkipReason::ExplicitValue)
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, Some("root")),
        skipped(SkipReason::RunsAsRoot)
    );
    assert_eq!(outcome(&h, ChangeName::RunAsNonRoot, Some("app")), APPLIED);
}

#[test]
fn pod_running_as_root_gets_no_run_as_non_root() {
    let input = pod(json!({"securityContext": {"runAsUser": 0},
                           "containers": [{"name": "app", "image": "a"}]}));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert_eq!(sc["runAsUser"], 0);
    assert!(
        sc.get("runAsNonRoot").is_none() && sc.get("runAsGroup").is_none(),
        "{sc}"
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, None),
        skipped(SkipReason::RunsAsRoot)
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsGroup, None),
        skipped(SkipReason::RunsAsRoot)
    );
    // A container with its own non-root UID does not make the pod-level choice safe.
    let input = pod(json!({"securityContext": {"runAsUser": 0}, "containers": [
        {"name": "a", "image": "a", "securityContext": {"runAsUser": 5}},
        {"name": "b", "image": "b"}]}));
    let (h, _) = run(&input);
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, None),
        skipped(SkipReason::RunsAsRoot)
    );
}

#[test]
fn privileged_container_stays_privileged_and_root() {
    let input = pod(json!({"containers": [
        {"name": "agent", "image": "a", "securityContext": {"privileged": true}},
        {"name": "app", "image": "b"}
    ]}));
    let (h, out) = run(&input);
    let agent = &out["spec"]["containers"][0];
    assert_eq!(agent["securityContext"], json!({"privileged": true}));
    let p = skipped(SkipReason::Privileged);
    for name in [
        ChangeName::AllowPrivilegeEscalation,
        ChangeName::Capabilities,
        ChangeName::ReadOnlyRootFilesystem,
        ChangeName::RunAsUser,
        ChangeName::RunAsGroup,
        ChangeName::RunAsNonRoot,
    ] {
        assert_eq!(outcome(&h, name, Some("agent")), p, "{name}");
    }
    // It still gets /tmp, TMPDIR and resources.
    assert_eq!(agent["volumeMounts"][0]["mountPath"], "/tmp");
    assert_eq!(agent["resources"]["limits"]["memory"], "512Mi");
    let app = &out["spec"]["containers"][1]["securityContext"];
    assert_eq!(app["runAsNonRoot"], true);
    assert_eq!(app["allowPrivilegeEscalation"], false);
    assert!(out["spec"]["securityContext"].get("runAsNonRoot").is_none());
}

#[test]
fn explicit_run_as_non_root_false_gets_no_identity() {
    // Pod level: every container inherits the "no", so nobody gets runAsUser or runAsGroup.
    let input = pod(json!({"securityContext": {"runAsNonRoot": false},
                           "containers": [{"name": "app", "image": "a"}]}));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert!(
        sc.get("runAsUser").is_none() && sc.get("runAsGroup").is_none(),
        "{sc}"
    );
    let app = &out["spec"]["containers"][0]["securityContext"];
    assert!(
        app.get("runAsUser").is_none() && app.get("runAsGroup").is_none(),
        "{app}"
    );
    assert_eq!(
        sc["fsGroup"], 2866,
        "fsGroup is not an identity of the process"
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, None),
        skipped(SkipReason::ExplicitValue)
    );
    let explicit = skipped(SkipReason::ExplicitValue);
    assert_eq!(outcome(&h, ChangeName::RunAsUser, Some("app")), explicit);
    assert_eq!(outcome(&h, ChangeName::RunAsGroup, Some("app")), explicit);

    // Container level: that container keeps its "no"; the others get identity per container.
    let input = pod(json!({"containers": [
        {"name": "root-ok", "image": "a", "securityContext": {"runAsNonRoot": false}},
        {"name": "app", "image": "b"}
    ]}));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert!(sc.get("runAsUser").is_none(), "{sc}");
    let root_ok = &out["spec"]["containers"][0]["securityContext"];
    assert!(
        root_ok.get("runAsUser").is_none() && root_ok.get("runAsGroup").is_none(),
        "{root_ok}"
    );
    assert_eq!(root_ok["runAsNonRoot"], false);
    assert_eq!(
        outcome(&h, ChangeName::RunAsUser, Some("root-ok")),
        explicit
    );
    let app = &out["spec"]["containers"][1]["securityContext"];
    assert_eq!(app["runAsUser"], 2866);
    assert_eq!(app["runAsNonRoot"], true);

    // A container that says "yes" under a pod that says "no" gets a non-root identity.
    let input = pod(
        json!({"securityContext": {"runAsNonRoot": false}, "containers": [
        {"name": "yes", "image": "a", "securityContext": {"runAsNonRoot": true}}]}),
    );
    let (_, out) = run(&input);
    let own = &out["spec"]["containers"][0]["securityContext"]["runAsUser"];
    let pod_level = &out["spec"]["securityContext"]["runAsUser"];
    assert_eq!(own.as_i64().or(pod_level.as_i64()), Some(2866));
}

/// Effective `securityContext.<field>` of container `c` of `spec`: its own, else the pod's.
fn effective<'a>(spec: &'a Value, c: &'a Value, field: &str) -> Option<&'a Value> {
    let get = |v: &'a Value| v["securityContext"].get(field).filter(|v| !v.is_null());
    get(c).or_else(|| get(spec))
}

#[test]
fn run_as_group_only_where_the_container_has_a_user() {
    let plain = || json!({"name": "plain", "image": "a"});
    let own = || json!({"name": "own", "image": "a", "securityContext": {"runAsUser": 1000}});
    let root = || json!({"name": "root", "image": "a", "securityContext": {"privileged": true}});
    let na = skipped(SkipReason::NotApplicable);
    // (skip, pod securityContext, containers, the pod's runAsGroup decision, containers that end
    // with an effective runAsGroup)
    type Case = (
        Option<&'static str>,
        Value,
        Vec<Value>,
        Option<Outcome>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (None, json!({}), vec![plain()], APPLIED, vec!["plain"]),
        // The defect: the image's own USER with kube-harden's group. containerd: "user group
        // "2866" is specified without user".
        (Some("runAsUser"), json!({}), vec![plain()], na, vec![]),
        (
            Some("runAsUser"),
            json!({"runAsUser": 1000}),
            vec![plain()],
            APPLIED,
            vec!["plain"],
        ),
        (
            Some("runAsUser"),
            json!({}),
            vec![own()],
            APPLIED,
            vec!["own"],
        ),
        (
            Some("runAsUser"),
            json!({}),
            vec![own(), plain()],
            na,
            vec![],
        ),
        (
            Some("runAsUser,runAsGroup"),
            json!({}),
            vec![plain()],
            skipped(SkipReason::OptedOut),
            vec![],
        ),
        (
            Some("runAsGroup"),
            json!({}),
            vec![plain()],
            skipped(SkipReason::OptedOut),
            vec![],
        ),
        // The author's own group without a user is theirs: kept, not "fixed".
        (
            Some("runAsUser"),
            json!({"runAsGroup": 5}),
            vec![plain()],
            ALREADY,
            vec!["plain"],
        ),
        // Per container (a privileged container keeps root).
        (
            Some("runAsUser"),
            json!({}),
            vec![root(), plain(), own()],
            None,
            vec!["own"],
        ),
        (
            None,
            json!({}),
            vec![root(), plain(), own()],
            None,
            vec!["plain", "own"],
        ),
    ];
    for (skip, sc, containers, pod_group, grouped) in cases {
        let annotations = skip.map_or(json!({}), |s| json!({SKIP_ANNOTATION: s}));
        let input = pod_with_annotations(
            annotations,
            json!({"securityContext": sc, "containers": containers}),
        );
        let (h, out) = run(&input);
        assert_eq!(
            outcome(&h, ChangeName::RunAsGroup, None),
            pod_group,
            "{input}"
        );
        let spec = &out["spec"];
        let with_group: Vec<&str> = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| effective(spec, c, "runAsGroup").is_some())
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(with_group, grouped, "{input}\n{out}");
        for c in spec["containers"].as_array().unwrap() {
            let before = &input["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["name"] == c["name"])
                .unwrap();
            let added = effective(&input["spec"], before, "runAsGroup").is_none()
                && effective(spec, c, "runAsGroup").is_some();
            assert!(
                !added || effective(spec, c, "runAsUser").is_some(),
                "{}: runAsGroup added without runAsUser: {out}",
                c["name"]
            );
        }
    }
    // The policy's disabled list is the same "no" as the annotation.
    let policy = Policy::from_yaml("disabled: [runAsUser]").unwrap();
    let (h, out) = run_with(&pod(json!({"containers": [plain()]})), &policy);
    assert_eq!(outcome(&h, ChangeName::RunAsGroup, None), na);
    assert!(out["spec"]["securityContext"].get("runAsGroup").is_none());
}
