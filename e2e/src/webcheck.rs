//! The legacy workload the node tests run: the webcheck image (e2e/node/programs), which has no
//! USER, writes temporary files and, over HTTP on 8080, reports its own UID and what it can
//! write. As a pod or a Deployment, with no securityContext at all: exactly what kube-harden is
//! for. One definition for every node suite (tests/node, tests/node_install).

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::Result;

/// The legacy pod: webcheck on 8080, readiness checked over HTTP by the kubelet.
pub fn legacy_pod(image: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "web",
                "image": image,
                "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2}
            }]
        }
    })
}

/// The legacy pod as the template of a one-replica Deployment `legacy-web`.
pub fn legacy_deployment(image: &str) -> Result<Deployment> {
    let pod = legacy_pod(image);
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "legacy-web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "legacy-web"}},
            "template": {
                "metadata": {"labels": {"app": "legacy-web"}},
                "spec": pod["spec"],
            }
        }
    }))?)
}

/// Parses webcheck's `key=value` lines.
pub fn parse_webcheck(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// What a hardened webcheck answered (`status`, `body`), if it answered 200 as a non-root
/// process on a read-only root; an error naming what it reported otherwise.
pub fn hardened_answer(status: u16, body: &str) -> Result<HashMap<String, String>> {
    let seen = parse_webcheck(body);
    if status != 200
        || seen.get("uid").is_none_or(|u| u == "0")
        || seen.get("root_writable").map(String::as_str) != Some("false")
    {
        return Err(format!("the hardened pod answered {status}: {body}").into());
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcheck_body_is_parsed() {
        let parsed = parse_webcheck("uid=2866\ngid=2866\nroot_writable=false\ntmp_writable=true\n");
        assert_eq!(parsed["uid"], "2866");
        assert_eq!(parsed["root_writable"], "false");
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn only_a_non_root_read_only_answer_is_hardened() {
        let hardened = "uid=2866\nroot_writable=false\n";
        assert_eq!(hardened_answer(200, hardened).unwrap()["uid"], "2866");
        for (status, body) in [
            (200, "uid=0\nroot_writable=false\n"),
            (200, "uid=2866\nroot_writable=true\n"),
            (200, "uid=2866\n"),
            (503, hardened),
        ] {
            assert!(hardened_answer(status, body).is_err(), "{status} {body:?}");
        }
    }

    #[test]
    fn the_deployment_runs_the_legacy_pod() {
        let d = legacy_deployment("img").unwrap();
        let spec = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("img"));
        assert!(spec.security_context.is_none());
    }
}
