//! Table-driven tests of the rules: one case per edge. The property tests live in
//! tests/properties.rs.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::*;

/// Hardens `object` with `policy`, applies the patch, and returns both.
fn run_with(object: &Value, policy: &Policy) -> (Hardened, Value) {
    let hardened = harden_object(object, policy).expect("hardens");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &hardened.patch).expect("patch applies");
    (hardened, patched)
}

fn run(object: &Value) -> (Hardened, Value) {
    run_with(object, &Policy::default())
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn pod_with_annotations(annotations: Value, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": annotations}, "spec": spec})
}

fn outcome(h: &Hardened, name: ChangeName, container: Option<&str>) -> Option<Outcome> {
    h.changes
        .iter()
        .find(|c| c.name == name && c.container.as_deref() == container)
        .map(|c| c.outcome)
}

fn skipped(reason: SkipReason) -> Option<Outcome> {
    Some(Outcome::Skipped(reason))
}

const APPLIED: Option<Outcome> = Some(Outcome::Applied);
const ALREADY: Option<Outcome> = Some(Outcome::AlreadySet);

#[test]
fn legacy_pod_gets_every_field() {
    let (h, out) = run(&pod(
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    ));
    let spec = &out["spec"];
    assert_eq!(
        spec["securityContext"],
        json!({"runAsUser": 2866, "runAsGroup": 2866, "runAsNonRoot": true, "fsGroup": 2866,
               "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let c = &spec["containers"][0];
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "kube-harden-tmp", "mountPath": "/tmp"}])
    );
    assert_eq!(c["env"], json!([{"name": "TMPDIR", "value": "/tmp"}]));
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"},
               "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "kube-harden-tmp", "emptyDir": {"sizeLimit": "64Mi"}}])
    );
    let applied: Vec<&str> = h.applied_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        out["metadata"]["annotations"][HARDENED_ANNOTATION],
        applied.join(",")
    );
    assert_eq!(
        applied.len(),
        ChangeName::ALL.len() - 1,
        "all but writablePaths"
    );
    assert!(h.warnings.is_empty());
}

#[test]
fn explicit_values_are_never_changed() {
    let input = pod(json!({
        "securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"},
                            "fsGroupChangePolicy": "Always", "runAsGroup": 0},
        "containers": [{"name": "app", "image": "app:1", "securityContext": {
            "readOnlyRootFilesystem": false, "allowPrivilegeEscalation": true}}]
    }));
    let (h, out) = run(&input);
    let sc = &out["spec"]["securityContext"];
    assert_eq!(sc["runAsNonRoot"], false);
    assert_eq!(sc["seccompProfile"]["type"], "Unconfined");
    assert_eq!(sc["fsGroupChangePolicy"], "Always");
    assert_eq!(sc["runAsGroup"], 0);
    let csc = &out["spec"]["containers"][0]["securityContext"];
    assert_eq!(csc["readOnlyRootFilesystem"], false);
    assert_eq!(csc["allowPrivilegeEscalation"], true);
    assert_eq!(csc["capabilities"]["drop"], json!(["ALL"]));
    let explicit = skipped(SkipReason::ExplicitValue);
    assert_eq!(outcome(&h, ChangeName::RunAsNonRoot, None), explicit);
    assert_eq!(outcome(&h, ChangeName::SeccompProfile, None), explicit);
    assert_eq!(outcome(&h, ChangeName::FsGroupChangePolicy, None), explicit);
    assert_eq!(outcome(&h, ChangeName::RunAsGroup, None), explicit);
    assert_eq!(
        outcome(&h, ChangeName::ReadOnlyRootFilesystem, Some("app")),
        explicit
    );
    assert_eq!(
        outcome(&h, ChangeName::AllowPrivilegeEscalation, Some("app")),
        explicit
    );
}

