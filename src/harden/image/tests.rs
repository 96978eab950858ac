//! Table tests of the image-aware rules: `USER` parsing, identity, VOLUMEs, TMPDIR, and the
//! image-blind answer for images the lookup lacks. Each case runs on a Pod and on every
//! template kind, through the one code path.

use serde_json::{Value, json};

use super::*;
use crate::harden::{
    ChangeName, HARDENED_ANNOTATION, Hardened, ImageFacts, ImageLookup, Outcome, Policy,
    SkipReason, WorkloadKind, harden_workload, harden_workload_with_images, workload,
};

fn facts(user: &str, volumes: &[&str], env: &[&str]) -> ImageFacts {
    ImageFacts {
        user: (!user.is_empty()).then(|| user.to_owned()),
        volumes: volumes.iter().map(|v| (*v).to_owned()).collect(),
        env: env.iter().map(|e| (*e).to_owned()).collect(),
        digest: "sha256:0123456789abcdef0123456789abcdef".into(),
    }
}

fn lookup(entries: &[(&str, ImageFacts)]) -> ImageLookup {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

/// The Pod, and the same pod spec as the template of every workload kind.
fn every_kind(spec: &Value) -> Vec<Value> {
    let mut out = vec![pod(spec.clone())];
    for kind in WorkloadKind::all().filter(|k| *k != WorkloadKind::Pod) {
        let template = json!({"spec": spec});
        let body = match kind {
            WorkloadKind::CronJob => {
                json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})
            }
            _ => json!({"template": template}),
        };
        out.push(
            json!({"apiVersion": kind.api_version(), "kind": kind.as_str(),
                        "metadata": {"name": "w"}, "spec": body}),
        );
    }
    out
}

fn kind_of(object: &Value) -> WorkloadKind {
    WorkloadKind::of_object(object).unwrap()
}

/// Hardens with the lookup, applies the patch; returns the result and the hardened pod spec.
fn run(object: &Value, images: &ImageLookup) -> (Hardened, Value) {
    let kind = kind_of(object);
    let hardened =
        harden_workload_with_images(object, kind, &Policy::default(), images).expect("hardens");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &hardened.patch).expect("patch applies");
    // Hardening again with the same lookup adds nothing.
    let again = harden_workload_with_images(&patched, kind, &Policy::default(), images).unwrap();
    assert!(
        again.patch.0.is_empty(),
        "not idempotent: {:?}",
        again.patch
    );
    let spec = workload::lookup(&patched, kind.pod_spec_path())
        .unwrap()
        .clone();
    (hardened, spec)
}

fn outcome(h: &Hardened, name: ChangeName, container: Option<&str>) -> Option<Outcome> {
    h.changes
        .iter()
        .find(|c| c.name == name && c.container.as_deref() == container)
        .map(|c| c.outcome)
}

/// Same patch, warnings and decisions as without any lookup.
fn assert_image_blind(object: &Value, images: &ImageLookup) {
    let kind = kind_of(object);
    let blind = harden_workload(object, kind, &Policy::default()).unwrap();
    let seen = harden_workload_with_images(object, kind, &Policy::default(), images).unwrap();
    assert_eq!(
        serde_json::to_string(&seen.patch).unwrap(),
        serde_json::to_string(&blind.patch).unwrap(),
        "{object}"
    );
    assert_eq!(seen.warnings, blind.warnings);
    assert_eq!(seen.changes, blind.changes);
    assert_eq!(seen.findings, blind.findings);
}

#[test]
fn user_is_read_as_the_runtime_reads_it() {
    use ImageGroup::*;
    let non_root = |uid, group| ImageUser::NonRoot { uid, group };
    let cases = [
        (None, ImageUser::Root),
        (Some(""), ImageUser::Root),
        (Some("0"), ImageUser::Root),
        (Some("00"), ImageUser::Root),
        (Some("root"), ImageUser::Root),
        (Some("root:root"), ImageUser::Root),
        (Some("0:1000"), ImageUser::Root),
        (Some("1001"), non_root(1001, Passwd)),
        (Some("1001:1001"), non_root(1001, Id(1001))),
        (Some("1001:0"), non_root(1001, Id(0))),
        (Some("1001:staff"), non_root(1001, Named)),
        (Some("1001:"), non_root(1001, Named)),
        (Some("2147483647"), non_root(2147483647, Passwd)),
        (Some("2147483648"), ImageUser::Named),
        (Some("99999999999999999999"), ImageUser::Named),
        (Some("app"), ImageUser::Named),
        (Some("app:app"), ImageUser::Named),
        (Some("1:2:3"), ImageUser::Named),
        (Some("-1"), ImageUser::Named),
        (Some("+1001"), ImageUser::Named),
        (Some(" 1001"), ImageUser::Named),
    ];
    for (user, expected) in cases {
        assert_eq!(ImageUser::parse(user), expected, "{user:?}");
    }
}

