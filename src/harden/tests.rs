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
        ChangeName::ALL.len() - 4,
        "all but writablePaths and the image rules (no lookup)"
    );
    assert_eq!(
        h.warnings,
        vec![
            "readOnlyRootFilesystem: the root filesystem is read-only; an app that writes outside \
             /tmp needs kube-harden.io/writable-paths: \"<dir>,<dir>\" on the Pod (or skip \
             readOnlyRootFilesystem)",
            "runAsUser: containers run as UID 2866, not as their image's own USER; an image that \
             needs its own user wants kube-harden.io/skip: \"runAsUser,runAsGroup\" on the Pod \
             (or an explicit runAsUser)",
        ]
    );
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
    assert_eq!(h.warnings.len(), 2, "{:?}", h.warnings);
    assert!(h.warnings[0].contains("bogus"), "{:?}", h.warnings);
    assert!(h.warnings[1].starts_with("runAsUser: containers run as UID 2866"));
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
    // The bad path, then the UID hint (no read-only-root hint: the pod lists writable paths).
    assert_eq!(h.warnings.len(), 2, "{:?}", h.warnings);
    assert!(h.warnings[0].contains("../bad"), "{:?}", h.warnings);
    assert!(h.warnings[1].starts_with("runAsUser: containers run as UID"));
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

fn all_template_kinds(metadata: Value, template: Value) -> Vec<Value> {
    WorkloadKind::all()
        .filter(|k| *k != WorkloadKind::Pod)
        .map(|kind| {
            let spec = match kind {
                WorkloadKind::CronJob => {
                    json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})
                }
                _ => json!({"template": template}),
            };
            json!({"apiVersion": kind.api_version(), "kind": kind.as_str(),
                   "metadata": metadata, "spec": spec})
        })
        .collect()
}

/// The Pod a controller makes from a workload's template: its metadata and spec.
fn pod_of(workload: &Value) -> Value {
    let kind = WorkloadKind::of_object(workload).unwrap();
    let meta = workload::lookup(workload, kind.template_metadata_path().unwrap())
        .cloned()
        .unwrap_or(json!({}));
    let spec = workload::lookup(workload, kind.pod_spec_path())
        .unwrap()
        .clone();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

#[test]
fn workload_annotations_reach_the_pod_template() {
    let skip = "runAsUser,runAsGroup";
    let paths = "/var/cache/app";
    let containers = json!({"containers": [{"name": "app", "image": "a"}]});
    // (workload annotations, template annotations, the template's annotations after, warnings
    // about the two)
    type Case = (Value, Value, Value, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            json!({SKIP_ANNOTATION: skip, WRITABLE_PATHS_ANNOTATION: paths}),
            json!(null),
            json!({SKIP_ANNOTATION: skip, WRITABLE_PATHS_ANNOTATION: paths}),
            vec![
                "kube-harden.io/skip copied to the pod template, so that its pods carry it",
                "kube-harden.io/writable-paths copied to the pod template, so that its pods carry it",
            ],
        ),
        (
            json!({SKIP_ANNOTATION: skip}),
            json!({"team": "x"}),
            json!({"team": "x", SKIP_ANNOTATION: skip}),
            vec!["kube-harden.io/skip copied to the pod template, so that its pods carry it"],
        ),
        (
            json!({SKIP_ANNOTATION: skip}),
            json!({SKIP_ANNOTATION: skip}),
            json!({SKIP_ANNOTATION: skip}),
            vec![],
        ),
        // Both set, different: the template's wins (its pods carry it), with a warning.
        (
            json!({SKIP_ANNOTATION: "true"}),
            json!({SKIP_ANNOTATION: skip}),
            json!({SKIP_ANNOTATION: skip}),
            vec!["differs on the"],
        ),
    ];
    for (own, template_annotations, expected, expected_warnings) in cases {
        let mut template = json!({"metadata": {"labels": {"app": "x"}}, "spec": containers});
        if !template_annotations.is_null() {
            template["metadata"]["annotations"] = template_annotations;
        }
        for object in all_template_kinds(json!({"name": "x", "annotations": own}), template.clone())
        {
            let kind = WorkloadKind::of_object(&object).unwrap();
            let (h, out) = run(&object);
            let meta = workload::lookup(&out, kind.template_metadata_path().unwrap()).unwrap();
            let mut annotations = meta["annotations"].as_object().unwrap().clone();
            annotations.remove(HARDENED_ANNOTATION);
            assert_eq!(Value::Object(annotations), expected, "{kind}");
            for (w, expected) in h.warnings.iter().zip(&expected_warnings) {
                assert!(w.contains(expected), "{kind}: {:?}", h.warnings);
            }
            let spec = workload::lookup(&out, kind.pod_spec_path()).unwrap();
            assert!(
                spec["securityContext"].get("runAsUser").is_none(),
                "{kind}: {out}"
            );
            // Its pods are hardened to nothing more: the skip is on them too.
            let (again, _) = run(&pod_of(&out));
            assert!(!again.is_changed(), "{kind}: {:?}", again.patch);
            // And the workload itself is done.
            let (twice, _) = run(&out);
            assert!(!twice.is_changed(), "{kind}: {:?}", twice.patch);
        }
    }
}

