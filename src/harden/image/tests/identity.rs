//! Image identity: a numeric `USER` pins the image's UID/GID (on the pod or per container),
//! explicit and exempt identities ignore the image, the `imageUser` opt-out, and root or named
//! users keep today's answer with a warning naming the image.

use super::*;

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
