//! The /tmp and writable-path mounts, `TMPDIR`, volume names, and a data directory at a
//! mount point.

use super::*;

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
