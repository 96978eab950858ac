//! The offline `kube-harden harden` command, run as a user runs it: the real binary, real files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kube-harden"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples/ holds the legacy manifests");
    files
}

fn harden(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bin()
        .arg("harden")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut pipe = child.stdin.take().expect("stdin");
    // A command that fails before reading stdin (a bad policy file) closes the pipe early.
    if let Err(e) = pipe.write_all(stdin.unwrap_or_default().as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(pipe);
    child.wait_with_output().expect("binary exits")
}

fn ok_stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("JSON output")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// kubectl, an independent RFC 6902 implementation, applies our patch to each example and must
/// produce exactly what `harden -o json` prints.
#[test]
fn kubectl_applies_the_patch_to_the_same_result() {
    for file in examples() {
        let patch = ok_stdout(harden(&["-f", path(&file), "-o", "patch"], None));
        let ours = json_stream(&ok_stdout(harden(&["-f", path(&file), "-o", "json"], None)));
        assert_eq!(patch.lines().count(), 1, "{file:?} holds one document");
        let out = Command::new("kubectl")
            .args([
                "patch",
                "--local",
                "-f",
                path(&file),
                "--type",
                "json",
                "-o",
                "json",
                "-p",
            ])
            .arg(patch.trim())
            .output()
            .expect("kubectl is installed (see .ci/run)");
        assert!(
            out.status.success(),
            "kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).expect("kubectl JSON");
        assert_eq!(theirs, ours[0], "{file:?}");
        assert!(
            patch.trim() != "[]",
            "{file:?} is a legacy manifest: something must change"
        );
    }
}

#[test]
fn yaml_stream_keeps_order_and_passes_other_kinds_through() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: a}\n\
                 ---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
    let patches = ok_stdout(harden(&["-f", "-", "-o", "patch"], Some(input)));
    let lines: Vec<&str> = patches.lines().collect();
    assert_eq!(lines.len(), 3, "{patches}");
    assert_eq!(lines[0], "[]");
    assert_ne!(lines[1], "[]");
    assert_eq!(lines[2], "[]");

    let yaml = ok_stdout(harden(&["-f", "-"], Some(input)));
    let docs: Vec<Value> = kube_harden::yaml::read_stream(&yaml)
        .into_iter()
        .map(|d| d.expect("YAML output").value)
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Pod", "Service"]);
    assert_eq!(
        docs[0],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
    );
    assert_eq!(docs[1]["spec"]["securityContext"]["runAsNonRoot"], true);
}

#[test]
fn json_list_items_are_hardened_with_patches_under_items() {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}}
    ]});
    let input = list.to_string();
    let patch = ok_stdout(harden(&["-f", "-", "-o", "patch"], Some(&input)));
    let patch: Value = serde_json::from_str(patch.trim()).unwrap();
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .all(|op| op["path"].as_str().unwrap().starts_with("/items/1/"))
    );
    let out = json_stream(&ok_stdout(harden(&["-f", "-", "-o", "json"], Some(&input))));
    assert_eq!(out.len(), 1);
    let mut patched = list.clone();
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(out[0], patched);
    assert_eq!(out[0]["items"][0], list["items"][0]);
}

/// A bad document is reported with its index, line and column and left out; the good ones are
/// still written; the exit status is 1 (docs/configuration.md, "Bad documents").
#[test]
fn bad_documents_are_reported_and_the_others_written() {
    let cases = [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\nkind: [oops\n",
            "document 2 (line 5, column 7): ",
            1,
        ),
        ("{\"kind\": \"Pod\",", "document 1 (line 1, column ", 0),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: []}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: {}\n",
            "document 2 (line 11, column 7): spec.template.spec.containers: expected a list",
            1,
        ),
        (
            "- just\n- a list\n",
            "document 1 (line 1, column 1): expected a mapping",
            0,
        ),
    ];
    for (input, expected, written) in cases {
        let out = harden(&["-f", "-", "-o", "json"], Some(input));
        assert_eq!(out.status.code(), Some(1), "{input:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{input:?}: {stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(json_stream(&stdout).len(), written, "{input:?}: {stdout}");
    }
}

#[test]
fn policy_file_is_used_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("policy.yaml");
    std::fs::write(&good, "runAsUser: 12345\nresources: {cpuLimits: false}\n").unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a}]}\n";
    let out = json_stream(&ok_stdout(harden(
        &["-f", "-", "-o", "json", "--config", path(&good)],
        Some(pod),
    )));
    assert_eq!(out[0]["spec"]["securityContext"]["runAsUser"], 12345);
    assert!(
        out[0]["spec"]["containers"][0]["resources"]["limits"]
            .get("cpu")
            .is_none()
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "resources:\n  memoryLimit: lots\n").unwrap();
    let out = harden(&["-f", "-", "--config", path(&bad)], Some(pod));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resources.memoryLimit"), "{stderr}");
    assert!(out.stdout.is_empty());

    let missing = harden(&["-f", "/nonexistent/file.yaml"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file.yaml"));
}

#[test]
fn explain_reports_decisions_on_stderr() {
    let file = root().join("examples/daemonset-node-agent.yaml");
    let out = harden(&["-f", path(&file), "--explain"], None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("allowPrivilegeEscalation (container agent): skipped (privileged)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("runAsNonRoot (container metrics): applied"),
        "{stderr}"
    );
}

#[test]
fn findings_are_printed_and_gate_ci() {
    let agent = root().join("examples/daemonset-node-agent.yaml");
    let out = harden(&["-f", path(&agent), "--findings"], None);
    assert!(out.status.success(), "--findings alone does not fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "DaemonSet/node-agent (document 1, line 3): 4 findings; fails Pod Security restricted: hostNamespaces, privileged, hostPathVolumes",
        "  restricted privileged: privileged (container \"agent\" must not set securityContext.privileged=true)",
        "  restricted hostPathVolumes: hostPath volumes (volume \"host-root\")",
        "  noReadinessProbe (container metrics): no readinessProbe",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    // What Pod Security reports is listed once, as its check, not again as a finding.
    for line in stderr.lines() {
        assert!(
            !line.starts_with("  privileged") && !line.starts_with("  hostPath"),
            "{line}\n{stderr}"
        );
    }
    let gated = harden(&["-f", path(&agent), "--fail-on-findings"], None);
    assert_eq!(gated.status.code(), Some(2));
    assert!(
        !gated.stdout.is_empty(),
        "the hardened output is still written"
    );

    // A workload that is clean after hardening passes the gate.
    let clean = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - {name: a, image: 'app:1.0'}\n";
    let out = harden(
        &["-f", "-", "--findings", "--fail-on-findings"],
        Some(clean),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Job/j (document 1, line 1): 0 findings; passes Pod Security restricted"),
        "{stderr}"
    );
}