#[test]
fn secure_explicit_values_count_as_already_set() {
    let input = pod(json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
        "containers": [{"name": "app", "image": "app:1", "securityContext": {
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}}}]
    }));
    let (h, out) = run(&input);
    assert_eq!(outcome(&h, ChangeName::RunAsNonRoot, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::RunAsUser, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::SeccompProfile, None), ALREADY);
    assert_eq!(outcome(&h, ChangeName::Capabilities, Some("app")), ALREADY);
    assert_eq!(out["spec"]["securityContext"]["runAsUser"], 1000);
    assert_eq!(out["spec"]["securityContext"]["runAsGroup"], 2866);
}

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
fn sys_admin_blocks_allow_privilege_escalation_but_capabilities_grow() {
    let input = pod(
        json!({"containers": [{"name": "app", "image": "a", "securityContext": {
        "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "drop": ["NET_RAW"]}}}]}),
    );
    let (h, out) = run(&input);
    let sc = &out["spec"]["containers"][0]["securityContext"];
    assert!(sc.get("allowPrivilegeEscalation").is_none(), "{sc}");
    assert_eq!(
        sc["capabilities"]["add"],
        json!(["SYS_ADMIN", "NET_BIND_SERVICE"])
    );
    assert_eq!(sc["capabilities"]["drop"], json!(["NET_RAW", "ALL"]));
    assert_eq!(
        outcome(&h, ChangeName::AllowPrivilegeEscalation, Some("app")),
        skipped(SkipReason::Privileged)
    );
}

#[test]
fn windows_pods_get_no_linux_only_fields() {
    let specs = [
        json!({"os": {"name": "windows"}, "containers": [{"name": "w", "image": "w"}]}),
        json!({"nodeSelector": {"kubernetes.io/os": "windows"},
               "containers": [{"name": "w", "image": "w"}]}),
        json!({"securityContext": {"windowsOptions": {"hostProcess": true}}, "hostNetwork": true,
               "containers": [{"name": "w", "image": "w"}]}),
    ];
    for spec in specs {
        let (h, out) = run(&pod(spec.clone()));
        let hardened = &out["spec"];
        assert_eq!(
            hardened.get("securityContext"),
            spec.get("securityContext"),
            "{spec}"
        );
        let c = &hardened["containers"][0];
        assert!(c.get("securityContext").is_none(), "{c}");
        assert!(
            c.get("volumeMounts").is_none() && c.get("env").is_none(),
            "{c}"
        );
        assert!(hardened.get("volumes").is_none());
        assert_eq!(
            c["resources"]["limits"]["cpu"], "500m",
            "resources still apply"
        );
        assert_eq!(
            outcome(&h, ChangeName::SeccompProfile, None),
            skipped(SkipReason::Windows)
        );
        assert_eq!(
            outcome(&h, ChangeName::ReadOnlyRootFilesystem, Some("w")),
            skipped(SkipReason::Windows)
        );
    }
}

#[test]
fn skip_true_leaves_the_object_untouched() {
    let input = pod_with_annotations(
        json!({SKIP_ANNOTATION: "true"}),
        json!({"containers": [{"name": "app", "image": "a"}]}),
    );
    let (h, out) = run(&input);
    assert!(!h.is_changed());
    assert_eq!(out, input);
    assert!(
        h.changes
            .iter()
            .all(|c| c.outcome == Outcome::Skipped(SkipReason::OptedOut))
    );
    assert!(!h.changes.is_empty());
}

#[test]
fn skip_list_skips_just_those_and_warns_on_unknown_names() {
    let input = pod_with_annotations(
        json!({SKIP_ANNOTATION: "readOnlyRootFilesystem, resources,bogus"}),
        json!({"containers": [{"name": "app", "image": "a"}]}),
    );
    let (h, out) = run(&input);
    let c = &out["spec"]["containers"][0];
    assert!(c["securityContext"].get("readOnlyRootFilesystem").is_none());
    assert!(c.get("resources").is_none());
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    let o = skipped(SkipReason::OptedOut);
    assert_eq!(
        outcome(&h, ChangeName::ReadOnlyRootFilesystem, Some("app")),
        o
    );
    assert_eq!(outcome(&h, ChangeName::Resources, Some("app")), o);
    assert_eq!(h.warnings.len(), 1);
    assert!(h.warnings[0].contains("bogus"), "{:?}", h.warnings);
    let names = out["metadata"]["annotations"][HARDENED_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(!names.contains("resources") && !names.contains("readOnlyRootFilesystem"));
}

#[test]
fn policy_disabled_list_and_cpu_limit_switch() {
    let policy =
        Policy::from_yaml("disabled: [seccompProfile]\nresources: {cpuLimits: false}").unwrap();
    let (h, out) = run_with(
        &pod(json!({"containers": [{"name": "a", "image": "a"}]})),
        &policy,
    );
    assert!(
        out["spec"]["securityContext"]
            .get("seccompProfile")
            .is_none()
    );
    assert_eq!(
        outcome(&h, ChangeName::SeccompProfile, None),
        skipped(SkipReason::Disabled)
    );
    let resources = &out["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"], json!({"memory": "512Mi"}));
    assert_eq!(
        resources["requests"],
        json!({"cpu": "100m", "memory": "128Mi"})
    );
}

#[test]
fn tmp_volume_name_never_clashes() {
    let input = pod(json!({
        "volumes": [{"name": "kube-harden-tmp", "configMap": {"name": "c"}},
                    {"name": "kube-harden-tmp-2", "secret": {"secretName": "s"}}],
        "containers": [{"name": "app", "image": "a"}]
    }));
    let (_, out) = run(&input);
    assert_eq!(out["spec"]["volumes"][2]["name"], "kube-harden-tmp-3");
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][0]["name"],
        "kube-harden-tmp-3"
    );
}

#[test]
fn existing_tmp_mounts_are_respected() {
    let input = pod(json!({
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [
            {"name": "has", "image": "a", "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/"}]},
            {"name": "lacks", "image": "b"}
        ]
    }));
    let (h, out) = run(&input);
    let has = &out["spec"]["containers"][0];
    assert_eq!(has["volumeMounts"].as_array().unwrap().len(), 1);
    assert_eq!(outcome(&h, ChangeName::TmpVolume, Some("has")), ALREADY);
    assert_eq!(outcome(&h, ChangeName::TmpdirEnv, Some("has")), APPLIED);
    assert_eq!(
        out["spec"]["containers"][1]["volumeMounts"][0]["name"],
        "kube-harden-tmp"
    );
    assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 2);
}

