//! Tests of the offline command's reading, hardening and reports.

use super::*;

fn messages(input: &str) -> Vec<String> {
    harden_stream(input, "in.yaml", &Policy::default())
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn malformed_yaml_names_document_line_and_column_and_keeps_the_others() {
    let input = "apiVersion: v1\nkind: Secret\n---\napiVersion: v1\nkind: [unclosed\n---\n\
                 apiVersion: v1\nkind: ConfigMap\n";
    let outcome = harden_stream(input, "in.yaml", &Policy::default());
    assert_eq!(outcome.documents.len(), 2);
    assert_eq!(outcome.documents[1].index, 3);
    assert_eq!(outcome.documents[1].line, 7);
    let msg = outcome.errors[0].to_string();
    assert!(
        msg.starts_with("in.yaml: document 2 (line 5, column 7): "),
        "{msg}"
    );
}

#[test]
fn scalar_documents_are_rejected() {
    let errors = messages("just a string\n");
    assert!(
        errors[0].contains("document 1 (line 1, column 1): expected a mapping"),
        "{errors:?}"
    );
    let errors = messages("[1, 2]");
    assert!(errors[0].contains("expected a mapping"), "{errors:?}");
}

#[test]
fn wrong_types_name_the_field_and_its_position() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: nope\n";
    let errors = messages(input);
    assert!(
        errors[0].contains("(line 5, column 3): spec.containers: expected a list"),
        "{errors:?}"
    );
    // Inside a named container of a Deployment, and inside a List item.
    let input = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      \
                 containers:\n      - name: a\n        image: a\n      - name: b\n        \
                 securityContext: [oops]\n";
    let errors = messages(input);
    assert!(errors[0].contains("(line 10, column 9)"), "{errors:?}");
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec:\n    \
                containers: 5\n";
    let errors = messages(list);
    assert!(errors[0].contains("(line 7, column 5)"), "{errors:?}");
    // A missing pod spec: where its nearest parent is.
    let input = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  template:\n    \
                 metadata: {}\n";
    let errors = messages(input);
    assert!(
        errors[0].contains("(line 5, column 3): Deployment has no pod spec at spec.template.spec"),
        "{errors:?}"
    );
}

#[test]
fn unserved_api_versions_are_left_alone_with_a_warning() {
    let input = "apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  \
                 template:\n    spec:\n      containers: [{name: a, image: a}]\n---\n\
                 apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  \
                 jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: a}]}}}}\n";
    let outcome = harden_stream(input, "in.yaml", &Policy::default());
    assert!(outcome.errors.is_empty());
    for doc in &outcome.documents {
        assert_eq!(doc.original, doc.hardened);
        assert!(doc.patch.0.is_empty());
    }
    let report = unserved_report(&outcome.documents, "in.yaml");
    assert!(
        report.contains(
            "in.yaml: document 1 (line 1): extensions/v1beta1 DaemonSet is no longer served"
        ),
        "{report}"
    );
    assert!(
        report.contains("document 2 (line 9): batch/v1beta1 CronJob"),
        "{report}"
    );
}
