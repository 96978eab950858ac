//! What switches a change off: Windows pods, the skip annotation, the policy's `disabled`
//! list, and values the author chose another way (the legacy seccomp annotation).

use super::*;

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