#[test]
fn tmpdir_is_not_overridden() {
    let input = pod(json!({"containers": [
        {"name": "set", "image": "a", "env": [{"name": "TMPDIR", "value": "/var/tmp"}]},
        {"name": "from", "image": "b", "envFrom": [{"configMapRef": {"name": "env"}}]}
    ]}));
    let (h, out) = run(&input);
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "TMPDIR", "value": "/var/tmp"}])
    );
    assert!(out["spec"]["containers"][1].get("env").is_none());
    assert_eq!(
        outcome(&h, ChangeName::TmpdirEnv, Some("set")),
        skipped(SkipReason::ExplicitValue)
    );
    assert_eq!(
        outcome(&h, ChangeName::TmpdirEnv, Some("from")),
        skipped(SkipReason::ExplicitValue)
    );
}

#[test]
fn writable_paths_get_their_own_volumes() {
    let input = pod_with_annotations(
        json!({WRITABLE_PATHS_ANNOTATION: "/var/cache/nginx, /var/run,../bad"}),
        json!({"containers": [
            {"name": "web", "image": "nginx", "volumeMounts": [{"name": "run", "mountPath": "/var/run"}]}
        ], "volumes": [{"name": "run", "emptyDir": {}}]}),
    );
    let (h, out) = run(&input);
    let mounts = &out["spec"]["containers"][0]["volumeMounts"];
    assert_eq!(
        mounts,
        &json!([{"name": "run", "mountPath": "/var/run"},
                {"name": "kube-harden-tmp", "mountPath": "/tmp"},
                {"name": "kube-harden-var-cache-nginx", "mountPath": "/var/cache/nginx"}])
    );
    let volumes: Vec<&str> = out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        volumes,
        ["run", "kube-harden-tmp", "kube-harden-var-cache-nginx"]
    );
    assert_eq!(h.warnings.len(), 1, "{:?}", h.warnings);
}

