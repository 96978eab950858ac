//! The image's TMPDIR: followed (an emptyDir there, TMPDIR written as the image has it), never
//! overriding the container's own, and left alone where it needs nothing.

use super::*;

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