#[test]
fn images_the_lookup_lacks_get_todays_answer() {
    let specs = [
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
        json!({"initContainers": [{"name": "init", "image": "busybox"}],
               "containers": [{"name": "app", "image": "app:1",
                               "securityContext": {"privileged": true}}]}),
        json!({"containers": [{"name": "app"}, {"name": "b", "image": 7}]}),
    ];
    // Keys that are not the containers' image strings, exactly as written.
    let other = lookup(&[
        ("app:2", facts("1001:1001", &["/data"], &["TMPDIR=/x"])),
        ("docker.io/library/app:1", facts("1001", &[], &[])),
        ("app:1 ", facts("1001", &[], &[])),
    ]);
    for spec in &specs {
        for object in every_kind(spec) {
            assert_image_blind(&object, &ImageLookup::new());
            assert_image_blind(&object, &other);
        }
    }
}

#[test]
fn numeric_user_keeps_the_images_identity() {
    // (USER of each image, pod securityContext identity fields, each container's, fsGroup)
    struct Case {
        init: Option<&'static str>,
        main: &'static str,
        pod: Value,
        init_sc: Value,
        main_sc: Value,
        fs_group: i64,
    }
    let none = json!(null);
    let cases = [
        Case {
            init: None,
            main: "1001:1001",
            pod: json!({"runAsUser": 1001, "runAsGroup": 1001, "runAsNonRoot": true}),
            init_sc: none.clone(),
            main_sc: json!({}),
            fs_group: 1001,
        },
        Case {
            init: None,
            main: "65532",
            pod: json!({"runAsUser": 65532, "runAsNonRoot": true}),
            init_sc: none.clone(),
            main_sc: json!({}),
            fs_group: 2866,
        },
        // A named group or GID 0 is left to the image: nothing written but runAsNonRoot.
        Case {
            init: None,
            main: "1001:staff",
            pod: json!({"runAsNonRoot": true}),
            init_sc: none.clone(),
            main_sc: json!({}),
            fs_group: 2866,
        },
        Case {
            init: None,
            main: "1001:0",
            pod: json!({"runAsNonRoot": true}),
            init_sc: none.clone(),
            main_sc: json!({}),
            fs_group: 2866,
        },
        // Init and main images agree: one identity, on the pod.
        Case {
            init: Some("1001:1001"),
            main: "1001:1001",
            pod: json!({"runAsUser": 1001, "runAsGroup": 1001, "runAsNonRoot": true}),
            init_sc: json!({}),
            main_sc: json!({}),
            fs_group: 1001,
        },
        // They disagree: per container, each its image's.
        Case {
            init: Some("1001"),
            main: "65532:65532",
            pod: json!({}),
            init_sc: json!({"runAsUser": 1001, "runAsNonRoot": true}),
            main_sc: json!({"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": true}),
            fs_group: 2866,
        },
        // A root image next to a numeric one with a GID: the defaults on the pod, the image's
        // user and group on its container.
        Case {
            init: Some(""),
            main: "1001:1001",
            pod: json!({"runAsUser": 2866, "runAsGroup": 2866, "runAsNonRoot": true}),
            init_sc: json!({}),
            main_sc: json!({"runAsUser": 1001, "runAsGroup": 1001}),
            fs_group: 2866,
        },
        // Without a GID the pod's group would reach the image's container: per container.
        Case {
            init: Some("app"),
            main: "1001",
            pod: json!({}),
            init_sc: json!({"runAsUser": 2866, "runAsGroup": 2866, "runAsNonRoot": true}),
            main_sc: json!({"runAsUser": 1001, "runAsNonRoot": true}),
            fs_group: 2866,
        },
    ];
    let identity = |sc: &Value| -> Value {
        let mut out = serde_json::Map::new();
        for key in ["runAsUser", "runAsGroup", "runAsNonRoot"] {
            if let Some(v) = sc.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        Value::Object(out)
    };
    for case in cases {
        let mut images = vec![("main:1", facts(case.main, &[], &[]))];
        let mut spec = json!({"containers": [{"name": "main", "image": "main:1"}]});
        if let Some(user) = case.init {
            images.push(("init:1", facts(user, &[], &[])));
            spec["initContainers"] = json!([{"name": "init", "image": "init:1"}]);
        }
        let images = lookup(&images);
        for object in every_kind(&spec) {
            let (h, spec) = run(&object, &images);
            let label = format!("{} {}", case.main, object["kind"]);
            let pod_sc = &spec["securityContext"];
            assert_eq!(identity(pod_sc), case.pod, "{label}");
            assert_eq!(pod_sc["fsGroup"], case.fs_group, "{label}");
            assert_eq!(
                identity(&spec["containers"][0]["securityContext"]),
                case.main_sc,
                "{label}"
            );
            if case.init.is_some() {
                let init = &spec["initContainers"][0]["securityContext"];
                assert_eq!(identity(init), case.init_sc, "{label}");
            }
            assert_eq!(
                outcome(&h, ChangeName::ImageUser, Some("main")),
                Some(Outcome::Applied),
                "{label}"
            );
            assert!(
                h.applied_names().contains(&ChangeName::ImageUser),
                "{label}"
            );
            let taken = h.warnings.iter().any(|w| {
                w.starts_with("imageUser: image \"main:1\"")
                    && w.contains("runs as the image's own user")
            });
            assert!(
                taken,
                "{label}: the warning names what was taken from the image: {:?}",
                h.warnings
            );
            let uid_hint = h.warnings.iter().any(|w| w.starts_with("runAsUser: "));
            let defaulted = case.init.is_some_and(|u| u.is_empty() || u == "app");
            assert_eq!(uid_hint, defaulted, "{label}: {:?}", h.warnings);
        }
    }
}

#[test]
fn image_decisions_read_well_in_explain() {
    let images = lookup(&[(
        "main:1",
        facts("1001:1001", &["/data"], &["TMPDIR=/var/tmp"]),
    )]);
    let (h, _) = run(
        &pod(json!({"containers": [{"name": "main", "image": "main:1"}]})),
        &images,
    );
    let lines: Vec<String> = h
        .changes
        .iter()
        .filter(|c| c.detail.is_some())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        vec![
            "runAsUser from the image's USER 1001:1001: applied",
            "runAsGroup from the image's USER 1001:1001: applied",
            "fsGroup 1001 from the image's USER: applied",
            "imageUser image \"main:1\" (sha256:0123456789ab) with USER \"1001:1001\" \
             (container main): applied",
            "imageVolumes /data (VOLUME of image \"main:1\" (sha256:0123456789ab)) (container \
             main): applied",
            "imageTmpdir /var/tmp (TMPDIR of image \"main:1\" (sha256:0123456789ab)) (container \
             main): applied",
            "tmpdirEnv \"/var/tmp\" (the image's) (container main): applied",
        ]
    );
}