#[test]
fn skip_true_on_a_workload_only_copies_the_annotation() {
    let template = json!({"spec": {"containers": [{"name": "app", "image": "a"}]}});
    for object in all_template_kinds(
        json!({"name": "x", "annotations": {SKIP_ANNOTATION: "true"}}),
        template,
    ) {
        let kind = WorkloadKind::of_object(&object).unwrap();
        let (h, out) = run(&object);
        assert!(h.applied_names().is_empty());
        assert_eq!(h.patch.0.len(), 1, "{kind}: {:?}", h.patch);
        let meta = workload::lookup(&out, kind.template_metadata_path().unwrap()).unwrap();
        assert_eq!(
            meta,
            &json!({"annotations": {SKIP_ANNOTATION: "true"}}),
            "{kind}"
        );
        assert!(
            out["metadata"]["annotations"]
                .get(HARDENED_ANNOTATION)
                .is_none()
        );
        let (pod_hardened, _) = run(&pod_of(&out));
        assert!(!pod_hardened.is_changed(), "{kind}");
    }
}

#[test]
fn hints_name_the_fix_for_what_may_break() {
    let deployment = |annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
               "spec": {"template": {"metadata": {"annotations": annotations},
                        "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}}}})
    };
    let read_only = "writable-paths: \"<dir>,<dir>\" on the pod template";
    let uid = "skip: \"runAsUser,runAsGroup\" on the pod template";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec![read_only, uid]),
        (
            json!({WRITABLE_PATHS_ANNOTATION: "/var/log/app"}),
            vec![uid],
        ),
        (
            json!({SKIP_ANNOTATION: "runAsUser,runAsGroup"}),
            vec![read_only],
        ),
        (
            json!({SKIP_ANNOTATION: "readOnlyRootFilesystem,runAsUser"}),
            vec![],
        ),
        (json!({SKIP_ANNOTATION: "true"}), vec![]),
    ];
    for (annotations, expected) in cases {
        let (h, _) = run(&deployment(annotations.clone()));
        assert_eq!(
            h.warnings.len(),
            expected.len(),
            "{annotations}: {:?}",
            h.warnings
        );
        for (w, e) in h.warnings.iter().zip(expected) {
            assert!(w.contains(e), "{annotations}: {w}");
        }
    }
}

#[test]
fn postgres_with_its_data_volume_at_pgdata_gets_the_finding() {
    let postgres = |env: Value, annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pg"},
               "spec": {"template": {"metadata": {"annotations": annotations}, "spec": {
                   "containers": [{"name": "postgres", "image": "postgres:15", "env": env,
                                   "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}],
                   "volumes": [{"name": "data", "emptyDir": {}}]}}}})
    };
    let cases = [
        (json!([]), json!({}), true),
        (
            json!([{"name": "PGDATA", "value": "/var/lib/postgresql/data"}]),
            json!({}),
            true,
        ),
        (
            json!([{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}]),
            json!({}),
            false,
        ),
        // The image's own user (root in the official image, which chowns the volume).
        (
            json!([]),
            json!({SKIP_ANNOTATION: "runAsUser,runAsGroup"}),
            false,
        ),
    ];
    for (env, annotations, expected) in cases {
        let (h, _) = run(&postgres(env.clone(), annotations));
        let found = h
            .findings
            .iter()
            .any(|f| f.name == FindingName::DataDirIsMountPoint);
        assert_eq!(found, expected, "{env}: {:?}", h.findings);
        if expected {
            assert_eq!(h.findings[0].name, FindingName::DataDirIsMountPoint);
        }
    }
}
