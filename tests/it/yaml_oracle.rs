//! kube-harden reads and writes YAML as Kubernetes does, decided by Kubernetes' own code.
//!
//! The oracle (tests/yaml-oracle, built from Go modules) converts YAML to JSON with
//! k8s.io/apimachinery's stream decoder and sigs.k8s.io/yaml over go-yaml v2, as kubectl does.
//! For every document of every file in tests/yaml-oracle/cases:
//! - the JSON that `harden -o json` prints equals what the oracle reads from `-o yaml`;
//! - a document no rule changes reads the same, by the oracle, before and after;
//! - a workload's `-o json` equals `kubectl patch --local` of its `-o patch` applied to the
//!   oracle's reading of the input;
//! - a YAML 1.2 reader (saphyr) reads `-o yaml` as the same JSON too.
//!
//! Every file in tests/yaml-oracle/cases/errors is refused by the oracle and by kube-harden.

use std::path::{Path, PathBuf};
use std::process::Command;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the oracle if it is not cached yet, and returns its path.
fn oracle() -> PathBuf {
    let out = Command::new(root().join("tests/yaml-oracle/build.sh"))
        .output()
        .expect("tests/yaml-oracle/build.sh runs");
    assert!(
        out.status.success(),
        "building the oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The oracle's JSON of each document of `yaml`, or its error.
fn kubernetes_reads(oracle: &Path, yaml: &[u8]) -> Result<Vec<Value>, String> {
    let mut child = Command::new(oracle)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("oracle runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut documents = Vec::new();
    for line in text.lines() {
        if let Some(error) = line.strip_prefix("ERROR: ") {
            return Err(error.to_owned());
        }
        documents.push(serde_json::from_str(line).expect("oracle prints JSON"));
    }
    assert!(out.status.success(), "oracle failed without a message");
    Ok(documents)
}

fn harden(file: &Path, format: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .args(["harden", "-f"])
        .arg(file)
        .args(["-o", format])
        .output()
        .expect("kube-harden runs")
}

fn ok_stdout(file: &Path, format: &str) -> String {
    let out = harden(file, format);
    assert!(
        out.status.success(),
        "{file:?} -o {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A YAML 1.2 (core schema) reading of a YAML stream, as JSON.
fn yaml_1_2_reads(text: &str) -> Vec<Value> {
    fn json(node: &Yaml) -> Value {
        match node {
            Yaml::Value(Scalar::Null) => Value::Null,
            Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
            Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
            Yaml::Value(Scalar::FloatingPoint(f)) => {
                let f = f.into_inner();
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    Value::from(f as i64)
                } else {
                    Value::from(f)
                }
            }
            Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
            Yaml::Sequence(items) => Value::Array(items.iter().map(json).collect()),
            Yaml::Mapping(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| match k {
                        Yaml::Value(Scalar::String(k)) => (k.to_string(), json(v)),
                        other => panic!("a YAML 1.2 reader sees a non-string key {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("unexpected YAML 1.2 node {other:?}"),
        }
    }
    Yaml::load_from_str(text)
        .expect("YAML 1.2 parses the output")
        .iter()
        .map(json)
        .collect()
}

/// The YAML 1.2 reader has no integers above `i64::MAX` (it reads them as floats): the same
/// number, for the comparison.
fn wide_integers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            Value::from(n.as_f64().unwrap_or_default())
        }
        Value::Array(items) => Value::Array(items.iter().map(wide_integers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), wide_integers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("JSON output")
}

fn kubectl_patch(document: &Value, patch: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("document.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let out = Command::new("kubectl")
        .args(["patch", "--local", "--type", "json", "-o", "json", "-f"])
        .arg(&file)
        .arg("-p")
        .arg(patch)
        .output()
        .expect("kubectl is installed (see .ci/run)");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl JSON")
}

/// A List's patch (paths under `/items/N`) applied by kubectl to each item.
fn list_patch(list: &Value, patch: &str) -> Value {
    let ops: Vec<Value> = serde_json::from_str(patch).unwrap();
    let mut out = list.clone();
    for (i, item) in list["items"].as_array().unwrap().iter().enumerate() {
        let prefix = format!("/items/{i}/");
        let item_ops: Vec<Value> = ops
            .iter()
            .filter_map(|op| {
                let path = op["path"].as_str()?.strip_prefix(&prefix)?;
                let mut op = op.clone();
                op["path"] = Value::from(format!("/{path}"));
                Some(op)
            })
            .collect();
        if !item_ops.is_empty() {
            out["items"][i] = kubectl_patch(item, &Value::from(item_ops).to_string());
        }
    }
    out
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn output_reads_as_kubernetes_reads_the_input() {
    let oracle = oracle();
    let files = cases(&root().join("tests/yaml-oracle/cases"));
    assert!(files.len() >= 4, "the table of cases is there");
    let mut workloads = 0;
    let mut others = 0;
    for file in files {
        let input = std::fs::read(&file).unwrap();
        let theirs = kubernetes_reads(&oracle, &input)
            .unwrap_or_else(|e| panic!("{file:?}: the oracle refuses the input: {e}"));
        let yaml = ok_stdout(&file, "yaml");
        let ours = json_stream(&ok_stdout(&file, "json"));
        let patches: Vec<String> = ok_stdout(&file, "patch")
            .lines()
            .map(str::to_owned)
            .collect();
        let output_read = kubernetes_reads(&oracle, yaml.as_bytes())
            .unwrap_or_else(|e| panic!("{file:?}: the oracle refuses our output: {e}\n{yaml}"));
        assert_eq!(output_read.len(), theirs.len(), "{file:?}: documents");
        assert_eq!(ours.len(), theirs.len(), "{file:?}: -o json documents");
        assert_eq!(patches.len(), theirs.len(), "{file:?}: -o patch lines");
        let yaml_1_2 = yaml_1_2_reads(&yaml);
        for (i, input_read) in theirs.iter().enumerate() {
            let at = format!("{file:?} document {}", i + 1);
            assert_eq!(
                output_read[i], ours[i],
                "{at}: -o yaml read back != -o json"
            );
            assert_eq!(
                wide_integers_as_floats(&yaml_1_2[i]),
                wide_integers_as_floats(&ours[i]),
                "{at}: a YAML 1.2 reader reads -o yaml differently"
            );
            if patches[i] == "[]" {
                others += 1;
                assert_eq!(
                    &ours[i], input_read,
                    "{at}: unchanged document reads differently"
                );
            } else {
                workloads += 1;
                let patched = if input_read["kind"] == "List" {
                    // kubectl patches each item of a List: the patch, item by item.
                    list_patch(input_read, &patches[i])
                } else {
                    kubectl_patch(input_read, &patches[i])
                };
                assert_eq!(
                    ours[i], patched,
                    "{at}: kubectl patch of -o patch != -o json"
                );
            }
        }
    }
    assert!(
        workloads >= 6 && others >= 8,
        "{workloads} workloads, {others} others"
    );
}

#[test]
fn what_kubernetes_refuses_is_refused_with_a_position() {
    let oracle = oracle();
    let files = cases(&root().join("tests/yaml-oracle/cases/errors"));
    assert!(files.len() >= 4);
    for file in files {
        let input = std::fs::read(&file).unwrap();
        let theirs = kubernetes_reads(&oracle, &input);
        assert!(
            theirs.is_err(),
            "{file:?}: the oracle accepts it: {theirs:?}"
        );
        let out = harden(&file, "json");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file:?}: {stderr}");
        assert!(stderr.contains(", column "), "{file:?}: {stderr}");
    }
}

/// The defects of issue 12, checked by name: each once came out wrong.
#[test]
fn the_three_defects_stay_fixed() {
    let file = root().join("tests/yaml-oracle/cases/defects.yaml");
    let yaml = ok_stdout(&file, "yaml");
    for quoted in [
        r#"- "no""#,
        r#"- "yes""#,
        r#"value: "off""#,
        r#"value: "on""#,
        r#"value: "y""#,
        r#"value: "NO""#,
        r#"- "1_000""#,
        r#"octal: "0755""#,
        r#"count: "012""#,
    ] {
        assert!(yaml.contains(quoted), "{quoted} must stay quoted:\n{yaml}");
    }
    let ours = json_stream(&ok_stdout(&file, "json"));
    let volume = &ours[3]["spec"]["template"]["spec"]["volumes"][0]["configMap"];
    assert_eq!(volume["defaultMode"], 493);
    let containers = &ours[4]["spec"]["template"]["spec"]["containers"];
    for container in containers.as_array().unwrap() {
        let env = container["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "MODE"), "{container}");
        assert!(container.get("<<").is_none(), "{container}");
    }
    let agent = &containers[2]["securityContext"];
    assert_eq!(agent["privileged"], true);
    assert!(agent.get("allowPrivilegeEscalation").is_none(), "{agent}");
    assert!(agent.get("runAsUser").is_none(), "{agent}");
}

proptest::proptest! {
    /// Strings kube-harden writes (keys and values, ambiguous to YAML 1.1 or not) read back as
    /// the same strings under a YAML 1.2 reader.
    #[test]
    fn written_strings_read_the_same_under_yaml_1_2(
        key in "[ -~\t\néü✓]{1,12}",
        value in proptest::prop_oneof![
            "[ -~\t\néü✓]{0,40}",
            "(yes|no|on|off|y|n|~|null|0[0-7]{1,3}|[0-9_]{1,6}|[0-9]{1,2}:[0-5][0-9]|0x[0-9A-F]{1,3}|0o[0-7]{1,3}|\\.inf|[0-9]e[0-9]|2001-12-1[0-9])",
        ],
    ) {
        let doc = serde_json::json!({ key.clone(): value.clone(), "n": [value.clone()] });
        let out = kube_harden::yaml::to_string(&doc);
        proptest::prop_assert_eq!(yaml_1_2_reads(&out), vec![doc], "{}", out);
    }
}