#[test]
fn resource_defaults_never_contradict_what_is_there() {
    let cases = [
        // (resources in, resources out)
        (
            json!({"limits": {"cpu": "2", "memory": "1Gi"}}),
            json!({"limits": {"cpu": "2", "memory": "1Gi"}}),
        ),
        (
            json!({"requests": {"cpu": "2", "memory": "64Mi"}}),
            json!({"requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}),
        ),
        (
            json!({"requests": {"cpu": "250m"}}),
            json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}),
        ),
        (
            json!({"requests": {"memory": 2147483648u64}}),
            json!({"requests": {"memory": 2147483648u64, "cpu": "100m"},
                   "limits": {"memory": 2147483648u64, "cpu": "500m"}}),
        ),
        (
            json!({"limits": {"memory": "256Mi"}}),
            json!({"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"cpu": "100m"}}),
        ),
    ];
    for (resources, expected) in cases {
        let (_, out) = run(&pod(
            json!({"containers": [{"name": "a", "image": "a", "resources": resources}]}),
        ));
        assert_eq!(
            out["spec"]["containers"][0]["resources"], expected,
            "{resources}"
        );
    }
    let (h, out) = run(&pod(json!({"resources": {"limits": {"cpu": "1"}},
                                    "containers": [{"name": "a", "image": "a"}]})));
    assert!(out["spec"]["containers"][0].get("resources").is_none());
    assert_eq!(
        outcome(&h, ChangeName::Resources, Some("a")),
        skipped(SkipReason::ExplicitValue)
    );
}

#[test]
fn init_containers_sidecars_and_ephemeral_containers_are_hardened() {
    let input = pod(json!({
        "initContainers": [{"name": "init", "image": "a"},
                           {"name": "sidecar", "image": "b", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "c"}],
        "ephemeralContainers": [{"name": "debug", "image": "d"}]
    }));
    let (h, out) = run(&input);
    for (list, i) in [
        ("initContainers", 0),
        ("initContainers", 1),
        ("containers", 0),
        ("ephemeralContainers", 0),
    ] {
        let c = &out["spec"][list][i];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{c}");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/tmp", "{c}");
    }
    assert!(
        out["spec"]["ephemeralContainers"][0]
            .get("resources")
            .is_none()
    );
    assert_eq!(out["spec"]["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(outcome(&h, ChangeName::Resources, Some("sidecar")), APPLIED);
    assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 1);
}

#[test]
fn new_ephemeral_containers_only() {
    let hardened_pod = run(&pod(json!({"containers": [{"name": "app", "image": "a"}]}))).1;
    let mut with_debug = hardened_pod.clone();
    with_debug["spec"]["ephemeralContainers"] = json!([
        {"name": "old", "image": "busybox"},
        {"name": "debug", "image": "busybox"}
    ]);
    let existing: HashSet<&str> = ["old"].into_iter().collect();
    let h = harden_new_ephemeral_containers(&with_debug, &existing, &Policy::default()).unwrap();
    let mut out = with_debug.clone();
    json_patch::patch(&mut out, &h.patch).unwrap();
    assert_eq!(
        out["spec"]["ephemeralContainers"][0],
        with_debug["spec"]["ephemeralContainers"][0]
    );
    let debug = &out["spec"]["ephemeralContainers"][1];
    assert_eq!(debug["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        debug["volumeMounts"],
        json!([{"name": "kube-harden-tmp", "mountPath": "/tmp"}])
    );
    assert!(debug.get("resources").is_none());
    assert!(
        debug["securityContext"].get("runAsUser").is_none(),
        "inherited from the pod"
    );
    assert_eq!(
        out["spec"]["securityContext"],
        with_debug["spec"]["securityContext"]
    );
    assert_eq!(out["spec"]["volumes"], with_debug["spec"]["volumes"]);
    assert!(
        h.changes
            .iter()
            .all(|c| c.container.as_deref() == Some("debug"))
    );

    // A pod that was never hardened: no volume to mount; identity per container.
    let mut plain = pod(json!({"containers": [{"name": "app", "image": "a"}]}));
    plain["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    let none = HashSet::new();
    let h = harden_new_ephemeral_containers(&plain, &none, &Policy::default()).unwrap();
    assert_eq!(
        outcome(&h, ChangeName::TmpVolume, Some("debug")),
        skipped(SkipReason::NotApplicable)
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, Some("debug")),
        APPLIED
    );
    let mut out = plain.clone();
    json_patch::patch(&mut out, &h.patch).unwrap();
    assert!(out["spec"].get("volumes").is_none());
    assert!(out["spec"].get("securityContext").is_none());
}

#[test]
fn workload_templates_are_hardened_and_annotated() {
    let template = json!({"metadata": {"labels": {"app": "x"}},
                          "spec": {"containers": [{"name": "app", "image": "a"}]}});
    let objects = [
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {"template": template}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
    ];
    for object in objects {
        let (h, out) = run(&object);
        let kind = WorkloadKind::of_object(&object).unwrap();
        let spec = workload::lookup(&out, kind.pod_spec_path()).unwrap();
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{kind}");
        let meta_path = kind.template_metadata_path().unwrap();
        let meta = workload::lookup(&out, meta_path).unwrap();
        assert_eq!(meta["labels"]["app"], "x");
        assert!(
            meta["annotations"][HARDENED_ANNOTATION].is_string(),
            "{kind}"
        );
        assert!(
            out["metadata"]["annotations"][HARDENED_ANNOTATION].is_string(),
            "{kind}"
        );
        assert!(h.is_changed());
    }
}

#[test]
fn other_kinds_pass_through_and_broken_workloads_are_errors() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": []}});
    assert!(
        !harden_object(&service, &Policy::default())
            .unwrap()
            .is_changed()
    );
    let no_template = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}});
    assert!(matches!(
        harden_object(&no_template, &Policy::default()),
        Err(HardenError::MissingPodSpec { .. })
    ));
    let bad = pod(json!({"containers": [{"name": "a", "securityContext": {"runAsUser": "root"}}]}));
    let err = harden_object(&bad, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.containers[a].securityContext.runAsUser: expected an integer"
    );
}