#[test]
fn explicit_and_exempt_identities_ignore_the_image() {
    let images = lookup(&[("app:1", facts("1001:1001", &[], &[]))]);
    let explicit = skipped(SkipReason::ExplicitValue);
    let cases = [
        (
            json!({"containers": [{"name": "app", "image": "app:1",
                                   "securityContext": {"runAsUser": 5000}}]}),
            explicit,
        ),
        (
            json!({"securityContext": {"runAsUser": 5000},
                   "containers": [{"name": "app", "image": "app:1"}]}),
            explicit,
        ),
        (
            json!({"containers": [{"name": "app", "image": "app:1",
                                   "securityContext": {"privileged": true}}]}),
            skipped(SkipReason::Privileged),
        ),
        (
            json!({"securityContext": {"runAsNonRoot": false},
                   "containers": [{"name": "app", "image": "app:1"}]}),
            explicit,
        ),
        (
            json!({"os": {"name": "windows"}, "containers": [{"name": "app", "image": "app:1"}]}),
            skipped(SkipReason::Windows),
        ),
    ];
    for (spec, expected) in cases {
        for object in every_kind(&spec) {
            let kind = kind_of(&object);
            let seen =
                harden_workload_with_images(&object, kind, &Policy::default(), &images).unwrap();
            let blind = harden_workload(&object, kind, &Policy::default()).unwrap();
            assert_eq!(outcome(&seen, ChangeName::ImageUser, Some("app")), expected);
            assert_eq!(seen.patch, blind.patch, "{spec}");
        }
    }
}

fn skipped(reason: SkipReason) -> Option<Outcome> {
    Some(Outcome::Skipped(reason))
}

