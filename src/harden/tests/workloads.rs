//! Pod templates and their annotations, init/sidecar/ephemeral containers, the
//! ephemeral-containers subresource, and the hints.

use super::*;

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
    let h =
        harden_new_ephemeral_containers(&Json::from(&with_debug), &existing, &Policy::default())
            .unwrap();
    let mut out = with_debug.clone();
    h.patch.apply(&mut out).unwrap();
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
    let h =
        harden_new_ephemeral_containers(&Json::from(&plain), &none, &Policy::default()).unwrap();
    assert_eq!(
        outcome(&h, ChangeName::TmpVolume, Some("debug")),
        skipped(SkipReason::NotApplicable)
    );
    assert_eq!(
        outcome(&h, ChangeName::RunAsNonRoot, Some("debug")),
        APPLIED
    );
    let mut out = plain.clone();
    h.patch.apply(&mut out).unwrap();
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
        let spec = workload::lookup_value(&out, kind.pod_spec_path()).unwrap();
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{kind}");
        let meta_path = kind.template_metadata_path().unwrap();
        let meta = workload::lookup_value(&out, meta_path).unwrap();
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
    let meta = workload::lookup_value(workload, kind.template_metadata_path().unwrap())
        .cloned()
        .unwrap_or(json!({}));
    let spec = workload::lookup_value(workload, kind.pod_spec_path())
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
            let meta =
                workload::lookup_value(&out, kind.template_metadata_path().unwrap()).unwrap();
            let mut annotations = meta["annotations"].as_object().unwrap().clone();
            annotations.remove(HARDENED_ANNOTATION);
            assert_eq!(Value::Object(annotations), expected, "{kind}");
            for (w, expected) in h.warnings.iter().zip(&expected_warnings) {
                assert!(w.contains(expected), "{kind}: {:?}", h.warnings);
            }
            let spec = workload::lookup_value(&out, kind.pod_spec_path()).unwrap();
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
        let meta = workload::lookup_value(&out, kind.template_metadata_path().unwrap()).unwrap();
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
