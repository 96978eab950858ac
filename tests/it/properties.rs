//! Property tests over generated pod specs: hardening never removes or changes an input value,
//! is idempotent, its patch applies, and it never produces a combination that the API server
//! rejects or the kubelet refuses to start.

use std::collections::HashSet;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use kube_harden::harden::quantity::Quantity;
use kube_harden::harden::{
    ImageFacts, ImageLookup, Policy, WorkloadKind, harden_object, harden_workload,
    harden_workload_with_images,
};
use kube_harden_podgen::pod::Container;
use kube_harden_podgen::{PodSpec, Render, ToJson};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn maybe<T: Clone + std::fmt::Debug + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

fn set(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

/// A value of the one pod spec generator (`kube_harden_podgen`, which the fuzz targets use too)
/// drawn from proptest's bytes (shrinking shortens and lowers the bytes, and so the value), with
/// every value of its field's type: junk is the fuzz targets' part.
fn draw<T: for<'a> Arbitrary<'a> + ToJson>(bytes: &[u8]) -> Value {
    T::arbitrary_take_rest(Unstructured::new(bytes))
        .map_or_else(|_| json!({}), |v| v.write(Render::WELL_TYPED))
}

/// A pod spec; one without a container gets one to three (the generator leaves `containers`
/// out, null or empty in most specs: the rules have little to do there).
fn pod_spec() -> impl Strategy<Value = Value> {
    let bytes = |max| prop::collection::vec(any::<u8>(), 0..max);
    (bytes(4096), prop::collection::vec(bytes(1024), 1..=3)).prop_map(|(spec, containers)| {
        let mut spec = draw::<PodSpec>(&spec);
        let has_one = spec["containers"]
            .as_array()
            .is_some_and(|list| list.iter().any(Value::is_object));
        if !has_one {
            let list = containers.iter().map(|b| draw::<Container>(b)).collect();
            spec["containers"] = Value::Array(list);
        }
        spec
    })
}

fn object() -> impl Strategy<Value = Value> {
    (
        pod_spec(),
        prop::sample::select(vec!["Pod", "Deployment", "CronJob"]),
        maybe(prop::sample::select(vec![
            "true",
            "resources,capabilities",
            "runAsUser",
            "runAsGroup",
            "runAsUser,runAsGroup",
        ])),
        maybe(Just("/var/run,/var/cache/nginx")),
        maybe(prop::sample::select(vec!["runAsUser", "true"])),
    )
        .prop_map(|(spec, kind, skip, writable, template_skip)| {
            let mut annotations = Map::new();
            set(&mut annotations, "kube-harden.io/skip", skip.map(Value::from));
            set(&mut annotations, "kube-harden.io/writable-paths", writable.map(Value::from));
            let metadata = json!({"name": "x", "annotations": annotations});
            let mut template_annotations = Map::new();
            set(&mut template_annotations, "kube-harden.io/skip", template_skip.map(Value::from));
            let template_meta = json!({"annotations": template_annotations});
            match kind {
                "Pod" => json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}),
                "Deployment" => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": metadata, "spec": {"template": {"spec": spec}}}),
                _ => json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata,
                    "spec": {"jobTemplate": {"spec": {"template": {"metadata": template_meta, "spec": spec}}}}}),
            }
        })
}

/// The Pod a controller makes from a workload's template (its metadata and spec); a Pod itself.
fn pod_of(object: &Value) -> Value {
    let kind = WorkloadKind::of_object(object).unwrap();
    let Some(meta_path) = kind.template_metadata_path() else {
        return object.clone();
    };
    let meta = meta_path.iter().fold(object, |v, k| &v[*k]);
    let meta = if meta.is_null() {
        json!({})
    } else {
        meta.clone()
    };
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec_of(object)})
}

/// Every value of `original` is in `hardened`, unchanged (arrays may only grow at their end).
fn contains(original: &Value, hardened: &Value, path: &str) -> Result<(), String> {
    match (original, hardened) {
        (Value::Object(a), Value::Object(b)) => a.iter().try_for_each(|(k, v)| {
            let other = b.get(k).ok_or(format!("{path}/{k} removed"))?;
            contains(v, other, &format!("{path}/{k}"))
        }),
        (Value::Array(a), Value::Array(b)) => a.iter().enumerate().try_for_each(|(i, v)| {
            contains(
                v,
                b.get(i).ok_or(format!("{path}/{i} removed"))?,
                &format!("{path}/{i}"),
            )
        }),
        // `null` means "not set" in Kubernetes: the one value hardening may fill in.
        (Value::Null, _) => Ok(()),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path} changed from {a} to {b}")),
    }
}

