//! Hints: for each applied change that can stop a legacy app from starting, the one line that
//! says how to fix it (docs/legacy-apps.md has the apps that break and the fix each needs).
//!
//! They are read off the decisions, so every place that shows the decisions (admission warnings,
//! `kube-harden harden --explain`) shows the same hints. At most one line per change, whatever
//! the number of containers: kubectl prints every warning.

use super::{Change, ChangeName, Outcome, Policy, SKIP_ANNOTATION, WRITABLE_PATHS_ANNOTATION};
use super::{WorkloadKind, budget};

/// The hints for `changes`. `writable_paths`: the object already lists writable paths (its
/// author knows the annotation, so the read-only root needs no hint).
pub(crate) fn hints(
    kind: WorkloadKind,
    changes: &[Change],
    policy: &Policy,
    writable_paths: bool,
) -> Vec<String> {
    let applied = |name: ChangeName| {
        changes
            .iter()
            .any(|c| c.name == name && c.outcome == Outcome::Applied)
    };
    let target = match kind {
        WorkloadKind::Pod => "the Pod",
        _ => "the pod template",
    };
    let mut out = Vec::new();
    if applied(ChangeName::ReadOnlyRootFilesystem) && !writable_paths {
        let name = ChangeName::ReadOnlyRootFilesystem;
        out.push(format!(
            "{name}: the root filesystem is read-only; an app that writes outside /tmp needs \
             {WRITABLE_PATHS_ANNOTATION}: \"<dir>,<dir>\" on {target} (or skip {name})"
        ));
    }
    // A UID taken from the image (recorded with a detail) is the image's own user: no hint.
    let default_uid = changes.iter().any(|c| {
        c.name == ChangeName::RunAsUser && c.outcome == Outcome::Applied && c.detail.is_none()
    });
    if default_uid {
        let (user, group) = (ChangeName::RunAsUser, ChangeName::RunAsGroup);
        out.push(format!(
            "{user}: containers run as UID {}, not as their image's own USER; an image that needs \
             its own user wants {SKIP_ANNOTATION}: \"{user},{group}\" on {target} (or an explicit \
             {user})",
            policy.run_as_user
        ));
    }
    out
}

/// The warning when the workload and its pod template set `annotation` to different values.
pub(crate) fn conflict(kind: WorkloadKind, annotation: &str, template_value: &str) -> String {
    format!(
        "{annotation} differs on the {kind} and its pod template; the template's value {} \
         applies (its pods carry it)",
        budget::quoted(template_value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::SkipReason;

    fn change(name: ChangeName, container: Option<&str>, outcome: Outcome) -> Change {
        Change {
            name,
            container: container.map(str::to_owned),
            outcome,
            detail: None,
        }
    }

    #[test]
    fn one_hint_per_change_that_can_break_an_app() {
        use ChangeName::*;
        let policy = Policy::default();
        let rofs = |c| change(ReadOnlyRootFilesystem, Some(c), Outcome::Applied);
        let user = change(RunAsUser, None, Outcome::Applied);
        let read_only = "readOnlyRootFilesystem: the root filesystem is read-only; an app that \
                         writes outside /tmp needs kube-harden.io/writable-paths: \"<dir>,<dir>\" \
                         on the pod template (or skip readOnlyRootFilesystem)";
        let uid = "runAsUser: containers run as UID 2866, not as their image's own USER; an image \
                   that needs its own user wants kube-harden.io/skip: \"runAsUser,runAsGroup\" on \
                   the pod template (or an explicit runAsUser)";
        let cases: Vec<(Vec<Change>, bool, Vec<&str>)> = vec![
            (vec![], false, vec![]),
            (
                vec![rofs("a"), rofs("b"), rofs("c")],
                false,
                vec![read_only],
            ),
            (vec![rofs("a")], true, vec![]),
            (
                vec![change(
                    ReadOnlyRootFilesystem,
                    Some("a"),
                    Outcome::Skipped(SkipReason::OptedOut),
                )],
                false,
                vec![],
            ),
            (vec![user.clone(), rofs("a")], false, vec![read_only, uid]),
            (
                vec![
                    change(RunAsUser, Some("a"), Outcome::Applied),
                    change(RunAsUser, Some("b"), Outcome::Applied),
                ],
                true,
                vec![uid],
            ),
            (
                vec![change(RunAsUser, None, Outcome::AlreadySet)],
                false,
                vec![],
            ),
        ];
        for (changes, writable, expected) in cases {
            assert_eq!(
                hints(WorkloadKind::Deployment, &changes, &policy, writable),
                expected,
                "{changes:?}"
            );
        }
        let on_a_pod = hints(WorkloadKind::Pod, &[user], &policy, false);
        assert!(on_a_pod[0].contains("on the Pod (or"), "{on_a_pod:?}");
    }

    #[test]
    fn conflicts_quote_the_template_value() {
        assert_eq!(
            conflict(WorkloadKind::Deployment, SKIP_ANNOTATION, "runAsUser"),
            "kube-harden.io/skip differs on the Deployment and its pod template; the template's \
             value \"runAsUser\" applies (its pods carry it)"
        );
    }
}