#[test]
fn hardening_twice_changes_nothing() {
    let inputs = [
        pod(json!({"containers": [{"name": "app", "image": "a"}]})),
        pod_with_annotations(
            json!({WRITABLE_PATHS_ANNOTATION: "/var/run"}),
            json!({"containers": [{"name": "a", "image": "a", "securityContext": {"privileged": true}},
                                   {"name": "b", "image": "b"}]}),
        ),
    ];
    for input in inputs {
        let (_, once) = run(&input);
        let (h, twice) = run(&once);
        assert!(!h.is_changed(), "{:?}", h.patch);
        assert_eq!(once, twice);
        assert!(!h.changes.iter().any(|c| c.outcome == Outcome::Applied));
    }
}

#[test]
fn hardened_annotation_merges_with_an_earlier_one() {
    let input = pod_with_annotations(
        json!({HARDENED_ANNOTATION: "resources,bogus"}),
        json!({"securityContext": {"runAsNonRoot": true, "runAsUser": 1, "runAsGroup": 1, "fsGroup": 1,
                                   "fsGroupChangePolicy": "Always", "seccompProfile": {"type": "RuntimeDefault"}},
               "containers": [{"name": "a", "image": "a", "env": [{"name": "TMPDIR", "value": "/tmp"}],
                               "volumeMounts": [{"name": "t", "mountPath": "/tmp"}],
                               "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                               "securityContext": {"allowPrivilegeEscalation": false,
                                                   "capabilities": {"drop": ["ALL"]}}}],
               "volumes": [{"name": "t", "emptyDir": {}}]}),
    );
    let (h, out) = run(&input);
    assert_eq!(h.applied_names(), vec![ChangeName::ReadOnlyRootFilesystem]);
    assert_eq!(
        out["metadata"]["annotations"][HARDENED_ANNOTATION],
        "readOnlyRootFilesystem,resources"
    );
}

#[test]
fn legacy_seccomp_annotation_counts_as_explicit() {
    let input = pod_with_annotations(
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
        json!({"containers": [{"name": "a", "image": "a"}]}),
    );
    let (h, out) = run(&input);
    assert!(
        out["spec"]["securityContext"]
            .get("seccompProfile")
            .is_none()
    );
    assert_eq!(
        outcome(&h, ChangeName::SeccompProfile, None),
        skipped(SkipReason::ExplicitValue)
    );
}