fn spec_of(object: &Value) -> &Value {
    let kind = WorkloadKind::of_object(object).unwrap();
    kind.pod_spec_path().iter().fold(object, |v, k| &v[*k])
}

fn all_containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn effective<'a>(spec: &'a Value, c: &'a Value, field: &str) -> Option<&'a Value> {
    let get = |v: &'a Value| {
        v.pointer(&format!("/securityContext/{field}"))
            .filter(|v| !v.is_null())
    };
    get(c).or_else(|| get(spec))
}

const LINUX_ONLY: &[&str] = &[
    "seccompProfile",
    "capabilities",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "privileged",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "fsGroupChangePolicy",
    "procMount",
    "seLinuxOptions",
];

/// The checks the API server and kubelet make that hardening could break: every problem of
/// `after` (compared with `before`). `image_uid`: the numeric non-root UID a container's image
/// runs as, if the rules know one (the kubelet then checks `runAsNonRoot` against it).
fn problems(
    before: &Value,
    after: &Value,
    image_uid: &dyn Fn(&Value) -> Option<i64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (b, a) = (spec_of(before), spec_of(after));
    let mut names = HashSet::new();
    for v in a["volumes"].as_array().into_iter().flatten() {
        if !names.insert(v["name"].as_str().unwrap_or_default()) {
            problems.push(format!("duplicate volume {v}"));
        }
    }
    let windows = a.pointer("/os/name") == Some(&json!("windows"));
    if windows {
        for field in LINUX_ONLY {
            let path = format!("/securityContext/{field}");
            if a.pointer(&path) != b.pointer(&path) {
                problems.push(format!(
                    "Linux-only pod field {field} added to a Windows pod"
                ));
            }
        }
    }
    for (cb, ca) in all_containers(b).into_iter().zip(all_containers(a)) {
        let name = &ca["name"];
        let mut paths = HashSet::new();
        for m in ca["volumeMounts"].as_array().into_iter().flatten() {
            let p = m["mountPath"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('/');
            if !paths.insert(p) && m != &json!({"name": "data", "mountPath": p}) {
                problems.push(format!("{name}: duplicate mount path {p}"));
            }
            if !names.contains(m["name"].as_str().unwrap_or_default()) && m["name"] != "data" {
                problems.push(format!("{name}: mount of a missing volume {m}"));
            }
        }
        let mut env = HashSet::new();
        for e in ca["env"].as_array().into_iter().flatten() {
            if !env.insert(e["name"].as_str().unwrap_or_default()) {
                problems.push(format!("{name}: duplicate env {e}"));
            }
        }
        let privileged = ca.pointer("/securityContext/privileged") == Some(&json!(true));
        let sys_admin = ca
            .pointer("/securityContext/capabilities/add")
            .and_then(Value::as_array)
            .is_some_and(|a| a.contains(&json!("SYS_ADMIN")));
        let ape_added = cb
            .pointer("/securityContext/allowPrivilegeEscalation")
            .is_none()
            && ca.pointer("/securityContext/allowPrivilegeEscalation") == Some(&json!(false));
        if ape_added && (privileged || sys_admin) {
            problems.push(format!(
                "{name}: allowPrivilegeEscalation=false on a privileged container"
            ));
        }
        // containerd refuses a runAsGroup without a runAsUser ("user group is specified without
        // user"); one the author wrote that way is theirs.
        let group_added =
            effective(b, cb, "runAsGroup").is_none() && effective(a, ca, "runAsGroup").is_some();
        if group_added && effective(a, ca, "runAsUser").is_none() {
            problems.push(format!("{name}: runAsGroup added without runAsUser"));
        }
        let non_root_added = effective(b, cb, "runAsNonRoot").is_none()
            && effective(a, ca, "runAsNonRoot") == Some(&json!(true));
        if non_root_added {
            let uid = effective(a, ca, "runAsUser")
                .and_then(Value::as_i64)
                .or_else(|| image_uid(ca));
            match uid {
                Some(uid) if uid != 0 => {}
                other => {
                    problems.push(format!(
                        "{name}: runAsNonRoot added with runAsUser {other:?}"
                    ));
                }
            }
        }
        if privileged {
            for field in ["runAsUser", "runAsNonRoot"] {
                if effective(b, cb, field) != effective(a, ca, field) {
                    problems.push(format!("{name}: privileged container got {field}"));
                }
            }
        }
        if windows {
            for field in LINUX_ONLY {
                let path = format!("/securityContext/{field}");
                if cb.pointer(&path) != ca.pointer(&path) {
                    problems.push(format!("{name}: Linux-only {field} added on Windows"));
                }
            }
        }
        for resource in ["cpu", "memory"] {
            let get = |c: &Value, kind: &str| {
                c.pointer(&format!("/resources/{kind}/{resource}")).cloned()
            };
            let (req, lim) = (get(ca, "requests"), get(ca, "limits"));
            let added = req != get(cb, "requests") || lim != get(cb, "limits");
            let q = |v: &Option<Value>| Quantity::parse(v.as_ref()?.as_str()?).ok();
            if let (true, Some(r), Some(l)) = (added, q(&req), q(&lim))
                && r > l
            {
                problems.push(format!(
                    "{name}: {resource} limit {lim:?} below request {req:?}"
                ));
            }
        }
    }
    problems
}

/// The problems hardening brought in: those of the hardened object that the object itself does
/// not have (the generator writes invalid pod specs too).
fn check_valid(
    before: &Value,
    after: &Value,
    image_uid: &dyn Fn(&Value) -> Option<i64>,
) -> Result<(), String> {
    let own = problems(before, before, image_uid);
    let added: Vec<String> = problems(before, after, image_uid)
        .into_iter()
        .filter(|p| !own.contains(p))
        .collect();
    if added.is_empty() {
        Ok(())
    } else {
        Err(added.join("; "))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hardening_only_adds_is_idempotent_and_valid(object in object()) {
        let policy = Policy::default();
        let first = harden_object(&object, &policy).expect("generated objects are well-formed");
        let mut hardened = object.clone();
        first.patch.apply(&mut hardened).expect("the patch applies");
        contains(&object, &hardened, "").map_err(TestCaseError::fail)?;
        check_valid(&object, &hardened, &|_| None).map_err(TestCaseError::fail)?;

        let second = harden_object(&hardened, &policy).expect("hardened objects are well-formed");
        prop_assert!(second.patch.0.is_empty(), "not idempotent: {:?}", second.patch);

        // The skip that applies is the pod template's, else the object's; the object's own
        // kube-harden annotations are copied to a template that lacks them, so that the pods a
        // controller makes carry them too: those pods are hardened to nothing more.
        let kind = WorkloadKind::of_object(&object).unwrap();
        let pointer = |meta: &[&str]| meta.iter().map(|k| format!("/{k}")).collect::<String>();
        let skip_key = "/annotations/kube-harden.io~1skip";
        let template_meta = kind.template_metadata_path().map(pointer);
        let own_skip = object.pointer(&format!("/metadata{skip_key}"));
        let skip = template_meta
            .as_ref()
            .and_then(|m| object.pointer(&format!("{m}{skip_key}")))
            .or(own_skip);
        if let Some(m) = &template_meta {
            prop_assert_eq!(hardened.pointer(&format!("{m}{skip_key}")), skip);
        }
        if skip == Some(&json!("true")) {
            prop_assert!(first.applied_names().is_empty());
            let copy_only = first.patch.0.iter().all(|op| {
                template_meta.as_ref().is_some_and(|m| op.path.to_string().starts_with(m.as_str()))
            });
            prop_assert!(copy_only, "skip true changes only the template's annotations: {:?}", first.patch);
        }
        let pod = pod_of(&hardened);
        let again = harden_object(&pod, &policy).expect("its pods are well-formed");
        prop_assert!(again.patch.0.is_empty(), "its pods are hardened again: {:?}", again.patch);
        let annotated = hardened.pointer("/metadata/annotations/kube-harden.io~1hardened").is_some();
        prop_assert_eq!(annotated, !first.applied_names().is_empty());
    }
}

/// The images the image-aware properties give containers.
const IMAGES: [&str; 3] = ["img/a:1", "img/b:1", "img/c:1"];

fn image_facts() -> impl Strategy<Value = ImageFacts> {
    (
        prop::sample::select(vec![
            "",
            "0",
            "root",
            "1001",
            "1001:1001",
            "1001:0",
            "app",
            "1001:staff",
            "65532:65532",
            "2866",
            "1:2:3",
        ]),
        prop::sample::subsequence(
            vec![
                "/data",
                "/var/lib/app/",
                "/tmp",
                "/proc/x",
                "rel",
                "/data/sub",
                "/var/run",
                "/tmp/cache",
            ],
            0..=4,
        ),
        maybe(prop::sample::select(vec![
            "/tmp",
            "/var/tmp/x",
            "/tmp/x",
            "/data",
            "/var/run",
            "relative",
        ])),
    )
        .prop_map(|(user, volumes, tmpdir)| ImageFacts {
            user: (!user.is_empty()).then(|| user.to_owned()),
            volumes: volumes.into_iter().map(str::to_owned).collect(),
            env: tmpdir
                .map(|t| vec!["PATH=/bin".to_owned(), format!("TMPDIR={t}")])
                .unwrap_or_default(),
            digest: "sha256:0123456789abcdef".into(),
        })
}

/// A lookup with some of [`IMAGES`] (the others are missing: image-blind).
fn lookup() -> impl Strategy<Value = ImageLookup> {
    prop::collection::vec(maybe(image_facts()), IMAGES.len()).prop_map(|facts| {
        IMAGES
            .iter()
            .zip(facts)
            .filter_map(|(image, facts)| Some(((*image).to_owned(), Arc::new(facts?))))
            .collect()
    })
}

/// `object` with each container's image one of [`IMAGES`], as `picks` says.
fn with_images(mut object: Value, picks: &[usize]) -> Value {
    let kind = WorkloadKind::of_object(&object).unwrap();
    let pointer: String = kind
        .pod_spec_path()
        .iter()
        .map(|k| format!("/{k}"))
        .collect();
    let spec = object.pointer_mut(&pointer).unwrap();
    let mut i = 0;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            c["image"] = json!(IMAGES[picks[i % picks.len()] % IMAGES.len()]);
            i += 1;
        }
    }
    object
}

