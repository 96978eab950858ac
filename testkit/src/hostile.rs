//! Hostile AdmissionReview bodies (issue 11): the shapes that used to cost a review gigabytes of
//! memory or seconds of CPU. Each is a Pod CREATE a tenant could send through the API server
//! (mutating admission runs before the API server's annotation-size validation).

use serde_json::{Value, json};

use crate::review_for;

/// A Pod CREATE review: Pod `p` in `namespace`, with these annotations and containers.
pub fn pod_review(namespace: &str, annotations: Value, containers: Value) -> Value {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace, "annotations": annotations},
        "spec": {"containers": containers}
    });
    let mut review = review_for(&pod, "", "Pod", "pods", "CREATE");
    review["request"]["namespace"] = json!(namespace);
    review
}

/// [`pod_review`] in namespace `tenant`, serialized: what a tenant sends.
pub fn tenant_review(annotations: Value, containers: Value) -> Vec<u8> {
    body(&pod_review("tenant", annotations, containers))
}

fn body(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).expect("a JSON value serializes")
}

/// `n` containers `{"name": "c<i>", "image": "app:1"}`.
pub fn containers(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "app:1"}))
            .collect(),
    )
}

/// `item,item,...` repeated to about `bytes` bytes.
pub fn repeated(item: &str, bytes: usize) -> String {
    let count = bytes / (item.len() + 1);
    vec![item; count.max(1)].join(",")
}

/// `n` distinct absolute paths made only of punctuation (`/_`, `/-`, `/__`, `/_-`, ...): they
/// all map to the same volume name.
pub fn colliding_paths(n: usize) -> Vec<String> {
    const ALPHABET: [char; 6] = ['_', '-', '~', '+', '=', '@'];
    (1..=n)
        .map(|mut i| {
            let mut path = String::from("/");
            while i > 0 {
                i -= 1;
                path.push(ALPHABET[i % ALPHABET.len()]);
                i /= ALPHABET.len();
            }
            path
        })
        .collect()
}

/// The four worst shapes of issue 11, item 1: (label, body).
pub fn worst_shapes() -> Vec<(&'static str, Vec<u8>)> {
    let paths: Vec<String> = (0..1000).map(|i| format!("/p{i}")).collect();
    vec![
        (
            "1,000 containers x 1,000 writable paths",
            tenant_review(
                json!({"kube-harden.io/writable-paths": paths.join(",")}),
                containers(1000),
            ),
        ),
        (
            "skip: \"a,a,a,...\" 3 MB",
            tenant_review(
                json!({"kube-harden.io/skip": repeated("a", 3_000_000)}),
                containers(1),
            ),
        ),
        (
            "writable-paths: \"a,a,a,...\" 3 MB",
            tenant_review(
                json!({"kube-harden.io/writable-paths": repeated("a", 3_000_000)}),
                containers(1),
            ),
        ),
        (
            "100,000 containers",
            tenant_review(json!({}), containers(100_000)),
        ),
    ]
}

/// The largest answer within the per-object budget: 256 containers, 4 writable paths of 255
/// bytes each (1,024 mounts).
pub fn largest_answer() -> Vec<u8> {
    let paths: Vec<String> = (0..4).map(|i| format!("/{i}{}", "a".repeat(253))).collect();
    tenant_review(
        json!({"kube-harden.io/writable-paths": paths.join(",")}),
        containers(256),
    )
}

/// The most memory within the per-object budget: one container whose `env` has about 6 MB of
/// values in 90,000 JSON values (under the parse budget of 100,000).
pub fn largest_spec() -> Vec<u8> {
    let env: Vec<Value> = (0..30_000)
        .map(|i| json!({"name": format!("E{i}"), "value": "v".repeat(190)}))
        .collect();
    tenant_review(
        json!({}),
        json!([{"name": "app", "image": "app:1", "env": env}]),
    )
}

/// 64 colliding writable paths on a pod that already has volumes `kube-harden-path`,
/// `kube-harden-path-2`, ... `kube-harden-path-<taken>`: the free-name search must skip them.
pub fn colliding_taken_review(taken: usize) -> Vec<u8> {
    let mut review = pod_review("tenant", colliding_annotation(64), containers(1));
    let volumes: Vec<Value> = (1..=taken)
        .map(|n| {
            let name = if n == 1 {
                "kube-harden-path".to_owned()
            } else {
                format!("kube-harden-path-{n}")
            };
            json!({"name": name, "configMap": {"name": "c"}})
        })
        .collect();
    review["request"]["object"]["spec"]["volumes"] = Value::Array(volumes);
    body(&review)
}

/// A review with `n` colliding writable paths on one container.
pub fn colliding_review(n: usize) -> Vec<u8> {
    tenant_review(colliding_annotation(n), containers(1))
}

/// The annotations `kube-harden.io/writable-paths: <n colliding paths>`.
fn colliding_annotation(n: usize) -> Value {
    json!({"kube-harden.io/writable-paths": colliding_paths(n).join(",")})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_paths_are_distinct_and_punctuation_only() {
        let paths = colliding_paths(500);
        let distinct: std::collections::HashSet<&String> = paths.iter().collect();
        assert_eq!(distinct.len(), 500);
        assert_eq!(&paths[..3], &["/_", "/-", "/~"]);
        assert!(
            paths
                .iter()
                .all(|p| p[1..].chars().all(|c| !c.is_alphanumeric()))
        );
    }
}
