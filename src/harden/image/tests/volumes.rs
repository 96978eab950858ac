//! Image VOLUMEs: a writable emptyDir at each under a read-only root, shared with the
//! writable-paths annotation's paths and names, and the caps past which VOLUMEs are ignored.

use super::*;

fn volume_names(spec: &Value) -> Vec<&str> {
    spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].as_str().unwrap())
        .collect()
}

/// The `imageVolumes` decision of `container` whose detail starts with `path`.
fn volume_decision(h: &Hardened, container: &str, path: &str) -> Option<Outcome> {
    h.changes
        .iter()
        .find(|c| {
            c.name == ChangeName::ImageVolumes
                && c.container.as_deref() == Some(container)
                && c.detail.as_deref().unwrap_or_default().starts_with(path)
        })
        .map(|c| c.outcome)
}

#[test]
fn volumes_get_a_writable_empty_dir_under_a_read_only_root() {
    let images = lookup(&[(
        "db:1",
        facts(
            "",
            &[
                "/data",
                "/var/lib/db/",
                "/tmp",
                "/proc/x",
                "rel",
                "/data",
                "/srv/x",
            ],
            &[],
        ),
    )]);
    let spec = json!({
        "volumes": [{"name": "srv", "persistentVolumeClaim": {"claimName": "c"}}],
        "containers": [
            {"name": "db", "image": "db:1",
             "volumeMounts": [{"name": "srv", "mountPath": "/srv"}]},
            {"name": "side", "image": "db:1"},
            {"name": "rw", "image": "db:1", "securityContext": {"readOnlyRootFilesystem": false}},
        ]
    });
    for object in every_kind(&spec) {
        let (h, spec) = run(&object, &images);
        let db = &spec["containers"][0];
        assert_eq!(
            mounts(db),
            vec![
                ("/srv".into(), "srv".into()),
                ("/tmp".into(), "kube-harden-tmp".into()),
                ("/data".into(), "kube-harden-data".into()),
                ("/var/lib/db".into(), "kube-harden-var-lib-db".into()),
            ]
        );
        // The same VOLUME in two containers: one volume, as for writable paths (/srv/x too:
        // nothing mounts /srv in this one).
        assert_eq!(mounts(&spec["containers"][1]).len(), 4);
        // A writable root needs none.
        assert_eq!(mounts(&spec["containers"][2]).len(), 1);
        assert_eq!(
            volume_names(&spec),
            vec![
                "srv",
                "kube-harden-tmp",
                "kube-harden-data",
                "kube-harden-var-lib-db",
                "kube-harden-srv-x"
            ]
        );
        let decision = |container: &str, path: &str| volume_decision(&h, container, path);
        assert_eq!(decision("db", "/data "), Some(Outcome::Applied));
        // Inside the author's volume at /srv: left to it.
        assert_eq!(
            decision("db", "/srv/x "),
            skipped(SkipReason::ExplicitValue)
        );
        assert_eq!(decision("rw", "/data "), skipped(SkipReason::ExplicitValue));
        assert_eq!(
            decision("db", "\"/proc/x\" is under /proc"),
            skipped(SkipReason::NotApplicable)
        );
        let (refused, mounted): (Vec<&String>, Vec<&String>) = h
            .warnings
            .iter()
            .filter(|w| w.starts_with("imageVolumes"))
            .partition(|w| w.contains("no writable emptyDir"));
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[1].contains("\"rel\" is not an absolute path"));
        // Each emptyDir mounted at a VOLUME is named, with how to keep the image's files there.
        assert!(
            mounted
                .iter()
                .any(|w| w.starts_with("imageVolumes: /data (VOLUME of image")),
            "{mounted:?}"
        );
        assert!(
            mounted
                .iter()
                .all(|w| w.contains("kube-harden.io/skip: \"imageVolumes\"")),
            "{mounted:?}"
        );
    }
}

#[test]
fn volumes_share_the_annotation_paths_and_names() {
    let images = lookup(&[("app:1", facts("1001", &["/var/run", "/cache"], &[]))]);
    let mut object = pod(json!({
        "volumes": [{"name": "kube-harden-cache", "configMap": {"name": "c"}}],
        "containers": [{"name": "app", "image": "app:1"}]}));
    object["metadata"]["annotations"] = json!({"kube-harden.io/writable-paths": "/var/run"});
    let (h, spec) = run(&object, &images);
    assert_eq!(
        mounts(&spec["containers"][0]),
        vec![
            ("/tmp".into(), "kube-harden-tmp".into()),
            ("/var/run".into(), "kube-harden-var-run".into()),
            ("/cache".into(), "kube-harden-cache-2".into()),
        ]
    );
    assert_eq!(
        volume_decision(&h, "app", "/var/run "),
        Some(Outcome::AlreadySet)
    );
    assert_eq!(
        volume_decision(&h, "app", "/cache "),
        Some(Outcome::Applied)
    );
}

#[test]
fn image_volumes_past_the_caps_are_ignored_not_the_object() {
    let many: Vec<String> = (0..=MAX_WRITABLE_PATHS).map(|i| format!("/v{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge: Vec<String> = (0..=MAX_VOLUME_ENTRIES).map(|i| format!("/h{i}")).collect();
    let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
    let images = lookup(&[
        ("many", facts("", &many, &[])),
        ("huge", facts("", &huge, &[])),
    ]);
    for (image, what) in [
        ("many", "more than 64 distinct VOLUMEs"),
        ("huge", "257 VOLUMEs"),
    ] {
        let (h, spec) = run(
            &pod(json!({"containers": [{"name": "a", "image": image}]})),
            &images,
        );
        assert_eq!(mounts(&spec["containers"][0]).len(), 1, "only /tmp");
        let line = h.warnings.iter().find(|w| w.starts_with("imageVolumes"));
        assert!(line.unwrap().contains(what), "{line:?}");
    }
    // 60 paths each: the 18th container would take the pod past 1024 mounts.
    let sixty: Vec<String> = (0..60).map(|i| format!("/s{i}")).collect();
    let sixty: Vec<&str> = sixty.iter().map(String::as_str).collect();
    let images = lookup(&[("sixty", facts("", &sixty, &[]))]);
    let containers: Vec<Value> = (0..20)
        .map(|i| json!({"name": format!("c{i}"), "image": "sixty"}))
        .collect();
    let (_, spec) = run(&pod(json!({"containers": containers})), &images);
    let counts: Vec<usize> = (0..20)
        .map(|i| mounts(&spec["containers"][i]).len())
        .collect();
    assert_eq!(counts[..17], [61; 17]);
    assert_eq!(counts[17..], [1, 1, 1]);
}