#[test]
fn opting_out_of_image_user_gives_the_image_blind_identity() {
    let images = lookup(&[("app:1", facts("1001:1001", &[], &[]))]);
    let spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
    let mut object = pod(spec);
    object["metadata"]["annotations"] = json!({"kube-harden.io/skip": "imageUser"});
    let (h, spec) = run(&object, &images);
    assert_eq!(spec["securityContext"]["runAsUser"], 2866);
    assert_eq!(spec["securityContext"]["fsGroup"], 2866);
    assert_eq!(
        outcome(&h, ChangeName::ImageUser, Some("app")),
        skipped(SkipReason::OptedOut)
    );
    // Skipping runAsUser alone: the image's UID is known, so runAsNonRoot still applies and
    // the kubelet runs the image's user.
    let mut object = pod(json!({"containers": [{"name": "app", "image": "app:1"}]}));
    object["metadata"]["annotations"] = json!({"kube-harden.io/skip": "runAsUser"});
    let (_, spec) = run(&object, &images);
    let sc = &spec["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(
        sc.get("runAsUser").is_none() && sc.get("runAsGroup").is_none(),
        "{sc}"
    );
}

#[test]
fn root_and_named_users_get_todays_answer_and_a_warning_naming_the_image() {
    let cases = [
        (
            "",
            "image \"vendor/app:2\" (sha256:0123456789ab) with USER unset runs as root",
        ),
        ("root", "with USER \"root\" runs as root"),
        ("0:0", "with USER \"0:0\" runs as root"),
        (
            "app",
            "image \"vendor/app:2\" (sha256:0123456789ab) with USER \"app\" is not a numeric UID",
        ),
        ("1:2:3", "with USER \"1:2:3\" is not a numeric UID"),
    ];
    for (user, warning) in cases {
        let images = lookup(&[("vendor/app:2", facts(user, &[], &[]))]);
        let spec = json!({"containers": [{"name": "a", "image": "vendor/app:2"},
                                         {"name": "b", "image": "vendor/app:2"}]});
        for object in every_kind(&spec) {
            let kind = kind_of(&object);
            let seen =
                harden_workload_with_images(&object, kind, &Policy::default(), &images).unwrap();
            let blind = harden_workload(&object, kind, &Policy::default()).unwrap();
            assert_eq!(seen.patch, blind.patch, "{user}");
            let extra: Vec<&String> = seen
                .warnings
                .iter()
                .filter(|w| !blind.warnings.contains(w))
                .collect();
            assert_eq!(extra.len(), 1, "one line for both containers: {extra:?}");
            assert!(extra[0].contains(warning), "{user}: {}", extra[0]);
        }
    }
}

#[test]
fn image_warnings_are_capped() {
    let mut entries = Vec::new();
    let mut containers = Vec::new();
    for i in 0..20 {
        entries.push((format!("img{i}"), facts("", &[], &[])));
        containers.push(json!({"name": format!("c{i}"), "image": format!("img{i}")}));
    }
    let images: ImageLookup = entries.into_iter().collect();
    let (h, _) = run(&pod(json!({"containers": containers})), &images);
    let image_lines: Vec<&String> = h
        .warnings
        .iter()
        .filter(|w| w.starts_with("imageUser") || w.contains("image warnings"))
        .collect();
    assert_eq!(image_lines.len(), MAX_IMAGE_WARNINGS + 1);
    assert_eq!(
        image_lines.last().unwrap().as_str(),
        "12 more image warnings left out"
    );
}