/// The UID a container's image runs as when its `USER` is a numeric non-root UID.
fn image_uid(images: &ImageLookup, c: &Value) -> Option<i64> {
    let facts = images.get(c["image"].as_str()?)?;
    let user = facts.user.as_deref()?;
    let uid = user.split(':').next()?;
    if user.split(':').count() > 2 || !uid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    uid.parse().ok().filter(|uid| *uid != 0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// An empty lookup (or one without the containers' images) never changes the answer; with
    /// images, hardening still only adds (the patch builder refuses anything else, and no
    /// object is refused for it), gives a valid pod, and is idempotent, for the object and for
    /// the pods a controller makes from it.
    #[test]
    fn image_facts_only_add_and_an_empty_lookup_changes_nothing(
        object in object(),
        picks in prop::collection::vec(0..IMAGES.len(), 1..=6),
        images in lookup(),
    ) {
        let policy = Policy::default();
        let object = with_images(object, &picks);
        let kind = WorkloadKind::of_object(&object).unwrap();
        let blind = harden_workload(&object, kind, &policy).expect("well-formed");
        let unrelated: ImageLookup =
            [("img/z:1".to_owned(), Arc::new(ImageFacts { user: Some("1001".into()), ..ImageFacts::default() }))]
                .into_iter()
                .collect();
        for empty in [ImageLookup::new(), unrelated] {
            let seen = harden_workload_with_images(&object, kind, &policy, &empty).unwrap();
            prop_assert_eq!(
                serde_json::to_string(&seen.patch).unwrap(),
                serde_json::to_string(&blind.patch).unwrap()
            );
            prop_assert_eq!(&seen.warnings, &blind.warnings);
            prop_assert_eq!(&seen.changes, &blind.changes);
        }

        let first = harden_workload_with_images(&object, kind, &policy, &images)
            .map_err(|e| TestCaseError::fail(format!("refused with images: {e}")))?;
        let mut hardened = object.clone();
        first.patch.apply(&mut hardened).expect("the patch applies");
        contains(&object, &hardened, "").map_err(TestCaseError::fail)?;
        check_valid(&object, &hardened, &|c| image_uid(&images, c)).map_err(TestCaseError::fail)?;
        let second = harden_workload_with_images(&hardened, kind, &policy, &images).unwrap();
        prop_assert!(second.patch.0.is_empty(), "not idempotent: {:?}", second.patch);
        let pod = pod_of(&hardened);
        let again = harden_workload_with_images(&pod, WorkloadKind::Pod, &policy, &images).unwrap();
        prop_assert!(again.patch.0.is_empty(), "its pods are hardened again: {:?}", again.patch);
    }
}
