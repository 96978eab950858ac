use serde_json::json;

use super::{compare, pods};

#[test]
fn compare_names_what_a_peer_adds_misses_and_changes() {
    let sent = json!({"spec": {"containers": [{"name": "a", "image": "x",
        "env": [{"name": "MODE", "value": "1"}]}]}});
    let reference = json!({"metadata": {"annotations": {"kube-harden.io/hardened": "tmpdirEnv"}},
        "spec": {"containers": [{"name": "a", "image": "x",
        "env": [{"name": "MODE", "value": "1"}, {"name": "TMPDIR", "value": "/tmp"}]}]}});
    assert_eq!(
        compare(&sent, &reference, &reference),
        "same as kube-harden"
    );
    // List order does not matter (elements by name), kube-harden's own annotation is not a field.
    let reordered = json!({"spec": {"containers": [{"name": "a", "image": "x",
        "env": [{"name": "TMPDIR", "value": "/tmp"}, {"name": "MODE", "value": "1"}]}]}});
    assert_eq!(
        compare(&sent, &reference, &reordered),
        "same as kube-harden"
    );
    assert_eq!(
        compare(&sent, &reference, &sent),
        "misses (2): containers[a].env[TMPDIR].name, containers[a].env[TMPDIR].value"
    );
    let other = json!({"spec": {"containers": [{"name": "a", "image": "docker.io/x",
        "env": [{"name": "MODE", "value": "1"}, {"name": "TMPDIR", "value": "/var/tmp"}],
        "stdin": true}]}});
    assert_eq!(
        compare(&sent, &reference, &other),
        "adds (1): containers[a].stdin; other value (1): containers[a].env[TMPDIR].value; \
         changes the author's (1): containers[a].image"
    );
}

#[test]
fn every_example_gives_a_pod_with_containers() {
    let pods = pods();
    assert!(
        pods.iter()
            .filter(|(l, _)| l.starts_with("examples/"))
            .count()
            >= 8
    );
    for (label, pod) in &pods {
        assert_eq!(pod["kind"], "Pod", "{label}");
        assert!(
            pod.pointer("/spec/containers/0/image").is_some(),
            "{label}: {pod}"
        );
    }
}