fn mounts(c: &Value) -> Vec<(String, String)> {
    c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap().to_owned(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

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

#[test]
fn the_images_tmpdir_is_followed_not_overridden() {
    struct Case {
        env: &'static [&'static str],
        spec_extra: Value,
        tmpdir: Option<&'static str>,
        mounts: Vec<(&'static str, &'static str)>,
    }
    let cases = [
        // Another directory: an emptyDir there, TMPDIR written as the image has it.
        Case {
            env: &["PATH=/bin", "TMPDIR=/var/tmp/app"],
            spec_extra: json!({}),
            tmpdir: Some("/var/tmp/app"),
            mounts: vec![
                ("/tmp", "kube-harden-tmp"),
                ("/var/tmp/app", "kube-harden-var-tmp-app"),
            ],
        },
        // The last entry wins, as in the runtime.
        Case {
            env: &["TMPDIR=/x", "TMPDIR=/scratch/"],
            spec_extra: json!({}),
            tmpdir: Some("/scratch/"),
            mounts: vec![
                ("/tmp", "kube-harden-tmp"),
                ("/scratch", "kube-harden-scratch"),
            ],
        },
        // Below kube-harden's /tmp emptyDir (where the image's directory is hidden): its own.
        Case {
            env: &["TMPDIR=/tmp/app"],
            spec_extra: json!({}),
            tmpdir: Some("/tmp/app"),
            mounts: vec![
                ("/tmp", "kube-harden-tmp"),
                ("/tmp/app", "kube-harden-tmp-app"),
            ],
        },
        // Inside the author's volume: left to it, and TMPDIR left to the image.
        Case {
            env: &["TMPDIR=/work/tmp"],
            spec_extra: json!({"volumeMounts": [{"name": "w", "mountPath": "/work"}]}),
            tmpdir: None,
            mounts: vec![("/work", "w"), ("/tmp", "kube-harden-tmp")],
        },
        // A writable root: nothing to mount, and TMPDIR left to the image.
        Case {
            env: &["TMPDIR=/var/tmp/app"],
            spec_extra: json!({"securityContext": {"readOnlyRootFilesystem": false}}),
            tmpdir: None,
            mounts: vec![("/tmp", "kube-harden-tmp")],
        },
        // The container's own TMPDIR wins over the image's.
        Case {
            env: &["TMPDIR=/var/tmp/app"],
            spec_extra: json!({"env": [{"name": "TMPDIR", "value": "/mine"}]}),
            tmpdir: Some("/mine"),
            mounts: vec![("/tmp", "kube-harden-tmp")],
        },
    ];
    for case in cases {
        let images = lookup(&[("app:1", facts("", &[], case.env))]);
        let mut container = json!({"name": "app", "image": "app:1"});
        for (k, v) in case.spec_extra.as_object().unwrap() {
            container[k] = v.clone();
        }
        let spec = json!({"volumes": [{"name": "w", "emptyDir": {}}], "containers": [container]});
        for object in every_kind(&spec) {
            let (_, spec) = run(&object, &images);
            let c = &spec["containers"][0];
            let tmpdir = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == "TMPDIR")
                .map(|e| e["value"].as_str().unwrap());
            assert_eq!(tmpdir, case.tmpdir, "{:?}", case.env);
            let expected: Vec<(String, String)> = case
                .mounts
                .iter()
                .map(|(p, n)| ((*p).to_owned(), (*n).to_owned()))
                .collect();
            assert_eq!(mounts(c), expected, "{:?}", case.env);
        }
    }
    // TMPDIR=/tmp in the image: the answer is today's.
    let images = lookup(&[("app:1", facts("", &[], &["TMPDIR=/tmp"]))]);
    let spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
    for object in every_kind(&spec) {
        let kind = kind_of(&object);
        let seen = harden_workload_with_images(&object, kind, &Policy::default(), &images).unwrap();
        let blind = harden_workload(&object, kind, &Policy::default()).unwrap();
        assert_eq!(seen.patch, blind.patch);
    }
}

#[test]
fn a_pod_of_a_hardened_template_is_hardened_to_nothing_more() {
    let images = lookup(&[
        (
            "app:1",
            facts("1001:1001", &["/data"], &["TMPDIR=/var/tmp"]),
        ),
        ("init:1", facts("", &[], &[])),
    ]);
    let spec = json!({"initContainers": [{"name": "init", "image": "init:1"}],
                      "containers": [{"name": "app", "image": "app:1"}]});
    for object in every_kind(&spec).into_iter().skip(1) {
        let kind = kind_of(&object);
        let h = harden_workload_with_images(&object, kind, &Policy::default(), &images).unwrap();
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &h.patch).unwrap();
        let meta = workload::lookup(&patched, kind.template_metadata_path().unwrap()).cloned();
        let spec = workload::lookup(&patched, kind.pod_spec_path()).unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
        for lookup in [&images, &ImageLookup::new()] {
            let again =
                harden_workload_with_images(&pod, WorkloadKind::Pod, &Policy::default(), lookup)
                    .unwrap();
            // Pinned identity and TMPDIR: even a Pod admitted without the lookup keeps them.
            assert!(again.patch.0.is_empty(), "{:?}", again.patch);
        }
        let names = patched
            .pointer(&format!(
                "/{}/annotations/{}",
                kind.template_metadata_path().unwrap().join("/"),
                HARDENED_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        assert!(
            names.ends_with("resources,imageUser,imageVolumes,imageTmpdir"),
            "{names}"
        );
    }
}
