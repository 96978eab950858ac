//! Beyond the bench pod: each configuration on kube-harden's own examples/ (the pod of each
//! workload) and on three harder pods (an init container; a container whose author allowed root;
//! a partial resources block). One pod of each per namespace, compared with what kube-harden
//! stored for the same pod: what the peer adds that kube-harden does not, what it misses, and
//! what it changes that the author wrote.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::client::Conn;
use crate::controlplane::{create, pod};
use crate::repo_dir;

/// The pods: (label, pod). Workloads of examples/ give their pod template.
pub fn pods() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo_dir().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("example");
        let object: Value = kube_harden::yaml::from_str(&text).expect("example YAML");
        let template = object
            .pointer("/spec/template")
            .or_else(|| object.pointer("/spec/jobTemplate/spec/template"));
        let (metadata, spec) = match template {
            Some(t) => (
                t.get("metadata").cloned().unwrap_or(json!({})),
                t["spec"].clone(),
            ),
            None => (object["metadata"].clone(), object["spec"].clone()),
        };
        let mut spec = spec;
        // A StatefulSet's claims become volumes of its pods: an emptyDir stands in for each.
        for claim in object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let volume = json!({"name": claim.pointer("/metadata/name"), "emptyDir": {}});
            match spec.get_mut("volumes").and_then(Value::as_array_mut) {
                Some(volumes) => volumes.push(volume),
                None => spec["volumes"] = json!([volume]),
            }
        }
        let mut metadata = metadata;
        metadata["generateName"] = json!("shape-");
        if let Some(m) = metadata.as_object_mut() {
            m.remove("name");
        }
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        out.push((
            format!("examples/{name}"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}),
        ));
    }
    let mut init = pod();
    init["spec"]["initContainers"] =
        json!([{"name": "migrate", "image": "registry.example.com/shop/migrate:1.0"}]);
    out.push(("init container".into(), init));
    let mut root = pod();
    root["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(
            json!({"name": "legacy", "image": "registry.example.com/shop/legacy:2",
                     "securityContext": {"runAsNonRoot": false}}),
        );
    out.push(("container allowed to run as root".into(), root));
    let mut partial = pod();
    partial["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "50m"}, "limits": {"memory": "1Gi"}});
    out.push(("partial resources".into(), partial));
    out
}

/// Leaf paths of `spec` and the annotations (kube-harden's own marker aside); list elements
/// are keyed by `name` or `mountPath` where they have one, so that order does not matter; empty
/// maps and lists are not leaves.
fn leaves(pod: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(x, format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
                for (i, x) in a.iter().enumerate() {
                    let key = ["name", "mountPath"]
                        .iter()
                        .find_map(|k| x.get(*k).and_then(Value::as_str))
                        .map_or(i.to_string(), str::to_owned);
                    walk(x, format!("{path}[{key}]"), out);
                }
            }
            // An empty map or list says nothing (the API server defaults `resources: {}`).
            Value::Object(_) => {}
            Value::Array(a) if a.is_empty() => {}
            _ => {
                out.insert(path, v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&pod["spec"], "spec".into(), &mut out);
    if let Some(a) = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in a.iter().filter(|(k, _)| *k != "kube-harden.io/hardened") {
            out.insert(format!("annotations.{k}"), v.clone());
        }
    }
    out
}

/// "adds: …; misses: …; changes: …" of `peer` against kube-harden's `reference`, `sent` being
/// the pod as created.
pub fn compare(sent: &Value, reference: &Value, peer: &Value) -> String {
    let (sent, reference, peer) = (leaves(sent), leaves(reference), leaves(peer));
    let short = |paths: Vec<&String>| {
        let n = paths.len();
        let mut s: Vec<String> = paths
            .into_iter()
            .take(3)
            .map(|p| p.strip_prefix("spec.").unwrap_or(p).to_owned())
            .collect();
        if n > 3 {
            s.push(format!("+{} more", n - 3));
        }
        s.join(", ")
    };
    let adds: Vec<_> = peer
        .keys()
        .filter(|k| !reference.contains_key(*k) && !sent.contains_key(*k))
        .collect();
    let misses: Vec<_> = reference
        .keys()
        .filter(|k| !peer.contains_key(*k) && !sent.contains_key(*k))
        .collect();
    let differs: Vec<_> = reference
        .iter()
        .filter(|(k, v)| !sent.contains_key(*k) && peer.get(*k).is_some_and(|p| p != *v))
        .map(|(k, _)| k)
        .collect();
    let breaks: Vec<_> = sent
        .iter()
        .filter(|(k, v)| peer.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let mut parts = Vec::new();
    for (label, paths) in [
        ("adds", adds),
        ("misses", misses),
        ("other value", differs),
        ("changes the author's", breaks),
    ] {
        if !paths.is_empty() {
            parts.push(format!("{label} ({}): {}", paths.len(), short(paths)));
        }
    }
    if parts.is_empty() {
        "same as kube-harden".into()
    } else {
        parts.join("; ")
    }
}

/// The message of the API server's Status in a refusal (`create`'s error), shortened.
fn refusal(error: &str) -> String {
    let message = error
        .find('{')
        .and_then(|i| serde_json::from_str::<Value>(&error[i..]).ok())
        .and_then(|s| s.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| error.to_owned());
    // "Pod \"shape-x\" is invalid: " says nothing the row does not.
    let message = message
        .split_once("is invalid: ")
        .map_or(message.as_str(), |(_, m)| m);
    message
        .chars()
        .take(160)
        .collect::<String>()
        .replace('|', "/")
}

/// Creates every pod of [`pods`] in each namespace (the first is kube-harden's) and prints
/// one row per pod: for each peer, how it differs from kube-harden.
pub async fn run(admin: &mut Conn, namespaces: &[(&str, &str)]) {
    print!("| pod |");
    for (name, _) in &namespaces[1..] {
        print!(" {name} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(namespaces.len() - 1));
    for (label, sent) in pods() {
        let mut stored = Vec::new();
        for (_, ns) in namespaces {
            let path = format!("/api/v1/namespaces/{ns}/pods");
            stored.push(create(admin, &path, &sent).await);
        }
        print!("| {label} |");
        match &stored[0] {
            Ok(reference) => {
                for peer in &stored[1..] {
                    match peer {
                        Ok(p) => print!(" {} |", compare(&sent, reference, p)),
                        Err(e) => print!(" **refused**: {} |", refusal(e)),
                    }
                }
            }
            Err(e) => print!(" kube-harden's pod refused: {} |", refusal(e)),
        }
        println!();
    }
    println!();
}

#[cfg(test)]
mod tests;