#[test]
fn nulls_count_as_missing() {
    let input = pod(json!({"securityContext": null, "volumes": null,
                           "containers": [{"name": "a", "image": "a", "securityContext": null,
                                           "env": null, "resources": null}]}));
    let (_, out) = run(&input);
    assert_eq!(out["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(out["spec"]["volumes"][0]["name"], "kube-harden-tmp");
}

#[test]
fn unknown_fields_survive() {
    let input = pod(json!({"futurePodField": {"x": [1, 2]},
                           "securityContext": {"futureSecurity": true},
                           "containers": [{"name": "a", "image": "a", "futureContainerField": "keep",
                                           "securityContext": {"futureBool": false}}]}));
    let (_, out) = run(&input);
    assert_eq!(out["spec"]["futurePodField"], json!({"x": [1, 2]}));
    assert_eq!(out["spec"]["securityContext"]["futureSecurity"], true);
    assert_eq!(out["spec"]["containers"][0]["futureContainerField"], "keep");
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"]["futureBool"],
        false
    );
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

#[test]
fn explicit_empty_drop_list_gets_no_all() {
    let input = pod(json!({"containers": [
        {"name": "none", "image": "a", "securityContext": {"capabilities": {"drop": []}}},
        {"name": "some", "image": "b", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}},
        {"name": "null", "image": "c", "securityContext": {"capabilities": {"drop": null}}}
    ]}));
    let (h, out) = run(&input);
    let caps = |i: usize| out["spec"]["containers"][i]["securityContext"]["capabilities"].clone();
    assert_eq!(caps(0), json!({"drop": []}));
    assert_eq!(
        outcome(&h, ChangeName::Capabilities, Some("none")),
        skipped(SkipReason::ExplicitValue)
    );
    assert_eq!(caps(1), json!({"drop": ["NET_RAW", "ALL"]}));
    assert_eq!(caps(2), json!({"drop": ["ALL"]}));
}

#[test]
fn writable_paths_that_would_break_the_pod_are_refused() {
    let input = pod_with_annotations(
        json!({WRITABLE_PATHS_ANNOTATION:
            "/tmp,/tmp/,/proc,/proc/1,/sys,/sys/fs/cgroup,/dev,/dev/shm,/data/,/var/lib,/var/lib/"}),
        json!({"containers": [
            {"name": "app", "image": "a", "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
            {"name": "side", "image": "b"}
        ], "volumes": [{"name": "d", "emptyDir": {}}]}),
    );
    let (h, out) = run(&input);
    for c in out["spec"]["containers"].as_array().unwrap() {
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        let name = c["name"].as_str().unwrap();
        let expected: &[&str] = if name == "app" {
            &["/data", "/tmp", "/var/lib"]
        } else {
            &["/tmp", "/data", "/var/lib"]
        };
        assert_eq!(mounts, expected, "{name}");
    }
    for refused in [
        "/tmp",
        "/tmp/",
        "/proc",
        "/proc/1",
        "/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/shm",
    ] {
        assert!(
            h.warnings
                .iter()
                .any(|w| w.contains(&format!("{refused:?}")) && w.ends_with("ignored")),
            "{refused}: {:?}",
            h.warnings
        );
    }
}

#[test]
fn colliding_volume_names_get_the_first_free_suffix() {
    // Every punctuation-only path maps to kube-harden-path; the pod already has some suffixes.
    let input = pod_with_annotations(
        json!({WRITABLE_PATHS_ANNOTATION: "/_,/-,/~,/+,/=,/@"}),
        json!({"containers": [{"name": "app", "image": "a"}],
               "volumes": [{"name": "kube-harden-path-2", "configMap": {"name": "c"}},
                           {"name": "kube-harden-path-4", "configMap": {"name": "c"}}]}),
    );
    let (_, out) = run(&input);
    let names: Vec<&str> = out["spec"]["volumes"].as_array().unwrap()[2..]
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kube-harden-tmp",
            "kube-harden-path",
            "kube-harden-path-3",
            "kube-harden-path-5",
            "kube-harden-path-6",
            "kube-harden-path-7",
            "kube-harden-path-8"
        ]
    );
}

#[test]
fn a_huge_container_name_is_not_copied_into_every_decision() {
    let name = "x".repeat(1_000_000);
    let (h, _) = run(&pod(json!({"containers": [{"name": name, "image": "a"}]})));
    assert!(h.changes.len() > 5);
    for c in &h.changes {
        assert!(
            c.container.as_ref().is_none_or(|n| n.len() <= 66),
            "{}",
            c.name
        );
    }
    assert!(!h.findings.is_empty());
    for f in &h.findings {
        assert!(f.to_string().len() < 1000, "{f}");
    }
}
