//! Table tests of the image-aware rules: the shared fixtures (image facts, a lookup, every
//! workload kind built around one pod spec, `run` that hardens and checks idempotence), `USER`
//! parsing, the image-blind answer for images the lookup lacks, the `--explain` lines, the
//! warning cap and the Pod of a hardened template. Each case runs on a Pod and on every
//! template kind, through the one code path; identity, VOLUMEs and TMPDIR have their own files.

mod identity;
mod tmpdir;
mod volumes;

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
        .map(|(k, v)| ((*k).to_owned(), Arc::new(v.clone())))
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
    hardened.patch.apply(&mut patched).expect("patch applies");
    // Hardening again with the same lookup adds nothing.
    let again = harden_workload_with_images(&patched, kind, &Policy::default(), images).unwrap();
    assert!(
        again.patch.0.is_empty(),
        "not idempotent: {:?}",
        again.patch
    );
    let spec = workload::lookup_value(&patched, kind.pod_spec_path())
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

fn skipped(reason: SkipReason) -> Option<Outcome> {
    Some(Outcome::Skipped(reason))
}

#[test]
fn image_warnings_are_capped() {
    let mut entries = Vec::new();
    let mut containers = Vec::new();
    for i in 0..20 {
        entries.push((format!("img{i}"), Arc::new(facts("", &[], &[]))));
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
        h.patch.apply(&mut patched).unwrap();
        let meta =
            workload::lookup_value(&patched, kind.template_metadata_path().unwrap()).cloned();
        let spec = workload::lookup_value(&patched, kind.pod_spec_path()).unwrap();
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
